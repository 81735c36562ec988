package lease_test

import (
	"testing"

	"github.com/kclgo/kcl/lease"
)

func TestWorkerStateString(t *testing.T) {
	for st, want := range map[lease.WorkerState]string{
		lease.WorkerStarting: "starting", lease.WorkerRunning: "running", lease.WorkerStopping: "stopping", 0: "WorkerState(0)",
	} {
		if got := st.String(); got != want {
			t.Errorf("WorkerState(%d).String() = %q; want %q", uint8(st), got, want)
		}
		back, ok := lease.ParseWorkerState(want)
		if ok != (st != 0) || ok && back != st {
			t.Errorf("ParseWorkerState(%q) = %v, %t", want, back, ok)
		}
	}
}
