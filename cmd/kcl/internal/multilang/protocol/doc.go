// Package protocol encodes and decodes the MultiLangDaemon protocol: the
// line-delimited JSON a host speaks with one child record processor per shard
// (the processors written on Amazon's aws-kcl for Node, kclpy for Python and
// the Ruby, .NET and Java clients).
//
// The host writes to the child's stdin with the Append functions (one message
// per call, a JSON object terminated by "\n"), and reads the child's stdout
// with a [Reader], which returns a [Status], a [CheckpointRequest] or, for
// anything else, a [Garbage] the host logs and skips.
//
// This package holds no state about calls or shards and does no I/O of its
// own apart from the Reader's reads: which message may be sent when, and what
// a checkpoint request means, is the host's business.
package protocol
