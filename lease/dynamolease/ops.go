package dynamolease

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kclgo/kcl/lease"
)

// errUsage is wrapped by errors for calls a Store refuses before writing
// (an empty key or owner, a zero checkpoint). It never matches
// lease.ErrConflict.
var errUsage = errors.New("dynamolease: invalid call")

func usage(op, key, format string, args ...any) error {
	return fmt.Errorf("%w: %s %q: %s", errUsage, op, key, fmt.Sprintf(format, args...))
}

func (s *Store) itemKey(key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrLeaseKey: &types.AttributeValueMemberS{Value: key}}
}

// Create writes l as a new lease with one PutItem conditioned on
// attribute_not_exists(leaseKey), so an existing lease is never overwritten;
// it returns an error matching lease.ErrAlreadyExists if the key exists. A
// lease that could not be read back (see UnmarshalItem: an empty key, a zero
// checkpoint, duplicate shard ids...) is refused with a *lease.ItemError
// before anything is written.
func (s *Store) Create(ctx context.Context, l lease.Lease) error {
	item := MarshalItem(l)
	if _, err := UnmarshalItem(item); err != nil {
		return fmt.Errorf("dynamolease: create %q: %w", l.Key, err)
	}
	e := newExpr()
	e.cond = append(e.cond, "attribute_not_exists("+e.n(attrLeaseKey)+")")
	out, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(s.table),
		Item:                     item,
		ConditionExpression:      e.condition(),
		ExpressionAttributeNames: e.names,
		ReturnConsumedCapacity:   types.ReturnConsumedCapacityTotal,
	})
	err = s.noted(opPutItem, consumed(out, err), err, lease.ErrAlreadyExists)
	if err != nil {
		return fmt.Errorf("dynamolease: create %q: %w", l.Key, err)
	}
	return nil
}

// Get reads the lease with a strongly consistent GetItem. A missing item, or
// an item that is not a lease (ErrNotLease), yields an error matching
// lease.ErrNotFound; an item that cannot be read yields a *lease.ItemError.
func (s *Store) Get(ctx context.Context, key string) (lease.Lease, error) {
	if key == "" {
		return lease.Lease{}, fmt.Errorf("dynamolease: get %q: %w", key, lease.ErrNotFound)
	}
	item, err := s.getItem(ctx, key)
	if err != nil {
		return lease.Lease{}, fmt.Errorf("dynamolease: get %q: %w", key, err)
	}
	if item == nil {
		return lease.Lease{}, fmt.Errorf("dynamolease: get %q: %w", key, lease.ErrNotFound)
	}
	l, err := UnmarshalItem(item)
	switch {
	case errors.Is(err, ErrNotLease):
		return lease.Lease{}, fmt.Errorf("dynamolease: get %q: %w: %w", key, lease.ErrNotFound, err)
	case err != nil:
		return lease.Lease{}, fmt.Errorf("dynamolease: get %q: %w", key, err)
	}
	return l, nil
}

// getItem reads an item with a consistent read; nil if there is none.
func (s *Store) getItem(ctx context.Context, key string) (map[string]types.AttributeValue, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:              aws.String(s.table),
		Key:                    s.itemKey(key),
		ConsistentRead:         aws.Bool(true),
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	err = s.noted(opGetItem, consumed(out, err), err, nil)
	if err != nil {
		return nil, err
	}
	if len(out.Item) == 0 {
		return nil, nil
	}
	return out.Item, nil
}

// List reads the whole table with a strongly consistent, paginated Scan and
// returns its leases sorted by key. Items that are not leases (ErrNotLease)
// are skipped; items that cannot be read are reported in a
// *lease.MalformedError returned with the well-formed leases.
//
// A consistent Scan costs one read unit per 4 KB of table, per page; a KCL
// lease item is 200–400 bytes.
func (s *Store) List(ctx context.Context) ([]lease.Lease, error) {
	in := &dynamodb.ScanInput{
		TableName:              aws.String(s.table),
		ConsistentRead:         aws.Bool(true),
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	}
	if s.opts.pageSize > 0 {
		in.Limit = aws.Int32(s.opts.pageSize)
	}
	var (
		leases []lease.Lease
		bad    []*lease.ItemError
	)
	for {
		out, err := s.client.Scan(ctx, in)
		err = s.noted(opScan, consumed(out, err), err, nil)
		if err != nil {
			return nil, fmt.Errorf("dynamolease: list: %w", err)
		}
		for _, item := range out.Items {
			l, err := UnmarshalItem(item)
			var ie *lease.ItemError
			switch {
			case err == nil:
				leases = append(leases, l)
			case errors.Is(err, ErrNotLease):
				// Another KCL 3.5 row type: not ours to list.
			case errors.As(err, &ie):
				bad = append(bad, ie)
			default:
				bad = append(bad, &lease.ItemError{Reason: "unreadable", Err: err})
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	slices.SortFunc(leases, func(a, b lease.Lease) int { return strings.Compare(a.Key, b.Key) })
	if len(bad) > 0 {
		slices.SortFunc(bad, func(a, b *lease.ItemError) int { return strings.Compare(a.Key, b.Key) })
		return leases, &lease.MalformedError{Items: bad}
	}
	return leases, nil
}

// ListOwned returns the keys of the leases whose leaseOwner is owner (during
// a handoff, the incoming owner), by querying LeaseOwnerToLeaseKeyIndex. The
// index is eventually consistent: results may lag writes by a second or so.
// The index holds keys only, so rows of other KCL 3.5 entity types with a
// leaseOwner attribute would be listed too; KCL writes none.
//
// If the table has no owner index (see EnsureTable and WithOwnerIndex), or
// its index is still being built, ListOwned returns an error matching
// errors.ErrUnsupported; use List instead.
func (s *Store) ListOwned(ctx context.Context, owner string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("dynamolease: list owned by %q: %w", owner, err)
	}
	if err := s.checkOwnerIndex(ctx); err != nil {
		return nil, fmt.Errorf("dynamolease: list owned by %q: %w", owner, err)
	}
	if owner == "" {
		return nil, nil // unowned leases have no leaseOwner and are not indexed
	}
	e := newExpr()
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		IndexName:                 aws.String(OwnerIndexName),
		KeyConditionExpression:    aws.String(e.n(attrLeaseOwner) + " = " + e.v(&types.AttributeValueMemberS{Value: owner})),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.attributeValues(),
		ReturnConsumedCapacity:    types.ReturnConsumedCapacityTotal,
	}
	var keys []string
	for {
		out, err := s.client.Query(ctx, in)
		err = s.noted(opQuery, consumed(out, err), err, nil)
		if err != nil {
			return nil, fmt.Errorf("dynamolease: list owned by %q: %w", owner, err)
		}
		for _, item := range out.Items {
			if k, ok := item[attrLeaseKey].(*types.AttributeValueMemberS); ok && k != nil {
				keys = append(keys, k.Value)
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	return keys, nil
}

// checkOwnerIndex returns nil if ListOwned can query the owner index, and an
// error matching errors.ErrUnsupported if the table has no usable index. It
// asks DynamoDB when EnsureTable has not found out already.
func (s *Store) checkOwnerIndex(ctx context.Context) error {
	st := s.indexState()
	if st == indexUnknown {
		desc, err := s.describeTable(ctx)
		if err != nil {
			return err
		}
		st = ownerIndexState(desc)
		s.setIndexState(st)
		if st == indexUnknown {
			return fmt.Errorf("index %s of table %s is %s, not ACTIVE yet: %w",
				OwnerIndexName, s.table, ownerIndexStatus(desc), errors.ErrUnsupported)
		}
	}
	if st == indexAbsent {
		return fmt.Errorf("table %s has no index %s: %w", s.table, OwnerIndexName, errors.ErrUnsupported)
	}
	return nil
}

// Renew increments the counter with one UpdateItem conditioned on
// leaseCounter = l.Counter and leaseOwner = l.Owner, and returns the lease as
// stored after the write. On a condition failure it returns an error
// matching lease.ErrLeaseLost (and lease.ErrNotFound if the lease is gone) —
// unless the SDK had retried the request and the stored lease shows that an
// earlier attempt was applied (owner l.Owner, counter l.Counter+1, no new
// handoff): then, as KCL does, it returns that lease.
func (s *Store) Renew(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	if l.Key == "" {
		return lease.Lease{}, usage("renew", l.Key, "empty lease key")
	}
	e := newExpr()
	e.counterIs(l.Counter)
	e.ownerIs(l.Owner)
	e.bumpCounter()
	return s.update(ctx, "renew", l, e, lease.ErrLeaseLost, func(cur lease.Lease) bool {
		return cur.Owner == l.Owner && cur.Counter == l.Counter+1 && cur.CheckpointOwner == l.CheckpointOwner
	})
}

// Take makes owner the owner with one UpdateItem conditioned on
// leaseCounter = l.Counter: it sets leaseOwner, increments the counter,
// removes checkpointOwner and, when another worker held the lease (l.Owner is
// neither "" nor owner, as in KCL), adds one to ownerSwitchesSinceCheckpoint.
// On a condition failure it returns an error matching lease.ErrConflict.
func (s *Store) Take(ctx context.Context, l lease.Lease, owner string) (lease.Lease, error) {
	return s.setOwner(ctx, "take", l, owner, false)
}

// setOwner is Take and, with ownerToo, Assign: one UpdateItem conditioned
// on leaseCounter (and leaseOwner when ownerToo) that makes owner the owner,
// increments the counter, removes checkpointOwner and counts an owner switch
// when another worker held the lease.
func (s *Store) setOwner(ctx context.Context, op string, l lease.Lease, owner string, ownerToo bool) (lease.Lease, error) {
	switch {
	case l.Key == "":
		return lease.Lease{}, usage(op, l.Key, "empty lease key")
	case owner == "":
		return lease.Lease{}, usage(op, l.Key, "empty owner")
	}
	e := newExpr()
	e.counterIs(l.Counter)
	if ownerToo {
		e.ownerIs(l.Owner)
	}
	e.setS(attrLeaseOwner, owner)
	e.bumpCounter()
	e.del(attrCheckpointOwner)
	if l.Owner != "" && l.Owner != owner {
		e.add = append(e.add, e.n(attrOwnerSwitches)+" "+e.v(numberInt(1)))
	}
	return s.update(ctx, op, l, e, lease.ErrConflict, func(cur lease.Lease) bool {
		return cur.Owner == owner && cur.Counter == l.Counter+1 && cur.CheckpointOwner == ""
	})
}

// Handoff starts a graceful handoff to worker to with one UpdateItem that
// sets leaseOwner to to and checkpointOwner to l.Owner and leaves
// leaseCounter as it is — the write KCL 3.x's leader makes
// (DynamoDBLeaseRefresher.initiateGracefulLeaseHandoff), so that a Java
// holder keeps renewing and completes the handoff with its final checkpoint.
// It is conditioned on leaseOwner = l.Owner and
// attribute_not_exists(checkpointOwner), as KCL's, and also on
// leaseCounter = l.Counter, so that a lease written since the caller read it
// (a holder that reached SHARD_END, say) is not asked for. On a condition
// failure it returns an error matching lease.ErrConflict.
func (s *Store) Handoff(ctx context.Context, l lease.Lease, to string) (lease.Lease, error) {
	switch {
	case l.Key == "":
		return lease.Lease{}, usage("handoff", l.Key, "empty lease key")
	case l.Owner == "":
		return lease.Lease{}, usage("handoff", l.Key, "the lease has no owner to hand off from")
	case to == "":
		return lease.Lease{}, usage("handoff", l.Key, "empty owner to hand off to")
	case to == l.Owner:
		return lease.Lease{}, usage("handoff", l.Key, "%q already owns the lease", to)
	}
	e := newExpr()
	e.counterIs(l.Counter)
	e.ownerIs(l.Owner)
	e.cond = append(e.cond, "attribute_not_exists("+e.n(attrCheckpointOwner)+")")
	e.setS(attrLeaseOwner, to)
	e.setS(attrCheckpointOwner, l.Owner)
	return s.update(ctx, "handoff", l, e, lease.ErrConflict, func(cur lease.Lease) bool {
		return cur.Owner == to && cur.CheckpointOwner == l.Owner && cur.Counter == l.Counter
	})
}

// Checkpoint records progress with one UpdateItem conditioned on
// leaseCounter = l.Counter and leaseOwner = l.Owner. It sets checkpoint and
// checkpointSubSequenceNumber, resets ownerSwitchesSinceCheckpoint to 0 and
// increments the counter; it sets pendingCheckpoint,
// pendingCheckpointSubSequenceNumber and pendingCheckpointState from u, or
// removes them when u has none (as KCL does); it sets childShardIds when
// u.ChildShardIDs is non-empty and removes them when it is empty but not nil;
// and it removes checkpointOwner when l.CheckpointOwner is set, completing a
// handoff. Attributes it does not name are kept. On a condition failure it
// returns an error matching lease.ErrLeaseLost.
func (s *Store) Checkpoint(ctx context.Context, l lease.Lease, u lease.CheckpointUpdate) (lease.Lease, error) {
	switch {
	case l.Key == "":
		return lease.Lease{}, usage("checkpoint", l.Key, "empty lease key")
	case u.Checkpoint.IsZero():
		return lease.Lease{}, usage("checkpoint", l.Key, "zero checkpoint position")
	}
	if len(u.ChildShardIDs) > 0 {
		if reason := checkShardIDs(u.ChildShardIDs); reason != "" {
			return lease.Lease{}, usage("checkpoint", l.Key, "child shard ids: %s", reason)
		}
	}
	e := newExpr()
	e.counterIs(l.Counter)
	e.ownerIs(l.Owner)
	e.setS(attrCheckpoint, u.Checkpoint.SequenceNumber())
	e.setAV(attrCheckpointSub, numberUint(u.Checkpoint.SubSequenceNumber()))
	e.setAV(attrOwnerSwitches, numberInt(0))
	e.bumpCounter()
	if u.PendingCheckpoint.IsZero() {
		e.del(attrPendingCheckpoint, attrPendingCheckpointSub, attrPendingState)
	} else {
		e.setS(attrPendingCheckpoint, u.PendingCheckpoint.SequenceNumber())
		e.setAV(attrPendingCheckpointSub, numberUint(u.PendingCheckpoint.SubSequenceNumber()))
		if len(u.PendingCheckpointState) > 0 {
			e.setAV(attrPendingState, &types.AttributeValueMemberB{Value: slices.Clone(u.PendingCheckpointState)})
		} else {
			e.del(attrPendingState)
		}
	}
	switch {
	case len(u.ChildShardIDs) > 0:
		e.setAV(attrChildShardIDs, &types.AttributeValueMemberSS{Value: slices.Clone(u.ChildShardIDs)})
	case u.ChildShardIDs != nil:
		e.del(attrChildShardIDs)
	}
	if l.CheckpointOwner != "" {
		e.del(attrCheckpointOwner)
	}
	return s.update(ctx, "checkpoint", l, e, lease.ErrLeaseLost, func(cur lease.Lease) bool {
		return cur.Owner == l.Owner && cur.Counter == l.Counter+1 &&
			cur.Checkpoint == u.Checkpoint && cur.PendingCheckpoint == u.PendingCheckpoint
	})
}

// Release gives the lease up with one UpdateItem conditioned on
// leaseCounter = l.Counter and leaseOwner = l.Owner: it removes leaseOwner and
// checkpointOwner and increments the counter. On a condition failure it
// returns an error matching lease.ErrLeaseLost.
func (s *Store) Release(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	if l.Key == "" {
		return lease.Lease{}, usage("release", l.Key, "empty lease key")
	}
	e := newExpr()
	e.counterIs(l.Counter)
	e.ownerIs(l.Owner)
	e.bumpCounter()
	e.del(attrLeaseOwner, attrCheckpointOwner)
	return s.update(ctx, "release", l, e, lease.ErrLeaseLost, func(cur lease.Lease) bool {
		return cur.Owner == "" && cur.CheckpointOwner == "" && cur.Counter == l.Counter+1
	})
}

// Delete removes the lease with one DeleteItem conditioned on
// leaseCounter = l.Counter. It returns an error matching lease.ErrNotFound if
// the lease does not exist, and one matching lease.ErrConflict if its counter
// differs.
func (s *Store) Delete(ctx context.Context, l lease.Lease) error {
	if l.Key == "" {
		return usage("delete", l.Key, "empty lease key")
	}
	e := newExpr()
	e.counterIs(l.Counter)
	out, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                           aws.String(s.table),
		Key:                                 s.itemKey(l.Key),
		ConditionExpression:                 e.condition(),
		ExpressionAttributeNames:            e.names,
		ExpressionAttributeValues:           e.attributeValues(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		ReturnConsumedCapacity:              types.ReturnConsumedCapacityTotal,
	})
	err = s.noted(opDeleteItem, consumed(out, err), err, lease.ErrConflict)
	if ccf := conditionFailed(err); ccf != nil {
		item, rerr := s.currentItem(ctx, l.Key, ccf)
		switch {
		case rerr != nil:
			return fmt.Errorf("dynamolease: delete %q at counter %d: %w", l.Key, l.Counter, err)
		case item == nil:
			return fmt.Errorf("dynamolease: delete %q: %w", l.Key, lease.ErrNotFound)
		}
		return conflictError("delete", l, err, item)
	}
	if err != nil {
		return fmt.Errorf("dynamolease: delete %q: %w", l.Key, err)
	}
	return nil
}

// update makes one conditional UpdateItem of l's item and returns the lease as
// stored after it (ReturnValues ALL_NEW). On a condition failure it returns
// conflict, with details of the stored lease — unless the SDK made more than
// one attempt and landed reports that the stored lease is what this write
// produces: an earlier attempt was applied and its response lost, so the
// write succeeded.
func (s *Store) update(ctx context.Context, op string, l lease.Lease, e *expr, conflict error, landed func(cur lease.Lease) bool) (lease.Lease, error) {
	out, attempts, err := s.updateItem(ctx, l.Key, e, conflict)
	if ccf := conditionFailed(err); ccf != nil {
		item, rerr := s.currentItem(ctx, l.Key, ccf)
		if rerr != nil {
			return lease.Lease{}, fmt.Errorf("dynamolease: %s %q at counter %d: %w", op, l.Key, l.Counter, err)
		}
		if item != nil && attempts > 1 {
			if cur, derr := UnmarshalItem(item); derr == nil && landed(cur) {
				return cur, nil
			}
		}
		return lease.Lease{}, conflictError(op, l, err, item)
	}
	if err != nil {
		return lease.Lease{}, fmt.Errorf("dynamolease: %s %q: %w", op, l.Key, err)
	}
	cur, err := UnmarshalItem(out.Attributes)
	if err != nil {
		return lease.Lease{}, fmt.Errorf("dynamolease: %s %q: written, but the stored item cannot be read: %w", op, l.Key, err)
	}
	return cur, nil
}

// updateItem sends one conditional UpdateItem of key's item (ReturnValues
// ALL_NEW, and ALL_OLD on a condition failure), classifies its error with
// conflict and records its cost. attempts is how many tries the SDK made:
// more than one means a condition failure may be an earlier attempt's
// success whose response was lost.
func (s *Store) updateItem(ctx context.Context, key string, e *expr, conflict error) (out *dynamodb.UpdateItemOutput, attempts int32, err error) {
	var n atomic.Int32
	out, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.table),
		Key:                                 s.itemKey(key),
		ConditionExpression:                 e.condition(),
		UpdateExpression:                    e.update(),
		ExpressionAttributeNames:            e.names,
		ExpressionAttributeValues:           e.attributeValues(),
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		ReturnConsumedCapacity:              types.ReturnConsumedCapacityTotal,
	}, countAttempts(&n))
	err = s.noted(opUpdateItem, consumed(out, err), err, conflict)
	return out, n.Load(), err
}

// currentItem returns the item as it was when a condition failed: from the
// exception (ReturnValuesOnConditionCheckFailure ALL_OLD) or, if the API did
// not return it, from a consistent read. nil means there is no item.
func (s *Store) currentItem(ctx context.Context, key string, ccf *types.ConditionalCheckFailedException) (map[string]types.AttributeValue, error) {
	if len(ccf.Item) > 0 {
		return ccf.Item, nil
	}
	return s.getItem(ctx, key)
}

// conflictError describes a refused write of l: err matches the operation's
// conflict sentinel; item is the stored item (nil when it does not exist,
// which the error then also matches lease.ErrNotFound for).
func conflictError(op string, l lease.Lease, err error, item map[string]types.AttributeValue) error {
	if item == nil {
		return fmt.Errorf("dynamolease: %s %q at counter %d: %w (%w)", op, l.Key, l.Counter, err, lease.ErrNotFound)
	}
	cur, derr := UnmarshalItem(item)
	if derr != nil {
		return fmt.Errorf("dynamolease: %s %q at counter %d, owner %q: %w", op, l.Key, l.Counter, l.Owner, err)
	}
	return fmt.Errorf("dynamolease: %s %q at counter %d, owner %q: %w (stored: counter %d, owner %q, checkpoint owner %q)",
		op, l.Key, l.Counter, l.Owner, err, cur.Counter, cur.Owner, cur.CheckpointOwner)
}
