package memlease_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/memlease"
)

func TestSurveyListsForeignItemsBesideTheFleetAnswer(t *testing.T) {
	s := memlease.New()
	ctx := t.Context()
	if err := s.Create(ctx, unowned("a")); err != nil {
		t.Fatal(err)
	}
	s.AddForeignItem("WorkerMetricStats row of w-1")
	s.AddForeignItem("leader lock of w-1")
	got, err := s.Survey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"WorkerMetricStats row of w-1", "leader lock of w-1"}
	if got.Fleet || !slices.Equal(got.Java, want) {
		t.Errorf("Survey = %+v; want no fleet and Java %q", got, want)
	}
	got.Java[0] = "changed by the caller"
	if _, err := s.Beat(ctx, "w1", lease.WorkerStarting, 0); err != nil {
		t.Fatal(err)
	}
	got, err = s.Survey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Fleet || !slices.Equal(got.Java, want) {
		t.Errorf("Survey after a Beat = %+v; want a fleet and Java %q", got, want)
	}
	if leases := s.Leases(); len(leases) != 1 {
		t.Errorf("Leases = %+v; want only the lease: foreign items are no leases", leases)
	}
	if st := s.Stats(); st.Surveys != 2 {
		t.Errorf("Stats.Surveys = %d; want 2", st.Surveys)
	}
}

func TestSurveyCanBeFaulted(t *testing.T) {
	injected := errors.New("injected")
	s := memlease.New(memlease.WithFault(func(op memlease.Op, key string) error {
		if op == memlease.OpSurvey && key == "" {
			return injected
		}
		return nil
	}))
	if _, err := s.Survey(t.Context()); !errors.Is(err, injected) {
		t.Errorf("Survey = %v; want the injected error", err)
	}
	if st := s.Stats(); st.Surveys != 0 {
		t.Errorf("Stats.Surveys = %d; want 0: a faulted call never reached the table", st.Surveys)
	}
	if memlease.OpSurvey.String() != "Survey" || memlease.OpSurvey.IsWrite() {
		t.Errorf("OpSurvey is %q, IsWrite %v; want \"Survey\", false", memlease.OpSurvey, memlease.OpSurvey.IsWrite())
	}
}
