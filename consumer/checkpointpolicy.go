package consumer

import (
	"errors"
	"time"
)

// CheckpointPolicy says when the Worker checkpoints on the processor's
// behalf, in addition to the checkpoints the processor writes through
// Batch.Checkpointer. Create one with CheckpointManual,
// CheckpointAfterEachBatch or CheckpointEvery and pass it to
// WithCheckpointPolicy; the zero CheckpointPolicy is not valid.
//
// Whatever the policy, the Worker never checkpoints a batch whose
// ProcessRecords call has not returned nil (or that the ErrorHandler
// skipped), never checkpoints after the lease is lost, and always writes
// SHARD_END after the last batch of a closed shard.
type CheckpointPolicy struct {
	kind  checkpointKind
	every time.Duration
}

type checkpointKind uint8

const (
	checkpointManual checkpointKind = iota + 1
	checkpointAfterEachBatch
	checkpointEvery
)

// CheckpointManual leaves checkpointing to the processor, as KCL does: the
// Worker writes only SHARD_END at the end of a closed shard. Records that
// were processed but not checkpointed when the lease moves are delivered
// again to the next owner. This is the default.
func CheckpointManual() CheckpointPolicy {
	return CheckpointPolicy{kind: checkpointManual}
}

// CheckpointAfterEachBatch makes the Worker checkpoint after every batch
// whose ProcessRecords call returned nil, at the batch's last record, and
// again when the processor is shut down gracefully. It costs one lease-table
// write per batch.
func CheckpointAfterEachBatch() CheckpointPolicy {
	return CheckpointPolicy{kind: checkpointAfterEachBatch}
}

// CheckpointEvery makes the Worker checkpoint, after a batch returns nil, at
// most once per interval d, and again when the processor is shut down
// gracefully, so at most about d of processed records are redelivered after
// a crash. d must be positive.
func CheckpointEvery(d time.Duration) CheckpointPolicy {
	return CheckpointPolicy{kind: checkpointEvery, every: d}
}

// String describes the policy, such as "CheckpointEvery(5s)".
func (p CheckpointPolicy) String() string {
	switch p.kind {
	case checkpointManual:
		return "CheckpointManual()"
	case checkpointAfterEachBatch:
		return "CheckpointAfterEachBatch()"
	case checkpointEvery:
		return "CheckpointEvery(" + p.every.String() + ")"
	}
	return "CheckpointPolicy{}"
}

func (p CheckpointPolicy) validate() error {
	switch p.kind {
	case checkpointManual, checkpointAfterEachBatch:
		return nil
	case checkpointEvery:
		if p.every <= 0 {
			return errors.New("interval must be positive")
		}
		return nil
	}
	return errors.New("zero CheckpointPolicy: use CheckpointManual, CheckpointAfterEachBatch or CheckpointEvery")
}
