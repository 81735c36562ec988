package consumer_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/dynamolease"
	"github.com/kclgo/kcl/lease/memlease"
	"github.com/kclgo/kcl/testkit/fakekinesis"
	"github.com/kclgo/kcl/testkit/testenv"
)

// multiStreamLease is a lease of a KCL multi-stream application consuming a
// stream also named "orders", as in kcl3-items.json.
func multiStreamLease(shard string) lease.Lease {
	return lease.Lease{
		Key:        "123456789012:orders:1700000000:" + shard,
		StreamName: "123456789012:orders:1700000000",
		ShardID:    shard,
		Owner:      "w-0b1c4e7a-3f29-4d85-9c1e-6a2b8d0f5e13",
		Counter:    21736,
		Checkpoint: checkpoint.Latest,
	}
}

func TestRunRefusesAMultiStreamLeaseTableAndWritesNothing(t *testing.T) {
	ours := lease.Lease{Key: "shardId-000000000001", Checkpoint: checkpoint.TrimHorizon}
	keyOnly := multiStreamLease("shardId-000000000000")
	keyOnly.StreamName, keyOnly.ShardID = "", ""
	attrsOnly := multiStreamLease("shardId-000000000000")
	attrsOnly.Key = "shardId-000000000000"
	tests := []struct {
		name    string
		leases  []lease.Lease
		wantKey string
	}{
		{"a table of multi-stream leases", []lease.Lease{multiStreamLease("shardId-000000000000"), multiStreamLease("shardId-000000000001")}, "123456789012:orders:1700000000:shardId-000000000000"},
		{"one multi-stream lease among single-stream ones", []lease.Lease{ours, multiStreamLease("shardId-000000000001")}, "123456789012:orders:1700000000:shardId-000000000001"},
		{"a multi-stream key without the stream attributes", []lease.Lease{keyOnly}, keyOnly.Key},
		{"a shard-id key with the stream attributes", []lease.Lease{attrsOnly}, attrsOnly.Key},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := fakekinesis.New(fakekinesis.WithStream(streamName, 2))
				store := memlease.New()
				for _, l := range tt.leases {
					store.Put(l)
				}
				before := store.Leases()
				j := &journal{}
				w := newWorker(t, f, store, factory(j, store, nil), "w1")
				// Without the refusal, Run would consume until stopped.
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				defer cancel()
				err := w.Run(ctx)
				var me *consumer.MultiStreamTableError
				if !errors.Is(err, consumer.ErrMultiStreamTable) || !errors.As(err, &me) || me.Key != tt.wantKey {
					t.Errorf("Run = %v; want a *MultiStreamTableError naming %q, matching ErrMultiStreamTable", err, tt.wantKey)
				} else if !strings.Contains(err.Error(), tt.wantKey) {
					t.Errorf("error %q does not name the lease %q", err, tt.wantKey)
				}
				if after := store.Leases(); !reflect.DeepEqual(after, before) {
					t.Errorf("the table changed:\nbefore %+v\nafter  %+v", before, after)
				}
				if s := store.Stats(); s.Writes() != 0 {
					t.Errorf("Run made %d writes; want none", s.Writes())
				}
				if n := len(j.eventsOf("new")); n != 0 {
					t.Errorf("%d processors created; want none", n)
				}
				checkNoWorkerGoroutines(t)
			})
		})
	}
}

func TestTheDefaultLeaseDurationNeverTakesALeaseAJavaHolderStillCountsValid(t *testing.T) {
	// A Java KCL worker with the default failoverTimeMillis (10 s) renews
	// its lease every 10 s / 3 − 25 ms, until its renewals start failing
	// (throttling, a partition): it keeps processing until 10 s after its
	// last successful renewal. A kcl Worker with default options sharing
	// the table must not take the lease before then — and must take it
	// soon after.
	const (
		javaOwner    = "ip-10-0-0-12.ec2.internal:4f0c2a3e-0b7d-4d3e-9a55-3c1f5c1e2b7a"
		javaFailover = 10 * time.Second
		javaRenew    = javaFailover/3 - 25*time.Millisecond
	)
	for _, renewals := range []int{1, 4, 7} {
		t.Run(fmt.Sprintf("after %d renewals", renewals), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
				store := memlease.New()
				store.Put(lease.Lease{Key: "shardId-000000000000", Owner: javaOwner, Counter: 48213, Checkpoint: checkpoint.TrimHorizon})
				var mu sync.Mutex
				var lastRenew time.Time
				go func() {
					// The Java holder: a renewal is a counter-conditioned
					// write of counter+1 (DynamoDBLeaseRefresher.renewLease).
					for range renewals {
						time.Sleep(javaRenew)
						l, err := store.Get(context.Background(), "shardId-000000000000")
						if err != nil || l.Owner != javaOwner {
							return
						}
						if _, err := store.Take(context.Background(), l, javaOwner); err != nil {
							return
						}
						mu.Lock()
						lastRenew = time.Now()
						mu.Unlock()
					}
				}()
				hooks := &eventRecorder{}
				j := &journal{}
				w := newWorker(t, f, store, factory(j, store, nil), "kcl-1", consumer.WithHooks(hooks))
				r := start(t, w)
				waitFor(t, "the kcl Worker to take the lease", time.Duration(renewals+1)*javaRenew+javaFailover+5*time.Second, func() bool {
					return len(hooks.leaseEvents()) > 0
				})
				ev := hooks.leaseEvents()[0]
				mu.Lock()
				validUntil := lastRenew.Add(javaFailover)
				mu.Unlock()
				if ev.Kind != consumer.LeaseAcquired || !ev.Since.After(validUntil) {
					t.Errorf("kcl %v the lease with a take sent at %v; the Java holder counts it valid until %v",
						ev.Kind, ev.Since.Format("15:04:05.000"), validUntil.Format("15:04:05.000"))
				}
				if late := ev.Since.Sub(validUntil); late > 2*time.Second+100*time.Millisecond {
					t.Errorf("kcl took the lease %v after the Java holder's validity ended; want within a take interval", late)
				}
				if err := r.stop(); err != nil {
					t.Errorf("Run = %v", err)
				}
			})
		})
	}
}

// ddbItems reads the items of a DynamoDB JSON fixture file (keys starting
// with '_' are comments) whose _table starts with table.
func ddbItems(t *testing.T, file, table string) []map[string]types.AttributeValue {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Items []map[string]json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	var out []map[string]types.AttributeValue
	for _, raw := range f.Items {
		var tab string
		_ = json.Unmarshal(raw["_table"], &tab)
		if !strings.HasPrefix(tab, table) {
			continue
		}
		item := map[string]types.AttributeValue{}
		for k, v := range raw {
			if strings.HasPrefix(k, "_") {
				continue
			}
			av, err := ddbValue(v)
			if err != nil {
				t.Fatalf("%s: attribute %s: %v", file, k, err)
			}
			item[k] = av
		}
		out = append(out, item)
	}
	return out
}

func ddbValue(raw json.RawMessage) (types.AttributeValue, error) {
	var v map[string]json.RawMessage
	if err := json.Unmarshal(raw, &v); err != nil || len(v) != 1 {
		return nil, fmt.Errorf("not a DynamoDB JSON value: %s", raw)
	}
	for typ, x := range v {
		switch typ {
		case "S", "N", "B":
			var s string
			if err := json.Unmarshal(x, &s); err != nil {
				return nil, err
			}
			switch typ {
			case "S":
				return &types.AttributeValueMemberS{Value: s}, nil
			case "N":
				return &types.AttributeValueMemberN{Value: s}, nil
			}
			b, err := base64.StdEncoding.DecodeString(s)
			return &types.AttributeValueMemberB{Value: b}, err
		case "SS":
			var ss []string
			err := json.Unmarshal(x, &ss)
			return &types.AttributeValueMemberSS{Value: ss}, err
		case "L":
			var l []json.RawMessage
			if err := json.Unmarshal(x, &l); err != nil {
				return nil, err
			}
			out := &types.AttributeValueMemberL{Value: []types.AttributeValue{}}
			for _, e := range l {
				av, err := ddbValue(e)
				if err != nil {
					return nil, err
				}
				out.Value = append(out.Value, av)
			}
			return out, nil
		case "M":
			var m map[string]json.RawMessage
			if err := json.Unmarshal(x, &m); err != nil {
				return nil, err
			}
			out := &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}}
			for k, e := range m {
				av, err := ddbValue(e)
				if err != nil {
					return nil, err
				}
				out.Value[k] = av
			}
			return out, nil
		}
		return nil, fmt.Errorf("unsupported type %s", typ)
	}
	return nil, nil
}

// ddbTable creates a lease table on DynamoDB Local holding items, and returns
// a store over it and a function that scans the raw items, by key.
func ddbTable(t *testing.T, items []map[string]types.AttributeValue) (*dynamolease.Store, func() map[string]map[string]types.AttributeValue) {
	t.Helper()
	client := testenv.DynamoDB(t)
	table := testenv.UniqueName(t, "kcl-leases")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	store, err := dynamolease.New(client, table)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureTable(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, item := range items {
		if _, err := client.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	scan := func() map[string]map[string]types.AttributeValue {
		out, err := client.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]map[string]types.AttributeValue{}
		for _, item := range out.Items {
			m[item["leaseKey"].(*types.AttributeValueMemberS).Value] = item
		}
		return m
	}
	return store, scan
}

const kcl3Items = "../lease/dynamolease/testdata/kcl3-items.json"

func TestRunRefusesATableOfJavaMultiStreamLeasesOnDynamoDBLocal(t *testing.T) {
	// The multi-stream leases of kcl3-items.json, exactly as KCL 3.5.1
	// writes them, and the lease table's other rows.
	items := ddbItems(t, kcl3Items, "lease table")
	store, scan := ddbTable(t, items)
	before := scan()
	f := fakekinesis.New(fakekinesis.WithStream(streamName, 6))
	w, err := consumer.New(f, store, streamName, consumer.FactoryFunc(func(consumer.ShardInfo) (consumer.Processor, error) {
		return nil, errors.New("no processor may be created")
	}), consumer.WithWorkerID("w1"), consumer.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // without the refusal, Run would consume until stopped
	defer cancel()
	err = w.Run(ctx)
	var me *consumer.MultiStreamTableError
	if !errors.As(err, &me) || !errors.Is(err, consumer.ErrMultiStreamTable) {
		t.Errorf("Run = %v; want a *MultiStreamTableError matching ErrMultiStreamTable", err)
	} else if t.Logf("Run: %v", err); me.StreamName != "123456789012:orders:1700000000" || !strings.HasPrefix(me.Key, me.StreamName+":shardId-") {
		t.Errorf("error names lease %q of stream %q; want a lease of 123456789012:orders:1700000000", me.Key, me.StreamName)
	}
	if after := scan(); !reflect.DeepEqual(after, before) {
		t.Errorf("the table changed: %d items before, %d after", len(before), len(after))
	}
}

func TestKCL3RowsThatAreNotLeasesAreNeitherTakenNorRefused(t *testing.T) {
	// A single-stream table shared with a KCL 3.5 fleet holds, besides the
	// leases, its leader lock, worker metrics, migration state and stream
	// metadata (entityType LEADER, WORKER_METRIC_STATS,
	// CLIENT_VERSION_MIGRATION, TABLE_MIGRATION, STREAM). The Worker runs,
	// takes the leases, and leaves those rows untouched.
	var others []map[string]types.AttributeValue
	for _, item := range ddbItems(t, kcl3Items, "lease table") {
		if et, ok := item["entityType"].(*types.AttributeValueMemberS); ok && et.Value == "LEASE" {
			continue // the multi-stream leases
		}
		others = append(others, item)
	}
	if len(others) < 5 {
		t.Fatalf("kcl3-items.json has %d non-lease rows for the lease table; want at least 5", len(others))
	}
	store, scan := ddbTable(t, others)
	before := scan()
	f := fakekinesis.New(fakekinesis.WithStream(streamName, 2))
	j := &journal{}
	w, err := consumer.New(f, store, streamName, factory(j, leaseListerOf(store), nil),
		consumer.WithWorkerID("w1"), consumer.WithLogger(testLogger(t)), consumer.WithInitialPosition(checkpoint.TrimHorizon))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for len(j.eventsOf("new")) < 2 {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the Worker did not process both shards: %v", <-done)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	after := scan()
	for key, item := range before {
		if !reflect.DeepEqual(after[key], item) {
			t.Errorf("row %q changed:\nbefore %v\nafter  %v", key, item, after[key])
		}
	}
	if len(after) != len(before)+2 {
		t.Errorf("%d items after the run; want the %d rows and 2 leases", len(after), len(before))
	}
}

// leaseListerOf adapts a store to the factory's parent check.
type storeLister struct{ s lease.Store }

func leaseListerOf(s lease.Store) storeLister { return storeLister{s} }

func (l storeLister) Leases() []lease.Lease {
	ls, _ := l.s.List(context.Background())
	return ls
}
