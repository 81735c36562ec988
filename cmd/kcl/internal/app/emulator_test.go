package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap/zaptest"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease/dynamolease"
	"github.com/kclgo/kcl/testkit/testenv"
)

// putRecords writes n records to stream, spread over its shards.
func putRecords(t *testing.T, kc *kinesis.Client, stream string, n int) {
	t.Helper()
	for i := range n {
		_, err := kc.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String(stream),
			PartitionKey: aws.String(fmt.Sprintf("key-%d", i)), Data: []byte(fmt.Sprintf("record %d", i))})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// runWorker runs a kcl Worker on stream with the lease table app until the
// test ends or stop is called, and returns it with stop.
func runWorker(t *testing.T, kc *kinesis.Client, ddb *dynamodb.Client, stream, app, id string) (stop func()) {
	return runCountingWorker(t, kc, ddb, stream, app, id, nil)
}

// runCountingWorker is runWorker with a processor that adds the number of
// records it is given to delivered.
func runCountingWorker(t *testing.T, kc *kinesis.Client, ddb *dynamodb.Client, stream, app, id string, delivered *atomic.Int64) (stop func()) {
	t.Helper()
	store, err := dynamolease.New(ddb, app)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureTable(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = ddb.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(app)})
	})
	w, err := consumer.New(kc, store, stream,
		consumer.FactoryFunc(func(consumer.ShardInfo) (consumer.Processor, error) {
			return consumer.ProcessorFunc(func(_ context.Context, b *consumer.Batch) error {
				if delivered != nil {
					delivered.Add(int64(len(b.Records)))
				}
				return nil
			}), nil
		}),
		consumer.WithWorkerID(id),
		consumer.WithInitialPosition(checkpoint.TrimHorizon),
		consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()),
		consumer.WithLeaseDuration(3*time.Second),
		consumer.WithTakeInterval(200*time.Millisecond),
		consumer.WithIdleTime(200*time.Millisecond),
		consumer.WithLogger(zaptest.NewLogger(t)),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := w.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("worker: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

func TestDescribeTableWrittenByWorkers(t *testing.T) {
	testenv.Require(t)
	kc, ddb := testenv.Kinesis(t), testenv.DynamoDB(t)
	stream := testenv.CreateStream(t, kc, 2)
	app := testenv.UniqueName(t, "app")
	putRecords(t, kc, stream, 20)
	stop := runWorker(t, kc, ddb, stream, app, "worker-1")

	tbl := openEventually(t, ddb, app)
	testenv.Eventually(t, 60*time.Second, 200*time.Millisecond, func() bool {
		leases, err := tbl.Leases(t.Context())
		if err != nil || len(leases) != 2 {
			return false
		}
		for _, l := range leases {
			if !l.Checkpoint.IsSequence() || l.Owner != "worker-1" {
				return false
			}
		}
		return true
	}, "both leases held by worker-1 and checkpointed")

	obs := NewObserver()
	if _, err := Describe(t.Context(), tbl, kc, stream, obs, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	var v View
	testenv.Eventually(t, 10*time.Second, 300*time.Millisecond, func() bool {
		var err error
		v, err = Describe(t.Context(), tbl, kc, stream, obs, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range v.Rows {
			if r.State != Active {
				return false
			}
		}
		return true
	}, "every lease observed renewing")
	for _, r := range v.Rows {
		if r.Owner != "worker-1" || !r.Lag.Known || r.Lag.Behind != 0 || !r.Lag.HasAge || r.Lag.Err != "" {
			t.Errorf("row %+v: want owned by worker-1, caught up, with the checkpoint's age", r)
		}
	}
	if len(v.Workers) != 1 || v.Workers[0].ID != "worker-1" || v.Workers[0].Leases != 2 {
		t.Errorf("workers %+v, want worker-1 with 2 leases", v.Workers)
	}
	if len(v.Problems) != 0 {
		t.Errorf("problems %+v, want none", v.Problems)
	}

	// More records: the lag is measured from the checkpoint, which the
	// stopped worker no longer moves.
	stop()
	putRecords(t, kc, stream, 10)
	v, err := Describe(t.Context(), tbl, kc, stream, obs, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range v.Rows {
		if r.State != Unowned || r.Owner != "" {
			t.Errorf("after a graceful stop: row %s is %s owned by %q, want unowned", r.Shard, r.State, r.Owner)
		}
	}
}

func openEventually(t *testing.T, ddb *dynamodb.Client, app string) *Table {
	t.Helper()
	var tbl *Table
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, func() bool {
		var err error
		tbl, err = Open(t.Context(), ddb, app)
		return err == nil
	}, "lease table %s", app)
	return tbl
}

func TestDescribeJavaFixturesOnDynamoDBLocal(t *testing.T) {
	testenv.Require(t)
	ddb := testenv.DynamoDB(t)
	for _, file := range []string{"kcl-lease-items.json", "kcl3-items.json"} {
		t.Run(file, func(t *testing.T) {
			app := testenv.UniqueName(t, "java")
			testenv.CreateTable(t, ddb, app)
			items := fixtureItems(t, file)
			for _, item := range items {
				if _, err := ddb.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(app), Item: item}); err != nil {
					t.Fatal(err)
				}
			}
			tbl, err := Open(t.Context(), ddb, app)
			if err != nil {
				t.Fatal(err)
			}
			v, err := Describe(t.Context(), tbl, nil, "", NewObserver(), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			want := decodeFixture(t, file)
			if len(v.Rows) != len(want) {
				t.Fatalf("%d rows, want the %d leases of %s (coordination rows skipped)", len(v.Rows), len(want), file)
			}
			for _, r := range v.Rows {
				if r.Owner != "" && r.State != Owned && r.State != Finished && r.State != Waiting {
					t.Errorf("%s: state %s on a first look, want owned (liveness unknown)", r.Key, r.State)
				}
			}
		})
	}
}

func TestOpenRefusesWhatIsNotALeaseTable(t *testing.T) {
	testenv.Require(t)
	ddb := testenv.DynamoDB(t)
	if _, err := Open(t.Context(), ddb, testenv.UniqueName(t, "none")); !errors.Is(err, ErrNoApp) {
		t.Errorf("unknown table: %v, want ErrNoApp", err)
	}
	name := testenv.UniqueName(t, "other")
	_, err := ddb.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = ddb.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	if _, err := Open(t.Context(), ddb, name); !errors.Is(err, ErrNotLeaseTable) {
		t.Errorf("table keyed by id: %v, want ErrNotLeaseTable", err)
	}
	// A table keyed by leaseKey whose items are not leases.
	odd := testenv.UniqueName(t, "odd")
	testenv.CreateTable(t, ddb, odd)
	if _, err := ddb.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(odd),
		Item: map[string]ddbtypes.AttributeValue{"leaseKey": &ddbtypes.AttributeValueMemberS{Value: "x"}}}); err != nil {
		t.Fatal(err)
	}
	tbl, err := Open(t.Context(), ddb, odd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Leases(t.Context()); !errors.Is(err, ErrNotLeaseTable) {
		t.Errorf("leaseKey table of non-leases: %v, want ErrNotLeaseTable", err)
	}
}
