package dynamolease

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/lease"
)

func wantRawItem(t *testing.T, client *dynamodb.Client, table, key string, want map[string]types.AttributeValue) {
	t.Helper()
	if d := diffItems(getRaw(t, client, table, key), want); len(d) > 0 {
		t.Errorf("stored item %q:\n\t%s", key, strings.Join(d, "\n\t"))
	}
}

func TestFleetItemsAreStoredInTheirDocumentedShape(t *testing.T) {
	s, client := newTestStore(t)
	ctx := t.Context()
	if _, err := s.Beat(ctx, "w1", lease.WorkerRunning, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkAssigned(ctx, "w1"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStandby(ctx, "w1", true); err != nil {
		t.Fatal(err)
	}
	if err := s.Join(ctx, "w1"); err != nil {
		t.Fatal(err)
	}
	l, err := s.AcquireLeader(ctx, "w1", nil)
	if err != nil {
		t.Fatal(err)
	}
	wantRawItem(t, client, s.Table(), "kcl#worker#w1", map[string]types.AttributeValue{
		attrLeaseKey: avS("kcl#worker#w1"), attrEntityType: avS("KCL_FLEET_HEARTBEAT"), "workerId": avS("w1"),
		"counter": avN("1"), "state": avS("running"), "leases": avN("2"), "assignEpoch": avN("1"),
		"standby": avBOOL(true),
	})
	// Clearing the flag stores false; it does not remove the attribute.
	if err := s.SetStandby(ctx, "w1", false); err != nil {
		t.Fatal(err)
	}
	wantRawItem(t, client, s.Table(), "kcl#worker#w1", map[string]types.AttributeValue{
		attrLeaseKey: avS("kcl#worker#w1"), attrEntityType: avS("KCL_FLEET_HEARTBEAT"), "workerId": avS("w1"),
		"counter": avN("1"), "state": avS("running"), "leases": avN("2"), "assignEpoch": avN("1"),
		"standby": avBOOL(false),
	})
	// A fence stores the counter it was conditioned on, and a beat keeps it.
	if err := s.Fence(ctx, "w1", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Beat(ctx, "w1", lease.WorkerRunning, 2); err != nil {
		t.Fatal(err)
	}
	wantRawItem(t, client, s.Table(), "kcl#worker#w1", map[string]types.AttributeValue{
		attrLeaseKey: avS("kcl#worker#w1"), attrEntityType: avS("KCL_FLEET_HEARTBEAT"), "workerId": avS("w1"),
		"counter": avN("2"), "state": avS("running"), "leases": avN("2"), "assignEpoch": avN("1"),
		"standby": avBOOL(false), "fenced": avN("1"),
	})
	wantRawItem(t, client, s.Table(), "kcl#roster", map[string]types.AttributeValue{
		attrLeaseKey: avS("kcl#roster"), attrEntityType: avS("KCL_FLEET_ROSTER"), "workers": avSS("w1"),
	})
	wantRawItem(t, client, s.Table(), "kcl#leader", map[string]types.AttributeValue{
		attrLeaseKey: avS("kcl#leader"), attrEntityType: avS("KCL_FLEET_LEADER"),
		"owner": avS("w1"), "epoch": avN("1"), "version": avN("1"),
	})
	// A release keeps the item and its epoch; the last Leave leaves an
	// empty roster item.
	if err := s.ReleaseLeader(ctx, l); err != nil {
		t.Fatal(err)
	}
	wantRawItem(t, client, s.Table(), "kcl#leader", map[string]types.AttributeValue{
		attrLeaseKey: avS("kcl#leader"), attrEntityType: avS("KCL_FLEET_LEADER"), "epoch": avN("1"), "version": avN("2"),
	})
	if err := s.Leave(ctx, "w1"); err != nil {
		t.Fatal(err)
	}
	wantRawItem(t, client, s.Table(), "kcl#roster", map[string]types.AttributeValue{
		attrLeaseKey: avS("kcl#roster"), attrEntityType: avS("KCL_FLEET_ROSTER"),
	})
}

// TestListSeesKCL2LeasesAndSkipsOtherEntityTypes puts, next to the fleet
// items, a lease as KCL 2.x writes it (no entityType) and a row of an entity
// type no kcl version knows: the first is a lease, the second is skipped.
func TestListSeesKCL2LeasesAndSkipsOtherEntityTypes(t *testing.T) {
	s, client := newTestStore(t)
	ctx := t.Context()
	kcl2 := validItem()
	delete(kcl2, attrEntityType)
	putRaw(t, client, s.Table(), kcl2)
	putRaw(t, client, s.Table(), map[string]types.AttributeValue{
		attrLeaseKey: avS("future#row"), attrEntityType: avS("SOMETHING_NEW"),
		attrLeaseCounter: avN("3"), attrCheckpoint: avS("TRIM_HORIZON"),
	})
	created := lease.Lease{Key: "shardId-000000000002", Checkpoint: checkpoint.TrimHorizon}
	if err := s.Create(ctx, created); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Beat(ctx, "w1", lease.WorkerStarting, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Join(ctx, "w1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLeader(ctx, "w1", nil); err != nil {
		t.Fatal(err)
	}

	leases, err := s.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var keys []string
	for _, l := range leases {
		keys = append(keys, l.Key)
	}
	if want := []string{"shardId-000000000001", created.Key}; fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Errorf("List returned %q; want %q (the KCL 2.x lease and the created one)", keys, want)
	}
	for _, key := range []string{"future#row", "kcl#worker#w1", "kcl#roster", "kcl#leader"} {
		if _, err := s.Get(ctx, key); !errors.Is(err, lease.ErrNotFound) || !errors.Is(err, ErrNotLease) {
			t.Errorf("Get(%q) = %v; want an error matching lease.ErrNotFound and ErrNotLease", key, err)
		}
	}
	// The KCL 2.x lease is worked like any other, and gains no entityType.
	l, err := s.Get(ctx, "shardId-000000000001")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Assign(ctx, l, "w1"); err != nil {
		t.Fatalf("Assign of the KCL 2.x lease: %v", err)
	}
	if _, ok := getRaw(t, client, s.Table(), l.Key)[attrEntityType]; ok {
		t.Error("Assign added an entityType to a KCL 2.x lease")
	}
}

// unprocessing passes calls to the real client, but its BatchGetItem leaves
// the last half of the keys unprocessed, for the first left calls (all of
// them when left is negative).
type unprocessing struct {
	API
	mu    sync.Mutex
	left  int
	calls int
}

func (u *unprocessing) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	u.mu.Lock()
	u.calls++
	cut := u.left != 0
	if u.left > 0 {
		u.left--
	}
	u.mu.Unlock()
	if !cut {
		return u.API.BatchGetItem(ctx, in, opts...)
	}
	var unprocessed map[string]types.KeysAndAttributes
	req := make(map[string]types.KeysAndAttributes, len(in.RequestItems))
	for table, ka := range in.RequestItems {
		half := len(ka.Keys) / 2
		kept, left := ka, ka
		kept.Keys, left.Keys = ka.Keys[:half], ka.Keys[half:]
		req[table] = kept
		unprocessed = map[string]types.KeysAndAttributes{table: left}
	}
	if len(req) == 0 || len(unprocessed) == 0 {
		return u.API.BatchGetItem(ctx, in, opts...)
	}
	for _, ka := range req {
		if len(ka.Keys) == 0 { // nothing left to process: DynamoDB was too busy
			return &dynamodb.BatchGetItemOutput{UnprocessedKeys: unprocessed}, nil
		}
	}
	cp := *in
	cp.RequestItems = req
	out, err := u.API.BatchGetItem(ctx, &cp, opts...)
	if err != nil {
		return nil, err
	}
	out.UnprocessedKeys = unprocessed
	return out, nil
}

func TestHeartbeatsRetriesUnprocessedKeys(t *testing.T) {
	s, client := newTestStore(t)
	ctx := t.Context()
	var ids []string
	for i := range 150 {
		id := fmt.Sprintf("w%03d", i)
		ids = append(ids, id)
		if _, err := s.Beat(ctx, id, lease.WorkerRunning, i); err != nil {
			t.Fatal(err)
		}
	}
	u := &unprocessing{API: client, left: 3}
	flaky, err := New(u, s.Table())
	if err != nil {
		t.Fatal(err)
	}
	hbs, err := flaky.Heartbeats(ctx, ids)
	if err != nil {
		t.Fatalf("Heartbeats: %v", err)
	}
	seen := map[string]bool{}
	for _, hb := range hbs {
		if seen[hb.WorkerID] {
			t.Errorf("heartbeat of %s returned twice", hb.WorkerID)
		}
		seen[hb.WorkerID] = true
	}
	if len(seen) != len(ids) {
		t.Errorf("Heartbeats returned %d workers; want %d", len(seen), len(ids))
	}
	// Page 1 (100 keys): 3 requests, each cut in half; then 1 whole.
	// Page 2 (50 keys): 1 request.
	if got := flaky.Stats().Calls.BatchGetItem; got != 5 || u.calls != 5 {
		t.Errorf("BatchGetItem requests = %d (fake saw %d); want 5", got, u.calls)
	}
	if flaky.Stats().ReadCapacityUnits <= 0 {
		t.Error("ReadCapacityUnits not counted")
	}

	stuck, err := New(&unprocessing{API: client, left: -1}, s.Table())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stuck.Heartbeats(ctx, ids[:10]); !errors.Is(err, lease.ErrThrottled) {
		t.Errorf("Heartbeats with keys never processed = %v; want lease.ErrThrottled", err)
	}
	if got := stuck.Stats().Calls.BatchGetItem; got != unprocessedAttempts {
		t.Errorf("BatchGetItem requests before giving up = %d; want %d", got, unprocessedAttempts)
	}
}

func TestHeartbeatsReportMalformedItemsWithTheGoodOnes(t *testing.T) {
	s, client := newTestStore(t)
	ctx := t.Context()
	if _, err := s.Beat(ctx, "good", lease.WorkerRunning, 1); err != nil {
		t.Fatal(err)
	}
	putRaw(t, client, s.Table(), map[string]types.AttributeValue{
		attrLeaseKey: avS("kcl#worker#bad"), attrEntityType: avS("KCL_FLEET_HEARTBEAT"),
		"workerId": avS("bad"), "counter": avN("1"), "state": avS("dancing"),
	})
	hbs, err := s.Heartbeats(ctx, []string{"good", "bad"})
	if !errors.Is(err, lease.ErrMalformed) {
		t.Errorf("Heartbeats error = %v; want one matching lease.ErrMalformed", err)
	}
	if len(hbs) != 1 || hbs[0].WorkerID != "good" {
		t.Errorf("Heartbeats = %+v; want only the good heartbeat", hbs)
	}
	if _, err := s.Beat(ctx, "bad", lease.WorkerRunning, 0); err != nil {
		t.Errorf("Beat over a malformed heartbeat: %v; want it rewritten", err)
	}
}

func TestFleetWritesNeverChangeAnItemOfAnotherKind(t *testing.T) {
	s, client := newTestStore(t)
	ctx := t.Context()
	// A lease whose key happens to be a fleet key (no shard id looks like
	// this; an operator could write one).
	lookalike := validItem()
	lookalike[attrLeaseKey] = avS("kcl#roster")
	putRaw(t, client, s.Table(), lookalike)
	before := getRaw(t, client, s.Table(), "kcl#roster")
	if err := s.Join(ctx, "w1"); !errors.Is(err, lease.ErrConflict) {
		t.Errorf("Join over a lease item = %v; want lease.ErrConflict", err)
	}
	if _, err := s.Roster(ctx); !errors.Is(err, lease.ErrMalformed) {
		t.Errorf("Roster of a lease item = %v; want lease.ErrMalformed", err)
	}
	if d := diffItems(getRaw(t, client, s.Table(), "kcl#roster"), before); len(d) > 0 {
		t.Errorf("the lease item changed: %s", strings.Join(d, "; "))
	}

	lookalike[attrLeaseKey] = avS("kcl#worker#w1")
	putRaw(t, client, s.Table(), lookalike)
	before = getRaw(t, client, s.Table(), "kcl#worker#w1")
	err := s.SetStandby(ctx, "w1", true)
	if !errors.Is(err, lease.ErrConflict) || errors.Is(err, lease.ErrNotFound) {
		t.Errorf("SetStandby over a lease item = %v; want lease.ErrConflict, not lease.ErrNotFound", err)
	}
	if d := diffItems(getRaw(t, client, s.Table(), "kcl#worker#w1"), before); len(d) > 0 {
		t.Errorf("the lease item changed: %s", strings.Join(d, "; "))
	}
	// A lease item with a counter attribute of the fenced value: only the
	// entityType condition keeps Fence off it.
	lookalike["counter"] = avN("1")
	putRaw(t, client, s.Table(), lookalike)
	before = getRaw(t, client, s.Table(), "kcl#worker#w1")
	err = s.Fence(ctx, "w1", 1)
	if !errors.Is(err, lease.ErrConflict) || errors.Is(err, lease.ErrNotFound) {
		t.Errorf("Fence over a lease item = %v; want lease.ErrConflict, not lease.ErrNotFound", err)
	}
	if d := diffItems(getRaw(t, client, s.Table(), "kcl#worker#w1"), before); len(d) > 0 {
		t.Errorf("the lease item changed: %s", strings.Join(d, "; "))
	}
}

func avBOOL(v bool) types.AttributeValue { return &types.AttributeValueMemberBOOL{Value: v} }

func TestDecodeHeartbeatStandby(t *testing.T) {
	item := func(standby types.AttributeValue) map[string]types.AttributeValue {
		it := map[string]types.AttributeValue{
			attrLeaseKey: avS("kcl#worker#w1"), attrEntityType: avS("KCL_FLEET_HEARTBEAT"),
			"workerId": avS("w1"), "counter": avN("4"), "state": avS("running"),
		}
		if standby != nil {
			it["standby"] = standby
		}
		return it
	}
	for _, tc := range []struct {
		name      string
		standby   types.AttributeValue
		want      bool
		malformed bool
	}{
		{"an item written before any SetStandby reads as false", nil, false, false},
		{"BOOL true reads as true", avBOOL(true), true, false},
		{"BOOL false reads as false", avBOOL(false), false, false},
		{"a string is malformed", avS("true"), false, true},
		{"a number is malformed", avN("1"), false, true},
		{"a nil BOOL is malformed", (*types.AttributeValueMemberBOOL)(nil), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hb, err := decodeHeartbeat(item(tc.standby))
			if tc.malformed {
				var ie *lease.ItemError
				if !errors.Is(err, lease.ErrMalformed) || !errors.As(err, &ie) || ie.Attribute != "standby" {
					t.Errorf("decodeHeartbeat = %+v, %v; want a lease.ErrMalformed *lease.ItemError naming standby", hb, err)
				}
				return
			}
			want := lease.Heartbeat{WorkerID: "w1", Counter: 4, State: lease.WorkerRunning, Standby: tc.want}
			if err != nil || hb != want {
				t.Errorf("decodeHeartbeat = %+v, %v; want %+v", hb, err, want)
			}
		})
	}
}

func TestDecodeHeartbeatFenced(t *testing.T) {
	item := func(fenced types.AttributeValue) map[string]types.AttributeValue {
		it := map[string]types.AttributeValue{
			attrLeaseKey: avS("kcl#worker#w1"), attrEntityType: avS("KCL_FLEET_HEARTBEAT"),
			"workerId": avS("w1"), "counter": avN("4"), "state": avS("running"),
		}
		if fenced != nil {
			it["fenced"] = fenced
		}
		return it
	}
	for _, tc := range []struct {
		name      string
		fenced    types.AttributeValue
		want      int64
		malformed bool
	}{
		{"an item never fenced reads as 0", nil, 0, false},
		{"a number reads as the counter fenced at", avN("3"), 3, false},
		{"a string is malformed", avS("3"), 0, true},
		{"a BOOL is malformed", avBOOL(true), 0, true},
		{"a fraction is malformed", avN("2.5"), 0, true},
		{"a negative number is malformed", avN("-1"), 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hb, err := decodeHeartbeat(item(tc.fenced))
			if tc.malformed {
				var ie *lease.ItemError
				if !errors.Is(err, lease.ErrMalformed) || !errors.As(err, &ie) || ie.Attribute != "fenced" {
					t.Errorf("decodeHeartbeat = %+v, %v; want a lease.ErrMalformed *lease.ItemError naming fenced", hb, err)
				}
				return
			}
			want := lease.Heartbeat{WorkerID: "w1", Counter: 4, State: lease.WorkerRunning, Fenced: tc.want}
			if err != nil || hb != want {
				t.Errorf("decodeHeartbeat = %+v, %v; want %+v", hb, err, want)
			}
		})
	}
}
