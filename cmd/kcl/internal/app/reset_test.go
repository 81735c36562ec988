package app

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/dynamolease"
	"github.com/kclgo/kcl/testkit/testenv"
)

func TestParseTarget(t *testing.T) {
	seq, _ := checkpoint.At("49654123456789012345678901234567890123456789012345678918", 0)
	sub, _ := checkpoint.At("4965412345", 7)
	tests := []struct {
		name string
		in   string
		want Target
		bad  bool
	}{
		{"trim-horizon is the sentinel", "trim-horizon", Target{Position: checkpoint.TrimHorizon}, false},
		{"latest is the sentinel", "LATEST", Target{Position: checkpoint.Latest}, false},
		{"a sequence number is taken as it is", seq.SequenceNumber(), Target{Position: seq}, false},
		{"a sub-sequence number follows a slash", "4965412345/7", Target{Position: sub}, false},
		{"an RFC 3339 time", "2026-01-02T03:04:05Z", Target{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}, false},
		{"a time without a zone is refused", "2026-01-02T03:04:05", Target{}, true},
		{"a word is refused", "yesterday", Target{}, true},
		{"a bad sub-sequence number is refused", "12/x", Target{}, true},
		{"an empty target is refused", "", Target{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTarget(tc.in)
			if tc.bad {
				if !errors.Is(err, ErrBadTarget) {
					t.Errorf("ParseTarget(%q) = %v, %v; want ErrBadTarget", tc.in, got, err)
				}
				return
			}
			if err != nil || got.Position != tc.want.Position || !got.Time.Equal(tc.want.Time) {
				t.Errorf("ParseTarget(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

// waitCheckpointed waits until every lease of tbl (n of them) is owned by
// owner and checkpointed at a sequence number.
func waitCheckpointed(t *testing.T, tbl *Table, n int, owner string) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, 200*time.Millisecond, func() bool {
		leases, err := tbl.Leases(t.Context())
		if err != nil || len(leases) != n {
			return false
		}
		for _, l := range leases {
			if !l.Checkpoint.IsSequence() || l.Owner != owner {
				return false
			}
		}
		return true
	}, "%d leases held by %s and checkpointed", n, owner)
}

func TestResetRefusesWhileAWorkerRenewsAndWritesNothing(t *testing.T) {
	testenv.Require(t)
	kc, ddb := testenv.Kinesis(t), testenv.DynamoDB(t)
	stream := testenv.CreateStream(t, kc, 2)
	app := testenv.UniqueName(t, "app")
	putRecords(t, kc, stream, 10)
	runWorker(t, kc, ddb, stream, app, "worker-1")
	tbl := openEventually(t, ddb, app)
	waitCheckpointed(t, tbl, 2, "worker-1")

	plan, err := PlanReset(t.Context(), tbl, kc, ResetOptions{Target: Target{Position: checkpoint.TrimHorizon},
		Observe: 2 * time.Second, LeaseDuration: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Refusal(false); !errors.Is(err, ErrLiveOwner) {
		t.Fatalf("refusal %v, want ErrLiveOwner (plan %+v)", err, plan)
	}
	leases, err := tbl.Leases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases {
		if !l.Checkpoint.IsSequence() || l.Owner != "worker-1" {
			t.Errorf("after a refused reset: %s at %s owned by %q, want unchanged", l.Key, l.Checkpoint, l.Owner)
		}
	}
}

func TestResetForceFencesTheHolderAndTheWorkerReprocesses(t *testing.T) {
	testenv.Require(t)
	kc, ddb := testenv.Kinesis(t), testenv.DynamoDB(t)
	stream := testenv.CreateStream(t, kc, 2)
	app := testenv.UniqueName(t, "app")
	const n = 10
	putRecords(t, kc, stream, n)
	var delivered atomic.Int64
	runCountingWorker(t, kc, ddb, stream, app, "worker-1", &delivered)
	tbl := openEventually(t, ddb, app)
	waitCheckpointed(t, tbl, 2, "worker-1")
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, func() bool { return delivered.Load() == n }, "%d records delivered", n)

	plan, err := PlanReset(t.Context(), tbl, kc, ResetOptions{Target: Target{Position: checkpoint.TrimHorizon},
		Observe: 2 * time.Second, LeaseDuration: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Refusal(true) != nil || len(plan.Changes) != 2 {
		t.Fatalf("plan %+v: want 2 changes, no refusal with --force", plan)
	}
	if err := ApplyReset(t.Context(), ddb, plan); err != nil {
		t.Fatal(err)
	}
	// The worker lets the fenced leases go, takes them back at TRIM_HORIZON
	// and processes every record again.
	testenv.Eventually(t, 60*time.Second, 200*time.Millisecond, func() bool { return delivered.Load() == 2*n },
		"the %d records delivered again after the reset (delivered %d)", n, delivered.Load())
}

func TestResetFencesAStaleHolder(t *testing.T) {
	testenv.Require(t)
	ddb := testenv.DynamoDB(t)
	app := testenv.UniqueName(t, "app")
	testenv.CreateTable(t, ddb, app)
	store, err := dynamolease.New(ddb, app)
	if err != nil {
		t.Fatal(err)
	}
	at, _ := checkpoint.At("100", 0)
	ctx := t.Context()
	if err := store.Create(ctx, lease.Lease{Key: "shardId-000000000000", Checkpoint: at}); err != nil {
		t.Fatal(err)
	}
	l, _ := store.Get(ctx, "shardId-000000000000")
	held, err := store.Take(ctx, l, "ghost")
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := Open(ctx, ddb, app)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := PlanReset(ctx, tbl, nil, ResetOptions{Target: Target{Position: checkpoint.TrimHorizon}, LeaseDuration: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := ApplyReset(ctx, ddb, plan); err != nil {
		t.Fatal(err)
	}
	later, _ := checkpoint.At("200", 0)
	if _, err := store.Checkpoint(ctx, held, lease.CheckpointUpdate{Checkpoint: later}); !errors.Is(err, lease.ErrLeaseLost) {
		t.Errorf("the old holder's checkpoint after the reset: %v, want ErrLeaseLost", err)
	}
	if _, err := store.Renew(ctx, held); !errors.Is(err, lease.ErrLeaseLost) {
		t.Errorf("the old holder's renewal after the reset: %v, want ErrLeaseLost", err)
	}
	got, err := store.Get(ctx, held.Key)
	if err != nil {
		t.Fatal(err)
	}
	if got.Checkpoint != checkpoint.TrimHorizon || got.Owner != "" || got.Counter != held.Counter+1 {
		t.Errorf("after the reset: %+v, want TRIM_HORIZON, unowned, counter %d", got, held.Counter+1)
	}

	// A plan made before the lease changed writes nothing.
	stale := plan
	stale.Changes = []Change{plan.Changes[0]}
	if err := ApplyReset(ctx, ddb, stale); !errors.Is(err, ErrChanged) {
		t.Errorf("a stale plan: %v, want ErrChanged", err)
	}
	if again, _ := store.Get(ctx, held.Key); again.Counter != got.Counter {
		t.Errorf("a stale plan wrote: counter %d, want %d", again.Counter, got.Counter)
	}

	if _, err := PlanReset(ctx, tbl, nil, ResetOptions{Target: Target{Position: checkpoint.Latest}, Shard: "shardId-000000000009"}); !errors.Is(err, ErrUnknownShard) {
		t.Errorf("unknown shard: %v, want ErrUnknownShard", err)
	}
	if _, err := PlanReset(ctx, tbl, nil, ResetOptions{Target: Target{Position: at}}); !errors.Is(err, ErrBadTarget) {
		t.Errorf("a sequence number without --shard: %v, want ErrBadTarget", err)
	}
}

func TestResolveTimeResumesAtTheFirstRecordAtOrAfterTheTime(t *testing.T) {
	testenv.Require(t)
	kc := testenv.Kinesis(t)
	stream := testenv.CreateStream(t, kc, 1)
	put := func(data string) string {
		out, err := kc.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("k"), Data: []byte(data)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.SequenceNumber)
	}
	for i := range 3 {
		put(fmt.Sprintf("before %d", i))
	}
	time.Sleep(1100 * time.Millisecond) // arrival times have second precision on the emulator
	mark := time.Now()
	time.Sleep(50 * time.Millisecond)
	first := put("after 0")
	put("after 1")

	shard := "shardId-000000000000"
	p, err := ResolveTime(t.Context(), kc, stream, shard, mark)
	if err != nil {
		t.Fatalf("ResolveTime: %v", err)
	}
	// Resume as a worker does: AT_SEQUENCE_NUMBER of the checkpoint, dropping
	// the checkpoint's own record.
	it, err := kc.GetShardIterator(t.Context(), &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(shard),
		ShardIteratorType: ktypes.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(p.SequenceNumber())})
	if err != nil {
		t.Fatal(err)
	}
	out, err := kc.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	var resumed, seqs []string
	for _, r := range out.Records {
		if aws.ToString(r.SequenceNumber) != p.SequenceNumber() {
			resumed = append(resumed, string(r.Data))
			seqs = append(seqs, aws.ToString(r.SequenceNumber))
		}
	}
	if len(resumed) != 2 || resumed[0] != "after 0" || seqs[0] != first {
		t.Errorf("resumed at %q, want the two records after the mark", resumed)
	}

	if _, err := ResolveTime(t.Context(), kc, stream, shard, time.Now().Add(time.Hour)); !errors.Is(err, ErrBadTarget) {
		t.Errorf("a time in the future: %v, want ErrBadTarget", err)
	}
	if p, err := ResolveTime(t.Context(), kc, stream, shard, mark.Add(-time.Hour)); err != nil || p != checkpoint.TrimHorizon {
		t.Errorf("a time before the first record: %v, %v; want TRIM_HORIZON", p, err)
	}
	if p, err := ResolveTime(t.Context(), kc, stream, shard, time.Now()); err != nil || !p.IsSequence() {
		t.Errorf("a time after the last record: %v, %v; want the last record", p, err)
	}
}
