// Package child runs one child record processor of the MultiLangDaemon
// protocol: it starts the process, makes one call at a time on it (a host
// message written to its stdin, then the child's messages read from its
// stdout until the matching status, answering its checkpoint requests in
// order), logs its stderr, and stops it.
//
// The package knows the process-level contract only. What a call means for
// the shard (which message to send when, how to validate and store a
// checkpoint) is the caller's business: it encodes messages with the
// protocol package's Append functions and answers checkpoint requests with
// the callback it passes to [Child.Call].
//
// A call that costs the child (the child exits or closes its stdout, answers
// with the wrong responseFor, writes a line that is too long, cannot be
// written to, or exceeds the call's timeout or its context) returns a
// [*CallError] that matches [ErrChildFailed]. The Child is then unusable and
// the caller kills it with [Child.Kill]. After the status for the final call
// (leaseLost or shardEnded) the caller stops the child with [Child.Close].
//
// Timeouts and cancellation use read and write deadlines on the pipes, which
// needs pollable pipes (Linux, macOS and the BSDs).
package child
