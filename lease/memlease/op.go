package memlease

import "strconv"

// Op names a Store operation, for fault injection.
type Op uint8

// The operations, one per method of lease.Store, lease.OwnerLister,
// lease.FleetStore, lease.Surveyor and lease.MetricsReporter.
const (
	OpCreate Op = iota + 1
	OpGet
	OpList
	OpListOwned
	OpRenew
	OpTake
	OpHandoff
	OpCheckpoint
	OpRelease
	OpDelete
	OpBeat
	OpHeartbeats
	OpMarkAssigned
	OpSetStandby
	OpFence
	OpJoin
	OpLeave
	OpRoster
	OpLeader
	OpAcquireLeader
	OpRenewLeader
	OpReleaseLeader
	OpAssign
	OpSurvey
	OpReportWorkerMetrics
)

// String returns the name of the method, for example "Renew".
func (o Op) String() string {
	switch o {
	case OpCreate:
		return "Create"
	case OpGet:
		return "Get"
	case OpList:
		return "List"
	case OpListOwned:
		return "ListOwned"
	case OpRenew:
		return "Renew"
	case OpTake:
		return "Take"
	case OpHandoff:
		return "Handoff"
	case OpCheckpoint:
		return "Checkpoint"
	case OpRelease:
		return "Release"
	case OpDelete:
		return "Delete"
	case OpBeat:
		return "Beat"
	case OpHeartbeats:
		return "Heartbeats"
	case OpMarkAssigned:
		return "MarkAssigned"
	case OpSetStandby:
		return "SetStandby"
	case OpFence:
		return "Fence"
	case OpJoin:
		return "Join"
	case OpLeave:
		return "Leave"
	case OpRoster:
		return "Roster"
	case OpLeader:
		return "Leader"
	case OpAcquireLeader:
		return "AcquireLeader"
	case OpRenewLeader:
		return "RenewLeader"
	case OpReleaseLeader:
		return "ReleaseLeader"
	case OpAssign:
		return "Assign"
	case OpSurvey:
		return "Survey"
	case OpReportWorkerMetrics:
		return "ReportWorkerMetrics"
	default:
		return "Op(" + strconv.Itoa(int(o)) + ")"
	}
}

// IsWrite reports whether o writes to the table.
func (o Op) IsWrite() bool {
	switch o {
	case OpCreate, OpRenew, OpTake, OpHandoff, OpCheckpoint, OpRelease, OpDelete,
		OpBeat, OpMarkAssigned, OpSetStandby, OpFence, OpJoin, OpLeave, OpAcquireLeader, OpRenewLeader, OpReleaseLeader, OpAssign:
		return true
	}
	return false
}
