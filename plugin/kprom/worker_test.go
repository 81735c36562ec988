package kprom_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap/zaptest"

	"github.com/kclgo/kcl/aggregate"
	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease/dynamolease"
	"github.com/kclgo/kcl/plugin/kprom"
	"github.com/kclgo/kcl/testkit/testenv"
)

// TestAWorkerRunOnTheEmulatorsIsScrapedAsItRan runs a Worker with the
// plugin against kinesis-mock and DynamoDB Local, scrapes its /metrics over
// HTTP, parses the exposition with the Prometheus text parser and checks
// the values against what the run did.
func TestAWorkerRunOnTheEmulatorsIsScrapedAsItRan(t *testing.T) {
	kc, ddb := testenv.Kinesis(t), testenv.DynamoDB(t)
	ctx := t.Context()
	streamName := testenv.CreateStream(t, kc, 4)
	table := testenv.UniqueName(t, "kprom")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = ddb.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	store, err := dynamolease.New(ddb, table)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureTable(ctx); err != nil {
		t.Fatal(err)
	}

	// 160 plain records and 8 KPL aggregates of 5: 200 user records.
	var entries []types.PutRecordsRequestEntry
	wantBytes := 0
	for i := range 160 {
		data := fmt.Appendf(nil, "record-%03d", i)
		wantBytes += len(data)
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("k%d", i)), Data: data})
	}
	for a := range 8 {
		var urs []aggregate.UserRecord
		for i := range 5 {
			data := fmt.Appendf(nil, "agg-%d-%d", a, i)
			wantBytes += len(data)
			// One partition key per aggregate: every user record hashes
			// into the aggregate's shard.
			urs = append(urs, aggregate.UserRecord{PartitionKey: fmt.Sprintf("a%d", a), Data: data})
		}
		data, err := aggregate.Marshal(urs)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("a%d", a)), Data: data})
	}
	out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(streamName), Records: entries})
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("PutRecords: %v (%d failed)", err, aws.ToInt32(out.FailedRecordCount))
	}
	const want = 200

	m := kprom.New(kprom.WithLeaseStore(store))
	srv := httptest.NewServer(handler(t, m))
	defer srv.Close()
	var processed, processedBytes atomic.Int64
	w, err := consumer.New(kc, store, streamName,
		consumer.FactoryFunc(func(consumer.ShardInfo) (consumer.Processor, error) {
			return consumer.ProcessorFunc(func(_ context.Context, b *consumer.Batch) error {
				for _, r := range b.Records {
					processedBytes.Add(int64(len(r.Data)))
				}
				processed.Add(int64(len(b.Records)))
				return nil
			}), nil
		}),
		consumer.WithWorkerID("kprom-w1"),
		consumer.WithLogger(zaptest.NewLogger(t)),
		consumer.WithInitialPosition(checkpoint.TrimHorizon),
		consumer.WithIdleTime(200*time.Millisecond),
		consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()),
		consumer.WithHooks(m))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	// The BatchHook runs after ProcessRecords returns: wait until the
	// scrape agrees, or time out and report what it says.
	var f families
	var text string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		f, text = scrapeURL(t, srv.URL+"/metrics")
		counted, held := f.sum("kcl_records_processed_total", nil), f.sum("kcl_leases_held", nil)
		if processed.Load() == want && counted == want && held == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute: records processed %d, counted %v, leases held %v; want %d and 4 leases", processed.Load(), counted, held, want)
		}
	}

	if got := f.sum("kcl_bytes_processed_total", nil); got != float64(processedBytes.Load()) || got != float64(wantBytes) {
		t.Errorf("bytes counted %v, processed %d, put %d", got, processedBytes.Load(), wantBytes)
	}
	if got := f.sum("kcl_kpl_aggregates_total", nil); got != 8 {
		t.Errorf("KPL aggregates counted %v, want 8", got)
	}
	leases, err := store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	owned := 0
	for _, l := range leases {
		if l.Owner == w.ID() {
			owned++
		}
	}
	if got := f.sum("kcl_leases_held", map[string]string{"worker": w.ID()}); got != float64(owned) || owned != w.Health().Leases {
		t.Errorf("leases held: %v in the exposition, %d owned in the table, %d in Health", got, owned, w.Health().Leases)
	}
	perShard := f.series("kcl_records_processed_total")
	if len(perShard) != 4 {
		t.Errorf("records series %v, want one per shard", perShard)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
	}{
		{"kcl_kinesis_calls_total", map[string]string{"op": "GetRecords"}},
		{"kcl_kinesis_calls_total", map[string]string{"op": "GetShardIterator"}},
		{"kcl_checkpoints_total", nil},
		{"kcl_shard_syncs_total", nil},
		{"kcl_leases_acquired_total", nil},
		{"kcl_dynamodb_calls_total", map[string]string{"operation": "UpdateItem"}},
		{"kcl_dynamodb_consumed_capacity_total", map[string]string{"table": table, "operation": "UpdateItem"}},
	} {
		if f.sum(c.name, c.labels) <= 0 {
			t.Errorf("%s%v is 0 after the run", c.name, c.labels)
		}
	}
	if got := f.sum("kcl_checkpoint_failures_total", nil) + f.sum("kcl_kinesis_errors_total", nil) + f.sum("kcl_processor_errors_total", nil); got != 0 {
		t.Errorf("%v failures counted in a run without faults", got)
	}
	if testing.Verbose() { // the README's scrape excerpt
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, "kcl_") && !strings.Contains(line, "_bucket{") {
				t.Log(line)
			}
		}
	}
	// The run ends caught up: every shard is at the tip.
	if got := f.sum("kcl_max_behind_latest_seconds", nil); got != 0 {
		t.Errorf("kcl_max_behind_latest_seconds = %v after the stream was read to its tip, want 0", got)
	}
}
