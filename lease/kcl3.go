package lease

import (
	"context"
	"time"
)

// KCL3Leadership is implemented by lease stores through which a worker in
// per-lease mode takes part in a Java KCL 3.x fleet's leadership: the leader
// lock every KCL 3.x worker contends for (amazon-dynamodb-lock-client's item,
// "Leader") and the WorkerMetricStats rows from which the leader learns which
// workers are alive. Its leader assigns leases to every worker, Java or kcl;
// a Java 3.x worker never takes a lease by itself.
//
// A lock is taken only when the fleet lets a kcl worker lead
// (KCL3Lock.Eligible): a leader also drives KCL's migrations, which kcl does
// not do, so kcl leads only a fleet whose migrations are done.
type KCL3Leadership interface {
	// KCL3Lock reads the leader lock and whether this fleet may be led by
	// kcl. A table no KCL 3.x worker has run on has no lock place: the
	// result's Place is "".
	KCL3Lock(ctx context.Context) (KCL3Lock, error)

	// AcquireKCL3Lock writes the lock for owner, stating duration as its
	// lease, over seen — the lock as last read: absent (seen.Found false), or
	// released, or (the caller having watched seen.Version unchanged for
	// longer than seen.Duration, on its own clock) a holder presumed dead.
	// The write is conditioned as the lock client's: on the item's absence,
	// its released mark, or seen.Version. It returns the lock as written,
	// or an error matching ErrConflict when another worker wrote the lock
	// first. It refuses (ErrConflict) a seen lock whose place is not the
	// fleet's, or a fleet that is not Eligible.
	AcquireKCL3Lock(ctx context.Context, owner string, duration time.Duration, seen KCL3Lock) (KCL3Lock, error)

	// RenewKCL3Lock writes a new Version of the lock held (the lock client's
	// heartbeat), conditioned on held's Version and Owner. ErrConflict means
	// the lock is lost.
	RenewKCL3Lock(ctx context.Context, held KCL3Lock) (KCL3Lock, error)

	// ReleaseKCL3Lock deletes the lock held, conditioned like a renewal, as
	// KCL releases it. ErrConflict means it was already lost.
	ReleaseKCL3Lock(ctx context.Context, held KCL3Lock) error

	// KCL3Workers returns the fleet's WorkerMetricStats rows, each reduced
	// to its worker id, last update and whether its metrics are valid as
	// KCL's leader judges them.
	KCL3Workers(ctx context.Context) ([]KCL3Worker, error)

	// DeleteKCL3Worker deletes a worker's row if it still has the update
	// time seen, as KCL's leader deletes rows a day old.
	DeleteKCL3Worker(ctx context.Context, w KCL3Worker) error

	// Assign makes newOwner the owner of l as KCL 3.x's leader does: owner
	// set, counter incremented, checkpointOwner removed; conditioned on the
	// lease's counter and owner as snapshotted (ErrConflict otherwise).
	Assign(ctx context.Context, l Lease, newOwner string) (Lease, error)
}

// KCL3Lock is a Java KCL 3.x fleet's leader lock as read, and what the fleet
// state says about leading it.
type KCL3Lock struct {
	// Place names where the lock lives ("table app-CoordinatorState" or
	// "lease table app"); "" when no KCL 3.x worker has run on the table.
	Place string
	// Eligible is true when kcl may lead the fleet: its client version is
	// CLIENT_VERSION_3X and no table migration is under way. Why says why
	// not, when it is false.
	Eligible bool
	Why      string
	// Found is false when there is no lock item (no leader, or it released
	// the lock).
	Found bool
	// Released is true for an item marked released (KCL deletes instead).
	Released bool
	// Owner is the holder's worker id.
	Owner string
	// Duration is the lease the holder states: it renews within it, and a
	// contender may take the lock once Version has stayed the same for
	// longer, on its own clock.
	Duration time.Duration
	// Version is the lock client's recordVersionNumber: a new one on every
	// write.
	Version string
}

// KCL3Worker is one worker's WorkerMetricStats row, as a leader uses it.
type KCL3Worker struct {
	WorkerID string
	// Updated is the row's last update time (whole seconds). KCL's leader
	// counts a worker active while Updated is less than two report intervals
	// (60 s) old.
	Updated time.Time
	// Valid is false when the row's metrics are unusable (a metric with no
	// operating range, or a zero maximum): KCL's leader skips the worker.
	Valid bool
}
