package consumer

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/kclgo/kcl/internal/leasing"
)

// Coordination says how the Workers of an application share the leases of
// their lease table. Create one with CoordinationAuto, CoordinationFleet or
// CoordinationKCL and pass it to WithCoordination; the zero Coordination is
// CoordinationAuto.
//
//   - kcl fleet: each Worker proves it is alive with one small heartbeat
//     write every quarter of the failover time; one elected Worker, the
//     leader, assigns the leases of the whole fleet and runs the periodic
//     shard sync; the others read only their own leases. A crashed Worker's
//     shards resume elsewhere within about the failover time plus half a
//     second (2.5 s at the default 2 s), at a tenth of KCL's DynamoDB
//     reads and writes. It needs a store with heartbeats and an owner index
//     (lease/dynamolease and lease/memlease have them) and a table used by
//     kcl fleet Workers only.
//   - KCL-compatible: every Worker renews each of its leases and scans the
//     table (WithLeaseDuration, WithTakeInterval and their siblings apply):
//     the protocol of the Java KCL, for tables shared with Java KCL workers
//     or other per-lease workers.
//
// See DESIGN.md, "Fleet-scale coordination".
type Coordination struct {
	kind coordinationKind
}

type coordinationKind uint8

const (
	coordinationAuto coordinationKind = iota
	coordinationFleet
	coordinationKCL
)

// CoordinationAuto chooses at start from what the lease table holds: kcl
// fleet unless the table shows per-lease workers — Java KCL 3.x coordination
// items, or a lease owned by a worker that writes no kcl heartbeat (a Java
// KCL worker, or a kcl Worker in KCL-compatible mode) — in which case
// KCL-compatible. The choice and its reason are logged. This is the default.
// Changing mode needs every Worker of the application to stop first: a full
// stop releases every lease, and the next start chooses again.
func CoordinationAuto() Coordination { return Coordination{kind: coordinationAuto} }

// CoordinationFleet requires kcl fleet coordination (its failover time is
// set by WithFleetFailoverTime). Run fails with an error matching
// ErrForeignTable if the table shows per-lease workers.
func CoordinationFleet() Coordination { return Coordination{kind: coordinationFleet} }

// CoordinationKCL requires KCL-compatible coordination: per-lease renewal,
// as the Java KCL does it, for a table shared with Java KCL workers.
func CoordinationKCL() Coordination { return Coordination{kind: coordinationKCL} }

// String describes the coordination, such as "CoordinationFleet(2s)".
func (c Coordination) String() string {
	switch c.kind {
	case coordinationFleet:
		return "CoordinationFleet()"
	case coordinationKCL:
		return "CoordinationKCL()"
	default:
		return "CoordinationAuto()"
	}
}

// WithCoordination sets how the Workers of the application coordinate. The
// default is CoordinationAuto.
func WithCoordination(c Coordination) Option {
	return func(cfg *config) { cfg.coordination = c }
}

// WithFleetFailoverTime sets the failover time of kcl fleet coordination:
// a Worker whose heartbeat stood still this long is dead to the leader,
// which then gives its leases to others, and it stops processing by its own
// clock slightly earlier; heartbeats are written every fifth of it, and the
// leader reads them every quarter. It must be the same on every Worker of
// the application. The default is 2 seconds. It does not apply in KCL-compatible coordination, whose failover
// time is the lease duration (WithLeaseDuration).
func WithFleetFailoverTime(d time.Duration) Option {
	return func(cfg *config) { cfg.fleetFailover = d }
}

// ErrForeignTable is returned by Run under CoordinationFleet when the lease
// table is used by per-lease workers (Java KCL workers, or kcl Workers in
// KCL-compatible mode): kcl fleet Workers renew no lease one by one, so
// those workers would see their leases expire and take them while they are
// processed. Use CoordinationAuto or CoordinationKCL on such a table.
var ErrForeignTable = leasing.ErrForeignTable

// newCoordinator chooses the coordination (reading the table under
// CoordinationAuto and CoordinationFleet) and creates the coordinator.
func (w *Worker) newCoordinator(ctx context.Context) error {
	fleet := false
	if kind := w.cfg.coordination.kind; kind != coordinationKCL {
		var ch leasing.ModeChoice
		err := w.retry(ctx, leaseTable, "lease table survey", func() error {
			var err error
			ch, err = leasing.ChooseMode(ctx, w.store, kind == coordinationFleet)
			return err
		})
		if err != nil {
			return fmt.Errorf("consumer: choosing the coordination: %w", err)
		}
		fleet = ch.Fleet
		mode := "KCL-compatible (per-lease renewal)"
		if fleet {
			mode = "kcl fleet (heartbeats and a leader)"
		}
		w.log.Info("coordination", zap.String("mode", mode), zap.String("reason", ch.Reason))
	}
	opts := append(w.cfg.leasingOptions(fleet), leasing.WithLogger(w.cfg.logger.With(zap.String("stream", w.streamName))))
	coord, err := leasing.NewCoordinator(w.store, w.cfg.workerID, opts...)
	if err != nil {
		return fmt.Errorf("consumer: lease coordinator: %w", err) // options were checked by New
	}
	w.coord = coord
	w.coordPtr.Store(coord)
	return nil
}
