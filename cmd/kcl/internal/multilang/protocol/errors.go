package protocol

// CheckpointError is the error field of the host's checkpoint reply: the
// simple class name of the exception the Java host's checkpointer would have
// thrown. aws-kcl passes it to the processor's checkpoint callback as the
// error; kclpy raises CheckpointError with it. The empty CheckpointError is
// success and is sent as null.
type CheckpointError string

// The error names a MultiLangDaemon host returns.
const (
	// IllegalArgumentException: the requested position is before the last
	// checkpoint or beyond the largest (sequence, sub-sequence) number
	// delivered to this child, the sub-sequence number is negative, or the
	// sequence number is neither digits nor a sentinel. Retrying the same
	// request cannot succeed.
	IllegalArgumentException CheckpointError = "IllegalArgumentException"
	// ShutdownException: this worker no longer holds the shard's lease (lost
	// or handed off to another worker). Do not retry.
	ShutdownException CheckpointError = "ShutdownException"
	// ThrottlingException: the lease table throttled the write; retrying
	// later is fine.
	ThrottlingException CheckpointError = "ThrottlingException"
	// InvalidStateException: there is no checkpointer for the current call
	// (initialize, leaseLost), or the lease table is missing.
	InvalidStateException CheckpointError = "InvalidStateException"
	// KinesisClientLibDependencyException: any other failure of the
	// checkpoint storage; retrying later is fine.
	KinesisClientLibDependencyException CheckpointError = "KinesisClientLibDependencyException"
)
