package dynamolease

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kclgo/kcl/internal/backoff"
	"github.com/kclgo/kcl/lease"
)

// This file implements lease.FleetStore: the items of kcl-fleet coordination
// (DESIGN.md, "Fleet-scale coordination"), kept in the lease table next to
// the leases. Each has an entityType of its own, so UnmarshalItem reports it
// as ErrNotLease and Store.List and Store.Get never return it; none has a
// leaseOwner, so LeaseOwnerToLeaseKeyIndex never lists it. Their keys start
// with "kcl#", which no Kinesis shard id or multi-stream lease key contains.
//
//	kcl#leader          entityType KCL_FLEET_LEADER: owner (S, absent when
//	                    released), epoch (N), version (N)
//	kcl#roster          entityType KCL_FLEET_ROSTER: workers (SS, absent
//	                    when empty)
//	kcl#worker#<id>     entityType KCL_FLEET_HEARTBEAT: workerId (S),
//	                    counter (N), state (S: starting, running, stopping),
//	                    leases (N), assignEpoch (N, absent until marked),
//	                    standby (BOOL, absent until first set),
//	                    fenced (N, absent until fenced)

// Keys, entity types and attributes of the kcl-fleet items.
const (
	fleetLeaderKey     = "kcl#leader"
	fleetRosterKey     = "kcl#roster"
	fleetWorkerKeyBase = "kcl#worker#"

	entityTypeFleetLeader    = "KCL_FLEET_LEADER"
	entityTypeFleetRoster    = "KCL_FLEET_ROSTER"
	entityTypeFleetHeartbeat = "KCL_FLEET_HEARTBEAT"

	attrFleetOwner    = "owner"       // S, leader lock
	attrFleetEpoch    = "epoch"       // N, leader lock
	attrFleetVersion  = "version"     // N, leader lock
	attrRosterWorkers = "workers"     // SS, roster
	attrBeatWorker    = "workerId"    // S, heartbeat
	attrBeatCounter   = "counter"     // N, heartbeat
	attrBeatState     = "state"       // S, heartbeat
	attrBeatLeases    = "leases"      // N, heartbeat
	attrAssignEpoch   = "assignEpoch" // N, heartbeat
	attrStandby       = "standby"     // BOOL, heartbeat
	attrFenced        = "fenced"      // N, heartbeat
)

// heartbeatBatch is the most keys one BatchGetItem may read.
const heartbeatBatch = 100

// unprocessedAttempts bounds the BatchGetItem requests of one page, first
// included, before Heartbeats gives up with lease.ErrThrottled.
const unprocessedAttempts = 8

func heartbeatKey(id string) string { return fleetWorkerKeyBase + id }

func strAV(s string) *types.AttributeValueMemberS { return &types.AttributeValueMemberS{Value: s} }

// isOrNew conditions a write on the item being absent or having entityType
// et, so that a fleet write never changes an item of another kind.
func (e *expr) isOrNew(et string) {
	e.cond = append(e.cond, "(attribute_not_exists("+e.n(attrLeaseKey)+") OR "+e.n(attrEntityType)+" = "+e.v(strAV(et))+")")
}

// is conditions a write on the item existing with entityType et.
func (e *expr) is(et string) {
	e.cond = append(e.cond, e.n(attrEntityType)+" = "+e.v(strAV(et)))
}

func (e *expr) increment(attr string) {
	e.set = append(e.set, e.n(attr)+" = "+e.n(attr)+" + "+e.v(numberInt(1)))
}

// fleetWrite makes one conditional UpdateItem of the item with key, with
// ReturnValues ALL_NEW. On a failed condition it returns the stored item (nil
// when there is none) and an error matching conflict, unless the SDK made more
// than one attempt and landed reports that the stored item is what this
// write produces (an earlier attempt was applied, its response lost): then
// it returns the stored item as the result.
func (s *Store) fleetWrite(ctx context.Context, key string, e *expr, conflict error, landed func(item map[string]types.AttributeValue) bool) (newItem, oldItem map[string]types.AttributeValue, err error) {
	out, attempts, err := s.updateItem(ctx, key, e, conflict)
	if ccf := conditionFailed(err); ccf != nil {
		item, rerr := s.currentItem(ctx, key, ccf)
		if rerr != nil {
			return nil, nil, err
		}
		if item != nil && attempts > 1 && landed != nil && landed(item) {
			return item, nil, nil
		}
		return nil, item, err
	}
	if err != nil {
		return nil, nil, err
	}
	return out.Attributes, nil, nil
}

// Beat writes workerID's heartbeat with one UpdateItem of kcl#worker#<id>:
// ADD counter 1, SET state and leases, ReturnValues ALL_NEW. It is
// conditioned only on the item being absent or a heartbeat. If the SDK
// retried a request that had landed, the counter grows by 2: it only needs
// to change.
func (s *Store) Beat(ctx context.Context, workerID string, state lease.WorkerState, leases int) (lease.Heartbeat, error) {
	switch {
	case workerID == "":
		return lease.Heartbeat{}, usage("beat", workerID, "empty worker id")
	case state < lease.WorkerStarting || state > lease.WorkerStopping:
		return lease.Heartbeat{}, usage("beat", workerID, "invalid state %v", state)
	case leases < 0:
		return lease.Heartbeat{}, usage("beat", workerID, "negative lease count %d", leases)
	}
	e := newExpr()
	e.isOrNew(entityTypeFleetHeartbeat)
	e.setS(attrEntityType, entityTypeFleetHeartbeat)
	e.setS(attrBeatWorker, workerID)
	e.setS(attrBeatState, state.String())
	e.setAV(attrBeatLeases, numberInt(int64(leases)))
	e.add = append(e.add, e.n(attrBeatCounter)+" "+e.v(numberInt(1)))
	item, _, err := s.fleetWrite(ctx, heartbeatKey(workerID), e, lease.ErrConflict, nil)
	if err != nil {
		return lease.Heartbeat{}, fmt.Errorf("dynamolease: beat %q: %w", workerID, err)
	}
	hb, err := decodeHeartbeat(item)
	if err != nil {
		return lease.Heartbeat{}, fmt.Errorf("dynamolease: beat %q: written, but the stored item cannot be read: %w", workerID, err)
	}
	return hb, nil
}

// MarkAssigned adds 1 to assignEpoch of workerID's heartbeat with one
// UpdateItem conditioned on the item being a heartbeat (so it exists). If the
// SDK retried a request that had landed, the epoch grows by 2: it only needs
// to change.
func (s *Store) MarkAssigned(ctx context.Context, workerID string) error {
	return s.heartbeatWrite(ctx, "mark assigned", workerID, func(e *expr) {
		e.add = append(e.add, e.n(attrAssignEpoch)+" "+e.v(numberInt(1)))
	})
}

// SetStandby sets standby of workerID's heartbeat with one UpdateItem
// conditioned on the item being a heartbeat (so it exists). Setting the
// stored value again writes it again: it is one write either way, and the
// condition stays the item's existence alone.
func (s *Store) SetStandby(ctx context.Context, workerID string, standby bool) error {
	return s.heartbeatWrite(ctx, "set standby", workerID, func(e *expr) {
		e.setAV(attrStandby, &types.AttributeValueMemberBOOL{Value: standby})
	})
}

// Fence sets fenced of workerID's heartbeat to counter with one UpdateItem
// conditioned on the item being a heartbeat and its counter being counter. A
// retry of a request that landed finds the counter unchanged (Fence does not
// change it) and writes the same value again.
func (s *Store) Fence(ctx context.Context, workerID string, counter int64) error {
	if counter < 1 {
		return usage("fence", workerID, "counter %d below 1", counter)
	}
	return s.heartbeatWrite(ctx, fmt.Sprintf("fence at counter %d", counter), workerID, func(e *expr) {
		e.cond = append(e.cond, e.n(attrBeatCounter)+" = "+e.v(numberInt(counter)))
		e.setAV(attrFenced, numberInt(counter))
	})
}

// heartbeatWrite makes one UpdateItem of workerID's heartbeat, conditioned on
// the item being a heartbeat; change adds the update and may add conditions.
// A missing item matches lease.ErrNotFound; any other failed condition
// lease.ErrConflict.
func (s *Store) heartbeatWrite(ctx context.Context, op, workerID string, change func(e *expr)) error {
	if workerID == "" {
		return usage(op, workerID, "empty worker id")
	}
	e := newExpr()
	e.is(entityTypeFleetHeartbeat)
	change(e)
	_, old, err := s.fleetWrite(ctx, heartbeatKey(workerID), e, lease.ErrConflict, nil)
	switch {
	case err == nil:
		return nil
	case conditionFailed(err) != nil && old == nil:
		return fmt.Errorf("dynamolease: %s %q: no heartbeat: %w", op, workerID, lease.ErrNotFound)
	}
	return fmt.Errorf("dynamolease: %s %q: %w", op, workerID, err)
}

// Join adds workerID to the roster with one UpdateItem of kcl#roster (ADD to
// the workers string set), conditioned on the item being absent or a roster.
func (s *Store) Join(ctx context.Context, workerID string) error {
	return s.rosterWrite(ctx, "join", workerID, func(e *expr, set string) {
		e.add = append(e.add, e.n(attrRosterWorkers)+" "+set)
	})
}

// Leave removes workerID from the roster with one UpdateItem of kcl#roster
// (DELETE from the workers string set), conditioned like Join's. On a table
// without a roster it writes an empty one.
func (s *Store) Leave(ctx context.Context, workerID string) error {
	return s.rosterWrite(ctx, "leave", workerID, func(e *expr, set string) {
		e.delete = append(e.delete, e.n(attrRosterWorkers)+" "+set)
	})
}

func (s *Store) rosterWrite(ctx context.Context, op, workerID string, change func(e *expr, set string)) error {
	if workerID == "" {
		return usage(op, workerID, "empty worker id")
	}
	e := newExpr()
	e.isOrNew(entityTypeFleetRoster)
	e.setS(attrEntityType, entityTypeFleetRoster)
	change(e, e.v(&types.AttributeValueMemberSS{Value: []string{workerID}}))
	if _, _, err := s.fleetWrite(ctx, fleetRosterKey, e, lease.ErrConflict, nil); err != nil {
		return fmt.Errorf("dynamolease: %s %q: %w", op, workerID, err)
	}
	return nil
}

// Roster reads kcl#roster with one strongly consistent GetItem.
func (s *Store) Roster(ctx context.Context) ([]string, error) {
	item, err := s.getItem(ctx, fleetRosterKey)
	if err != nil {
		return nil, fmt.Errorf("dynamolease: roster: %w", err)
	}
	if item == nil {
		return nil, nil
	}
	d := newCoordinationDecoder("kcl-fleet roster", item)
	d.hashKey(attrLeaseKey)
	d.fleetEntityType(entityTypeFleetRoster)
	var ids []string
	if ss, ok := member[types.AttributeValueMemberSS](&d.decoder, attrRosterWorkers, "SS"); ok {
		ids = slices.Sorted(slices.Values(ss.Value))
	}
	if err := d.result(); err != nil {
		return nil, err
	}
	return ids, nil
}

// fleetEntityType reads entityType, which must be want.
func (d *coordinationDecoder) fleetEntityType(want string) {
	if d.entityType(want) == "" && d.err == nil {
		d.fail(attrEntityType, "missing", nil)
	}
}

// Heartbeats reads the heartbeats with strongly consistent BatchGetItem
// requests of up to 100 distinct ids each, retrying the keys DynamoDB leaves
// unprocessed with a backoff (up to 8 requests per page, then an error
// matching lease.ErrThrottled). A heartbeat item that cannot be read is left
// out and reported in an error matching lease.ErrMalformed, returned with the
// well-formed heartbeats.
func (s *Store) Heartbeats(ctx context.Context, ids []string) ([]lease.Heartbeat, error) {
	if slices.Contains(ids, "") {
		return nil, usage("heartbeats", "", "empty worker id")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("dynamolease: heartbeats: %w", err)
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	var (
		out []lease.Heartbeat
		bad []error
	)
	for page := range slices.Chunk(ids, heartbeatBatch) {
		items, err := s.batchGet(ctx, page)
		if err != nil {
			return nil, fmt.Errorf("dynamolease: heartbeats: %w", err)
		}
		for _, item := range items {
			hb, err := decodeHeartbeat(item)
			if err != nil {
				bad = append(bad, err)
				continue
			}
			out = append(out, hb)
		}
	}
	if len(bad) > 0 {
		return out, errors.Join(bad...)
	}
	return out, nil
}

// batchGet reads the heartbeats of ids (at most 100) and returns the items
// found.
func (s *Store) batchGet(ctx context.Context, ids []string) ([]map[string]types.AttributeValue, error) {
	keys := make([]map[string]types.AttributeValue, len(ids))
	for i, id := range ids {
		keys[i] = s.itemKey(heartbeatKey(id))
	}
	req := map[string]types.KeysAndAttributes{s.table: {Keys: keys, ConsistentRead: aws.Bool(true)}}
	var items []map[string]types.AttributeValue
	wait := backoff.New(20*time.Millisecond, time.Second, nil)
	for attempt := 0; ; attempt++ {
		out, err := s.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
			RequestItems:           req,
			ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
		})
		err = classify(err, nil)
		var cc *types.ConsumedCapacity
		if out != nil && len(out.ConsumedCapacity) > 0 {
			var units float64
			for _, c := range out.ConsumedCapacity {
				if c.CapacityUnits != nil {
					units += *c.CapacityUnits
				}
			}
			cc = &types.ConsumedCapacity{CapacityUnits: aws.Float64(units)}
		}
		s.stats.record(opBatchGetItem, cc, err)
		if err != nil {
			return nil, err
		}
		items = append(items, out.Responses[s.table]...)
		left, ok := out.UnprocessedKeys[s.table]
		if !ok || len(left.Keys) == 0 {
			return items, nil
		}
		if attempt+1 >= unprocessedAttempts {
			return nil, fmt.Errorf("%d keys still unprocessed after %d requests: %w", len(left.Keys), attempt+1, lease.ErrThrottled)
		}
		if err := wait.Wait(ctx, attempt); err != nil {
			return nil, err
		}
		req = map[string]types.KeysAndAttributes{s.table: left}
	}
}

// decodeHeartbeat reads a heartbeat item.
func decodeHeartbeat(item map[string]types.AttributeValue) (lease.Heartbeat, error) {
	d := newCoordinationDecoder("kcl-fleet heartbeat", item)
	d.hashKey(attrLeaseKey)
	d.fleetEntityType(entityTypeFleetHeartbeat)
	var hb lease.Heartbeat
	hb.WorkerID = d.requiredStr(attrBeatWorker)
	hb.Counter = d.count(attrBeatCounter, true)
	if st := d.requiredStr(attrBeatState); st != "" {
		var ok bool
		if hb.State, ok = lease.ParseWorkerState(st); !ok {
			d.fail(attrBeatState, fmt.Sprintf("unknown state %q", truncate(st)), nil)
		}
	}
	hb.Leases = int(d.count(attrBeatLeases, false))
	hb.AssignEpoch = d.count(attrAssignEpoch, false)
	hb.Fenced = d.count(attrFenced, false)
	if b, ok := member[types.AttributeValueMemberBOOL](&d.decoder, attrStandby, "BOOL"); ok {
		hb.Standby = b.Value
	}
	if err := d.result(); err != nil {
		return lease.Heartbeat{}, err
	}
	return hb, nil
}

// Leader reads kcl#leader with one strongly consistent GetItem.
func (s *Store) Leader(ctx context.Context) (lease.LeaderLock, error) {
	item, err := s.getItem(ctx, fleetLeaderKey)
	if err != nil {
		return lease.LeaderLock{}, fmt.Errorf("dynamolease: leader: %w", err)
	}
	if item == nil {
		return lease.LeaderLock{}, fmt.Errorf("dynamolease: leader: %w", lease.ErrNotFound)
	}
	return decodeFleetLeader(item)
}

func decodeFleetLeader(item map[string]types.AttributeValue) (lease.LeaderLock, error) {
	d := newCoordinationDecoder("kcl-fleet leader lock", item)
	d.hashKey(attrLeaseKey)
	d.fleetEntityType(entityTypeFleetLeader)
	var l lease.LeaderLock
	l.Owner, _ = d.str(attrFleetOwner)
	l.Epoch = d.count(attrFleetEpoch, true)
	l.Version = d.count(attrFleetVersion, true)
	if err := d.result(); err != nil {
		return lease.LeaderLock{}, err
	}
	return l, nil
}

// lockIs conditions a write on the lock's owner and version being l's (no
// owner when l.Owner is "").
func (e *expr) lockIs(l lease.LeaderLock) {
	e.is(entityTypeFleetLeader)
	if l.Owner == "" {
		e.cond = append(e.cond, "attribute_not_exists("+e.n(attrFleetOwner)+")")
	} else {
		e.cond = append(e.cond, e.n(attrFleetOwner)+" = "+e.v(strAV(l.Owner)))
	}
	e.cond = append(e.cond, e.n(attrFleetVersion)+" = "+e.v(numberInt(l.Version)))
}

// lockLanded returns whether a stored lock item has owner and version.
func lockLanded(owner string, version int64) func(map[string]types.AttributeValue) bool {
	return func(item map[string]types.AttributeValue) bool {
		cur, err := decodeFleetLeader(item)
		return err == nil && cur.Owner == owner && cur.Version == version
	}
}

// AcquireLeader writes kcl#leader with one UpdateItem: with seen nil,
// conditioned on attribute_not_exists(leaseKey), it sets owner, epoch 1 and
// version 1; otherwise, conditioned on the stored owner and version being
// seen's, it sets owner and adds 1 to the stored epoch and version.
func (s *Store) AcquireLeader(ctx context.Context, id string, seen *lease.LeaderLock) (lease.LeaderLock, error) {
	if id == "" {
		return lease.LeaderLock{}, usage("acquire leader", id, "empty worker id")
	}
	e := newExpr()
	e.setS(attrFleetOwner, id)
	wantVersion := int64(1)
	if seen == nil {
		e.cond = append(e.cond, "attribute_not_exists("+e.n(attrLeaseKey)+")")
		e.setS(attrEntityType, entityTypeFleetLeader)
		e.setAV(attrFleetEpoch, numberInt(1))
		e.setAV(attrFleetVersion, numberInt(1))
	} else {
		e.lockIs(*seen)
		e.increment(attrFleetEpoch)
		e.increment(attrFleetVersion)
		wantVersion = seen.Version + 1
	}
	return s.lockWrite(ctx, "acquire leader", id, e, lease.ErrConflict, seen != nil, lockLanded(id, wantVersion))
}

// RenewLeader adds 1 to the version of kcl#leader with one UpdateItem
// conditioned on the stored owner and version being l's.
func (s *Store) RenewLeader(ctx context.Context, l lease.LeaderLock) (lease.LeaderLock, error) {
	if l.Owner == "" {
		return lease.LeaderLock{}, usage("renew leader", l.Owner, "the lock has no owner")
	}
	e := newExpr()
	e.lockIs(l)
	e.increment(attrFleetVersion)
	return s.lockWrite(ctx, "renew leader", l.Owner, e, lease.ErrLeaseLost, true, lockLanded(l.Owner, l.Version+1))
}

// ReleaseLeader removes the owner of kcl#leader and adds 1 to its version
// with one UpdateItem conditioned on the stored owner and version being l's.
func (s *Store) ReleaseLeader(ctx context.Context, l lease.LeaderLock) error {
	if l.Owner == "" {
		return usage("release leader", l.Owner, "the lock has no owner")
	}
	e := newExpr()
	e.lockIs(l)
	e.increment(attrFleetVersion)
	e.del(attrFleetOwner)
	_, err := s.lockWrite(ctx, "release leader", l.Owner, e, lease.ErrLeaseLost, true, lockLanded("", l.Version+1))
	return err
}

// lockWrite makes one conditional write of the leader lock. When the
// condition failed and mustExist is set, a missing lock also matches
// lease.ErrNotFound.
func (s *Store) lockWrite(ctx context.Context, op, id string, e *expr, conflict error, mustExist bool, landed func(map[string]types.AttributeValue) bool) (lease.LeaderLock, error) {
	item, old, err := s.fleetWrite(ctx, fleetLeaderKey, e, conflict, landed)
	if conditionFailed(err) != nil {
		switch {
		case old == nil && mustExist:
			return lease.LeaderLock{}, fmt.Errorf("dynamolease: %s %q: %w (%w)", op, id, err, lease.ErrNotFound)
		case old != nil:
			if cur, derr := decodeFleetLeader(old); derr == nil {
				return lease.LeaderLock{}, fmt.Errorf("dynamolease: %s %q: %w (stored: owner %q, epoch %d, version %d)",
					op, id, err, cur.Owner, cur.Epoch, cur.Version)
			}
		}
	}
	if err != nil {
		return lease.LeaderLock{}, fmt.Errorf("dynamolease: %s %q: %w", op, id, err)
	}
	l, err := decodeFleetLeader(item)
	if err != nil {
		return lease.LeaderLock{}, fmt.Errorf("dynamolease: %s %q: written, but the stored item cannot be read: %w", op, id, err)
	}
	return l, nil
}

// Assign makes newOwner the owner with one UpdateItem conditioned on
// leaseCounter = l.Counter and leaseOwner = l.Owner (attribute_not_exists
// when l.Owner is ""): it sets leaseOwner, increments the counter, removes
// checkpointOwner and, when l.Owner is neither "" nor newOwner, adds one to
// ownerSwitchesSinceCheckpoint. On a condition failure it returns an error
// matching lease.ErrConflict (and lease.ErrNotFound if the lease is gone).
func (s *Store) Assign(ctx context.Context, l lease.Lease, newOwner string) (lease.Lease, error) {
	return s.setOwner(ctx, "assign", l, newOwner, true)
}
