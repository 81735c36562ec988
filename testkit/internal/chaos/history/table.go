package history

import (
	"fmt"

	"github.com/kclgo/kcl/checkpoint"
)

// FinalLease is one lease as the lease table held it when the run ended,
// after every worker stopped.
type FinalLease struct {
	Shard string `json:"shard"`
	Owner string `json:"owner,omitempty"`
	// Checkpoint is the checkpoint.Position's text form, as in Checkpoint.
	Checkpoint string `json:"checkpoint"`
}

// TableViolation is a lease whose checkpoint no processing reached.
type TableViolation struct {
	Lease FinalLease
	// Processed is the largest position of the shard anyone processed;
	// zero if none.
	Processed checkpoint.Position
	// Err is set when the checkpoint does not parse.
	Err error
}

func (v TableViolation) String() string {
	if v.Err != nil {
		return fmt.Sprintf("%s: checkpoint %q: %v", v.Lease.Shard, v.Lease.Checkpoint, v.Err)
	}
	if v.Processed.IsZero() {
		return fmt.Sprintf("%s: checkpoint %s, but no record of the shard was processed", v.Lease.Shard, v.Lease.Checkpoint)
	}
	return fmt.Sprintf("%s: checkpoint %s is past the last record processed, %s: a restart would skip the records between",
		v.Lease.Shard, v.Lease.Checkpoint, v.Processed)
}

// table applies rule 7 to opts.Leases.
func (ix *index) table(r *Report) {
	r.TableLeases = len(ix.opts.Leases)
	if r.TableLeases == 0 {
		return
	}
	want := make(map[string]checkpoint.Position, len(ix.opts.Leases))
	var bad []TableViolation
	for _, l := range ix.opts.Leases {
		var p checkpoint.Position
		if err := p.UnmarshalText([]byte(l.Checkpoint)); err != nil || p.IsZero() {
			if err == nil {
				err = fmt.Errorf("no position")
			}
			bad = append(bad, TableViolation{Lease: l, Err: err})
			continue
		}
		if p.IsSequence() {
			want[l.Shard] = checkpoint.Position{}
		}
	}
	// The largest processed position of each shard that has a sequence
	// checkpoint in the table.
	for _, p := range ix.h.Processed {
		m, ok := want[p.Shard]
		if !ok {
			continue
		}
		pos, err := checkpoint.At(p.Seq, p.Sub)
		if err == nil && pos.Compare(m) > 0 {
			want[p.Shard] = pos
		}
	}
	for _, l := range ix.opts.Leases {
		var p checkpoint.Position
		if p.UnmarshalText([]byte(l.Checkpoint)) != nil || !p.IsSequence() {
			continue
		}
		if m := want[l.Shard]; m.IsZero() || p.Compare(m) > 0 {
			bad = append(bad, TableViolation{Lease: l, Processed: m})
		}
	}
	r.TableViolations = len(bad)
	r.TableSamples = bad[:min(len(bad), r.samples)]
}
