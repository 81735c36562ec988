package dynamolease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kclgo/kcl/lease"
)

// This file implements lease.KCL3Leadership: a kcl worker in per-lease mode
// contending for a Java KCL 3.x fleet's leader lock with the lock client's
// own requests (leaderlock.go), and, once it leads, reading the fleet's
// WorkerMetricStats rows as KCL's leader does.

var _ lease.KCL3Leadership = (*Store)(nil)

// Where the lock lives, as KCL 3.5 routes it (CoordinatorStateDAO): in the
// CoordinatorState table until its table migration is COMPLETE, then in the
// lease table; in the lease table when there is no CoordinatorState table
// and a KCL 3.5 worker created Migration3.0 there.
const (
	placeCoordinatorState = "table "
	placeLeaseTable       = "lease table "
)

// kcl3Place is what locating the lock found.
type kcl3Place struct {
	lock           kcl3Table // the lock's table; name "" when there is none
	metrics        kcl3Table // where the workers' rows are, when the fleet is eligible
	lease.KCL3Lock           // Place, Eligible and Why filled in
}

// locateKCL3 reads the migration rows (eventually consistent: they change
// once in a fleet's life) and decides where the lock is and whether kcl may
// lead. kcl leads only at client version CLIENT_VERSION_3X with no table
// migration begun (KCL 3.0–3.4 tables) or with it COMPLETE: a KCL leader
// drives the 2.x -> 3.x migration and the table migration, which kcl does
// not, so while either may still move kcl leaves the lock to the Java
// workers.
func (s *Store) locateKCL3(ctx context.Context) (kcl3Place, error) {
	wmsName, csName := s.opts.workerMetricsTable, s.opts.coordStateTable
	if !s.opts.kcl3Tables {
		wmsName, csName = workerMetricStatsTable(s.table).name, coordinatorStateTable(s.table).name
	}
	rows := leaseTableRows(s.table)
	var p kcl3Place
	var cvItem map[string]types.AttributeValue
	tm := tableMigrationStatus(0)
	csFound := false
	if csName != "" && checkTableName(csName) == "" {
		cs := kcl3Table{name: csName, hashKey: attrCoordinatorKey}
		item, found, err := s.getCoordinationItem(ctx, cs, tableMigrationKey)
		if err != nil {
			return p, err
		}
		csFound = found
		tm = tableMigrationOf(item)
		if found && tm != tableMigrationComplete {
			p.lock, p.metrics = cs, kcl3Table{name: wmsName, hashKey: attrWorkerID}
			if cvItem, _, err = s.getCoordinationItem(ctx, cs, clientVersionKey); err != nil {
				return p, err
			}
		}
	}
	if p.lock.name == "" {
		item, _, err := s.getCoordinationItem(ctx, rows, clientVersionKey)
		if err != nil {
			return p, err
		}
		if item == nil && !csFound {
			return p, nil // no KCL 3.x worker has run here
		}
		p.lock, p.metrics, cvItem = rows, rows, item
		if !csFound {
			if item, _, err = s.getCoordinationItem(ctx, rows, tableMigrationKey); err != nil {
				return p, err
			}
			tm = tableMigrationOf(item)
		}
	}
	if p.lock.shared {
		p.Place = placeLeaseTable + p.lock.name
	} else {
		p.Place = placeCoordinatorState + p.lock.name
	}
	cv, _ := stringAttr(cvItem, attrClientVersion)
	switch {
	case cvItem == nil:
		p.Why = "no Migration3.0 row: the fleet's client version is not yet decided"
	case clientVersionNames[cv] != clientVersion3x:
		p.Why = fmt.Sprintf("client version %s: a Java leader drives the migration", cv)
	case tm != 0 && tm != tableMigrationComplete:
		p.Why = fmt.Sprintf("table migration %s: a Java leader drives it", tableMigrationLabel(tm))
	case p.metrics.name == "" || checkTableName(p.metrics.name) != "":
		p.Why = "no WorkerMetricStats table to read"
	default:
		p.Eligible = true
	}
	return p, nil
}

// tableMigrationOf returns the status of a TableMigration3.5 row: 0 when
// there is none, -1 for a status of a newer KCL (not one kcl may lead
// through).
func tableMigrationOf(item map[string]types.AttributeValue) tableMigrationStatus {
	if item == nil {
		return 0
	}
	st, _ := stringAttr(item, attrTableMigration)
	if tm := tableMigrationNames[st]; tm != 0 {
		return tm
	}
	return -1
}

// tableMigrationLabel names a status, an unknown one included.
func tableMigrationLabel(tm tableMigrationStatus) string {
	if tm < 0 {
		return "of a newer KCL"
	}
	return tm.String()
}

// placeTable returns the table a lock's Place names, if it is one of this
// store's.
func (s *Store) placeTable(place string) (kcl3Table, bool) {
	csName := s.opts.coordStateTable
	if !s.opts.kcl3Tables {
		csName = coordinatorStateTable(s.table).name
	}
	switch {
	case place == placeLeaseTable+s.table:
		return leaseTableRows(s.table), true
	case csName != "" && place == placeCoordinatorState+csName:
		return kcl3Table{name: csName, hashKey: attrCoordinatorKey}, true
	}
	return kcl3Table{}, false
}

// KCL3Lock implements lease.KCL3Leadership: one to three eventually
// consistent GetItems of the migration rows, then a strongly consistent
// GetItem of the lock, as the lock client reads it.
func (s *Store) KCL3Lock(ctx context.Context) (lease.KCL3Lock, error) {
	p, err := s.locateKCL3(ctx)
	if err != nil || p.lock.name == "" {
		return p.KCL3Lock, err
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:              aws.String(p.lock.name),
		Key:                    p.lock.key(leaderLockKey),
		ConsistentRead:         aws.Bool(true),
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	if err = s.noted(opGetItem, consumed(out, err), err, nil); err != nil {
		return p.KCL3Lock, fmt.Errorf("dynamolease: read the leader lock in %s: %w", p.lock.name, err)
	}
	if len(out.Item) == 0 {
		return p.KCL3Lock, nil
	}
	l, err := decodeLeaderLock(p.lock, out.Item)
	if err != nil {
		return p.KCL3Lock, fmt.Errorf("dynamolease: leader lock in %s: %w", p.lock.name, err)
	}
	return withLock(p.KCL3Lock, l), nil
}

// withLock returns k describing lock item l.
func withLock(k lease.KCL3Lock, l leaderLock) lease.KCL3Lock {
	k.Found, k.Released = true, l.released
	k.Owner, k.Duration, k.Version = l.owner, l.leaseDuration, l.recordVersionNumber
	return k
}

// AcquireKCL3Lock implements lease.KCL3Leadership with one PutItem of the
// whole lock item, after re-reading the migration rows: the fleet must
// still be one kcl may lead, and the lock where seen was.
func (s *Store) AcquireKCL3Lock(ctx context.Context, owner string, duration time.Duration, seen lease.KCL3Lock) (lease.KCL3Lock, error) {
	if owner == "" || duration < time.Millisecond {
		return lease.KCL3Lock{}, fmt.Errorf("dynamolease: acquire the leader lock: owner %q, duration %v", owner, duration)
	}
	p, err := s.locateKCL3(ctx)
	if err != nil {
		return lease.KCL3Lock{}, err
	}
	switch {
	case !p.Eligible:
		return p.KCL3Lock, fmt.Errorf("dynamolease: acquire the leader lock: %w: kcl may not lead this fleet (%s)", lease.ErrConflict, p.Why)
	case p.Place != seen.Place:
		return p.KCL3Lock, fmt.Errorf("dynamolease: acquire the leader lock: %w: it moved from %s to %s", lease.ErrConflict, seen.Place, p.Place)
	}
	l := newLeaderLock(owner, duration)
	var in *dynamodb.PutItemInput
	switch {
	case !seen.Found:
		in = acquireFreeLockInput(p.lock, l)
	case seen.Released:
		in = acquireReleasedLockInput(p.lock, l)
	default:
		in = acquireExpiredLockInput(p.lock, l, seen.Version)
	}
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := s.client.PutItem(ctx, in)
	if err = s.noted(opPutItem, consumed(out, err), err, nil); err != nil {
		return p.KCL3Lock, fmt.Errorf("dynamolease: acquire the leader lock in %s: %w", p.lock.name, err)
	}
	return withLock(p.KCL3Lock, l), nil
}

// RenewKCL3Lock implements lease.KCL3Leadership with one UpdateItem.
func (s *Store) RenewKCL3Lock(ctx context.Context, held lease.KCL3Lock) (lease.KCL3Lock, error) {
	t, ok := s.placeTable(held.Place)
	if !ok || !held.Found {
		return held, fmt.Errorf("dynamolease: renew the leader lock: not a lock of this store's fleet (%q)", held.Place)
	}
	l := leaderLock{key: leaderLockKey, owner: held.Owner, leaseDuration: held.Duration, recordVersionNumber: held.Version}
	next := newRecordVersionNumber()
	in := heartbeatLockInput(t, l, next)
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := s.client.UpdateItem(ctx, in)
	if err = s.noted(opUpdateItem, consumed(out, err), err, nil); err != nil {
		return held, fmt.Errorf("dynamolease: renew the leader lock in %s: %w", t.name, err)
	}
	held.Version = next
	return held, nil
}

// ReleaseKCL3Lock implements lease.KCL3Leadership with one DeleteItem.
func (s *Store) ReleaseKCL3Lock(ctx context.Context, held lease.KCL3Lock) error {
	t, ok := s.placeTable(held.Place)
	if !ok || !held.Found {
		return fmt.Errorf("dynamolease: release the leader lock: not a lock of this store's fleet (%q)", held.Place)
	}
	l := leaderLock{key: leaderLockKey, owner: held.Owner, recordVersionNumber: held.Version}
	in := releaseLockInput(t, l)
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := s.client.DeleteItem(ctx, in)
	if err = s.noted(opDeleteItem, consumed(out, err), err, nil); err != nil {
		return fmt.Errorf("dynamolease: release the leader lock in %s: %w", t.name, err)
	}
	return nil
}

// KCL3Workers implements lease.KCL3Leadership with an eventually consistent
// Scan of the rows' table (filtered on entityType in the lease table). An
// ineligible fleet has no rows kcl reads: it returns nil. Malformed rows are
// reported, with the others, in an error matching lease.ErrMalformed.
func (s *Store) KCL3Workers(ctx context.Context) ([]lease.KCL3Worker, error) {
	p, err := s.locateKCL3(ctx)
	if err != nil || !p.Eligible {
		return nil, err
	}
	rows, err := readWorkerMetricStats(ctx, recordedScan{s}, p.metrics)
	var me *lease.MalformedError
	if err != nil && !errors.As(err, &me) && !errors.Is(err, lease.ErrMalformed) {
		return nil, fmt.Errorf("dynamolease: %w", err)
	}
	out := make([]lease.KCL3Worker, 0, len(rows))
	for _, w := range rows {
		out = append(out, lease.KCL3Worker{WorkerID: w.workerID, Updated: w.updated, Valid: w.valid()})
	}
	return out, err
}

// DeleteKCL3Worker implements lease.KCL3Leadership with one conditioned
// DeleteItem; ErrConflict when the row was updated since.
func (s *Store) DeleteKCL3Worker(ctx context.Context, w lease.KCL3Worker) error {
	p, err := s.locateKCL3(ctx)
	if err != nil {
		return err
	}
	if !p.Eligible {
		return fmt.Errorf("dynamolease: delete the row of %q: kcl does not lead this fleet (%s)", w.WorkerID, p.Why)
	}
	in := deleteStaleWorkerMetricsInput(p.metrics, workerMetricStats{workerID: w.WorkerID, updated: w.Updated})
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := s.client.DeleteItem(ctx, in)
	if err = s.noted(opDeleteItem, consumed(out, err), err, nil); err != nil {
		return fmt.Errorf("dynamolease: delete the WorkerMetricStats row of %q: %w", w.WorkerID, err)
	}
	return nil
}

// valid reports whether w's metrics are usable as KCL's leader judges them
// (WorkerMetricStats.isValidWorkerMetric): a row with no metric at all (the
// default metric) is; otherwise every metric needs an operating range whose
// maximum is not 0.
func (w workerMetricStats) valid() bool {
	if w.updated.IsZero() {
		return false
	}
	if len(w.stats) == 0 {
		return true
	}
	for name := range w.stats {
		if _, ok := w.operatingRange[name]; !ok {
			return false
		}
	}
	for _, r := range w.operatingRange {
		if len(r) == 0 || r[0] == 0 {
			return false
		}
	}
	return true
}

// recordedScan is the store's client as a scanAPI whose calls are counted
// in the store's statistics.
type recordedScan struct{ s *Store }

func (r recordedScan) Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := r.s.client.Scan(ctx, in, optFns...)
	_ = r.s.noted(opScan, consumed(out, err), err, nil)
	return out, err
}
