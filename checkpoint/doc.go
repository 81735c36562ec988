// Package checkpoint records where processing of a shard stands.
//
// A Position is a user record (a sequence number and, for records unpacked
// from a KPL aggregate, a sub-sequence number) or one of KCL's sentinels:
// TRIM_HORIZON, LATEST, AT_TIMESTAMP and SHARD_END. Positions are stored in
// the lease table exactly as KCL stores them (Parse, SequenceNumber and
// SubSequenceNumber) and ordered as KCL orders them (Compare): sequence
// numbers as unsigned integers of up to 129 digits, then sub-sequence
// numbers, with the initial-position sentinels below every record and
// SHARD_END above.
//
// A Checkpointer is what a record processor is given to report progress. It
// validates each checkpoint as KCL does, serializes the writes, and hands
// them to a Writer: the lease holder, which fences each write with the lease
// counter. Errors to branch on: ErrInvalid (with ErrBeforeLast,
// ErrBeyondDelivered and *ParseError) for a checkpoint that is the caller's
// mistake, and the lease package's ErrLeaseLost, passed through from the
// Writer, for a lease that was lost.
//
// The package is a leaf: it imports no other package of this module.
package checkpoint
