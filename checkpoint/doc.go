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
// Record processors checkpoint through consumer.Checkpointer, which validates
// each checkpoint as KCL does: never below the last checkpoint, never beyond
// the last record delivered to the processor. The errors it returns for a
// checkpoint that is the caller's mistake are defined here so that they can
// be branched on: ErrInvalid, matched by ErrBeforeLast, ErrBeyondDelivered
// and every *ParseError. A lost lease is reported with the lease package's
// ErrLeaseLost.
//
// The package is a leaf: it imports no other package of this module.
package checkpoint
