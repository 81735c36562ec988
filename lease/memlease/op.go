package memlease

import "strconv"

// Op names a Store operation, for fault injection.
type Op uint8

// The operations, one per method of lease.Store and lease.OwnerLister.
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
	default:
		return "Op(" + strconv.Itoa(int(o)) + ")"
	}
}

// IsWrite reports whether o writes to the table.
func (o Op) IsWrite() bool { return o == OpCreate || o >= OpRenew && o <= OpDelete }
