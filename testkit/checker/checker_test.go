package checker

import (
	"errors"
	"testing"
)

func TestPayloadRoundTrip(t *testing.T) {
	k, n, err := ParsePayload(Payload("user/7", 42))
	if err != nil || k != "user/7" || n != 42 {
		t.Fatalf("ParsePayload(Payload(user/7, 42)) = %q, %d, %v", k, n, err)
	}
	for _, bad := range []string{"", "abc", "/3", "k/-1", "k/x"} {
		if _, _, err := ParsePayload([]byte(bad)); !errors.Is(err, ErrPayload) {
			t.Errorf("ParsePayload(%q) error %v, want ErrPayload", bad, err)
		}
	}
}

func TestReport(t *testing.T) {
	tests := []struct {
		name      string
		produce   map[string]int
		process   [][2]any
		lost      int
		dups      int
		violation int
		unexp     int
		ok        bool
	}{
		{name: "everything once and in order is OK", produce: map[string]int{"a": 2, "b": 1},
			process: [][2]any{{"a", 0}, {"b", 0}, {"a", 1}}, ok: true},
		{name: "a replay from a checkpoint counts duplicates, not violations", produce: map[string]int{"a": 3},
			process: [][2]any{{"a", 0}, {"a", 1}, {"a", 0}, {"a", 1}, {"a", 2}}, dups: 2, ok: true},
		{name: "a record never processed is lost", produce: map[string]int{"a": 3},
			process: [][2]any{{"a", 0}, {"a", 2}}, lost: 1},
		{name: "a record first processed after a later one is a violation", produce: map[string]int{"a": 3},
			process: [][2]any{{"a", 0}, {"a", 2}, {"a", 1}}, violation: 1},
		{name: "a record never produced is unexpected", produce: map[string]int{"a": 1},
			process: [][2]any{{"a", 0}, {"a", 5}}, unexp: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New()
			for k, n := range tt.produce {
				c.Produced(k, n)
			}
			for _, p := range tt.process {
				c.Processed(p[0].(string), p[1].(int))
			}
			r := c.Report()
			if r.Lost != tt.lost || r.Duplicates != tt.dups || r.OrderViolations != tt.violation || r.Unexpected != tt.unexp || r.OK() != tt.ok {
				t.Fatalf("report %+v, want lost %d dups %d violations %d unexpected %d ok %v", r, tt.lost, tt.dups, tt.violation, tt.unexp, tt.ok)
			}
			if r.Processed != len(tt.process) {
				t.Fatalf("processed %d, want %d", r.Processed, len(tt.process))
			}
		})
	}
}
