package records

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/aggregate"
	"github.com/kclgo/kcl/testkit/fakekinesis"
)

// collector is a Sink that keeps what it gets.
type collector struct {
	mu   sync.Mutex
	recs []Record
}

func (c *collector) sink(recs []Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range recs {
		r.Data = append([]byte(nil), r.Data...)
		c.recs = append(c.recs, r)
	}
	return nil
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.recs)
}

func putN(t *testing.T, f *fakekinesis.Fake, stream string, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		f.Put(stream, fmt.Sprintf("k%d", i), fmt.Appendf(nil, "r%05d", i))
	}
}

func split(t *testing.T, f *fakekinesis.Fake, stream, shard string) {
	t.Helper()
	for _, s := range f.Shards(stream) {
		if aws.ToString(s.ShardId) != shard {
			continue
		}
		_, err := f.SplitShard(t.Context(), &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: aws.String(shard), NewStartingHashKey: aws.String(mid(s.HashKeyRange))})
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no shard %s", shard)
}

func mid(r *types.HashKeyRange) string {
	// Half-way, good enough for the fake's uniform ranges: add a quarter
	// of the key space to the start of a shard covering half of it.
	if aws.ToString(r.StartingHashKey) == "0" {
		return "85070591730234615865843651857942052864" // 2^126
	}
	return "255211775190703847597530955573826158592" // 3·2^126
}

func openShards(f *fakekinesis.Fake, stream string) []string {
	var ids []string
	for _, s := range f.Shards(stream) {
		if s.SequenceNumberRange.EndingSequenceNumber == nil {
			ids = append(ids, aws.ToString(s.ShardId))
		}
	}
	return ids
}

// checkOnceParentsFirst checks that the records are r00000..r(n-1) once each,
// and that no record of a shard comes before the last record of a parent.
func checkOnceParentsFirst(t *testing.T, shards []types.Shard, recs []Record, n int) {
	t.Helper()
	seen := map[string]bool{}
	first, last := map[string]int{}, map[string]int{}
	for i, r := range recs {
		if seen[string(r.Data)] {
			t.Errorf("%s printed twice", r.Data)
		}
		seen[string(r.Data)] = true
		if _, ok := first[r.Shard]; !ok {
			first[r.Shard] = i
		}
		last[r.Shard] = i
	}
	for i := range n {
		if !seen[fmt.Sprintf("r%05d", i)] {
			t.Errorf("r%05d missing", i)
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct records, want %d", len(seen), n)
	}
	for _, s := range shards {
		c := aws.ToString(s.ShardId)
		for _, p := range []string{aws.ToString(s.ParentShardId), aws.ToString(s.AdjacentParentShardId)} {
			if fc, ok := first[c]; ok && p != "" {
				if lp, ok := last[p]; ok && lp > fc {
					t.Errorf("child %s's first record (#%d) before parent %s's last (#%d)", c, fc, p, lp)
				}
			}
		}
	}
}

func TestTailFromTrimHorizonReadsLineageParentsFirst(t *testing.T) {
	f := fakekinesis.New(fakekinesis.WithStream("s", 2))
	putN(t, f, "s", 0, 100)
	split(t, f, "s", "shardId-000000000000")
	putN(t, f, "s", 100, 100)
	// Shard 0's upper child (3) is adjacent to shard 1.
	if _, err := f.MergeShards(t.Context(), &kinesis.MergeShardsInput{StreamName: aws.String("s"), ShardToMerge: aws.String("shardId-000000000003"), AdjacentShardToMerge: aws.String("shardId-000000000001")}); err != nil {
		t.Fatal(err)
	}
	putN(t, f, "s", 200, 100)

	tl, err := NewTailer(f, TailConfig{Stream: "s", From: Start{Kind: FromTrimHorizon}, PollInterval: minPoll})
	if err != nil {
		t.Fatal(err)
	}
	var c collector
	if err := tl.Run(t.Context(), c.sink); err != nil {
		t.Fatal(err)
	}
	checkOnceParentsFirst(t, f.Shards("s"), c.recs, 300)
}

func TestTailFollowAcrossSplitAndMerge(t *testing.T) {
	f := fakekinesis.New(fakekinesis.WithStream("s", 2))
	tl, _ := NewTailer(f, TailConfig{Stream: "s", From: Start{Kind: FromLatest}, Follow: true, PollInterval: minPoll})
	var c collector
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- tl.Run(ctx, c.sink) }()
	time.Sleep(300 * time.Millisecond) // let the LATEST iterators be taken
	putN(t, f, "s", 0, 50)
	split(t, f, "s", "shardId-000000000001")
	putN(t, f, "s", 50, 50)
	open := openShards(f, "s")
	// shardId-000000000000 and the lower child of shard 1 are adjacent.
	if _, err := f.MergeShards(t.Context(), &kinesis.MergeShardsInput{StreamName: aws.String("s"), ShardToMerge: aws.String(open[0]), AdjacentShardToMerge: aws.String(open[1])}); err != nil {
		t.Fatal(err)
	}
	putN(t, f, "s", 100, 50)
	deadline := time.Now().Add(10 * time.Second)
	for c.len() < 150 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run after cancel: %v, want nil", err)
	}
	checkOnceParentsFirst(t, f.Shards("s"), c.recs, 150)
}

func TestTailDeaggregatesLimitsAndGreps(t *testing.T) {
	f := fakekinesis.New(fakekinesis.WithStream("s", 1))
	var urs []aggregate.UserRecord
	for i := range 10 {
		urs = append(urs, aggregate.UserRecord{PartitionKey: fmt.Sprintf("k%d", i), Data: fmt.Appendf(nil, "u%d", i)})
	}
	data, err := aggregate.Marshal(urs)
	if err != nil {
		t.Fatal(err)
	}
	f.Put("s", "k0", data)
	f.Put("s", "plain", []byte("p0"))

	var c collector
	tl, _ := NewTailer(f, TailConfig{Stream: "s", From: Start{Kind: FromTrimHorizon}})
	if err := tl.Run(t.Context(), c.sink); err != nil {
		t.Fatal(err)
	}
	if len(c.recs) != 11 || c.recs[3].SubSequenceNumber != 3 || !c.recs[3].Aggregated || string(c.recs[10].Data) != "p0" {
		t.Fatalf("got %d records: %+v", len(c.recs), c.recs)
	}

	c = collector{}
	tl, _ = NewTailer(f, TailConfig{Stream: "s", From: Start{Kind: FromTrimHorizon}, Follow: true, Limit: 4})
	if err := tl.Run(t.Context(), c.sink); err != nil || len(c.recs) != 4 {
		t.Fatalf("limit 4 with follow: %d records, %v", len(c.recs), err)
	}

	c = collector{}
	tl, _ = NewTailer(f, TailConfig{Stream: "s", From: Start{Kind: FromTrimHorizon}, Match: func(r *Record) bool { return strings.HasSuffix(string(r.Data), "7") }})
	if err := tl.Run(t.Context(), c.sink); err != nil || len(c.recs) != 1 || string(c.recs[0].Data) != "u7" {
		t.Fatalf("grep: %+v, %v", c.recs, err)
	}
}

func TestTailBadInput(t *testing.T) {
	f := fakekinesis.New(fakekinesis.WithStream("s", 1))
	var c collector
	tl, _ := NewTailer(f, TailConfig{Stream: "nope"})
	if err := tl.Run(t.Context(), c.sink); !errors.Is(err, ErrStreamNotFound) {
		t.Errorf("unknown stream: %v", err)
	}
	tl, _ = NewTailer(f, TailConfig{Stream: "s", Shard: "shardId-000000000009"})
	if err := tl.Run(t.Context(), c.sink); !errors.Is(err, ErrShardNotFound) {
		t.Errorf("unknown shard: %v", err)
	}
	if _, err := NewTailer(f, TailConfig{Stream: "s", From: Start{Kind: FromSequence, Sequence: "1"}}); err == nil {
		t.Error("sequence start without a shard accepted")
	}
	tl, _ = NewTailer(f, TailConfig{Stream: "s", Shard: "shardId-000000000000", From: Start{Kind: FromSequence, Sequence: "12345"}})
	if err := tl.Run(t.Context(), c.sink); !errors.Is(err, ErrBadStart) {
		t.Errorf("sequence number not in the shard: %v, want ErrBadStart", err)
	}
	sinkErr := errors.New("sink failed")
	f.Put("s", "k", []byte("x"))
	tl, _ = NewTailer(f, TailConfig{Stream: "s", From: Start{Kind: FromTrimHorizon}})
	if err := tl.Run(t.Context(), func([]Record) error { return sinkErr }); !errors.Is(err, sinkErr) {
		t.Errorf("sink error: %v", err)
	}
}

func TestParseStart(t *testing.T) {
	for in, want := range map[string]Start{
		"latest":               {Kind: FromLatest},
		"TRIM_HORIZON":         {Kind: FromTrimHorizon},
		"trim-horizon":         {Kind: FromTrimHorizon},
		"2026-12-08T03:00:00Z": {Kind: FromTime, Time: time.Date(2026, 12, 8, 3, 0, 0, 0, time.UTC)},
		"49590338271490256608559692538361571095921575989136588898": {Kind: FromSequence, Sequence: "49590338271490256608559692538361571095921575989136588898"},
	} {
		got, err := ParseStart(in)
		if err != nil || got.Kind != want.Kind || !got.Time.Equal(want.Time) || got.Sequence != want.Sequence {
			t.Errorf("ParseStart(%q) = %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "yesterday", "2026-13-01T00:00:00Z", "12ab", strings.Repeat("9", 129)} {
		if _, err := ParseStart(in); !errors.Is(err, ErrBadStart) {
			t.Errorf("ParseStart(%q): %v, want ErrBadStart", in, err)
		}
	}
}
