package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/testkit/checker"
)

// line is one line a test processor appended to the record file: a record
// (Event empty) or an event.
type line struct {
	Event string `json:"event"`
	Shard string `json:"shard"`
	PID   int    `json:"pid"`
	Seq   string `json:"seq"`
	Sub   uint64 `json:"sub"`
	Key   string `json:"key"`
	Data  []byte `json:"data"` // base64 in the file
	// Error is the checkpoint error of a checkpointError event (null: none).
	Error *string `json:"error"`
}

// readLines reads the record file. Every line must be whole JSON: each is
// written with one write(2) on an O_APPEND descriptor.
func readLines(file string) ([]line, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var lines []line
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Shard == "" {
			return nil, fmt.Errorf("%s:%d: not a processor line: %q", file, n, sc.Bytes())
		}
		lines = append(lines, l)
	}
	return lines, sc.Err()
}

// report is the checker's verdict on a record file, with its lines.
type report struct {
	checker.Report
	lines []line
}

func (r *report) String() string { return r.Report.String() }

// events returns the event lines named name, in file order.
func (r *report) events(name string) []line {
	var out []line
	for _, l := range r.lines {
		if l.Event == name {
			out = append(out, l)
		}
	}
	return out
}

// initializations counts the initialize events per shard: the children
// started for it.
func (r *report) initializations() map[string]int {
	n := make(map[string]int)
	for _, l := range r.events("initialize") {
		n[l.Shard]++
	}
	return n
}

// lastRecord returns, per shard, the position of the last record processed
// (the largest: after a redelivery the file goes back before going on).
func (r *report) lastRecord() (map[string]checkpoint.Position, error) {
	last := make(map[string]checkpoint.Position)
	for _, l := range r.lines {
		if l.Event != "" {
			continue
		}
		p, err := checkpoint.At(l.Seq, l.Sub)
		if err != nil {
			return nil, fmt.Errorf("record of %s: %w", l.Shard, err)
		}
		if cur, ok := last[l.Shard]; !ok || p.Compare(cur) > 0 {
			last[l.Shard] = p
		}
	}
	return last, nil
}

// orderErrors lists records that did not come after the previous record of
// their shard: with no child restarted, each shard's records are processed
// once each, in stream order.
func (r *report) orderErrors() []string {
	var errs []string
	prev := make(map[string]checkpoint.Position)
	for _, l := range r.lines {
		if l.Event != "" {
			continue
		}
		p, err := checkpoint.At(l.Seq, l.Sub)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", l.Shard, err))
			continue
		}
		if q, ok := prev[l.Shard]; ok && p.Compare(q) <= 0 {
			errs = append(errs, fmt.Sprintf("%s: %v after %v", l.Shard, p, q))
		}
		prev[l.Shard] = p
	}
	return errs
}
