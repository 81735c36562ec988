package dynamolease

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/leasetest"
	"github.com/kclgo/kcl/testkit/testenv"
)

// These tests run against DynamoDB Local (see package testenv for how to
// start it). Each creates its own uniquely named table and deletes it in
// t.Cleanup.

// deleteTableOnCleanup deletes table when the test ends.
func deleteTableOnCleanup(t testing.TB, client *dynamodb.Client, table string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
		var notFound *types.ResourceNotFoundException
		if err != nil && !errors.As(err, &notFound) {
			t.Errorf("delete table %s: %v", table, err)
		}
	})
}

// newTestStore returns a Store on a new table, created with EnsureTable.
func newTestStore(t testing.TB, opts ...Option) (*Store, *dynamodb.Client) {
	t.Helper()
	client := testenv.DynamoDB(t)
	table := testenv.UniqueName(t, "lease")
	s, err := New(client, table, opts...)
	if err != nil {
		t.Fatal(err)
	}
	deleteTableOnCleanup(t, client, table)
	if err := s.EnsureTable(t.Context()); err != nil {
		t.Fatalf("EnsureTable: %v", err)
	}
	return s, client
}

func TestConformance(t *testing.T) {
	// A page size of 100 makes List read several pages of the suite's
	// 250-lease table.
	leasetest.Run(t, func(t *testing.T) lease.Store {
		s, _ := newTestStore(t, WithPageSize(100))
		return s
	})
}

func TestEnsureTableLetsAFleetStartOnAFreshTable(t *testing.T) {
	const workers = 10
	table := testenv.UniqueName(t, "fleet")
	stores := make([]*Store, workers)
	for i := range stores {
		client := testenv.DynamoDB(t) // a client per worker, as on separate hosts
		s, err := New(client, table)
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
		if i == 0 {
			deleteTableOnCleanup(t, client, table)
		}
	}
	start := make(chan struct{})
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			<-start
			errs[i] = s.EnsureTable(t.Context())
		})
	}
	close(start)
	wg.Wait()
	created := 0
	for i, err := range errs {
		if err != nil {
			t.Errorf("worker %d: EnsureTable: %v", i, err)
		}
		created += int(stores[i].Stats().Calls.CreateTable)
	}
	t.Logf("%d of %d workers called CreateTable", created, workers)
	// Every worker can use the table and its owner index at once.
	l := lease.Lease{Key: "shardId-000000000000", Owner: "worker-a", Checkpoint: checkpoint.TrimHorizon}
	if err := stores[0].Create(t.Context(), l); err != nil {
		t.Fatal(err)
	}
	for i, s := range stores {
		if _, err := s.Get(t.Context(), l.Key); err != nil {
			t.Errorf("worker %d: Get: %v", i, err)
		}
		if _, err := s.ListOwned(t.Context(), "worker-a"); err != nil {
			t.Errorf("worker %d: ListOwned: %v", i, err)
		}
	}
}

func TestEnsureTableAcceptsAKCL2TableWithoutOwnerIndex(t *testing.T) {
	client := testenv.DynamoDB(t)
	table := testenv.UniqueName(t, "kcl2")
	testenv.CreateTable(t, client, table) // leaseKey only, as KCL 2.x creates it
	s, err := New(client, table)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureTable(t.Context()); err != nil {
		t.Fatalf("EnsureTable: %v", err)
	}
	if s.Stats().Calls.CreateTable != 0 {
		t.Error("EnsureTable tried to create an existing table")
	}
	if _, err := s.ListOwned(t.Context(), "worker-a"); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("ListOwned = %v; want an error matching errors.ErrUnsupported", err)
	}
	if _, err := s.List(t.Context()); err != nil {
		t.Errorf("List: %v", err)
	}
}

func TestListOwnedIsUnsupportedWithoutTheIndex(t *testing.T) {
	s, _ := newTestStore(t, WithOwnerIndex(false))
	if _, err := s.ListOwned(t.Context(), "worker-a"); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("ListOwned = %v; want an error matching errors.ErrUnsupported", err)
	}
	// A Store that did not run EnsureTable finds out by itself.
	fresh, err := New(s.client, s.table)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.ListOwned(t.Context(), "worker-a"); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("ListOwned without EnsureTable = %v; want an error matching errors.ErrUnsupported", err)
	}
}

func TestEnsureTableRefusesATableThatIsNotALeaseTable(t *testing.T) {
	client := testenv.DynamoDB(t)
	table := testenv.UniqueName(t, "foreign")
	_, err := client.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
	deleteTableOnCleanup(t, client, table)
	s, err := New(client, table)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureTable(t.Context()); err == nil || !strings.Contains(err.Error(), "not a KCL lease table") {
		t.Errorf("EnsureTable = %v; want an error saying the table is not a lease table", err)
	}
}

func TestEnsureTableCreatesTheTableAsConfigured(t *testing.T) {
	s, client := newTestStore(t, WithProvisioned(7, 3), WithTags(map[string]string{"team": "streams"}))
	out, err := client.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(s.Table())})
	if err != nil {
		t.Fatal(err)
	}
	d := out.Table
	if pt := d.ProvisionedThroughput; pt == nil || aws.ToInt64(pt.ReadCapacityUnits) != 7 || aws.ToInt64(pt.WriteCapacityUnits) != 3 {
		t.Errorf("ProvisionedThroughput = %+v; want 7 RCU, 3 WCU", d.ProvisionedThroughput)
	}
	if reason := checkKeySchema(d); reason != "" {
		t.Error(reason)
	}
	if len(d.GlobalSecondaryIndexes) != 1 {
		t.Fatalf("GlobalSecondaryIndexes = %+v; want the owner index", d.GlobalSecondaryIndexes)
	}
	gsi := d.GlobalSecondaryIndexes[0]
	if aws.ToString(gsi.IndexName) != OwnerIndexName || gsi.Projection == nil || gsi.Projection.ProjectionType != types.ProjectionTypeKeysOnly ||
		describeKeySchema(gsi.KeySchema) != "[leaseOwner:HASH leaseKey:RANGE]" {
		t.Errorf("owner index = %s %+v %s; want KCL's", aws.ToString(gsi.IndexName), gsi.Projection, describeKeySchema(gsi.KeySchema))
	}
	tags, err := client.ListTagsOfResource(t.Context(), &dynamodb.ListTagsOfResourceInput{ResourceArn: d.TableArn})
	if err != nil {
		t.Logf("ListTagsOfResource: %v (not checked)", err)
	} else if len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "team" {
		t.Errorf("tags = %+v; want team=streams", tags.Tags)
	}
}

// putRaw writes item as it is, the way a Java KCL worker would.
func putRaw(t testing.TB, client *dynamodb.Client, table string, item map[string]types.AttributeValue) {
	t.Helper()
	if _, err := client.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatalf("PutItem: %v", err)
	}
}

func getRaw(t testing.TB, client *dynamodb.Client, table, key string) map[string]types.AttributeValue {
	t.Helper()
	out, err := client.GetItem(t.Context(), &dynamodb.GetItemInput{
		TableName: aws.String(table), Key: map[string]types.AttributeValue{attrLeaseKey: avS(key)}, ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("GetItem: %v", err)
	}
	return out.Item
}

func TestItemsWrittenByJavaKCLAreReadAndUpdatedInPlace(t *testing.T) {
	s, client := newTestStore(t)
	want := kclLeases(t)
	fixtures := loadFixtures(t)
	future := &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"since": avS("KCL 9")}}
	for _, f := range fixtures {
		item := maps.Clone(f.item)
		item["someFutureKcl"] = future
		putRaw(t, client, s.Table(), item)
	}

	leases, err := s.List(t.Context())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(leases) != len(want) {
		t.Fatalf("List returned %d leases; want %d", len(leases), len(want))
	}
	for _, l := range leases {
		if d := diffLease(l, want[l.Key]); d != "" {
			t.Errorf("List: %s", d)
		}
		got, err := s.Get(t.Context(), l.Key)
		if err != nil {
			t.Fatalf("Get(%q): %v", l.Key, err)
		}
		if d := diffLease(got, want[l.Key]); d != "" {
			t.Errorf("Get: %s", d)
		}
	}

	// Work each owned lease as its owner would: renew, then checkpoint (which
	// completes the handoff of shardId-000000000005).
	for _, f := range fixtures {
		l := want[f.item[attrLeaseKey].(*types.AttributeValueMemberS).Value]
		if l.Owner == "" {
			continue
		}
		renewed, err := s.Renew(t.Context(), l)
		if err != nil {
			t.Fatalf("Renew(%q): %v", l.Key, err)
		}
		next, err := checkpoint.At("49654123456789012345678901234567890123456789012345679999", 2)
		if err != nil {
			t.Fatal(err)
		}
		done, err := s.Checkpoint(t.Context(), renewed, lease.CheckpointUpdate{Checkpoint: next})
		if err != nil {
			t.Fatalf("Checkpoint(%q): %v", l.Key, err)
		}
		if done.Counter != l.Counter+2 || done.Checkpoint != next || done.CheckpointOwner != "" || !done.PendingCheckpoint.IsZero() {
			t.Errorf("after Renew and Checkpoint of %q: %+v", l.Key, done)
		}
		// The stored item is the lease in KCL's shape, and keeps the
		// attribute this library does not know; updates add no entityType.
		wantItem := MarshalItem(done)
		wantItem["someFutureKcl"] = future
		if _, ok := f.item[attrEntityType]; !ok {
			delete(wantItem, attrEntityType)
		}
		if d := diffItems(getRaw(t, client, s.Table(), l.Key), wantItem); len(d) > 0 {
			t.Errorf("stored item %q after Renew and Checkpoint:\n\t%s", l.Key, strings.Join(d, "\n\t"))
		}
	}
}

// diffLease describes how got differs from want, ignoring the order of the
// shard-id sets; "" if it does not.
func diffLease(got, want lease.Lease) string {
	g, w := MarshalItem(got), MarshalItem(want)
	if d := diffItems(g, w); len(d) > 0 {
		return fmt.Sprintf("lease %q differs:\n\t%s", want.Key, strings.Join(d, "\n\t"))
	}
	return ""
}

func TestMalformedItemsAreReportedAndNeverOverwritten(t *testing.T) {
	s, client := newTestStore(t)
	good := lease.Lease{Key: "shardId-000000000000", Checkpoint: checkpoint.TrimHorizon}
	if err := s.Create(t.Context(), good); err != nil {
		t.Fatal(err)
	}
	badCounter := validItem()
	badCounter[attrLeaseKey] = avS("shardId-000000000001")
	badCounter[attrLeaseCounter] = avS("12") // a string, not a number
	putRaw(t, client, s.Table(), badCounter)
	badCheckpoint := validItem()
	badCheckpoint[attrLeaseKey] = avS("shardId-000000000002")
	badCheckpoint[attrCheckpoint] = avS("SOMEWHERE")
	putRaw(t, client, s.Table(), badCheckpoint)
	metrics := map[string]types.AttributeValue{attrLeaseKey: avS("worker-a"), attrEntityType: avS("WORKER_METRICS")}
	putRaw(t, client, s.Table(), metrics)

	leases, err := s.List(t.Context())
	if len(leases) != 1 || leases[0].Key != good.Key {
		t.Errorf("List returned %+v; want only the well-formed lease", leases)
	}
	var me *lease.MalformedError
	if !errors.As(err, &me) || !errors.Is(err, lease.ErrMalformed) {
		t.Fatalf("List error = %v; want a *lease.MalformedError", err)
	}
	var reported []string
	for _, ie := range me.Items {
		reported = append(reported, ie.Key+"/"+ie.Attribute)
	}
	if want := "shardId-000000000001/leaseCounter shardId-000000000002/checkpoint"; strings.Join(reported, " ") != want {
		t.Errorf("MalformedError names %q; want %q", reported, want)
	}

	var ie *lease.ItemError
	if _, err := s.Get(t.Context(), "shardId-000000000001"); !errors.As(err, &ie) || ie.Attribute != attrLeaseCounter {
		t.Errorf("Get of the malformed item = %v; want a *lease.ItemError naming leaseCounter", err)
	}
	if _, err := s.Get(t.Context(), "worker-a"); !errors.Is(err, lease.ErrNotFound) || !errors.Is(err, ErrNotLease) {
		t.Errorf("Get of a worker metrics row = %v; want lease.ErrNotFound and ErrNotLease", err)
	}
	for _, key := range []string{"shardId-000000000001", "worker-a"} {
		err := s.Create(t.Context(), lease.Lease{Key: key, Checkpoint: checkpoint.TrimHorizon})
		if !errors.Is(err, lease.ErrAlreadyExists) {
			t.Errorf("Create(%q) over a malformed item = %v; want lease.ErrAlreadyExists", key, err)
		}
	}
	if d := diffItems(getRaw(t, client, s.Table(), "shardId-000000000001"), badCounter); len(d) > 0 {
		t.Errorf("the malformed item changed:\n\t%s", strings.Join(d, "\n\t"))
	}
	if d := diffItems(getRaw(t, client, s.Table(), "worker-a"), metrics); len(d) > 0 {
		t.Errorf("the worker metrics row changed:\n\t%s", strings.Join(d, "\n\t"))
	}
}

// lostResponses is an HTTP client that, while armed, forwards the next
// UpdateItem request to DynamoDB Local but replaces its response by a 500
// error, so that the SDK retries a write that was applied.
type lostResponses struct {
	next  aws.HTTPClient
	armed atomic.Bool
}

func (c *lostResponses) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.next.Do(req)
	if err != nil || req.Header.Get("X-Amz-Target") != "DynamoDB_20120810.UpdateItem" || !c.armed.CompareAndSwap(true, false) {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return &http.Response{
		StatusCode: http.StatusInternalServerError,
		Header: http.Header{
			"Content-Type":     {"application/x-amz-json-1.0"},
			"X-Amzn-Errortype": {"InternalServerError"},
		},
		Body:    io.NopCloser(strings.NewReader(`{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected: response lost"}`)),
		Request: req,
	}, nil
}

func TestWritesWhoseResponseWasLostSucceed(t *testing.T) {
	cfg := testenv.AWSConfig(t)
	faults := &lostResponses{next: cfg.HTTPClient}
	cfg.HTTPClient = faults
	client := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(testenv.DynamoDBEndpoint(t)) })
	table := testenv.UniqueName(t, "spurious")
	s, err := New(client, table)
	if err != nil {
		t.Fatal(err)
	}
	deleteTableOnCleanup(t, client, table)
	if err := s.EnsureTable(t.Context()); err != nil {
		t.Fatal(err)
	}
	l := lease.Lease{Key: "shardId-000000000000", Owner: "worker-a", Counter: 10, Checkpoint: checkpoint.TrimHorizon}
	if err := s.Create(t.Context(), l); err != nil {
		t.Fatal(err)
	}

	faults.armed.Store(true)
	renewed, err := s.Renew(t.Context(), l)
	if err != nil {
		t.Fatalf("Renew whose first response was lost: %v; want success (the first attempt was applied)", err)
	}
	if renewed.Counter != 11 || renewed.Owner != "worker-a" {
		t.Errorf("Renew = %+v; want counter 11", renewed)
	}
	if st := s.Stats(); st.ConditionalCheckFailures != 1 {
		t.Errorf("Stats = %+v; want the retry's condition failure counted", st)
	}

	faults.armed.Store(true)
	u := lease.CheckpointUpdate{Checkpoint: checkpoint.ShardEnd, ChildShardIDs: []string{"shardId-000000000001"}}
	done, err := s.Checkpoint(t.Context(), renewed, u)
	if err != nil {
		t.Fatalf("Checkpoint whose first response was lost: %v; want success", err)
	}
	if done.Counter != 12 || done.Checkpoint != checkpoint.ShardEnd {
		t.Errorf("Checkpoint = %+v", done)
	}

	// Without a retry, the same stored state is a genuine conflict: a stale
	// counter must not pass for a lost response.
	if _, err := s.Renew(t.Context(), renewed); !errors.Is(err, lease.ErrLeaseLost) {
		t.Errorf("Renew with a stale counter = %v; want lease.ErrLeaseLost", err)
	}
}

func TestStatsMeasureCapacityPerOperation(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := t.Context()
	delta := func(what string, f func()) Stats {
		before := s.Stats()
		f()
		after := s.Stats()
		d := Stats{
			ReadCapacityUnits:  after.ReadCapacityUnits - before.ReadCapacityUnits,
			WriteCapacityUnits: after.WriteCapacityUnits - before.WriteCapacityUnits,
		}
		t.Logf("%-32s %6.1f RCU %6.1f WCU", what, d.ReadCapacityUnits, d.WriteCapacityUnits)
		return d
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	const n = 100
	var held lease.Lease
	delta(fmt.Sprintf("Create × %d", n), func() {
		for i := range n {
			l := lease.Lease{Key: fmt.Sprintf("shardId-%012d", i), Checkpoint: mustAt(t, "49654123456789012345678901234567890123456789012345678918", 0),
				HashRange: mustRange(t, "0", "340282366920938463463374607431768211455"), ParentShardIDs: []string{"shardId-000000000999"}}
			must(s.Create(ctx, l))
		}
	})
	if d := delta("Get", func() { var err error; held, err = s.Get(ctx, "shardId-000000000000"); must(err) }); d.ReadCapacityUnits != 1 {
		t.Errorf("a consistent Get of a lease consumed %v RCU; want 1", d.ReadCapacityUnits)
	}
	delta("Take (owner changes: index write)", func() { var err error; held, err = s.Take(ctx, held, "worker-a"); must(err) })
	if d := delta("Renew", func() { var err error; held, err = s.Renew(ctx, held); must(err) }); d.WriteCapacityUnits != 1 {
		t.Errorf("Renew consumed %v WCU; want 1", d.WriteCapacityUnits)
	}
	if d := delta("Checkpoint", func() {
		var err error
		held, err = s.Checkpoint(ctx, held, lease.CheckpointUpdate{Checkpoint: mustAt(t, "49654123456789012345678901234567890123456789012345678919", 3)})
		must(err)
	}); d.WriteCapacityUnits != 1 {
		t.Errorf("Checkpoint consumed %v WCU; want 1", d.WriteCapacityUnits)
	}
	delta("Release (owner changes: index write)", func() { var err error; held, err = s.Release(ctx, held); must(err) })
	delta(fmt.Sprintf("List of %d", n), func() { _, err := s.List(ctx); must(err) })
	delta("ListOwned", func() { _, err := s.ListOwned(ctx, "worker-a"); must(err) })
	delta("Delete", func() { must(s.Delete(ctx, held)) })
	st := s.Stats()
	t.Logf("totals: %+v", st)
	c := st.Capacity
	if r := c.GetItem + c.Scan + c.Query + c.BatchGetItem; r != st.ReadCapacityUnits {
		t.Errorf("read capacity by operation sums to %v, the total is %v", r, st.ReadCapacityUnits)
	}
	if w := c.PutItem + c.UpdateItem + c.DeleteItem; w != st.WriteCapacityUnits {
		t.Errorf("write capacity by operation sums to %v, the total is %v", w, st.WriteCapacityUnits)
	}
	if c.PutItem < n || c.UpdateItem < 3 || c.GetItem < 1 || c.Scan <= 0 || c.DeleteItem < 1 {
		t.Errorf("capacity by operation %+v: want the Creates under PutItem, Take/Renew/Checkpoint/Release under UpdateItem, and the Get, List and Delete", c)
	}
}

func TestFleetConformance(t *testing.T) {
	leasetest.RunFleet(t, func(t *testing.T) leasetest.FleetStore {
		s, _ := newTestStore(t, WithPageSize(100))
		return s
	})
}
