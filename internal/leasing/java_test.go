package leasing_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/internal/leasing"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/dynamolease"
	"github.com/kclgo/kcl/testkit/testenv"
)

// These tests share a lease table between kcl coordinators and a simulated
// Java KCL 3.5.1 worker whose writes are byte for byte the requests the Java
// library sends (legacy Expected/AttributeUpdates parameters, as
// core/leases/dynamodb/DynamoDBLeaseRefresher.java and
// DynamoDBLeaseSerializer.java build them), on lease items shaped as the Java
// serializer writes them (testdata/kcl-lease-items.json).

// javaFixture returns the item of kcl-lease-items.json whose _case is name.
func javaFixture(t *testing.T, name string) map[string]types.AttributeValue {
	t.Helper()
	data, err := os.ReadFile("../../lease/dynamolease/testdata/kcl-lease-items.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Items []map[string]json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	for _, raw := range file.Items {
		var c string
		_ = json.Unmarshal(raw["_case"], &c)
		if c != name {
			continue
		}
		item := map[string]types.AttributeValue{}
		for attr, v := range raw {
			if attr[0] == '_' {
				continue
			}
			av, err := javaValue(v)
			if err != nil {
				t.Fatalf("fixture %q, attribute %s: %v", name, attr, err)
			}
			item[attr] = av
		}
		return item
	}
	t.Fatalf("no fixture %q", name)
	return nil
}

// javaValue converts a DynamoDB JSON value of the types lease items use.
func javaValue(raw json.RawMessage) (types.AttributeValue, error) {
	var v struct {
		S  *string
		N  *string
		B  *string
		SS []string
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	switch {
	case v.S != nil:
		return &types.AttributeValueMemberS{Value: *v.S}, nil
	case v.N != nil:
		return &types.AttributeValueMemberN{Value: *v.N}, nil
	case v.B != nil:
		b, err := base64.StdEncoding.DecodeString(*v.B)
		return &types.AttributeValueMemberB{Value: b}, err
	case v.SS != nil:
		return &types.AttributeValueMemberSS{Value: v.SS}, nil
	}
	return nil, fmt.Errorf("unsupported value %s", raw)
}

func avS(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func avN(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func put(a types.AttributeValue) types.AttributeValueUpdate {
	return types.AttributeValueUpdate{Action: types.AttributeActionPut, Value: a}
}

var del = types.AttributeValueUpdate{Action: types.AttributeActionDelete}

// javaLease is a Java worker's in-memory Lease: what its writes are
// conditioned on.
type javaLease struct {
	key             string
	owner           string // leaseOwner
	checkpointOwner string // set once the worker learnt of a handoff request
	counter         int64
}

// shutdownRequested is Lease.shutdownRequested().
func (l *javaLease) shutdownRequested() bool { return l.checkpointOwner != "" }

// actualOwner is Lease.actualOwner().
func (l *javaLease) actualOwner() string {
	if l.checkpointOwner != "" {
		return l.checkpointOwner
	}
	return l.owner
}

// java sends a Java worker's requests to a lease table.
type java struct {
	client *dynamodb.Client
	table  string
}

func (j java) update(ctx context.Context, in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
	in.TableName = aws.String(j.table)
	return j.client.UpdateItem(ctx, in)
}

func (j java) read(ctx context.Context, key string) (*javaLease, error) {
	out, err := j.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(j.table), Key: map[string]types.AttributeValue{"leaseKey": avS(key)}, ConsistentRead: aws.Bool(true),
	})
	if err != nil || len(out.Item) == 0 {
		return nil, err
	}
	return javaLeaseOf(out.Item)
}

func javaLeaseOf(item map[string]types.AttributeValue) (*javaLease, error) {
	l, err := dynamolease.UnmarshalItem(item)
	if err != nil {
		return nil, err
	}
	return &javaLease{key: l.Key, owner: l.Owner, checkpointOwner: l.CheckpointOwner, counter: l.Counter}, nil
}

func isConditionFailure(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// renew is DynamoDBLeaseRefresher.renewLease: leaseCounter PUT counter+1
// (computed by the client), expecting leaseCounter = counter and, unless the
// worker already knows of a handoff, no checkpointOwner. On a condition
// failure it adopts a handoff request naming it as checkpoint owner and
// retries (handleGracefulShutdown), else it re-reads the lease and keeps it
// only if its own earlier write landed. It reports whether the lease is
// still held.
func (j java) renew(ctx context.Context, l *javaLease) (bool, error) {
	expected := map[string]types.ExpectedAttributeValue{"leaseCounter": {Value: avN(l.counter)}}
	if !l.shutdownRequested() {
		expected["checkpointOwner"] = types.ExpectedAttributeValue{Exists: aws.Bool(false)}
	}
	_, err := j.update(ctx, &dynamodb.UpdateItemInput{
		Key:                                 map[string]types.AttributeValue{"leaseKey": avS(l.key)},
		Expected:                            expected,
		AttributeUpdates:                    map[string]types.AttributeValueUpdate{"leaseCounter": put(avN(l.counter + 1))},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	switch {
	case err == nil:
		l.counter++
		return true, nil
	case !isConditionFailure(err):
		return false, err
	}
	if !l.shutdownRequested() {
		var ddb *javaLease
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) && len(ccf.Item) > 0 {
			ddb, err = javaLeaseOf(ccf.Item)
		} else {
			ddb, err = j.read(ctx, l.key) // DynamoDB Local returns no item
		}
		if err != nil {
			return false, err
		}
		if ddb != nil && ddb.shutdownRequested() {
			// handleGracefulShutdown
			if l.actualOwner() != ddb.actualOwner() || ddb.checkpointOwner == ddb.owner {
				return false, nil
			}
			l.checkpointOwner, l.owner = ddb.checkpointOwner, ddb.owner
			return j.renew(ctx, l)
		}
	}
	cur, err := j.read(ctx, l.key)
	if err != nil || cur == nil || cur.owner != l.actualOwner() || cur.counter != l.counter+1 {
		return false, err
	}
	l.counter++
	return true, nil
}

// checkpoint is DynamoDBLeaseRefresher.updateLease as
// DynamoDBCheckpointer.setCheckpoint calls it (the shutdownRequested
// checkpoint included): expecting leaseCounter = counter only, it PUTs
// leaseCounter+1, the checkpoint, ownerSwitchesSinceCheckpoint 0 and the hash
// range, and DELETEs the pending checkpoint.
func (j java) checkpoint(ctx context.Context, l *javaLease, seq string, start, end string) error {
	_, err := j.update(ctx, &dynamodb.UpdateItemInput{
		Key:      map[string]types.AttributeValue{"leaseKey": avS(l.key)},
		Expected: map[string]types.ExpectedAttributeValue{"leaseCounter": {Value: avN(l.counter)}},
		AttributeUpdates: map[string]types.AttributeValueUpdate{
			"leaseCounter":                       put(avN(l.counter + 1)),
			"checkpoint":                         put(avS(seq)),
			"checkpointSubSequenceNumber":        put(avN(0)),
			"ownerSwitchesSinceCheckpoint":       put(avN(0)),
			"pendingCheckpoint":                  del,
			"pendingCheckpointSubSequenceNumber": del,
			"pendingCheckpointState":             del,
			"startingHashKey":                    put(avS(start)),
			"endingHashKey":                      put(avS(end)),
		},
	})
	if err == nil {
		l.counter++
	}
	return err
}

// assign is DynamoDBLeaseRefresher.assignLease(lease, lease.leaseOwner()),
// the transfer that ends a graceful handoff
// (LeaseGracefulShutdownHandler.attemptLeaseTransfer): expecting leaseOwner
// and checkpointOwner as the worker knows them and the item to exist, it PUTs
// leaseOwner, DELETEs checkpointOwner and ADDs 1 to leaseCounter.
func (j java) assign(ctx context.Context, l *javaLease, to string) error {
	updates := map[string]types.AttributeValueUpdate{
		"leaseOwner":      put(avS(to)),
		"checkpointOwner": del,
		"leaseCounter":    {Action: types.AttributeActionAdd, Value: avN(1)},
	}
	if (l.owner != "" && l.owner != to) || l.checkpointOwner == to {
		updates["ownerSwitchesSinceCheckpoint"] = types.AttributeValueUpdate{Action: types.AttributeActionAdd, Value: avN(1)}
	}
	_, err := j.update(ctx, &dynamodb.UpdateItemInput{
		Key: map[string]types.AttributeValue{"leaseKey": avS(l.key)},
		Expected: map[string]types.ExpectedAttributeValue{
			"leaseOwner":      expectValue(l.owner),
			"checkpointOwner": expectValue(l.checkpointOwner),
			"leaseKey":        {Exists: aws.Bool(true), Value: avS(l.key)},
		},
		AttributeUpdates: updates,
		ReturnValues:     types.ReturnValueAllNew,
	})
	return err
}

// initiateHandoff is DynamoDBLeaseRefresher.initiateGracefulLeaseHandoff, the
// request a KCL 3.x leader writes: expecting leaseOwner = from, no
// checkpointOwner and the item to exist, it PUTs leaseOwner = to and
// checkpointOwner = from. leaseCounter is neither expected nor written.
func (j java) initiateHandoff(ctx context.Context, key, from, to string) error {
	_, err := j.update(ctx, &dynamodb.UpdateItemInput{
		Key: map[string]types.AttributeValue{"leaseKey": avS(key)},
		Expected: map[string]types.ExpectedAttributeValue{
			"leaseOwner":      {Value: avS(from)},
			"checkpointOwner": {Exists: aws.Bool(false)},
			"leaseKey":        {Exists: aws.Bool(true), Value: avS(key)},
		},
		AttributeUpdates: map[string]types.AttributeValueUpdate{
			"leaseOwner":      put(avS(to)),
			"checkpointOwner": put(avS(from)),
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	return err
}

// expectValue is DynamoDBLeaseSerializer.buildExpectedAttributeValueIfExistsOrValue.
func expectValue(s string) types.ExpectedAttributeValue {
	if s == "" {
		return types.ExpectedAttributeValue{Exists: aws.Bool(false)}
	}
	return types.ExpectedAttributeValue{Value: avS(s)}
}

// The Java holder of these tests and its final checkpoint.
const (
	javaOwner = "ip-10-0-0-12.ec2.internal:4f0c2a3e-0b7d-4d3e-9a55-3c1f5c1e2b7a"
	javaFinal = "49654123456789012345678901234567890123456789012345679999"
)

// javaHolder plays a KCL 3.5.1 worker holding one lease: it renews every
// renew interval and, once a renewal shows a handoff request, keeps renewing
// for shutdownTime (its processor finishing shutdownRequested), then writes
// its final checkpoint and transfers the lease (assignLease) to the
// requester. Every write that fails is recorded.
type javaHolder struct {
	j        java
	l        *javaLease
	start    string // the hash range the checkpoint re-PUTs
	end      string
	failures []string
	// handedTo is set once the transfer succeeded.
	handedTo atomic.Value
}

func (h *javaHolder) run(ctx context.Context, every, shutdownTime time.Duration) {
	var requested time.Time
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := h.j.renew(ctx, h.l)
		if err != nil && ctx.Err() != nil {
			return
		}
		if !ok || err != nil {
			h.failures = append(h.failures, fmt.Sprintf("renew at counter %d: held %v, %v", h.l.counter, ok, err))
			return // the lease is lost: the processor gets leaseLost
		}
		if !h.l.shutdownRequested() {
			continue
		}
		if requested.IsZero() {
			requested = time.Now()
		}
		if time.Since(requested) < shutdownTime {
			continue
		}
		if err := h.j.checkpoint(ctx, h.l, javaFinal, h.start, h.end); err != nil {
			h.failures = append(h.failures, fmt.Sprintf("shutdownRequested checkpoint at counter %d: %v", h.l.counter, err))
			return
		}
		if err := h.j.assign(ctx, h.l, h.l.owner); err != nil {
			h.failures = append(h.failures, fmt.Sprintf("assignLease to %s: %v", h.l.owner, err))
			return
		}
		h.handedTo.Store(h.l.owner)
		return
	}
}

func TestJavaHolderCompletesAHandoffRequestedByKcl(t *testing.T) {
	// A Java worker holds both leases of the table; a kcl worker joins and,
	// to reach its fair share of one, asks for one of them. The Java holder
	// must see a graceful handoff — keep renewing, write its
	// shutdownRequested checkpoint, transfer the lease — not a lost lease;
	// and the kcl worker must not take the lease while the Java holder,
	// still renewing, finishes (its shutdown outlasts kcl's handoff timeout
	// here).
	table := dynamoTable(t)
	store := dynamoStore(t, table)
	client := testenv.DynamoDB(t)
	j := java{client: client, table: table}

	fixture := javaFixture(t, "owned lease with a numeric checkpoint inside a KPL aggregate")
	keys := []string{"shardId-000000000001", "shardId-000000000007"}
	holders := make([]*javaHolder, len(keys))
	for i, key := range keys {
		item := map[string]types.AttributeValue{}
		for k, v := range fixture {
			item[k] = v
		}
		item["leaseKey"] = avS(key)
		if _, err := client.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatal(err)
		}
		holders[i] = &javaHolder{
			j: j, l: &javaLease{key: key, owner: javaOwner, counter: 48213},
			start: "85070591730234615865843651857942052864", end: "170141183460469231731687303715884105727",
		}
	}

	const (
		d            = 3 * time.Second                  // kcl's lease duration and handoff timeout here
		javaRenew    = d/3 - 25*time.Millisecond        // KCL's renewer interval at failoverTimeMillis = d
		shutdownTime = d + d/2                          // the Java processor's shutdownRequested outlasts d
		limit        = shutdownTime + 4*d + time.Second // generous
	)
	ctx, cancel := context.WithCancel(t.Context())
	var javaDone sync.WaitGroup
	for _, h := range holders {
		javaDone.Go(func() { h.run(ctx, javaRenew, shutdownTime) })
	}
	// Let the Java worker renew a few times before kcl joins, so that kcl
	// sees its leases as live.
	time.Sleep(2 * javaRenew)

	coord, err := leasing.NewCoordinator(store, "kcl-b", leasing.WithLeaseDuration(d), leasing.WithTakeInterval(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acquired := map[string]lease.Lease{}
	runCtx, stop := context.WithCancel(t.Context())
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		_ = coord.Run(runCtx, drainAfter(runCtx), func(h *leasing.Held) {
			mu.Lock()
			acquired[h.Key()] = h.Lease()
			mu.Unlock()
			go func() {
				<-h.Context().Done()
				_ = h.Done(context.WithoutCancel(runCtx))
			}()
		})
	}()
	took := waitReal(t, limit, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acquired) == 1
	})
	time.Sleep(d) // anything more to happen (a second acquisition, a failed Java write) happens now
	stop()
	<-runDone
	cancel()
	javaDone.Wait()

	t.Logf("kcl acquired a Java-held lease by graceful handoff %v after joining (Java shutdown took %v)", took.Round(time.Millisecond), shutdownTime)
	for _, h := range holders {
		for _, f := range h.failures {
			t.Errorf("Java holder of %s: %s", h.l.key, f)
		}
	}
	st := coord.Stats()
	if st.ForcedTakes != 0 || st.Taken != 0 {
		t.Errorf("kcl took %d leases and forced %d handoffs; want neither: the Java holder was renewing", st.Taken, st.ForcedTakes)
	}
	if st.HandoffsReceived != 1 {
		t.Errorf("kcl received %d handoffs; want 1", st.HandoffsReceived)
	}
	mu.Lock()
	defer mu.Unlock()
	for key, l := range acquired {
		var h *javaHolder
		for _, hh := range holders {
			if hh.l.key == key {
				h = hh
			}
		}
		if to, _ := h.handedTo.Load().(string); to != "kcl-b" {
			t.Errorf("lease %s acquired by kcl-b, but the Java holder did not transfer it (handed to %q)", key, to)
		}
		if l.Checkpoint.SequenceNumber() != javaFinal || l.Owner != "kcl-b" || l.CheckpointOwner != "" {
			t.Errorf("kcl acquired %s as %+v; want owner kcl-b, no checkpoint owner, the Java holder's final checkpoint %s", key, l, javaFinal)
		}
	}
}

func TestKclHolderCompletesAHandoffRequestedByJava(t *testing.T) {
	// A kcl worker holds a lease; a KCL 3.x leader asks for it for a Java
	// worker with the request initiateGracefulLeaseHandoff writes. The kcl
	// holder must stop, write its final checkpoint — which leaves the lease
	// to the Java worker with checkpointOwner removed, the state Java's own
	// transfer (assignLease) leaves — and the Java worker must then hold it:
	// its renewals at the counter it reads succeed.
	table := dynamoTable(t)
	store := dynamoStore(t, table)
	client := testenv.DynamoDB(t)
	j := java{client: client, table: table}
	fixture := javaFixture(t, "new unowned lease created by shard sync at TRIM_HORIZON")
	key := fixture["leaseKey"].(*types.AttributeValueMemberS).Value
	if _, err := client.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: fixture}); err != nil {
		t.Fatal(err)
	}

	const d = 3 * time.Second
	coord, err := leasing.NewCoordinator(store, "kcl-a", leasing.WithLeaseDuration(d), leasing.WithTakeInterval(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	final, err := checkpoint.At("49654123456789012345678901234567890123456789012345670001", 3)
	if err != nil {
		t.Fatal(err)
	}
	heldCh := make(chan *leasing.Held, 1)
	doneErr := make(chan error, 1)
	runCtx, stop := context.WithCancel(t.Context())
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		_ = coord.Run(runCtx, drainAfter(runCtx), func(h *leasing.Held) {
			heldCh <- h
			go func() {
				<-h.Context().Done()
				if !errors.Is(context.Cause(h.Context()), leasing.ErrHandoffRequested) {
					doneErr <- fmt.Errorf("lease context ended with %v; want ErrHandoffRequested", context.Cause(h.Context()))
					return
				}
				err := h.WriteCheckpoint(context.WithoutCancel(runCtx), final, checkpoint.Position{}, nil)
				if err == nil {
					err = h.Done(context.WithoutCancel(runCtx))
				}
				doneErr <- err
			}()
		})
	}()
	defer func() {
		stop()
		<-runDone
	}()
	var h *leasing.Held
	select {
	case h = <-heldCh:
	case <-time.After(10 * d):
		t.Fatal("kcl-a did not take the unowned lease")
	}
	time.Sleep(d / 2) // a renewal or two

	if err := j.initiateHandoff(t.Context(), key, "kcl-a", "java-j2"); err != nil {
		t.Fatalf("the Java leader's handoff request failed: %v", err)
	}
	requested := time.Now()
	select {
	case err := <-doneErr:
		if err != nil {
			t.Fatalf("kcl holder: %v", err)
		}
	case <-time.After(2 * d):
		t.Fatal("the kcl holder did not complete the handoff within two lease durations")
	}
	t.Logf("kcl holder completed the Java leader's handoff request %v after it", time.Since(requested).Round(time.Millisecond))

	got, err := store.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if got.Owner != "java-j2" || got.CheckpointOwner != "" || got.Checkpoint != final || got.OwnerSwitchesSinceCheckpoint != 0 {
		t.Errorf("after the kcl holder's final checkpoint the lease is %+v; want owner java-j2, no checkpointOwner, checkpoint %v", got, final)
	}
	if h.Valid() {
		t.Error("the kcl holder still counts the lease as held")
	}
	// The Java worker discovers the lease (no checkpointOwner any more),
	// reads it and renews it as its own, again and again: kcl-a does not
	// interfere.
	jl, err := j.read(t.Context(), key)
	if err != nil || jl == nil {
		t.Fatalf("read: %v", err)
	}
	for i := range 4 {
		if ok, err := j.renew(t.Context(), jl); !ok || err != nil {
			t.Fatalf("Java worker's renewal %d of the handed-over lease: held %v, %v", i+1, ok, err)
		}
		time.Sleep(d/3 - 25*time.Millisecond)
	}
}
