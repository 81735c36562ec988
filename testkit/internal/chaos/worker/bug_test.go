package worker

import (
	"errors"
	"testing"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/memlease"
)

// takenOver returns a store whose lease "s" was taken by w1 and then by w2,
// and w1's stale view of it.
func takenOver(t *testing.T) (*memlease.Store, lease.Lease) {
	t.Helper()
	ctx := t.Context()
	s := memlease.New()
	if err := s.Create(ctx, lease.Lease{Key: "s"}); err != nil {
		t.Fatal(err)
	}
	l, _ := s.Get(ctx, "s")
	stale, err := s.Take(ctx, l, "w1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Take(ctx, stale, "w2"); err != nil {
		t.Fatal(err)
	}
	return s, stale
}

func TestBugs(t *testing.T) {
	pos, _ := checkpoint.At("49590338271490256608559692538361571095921575989136588898", 0)
	u := lease.CheckpointUpdate{Checkpoint: pos}

	t.Run("without a bug a stale checkpoint is fenced off", func(t *testing.T) {
		s, stale := takenOver(t)
		if _, err := NoBug.wrap(s, "w1").Checkpoint(t.Context(), stale, u); !errors.Is(err, lease.ErrLeaseLost) {
			t.Fatalf("Checkpoint = %v, want ErrLeaseLost", err)
		}
	})
	t.Run("unfenced writes a stale checkpoint over the new owner's lease", func(t *testing.T) {
		s, stale := takenOver(t)
		if _, err := Unfenced.wrap(s, "w1").Checkpoint(t.Context(), stale, u); err != nil {
			t.Fatalf("Checkpoint = %v, want it to succeed", err)
		}
		got, _ := s.Get(t.Context(), "s")
		if got.Checkpoint.Compare(pos) != 0 || got.Owner != "w2" {
			t.Fatalf("stored %+v, want checkpoint %v under w2", got, pos)
		}
	})
	t.Run("child-before-parent hides every lease another worker owns from Get", func(t *testing.T) {
		s, _ := takenOver(t)
		if _, err := ChildBeforeParent.wrap(s, "w1").Get(t.Context(), "s"); !errors.Is(err, lease.ErrNotFound) {
			t.Fatalf("Get = %v, want ErrNotFound", err)
		}
		if l, err := ChildBeforeParent.wrap(s, "w2").Get(t.Context(), "s"); err != nil || l.Owner != "w2" {
			t.Fatalf("Get by the owner = %+v, %v; want the lease", l, err)
		}
	})
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"batch", "CheckpointAfterEachBatch()", true},
		{"manual", "CheckpointManual()", true},
		{"every=2s", "CheckpointEvery(2s)", true},
		{"every=0s", "", false},
		{"sometimes", "", false},
	} {
		p, err := ParsePolicy(tt.in)
		if (err == nil) != tt.ok || (tt.ok && p.String() != tt.want) {
			t.Errorf("ParsePolicy(%q) = %v, %v; want %s", tt.in, p, err, tt.want)
		}
	}
	for _, b := range []Bug{NoBug, Unfenced, ChildBeforeParent} {
		if got, err := ParseBug(b.String()); err != nil || got != b {
			t.Errorf("ParseBug(%q) = %v, %v", b.String(), got, err)
		}
	}
	if _, err := ParseBug("typo"); err == nil {
		t.Error("ParseBug(typo) succeeded")
	}
}
