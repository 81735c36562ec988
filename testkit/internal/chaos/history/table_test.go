package history

import (
	"strings"
	"testing"
)

func TestCheckLeaseTable(t *testing.T) {
	// Shards A (records 0..9) and B (records 0..4), every record produced
	// and processed by w1.
	base := func() *run {
		b := newRun().lease(0, "w1", "A", Acquired).lease(0, "w1", "B", Acquired)
		for n := range 10 {
			b.produce(n, "A", "a", n, n).process(100+n, "w1", "A", "a", n, n)
		}
		for n := range 5 {
			b.produce(n, "B", "b", n, n).process(100+n, "w1", "B", "b", n, n)
		}
		return b
	}
	tests := []struct {
		name   string
		leases []FinalLease
		want   int
		sample string
	}{
		{name: "checkpoints at the last processed record, at SHARD_END or at an initial position pass",
			leases: []FinalLease{{Shard: "A", Checkpoint: pos(9)}, {Shard: "B", Checkpoint: "SHARD_END"}, {Shard: "C", Checkpoint: "TRIM_HORIZON"}}},
		{name: "a checkpoint behind the processing passes (a replay, not a loss)",
			leases: []FinalLease{{Shard: "A", Checkpoint: pos(3)}, {Shard: "B", Owner: "w1", Checkpoint: pos(0)}}},
		{name: "a checkpoint past the last processed record is a violation",
			leases: []FinalLease{{Shard: "A", Checkpoint: pos(9)}, {Shard: "B", Checkpoint: pos(7)}},
			want:   1, sample: "B: checkpoint " + pos(7) + " is past the last record processed, " + pos(4)},
		{name: "a sub-record past the last processed one is a violation",
			leases: []FinalLease{{Shard: "A", Checkpoint: seq(9) + "/1"}},
			want:   1, sample: "A: checkpoint " + seq(9) + "/1 is past"},
		{name: "a sequence checkpoint on a shard nobody processed is a violation",
			leases: []FinalLease{{Shard: "Z", Checkpoint: pos(0)}},
			want:   1, sample: "no record of the shard was processed"},
		{name: "a checkpoint that does not parse is a violation",
			leases: []FinalLease{{Shard: "A", Checkpoint: "bogus"}, {Shard: "B", Checkpoint: ""}},
			want:   2, sample: `A: checkpoint "bogus"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOpts
			opts.Leases = tt.leases
			r := Check(base().h, opts)
			if r.TableLeases != len(tt.leases) || r.TableViolations != tt.want || len(r.TableSamples) != tt.want {
				t.Fatalf("TableLeases %d, TableViolations %d, samples %v; want %d, %d", r.TableLeases, r.TableViolations, r.TableSamples, len(tt.leases), tt.want)
			}
			if r.OK() != (tt.want == 0) {
				t.Errorf("OK() = %v with %d violations", r.OK(), tt.want)
			}
			if tt.want > 0 && !strings.Contains(r.TableSamples[0].String(), tt.sample) {
				t.Errorf("sample %q, want it to contain %q", r.TableSamples[0], tt.sample)
			}
			var b strings.Builder
			if err := r.Table(&b); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), "lease checkpoints") {
				t.Errorf("the table has no lease checkpoints row:\n%s", b.String())
			}
		})
	}
	if r := Check(base().h, testOpts); r.TableLeases != 0 || strings.Contains(r.String(), "lease table violations 1") {
		t.Errorf("without Options.Leases: %+v", r)
	}
}
