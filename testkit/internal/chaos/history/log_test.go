package history

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sample is one line of each type.
func sample() History {
	b := newRun().produce(1, "A", "k", 0, 0).
		process(2, "w1", "A", "k", 0, 0).
		lease(3, "w1", "A", ShardEnded).
		acquired(2, 3, "w1", "A").
		checkpoint(4, 5, "w1", "A", "SHARD_END", "").
		checkpoint(6, 7, "w1", "A", pos(0), "lease: lost").
		life(8, "w1", SIGKILL).
		life(9, "w2", Partition).
		life(10, "w2", Heal)
	b.h.Lifecycle[1].Leader = true
	b.h.Produced[0].Aggregated = true
	b.h.Processed[0].Sub = 3
	return b.h
}

func encode(t testing.TB, h History) []byte {
	t.Helper()
	var b []byte
	var err error
	add := func(l Line) {
		if b, err = AppendLine(b, l); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range h.Produced {
		add(l)
	}
	for _, l := range h.Processed {
		add(l)
	}
	for _, l := range h.Leases {
		add(l)
	}
	for _, l := range h.Checkpoints {
		add(l)
	}
	for _, l := range h.Lifecycle {
		add(l)
	}
	return b
}

func TestAppendLineReadRoundTrip(t *testing.T) {
	want := sample()
	text := encode(t, want)
	var got History
	if err := got.Read("log", bytes.NewReader(text)); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read back\n%+v\nwant\n%+v\nfrom\n%s", got, want, text)
	}
	first, _, _ := bytes.Cut(text, []byte("\n"))
	if want := `{"type":"produced","t":"2026-11-26T12:00:00.001Z","key":"k","n":0,"shard":"A","seq":"1000","agg":true}`; string(first) != want {
		t.Errorf("first line %s, want %s", first, want)
	}
}

func TestReadTruncatedLastLine(t *testing.T) {
	text := encode(t, sample())
	for cut := 1; cut < 40; cut++ {
		var h History
		if err := h.Read("log", bytes.NewReader(text[:len(text)-cut])); err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		// The newline alone missing leaves a whole line, which is kept.
		want := 1
		if cut == 1 {
			want = 0
		}
		all := len(sample().Lifecycle)
		if h.Truncated != want || len(h.Lifecycle) != all-want {
			t.Fatalf("cut %d: Truncated %d with %d lifecycle lines, want %d and %d", cut, h.Truncated, len(h.Lifecycle), want, all-want)
		}
	}
}

func TestReadMalformed(t *testing.T) {
	good := `{"type":"lifecycle","t":"2026-11-26T12:00:00Z","w":"w1","kind":"start"}`
	tests := []struct {
		name, line, why string
	}{
		{"a line that is not JSON is malformed", `{"type":`, "invalid JSON"},
		{"an unknown field is malformed", `{"type":"lifecycle","t":"2026-11-26T12:00:00Z","w":"w1","kind":"start","shrad":"A"}`, `unknown field "shrad"`},
		{"a second object on the line is malformed", good + good, "trailing data"},
		{"a control character in a string is malformed", `{"type":"lifecycle","t":"2026-11-26T12:00:00Z","w":"w` + "\t" + `1","kind":"start"}`, "control character"},
		{"a blank line is malformed", ``, "blank line"},
		{"an unknown type is malformed", `{"type":"other","t":"2026-11-26T12:00:00Z"}`, `unknown line type "other"`},
		{"a line without a time is malformed", `{"type":"lifecycle","w":"w1","kind":"start"}`, `no "t"`},
		{"a field of another type is malformed", `{"type":"lifecycle","t":"2026-11-26T12:00:00Z","w":"w1","kind":"start","shard":"A"}`, `has no field "shard"`},
		{"an unknown lease kind is malformed", `{"type":"lease","t":"2026-11-26T12:00:00Z","w":"w1","shard":"A","kind":"stolen"}`, `unknown lease event kind "stolen"`},
		{"a start on a lease event other than an acquisition is malformed", `{"type":"lease","t":"2026-11-26T12:00:00Z","start":"2026-11-26T12:00:00Z","w":"w1","shard":"A","kind":"lost"}`, `has no field "start"`},
		{"an acquisition that returned before it began is malformed", `{"type":"lease","t":"2026-11-26T12:00:00Z","start":"2026-11-26T12:00:01Z","w":"w1","shard":"A","kind":"acquired"}`, `"start" after "t"`},
		{"a leader flag on a line other than a lifecycle line is malformed", `{"type":"lease","t":"2026-11-26T12:00:00Z","w":"w1","shard":"A","kind":"lost","leader":true}`, `has no field "leader"`},
		{"an unknown lifecycle kind is malformed", `{"type":"lifecycle","t":"2026-11-26T12:00:00Z","w":"w1","kind":"sighup"}`, `unknown lifecycle kind`},
		{"a processed line without a worker is malformed", `{"type":"processed","t":"2026-11-26T12:00:00Z","shard":"A","seq":"1","key":"k","n":0}`, `no "w"`},
		{"a sequence number with a leading zero is malformed", `{"type":"produced","t":"2026-11-26T12:00:00Z","shard":"A","seq":"01","key":"k","n":0}`, `"seq"`},
		{"a negative ordinal is malformed", `{"type":"produced","t":"2026-11-26T12:00:00Z","shard":"A","seq":"1","key":"k","n":-1}`, `negative "n"`},
		{"a checkpoint position not in text form is malformed", `{"type":"checkpoint","t":"2026-11-26T12:00:00Z","start":"2026-11-26T12:00:00Z","w":"w1","shard":"A","pos":"12"}`, `"pos" "12"`},
		{"a checkpoint that returned before it began is malformed", `{"type":"checkpoint","t":"2026-11-26T12:00:00Z","start":"2026-11-26T12:00:01Z","w":"w1","shard":"A","pos":"12/0"}`, `"start" after "t"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h History
			err := h.Read("w1.log", strings.NewReader(good+"\n"+tt.line+"\n"+good+"\n"))
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("Read error %v, want a *ParseError", err)
			}
			if pe.File != "w1.log" || pe.Line != 2 || !strings.Contains(err.Error(), "w1.log:2: ") || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("error %q, want w1.log:2 and %q", err, tt.why)
			}
			if len(h.Lifecycle) != 1 {
				t.Errorf("%d lifecycle lines kept, want the 1 before the bad line", len(h.Lifecycle))
			}
		})
	}
}

func TestReadLongLine(t *testing.T) {
	long := strings.Repeat("x", 600<<10)
	var h History
	text := `{"type":"lifecycle","t":"2026-11-26T12:00:00Z","w":"` + long + `","kind":"start"}` + "\n"
	if err := h.Read("log", strings.NewReader(text)); err != nil {
		t.Fatal(err)
	}
	if len(h.Lifecycle) != 1 || h.Lifecycle[0].Worker != long {
		t.Fatalf("long line not read back")
	}
}

// FuzzRead checks that no input makes Read panic, that errors are
// *ParseErrors, and that what it accepts survives re-encoding.
func FuzzRead(f *testing.F) {
	f.Add(encode(f, sample()))
	f.Add([]byte(`{"type":"processed","t":"2026-11-26T12:00:00Z","w":"w","shard":"A","seq":"1","key":"k","n":0}`))
	f.Add([]byte("{}\n{"))
	f.Fuzz(func(t *testing.T, text []byte) {
		var h History
		err := h.Read("fuzz", bytes.NewReader(text))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			return
		}
		var again History
		if err := again.Read("again", bytes.NewReader(encode(t, h))); err != nil {
			t.Fatalf("re-encoded history unreadable: %v", err)
		}
		again.Truncated = h.Truncated
		if !reflect.DeepEqual(normal(again), normal(h)) {
			t.Fatalf("re-encoded history differs:\n%+v\n%+v", again, h)
		}
	})
}

// normal drops time zones and monotonic readings, which JSON does not keep
// exactly.
func normal(h History) History {
	for i := range h.Produced {
		h.Produced[i].T = h.Produced[i].T.UTC()
	}
	for i := range h.Processed {
		h.Processed[i].T = h.Processed[i].T.UTC()
	}
	for i := range h.Leases {
		h.Leases[i].T = h.Leases[i].T.UTC()
	}
	for i := range h.Checkpoints {
		h.Checkpoints[i].T, h.Checkpoints[i].Start = h.Checkpoints[i].T.UTC(), h.Checkpoints[i].Start.UTC()
	}
	for i := range h.Lifecycle {
		h.Lifecycle[i].T = h.Lifecycle[i].T.UTC()
	}
	return h
}

// FuzzDecode checks the line decoder against encoding/json: whatever it
// accepts, encoding/json accepts and decodes the same way.
func FuzzDecode(f *testing.F) {
	for _, l := range bytes.Split(encode(f, sample()), []byte("\n")) {
		f.Add(l)
	}
	f.Add([]byte(`{"type":"x\u0041\n","n":-0,"sub":18446744073709551615,"agg":false, "w" : "\ud800"}`))
	f.Add([]byte(`{"t":"2026-11-26T12:00:00+01:00","start":"2026-11-26T12:00:00.123456789Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p parser
		if err := p.decode(b); err != nil {
			return
		}
		var w wireLine
		if err := json.Unmarshal(b, &w); err != nil {
			t.Fatalf("decode accepted %q, encoding/json: %v", b, err)
		}
		got := p.w
		if !got.T.Equal(w.T) || !got.Start.Equal(w.Start) {
			t.Fatalf("times %v %v, encoding/json %v %v", got.T, got.Start, w.T, w.Start)
		}
		got.T, got.Start, w.T, w.Start = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if got != w {
			t.Fatalf("decoded %q as\n%+v\nencoding/json:\n%+v", b, got, w)
		}
	})
}

func TestReadFiles(t *testing.T) {
	dir := t.TempDir()
	producer, worker := dir+"/producer.log", dir+"/w1.log"
	h := sample()
	if err := os.WriteFile(producer, encode(t, History{Produced: h.Produced}), 0o600); err != nil {
		t.Fatal(err)
	}
	w := encode(t, History{Processed: h.Processed, Leases: h.Leases})
	if err := os.WriteFile(worker, w[:len(w)-10], 0o600); err != nil { // killed mid-line
		t.Fatal(err)
	}
	got, err := ReadFiles(producer, worker)
	if err != nil {
		t.Fatal(err)
	}
	// The last lease line is cut short.
	if len(got.Produced) != 1 || len(got.Processed) != 1 || len(got.Leases) != len(h.Leases)-1 || got.Truncated != 1 {
		t.Fatalf("read %d produced, %d processed, %d lease lines, %d truncated; want 1, 1, %d, 1",
			len(got.Produced), len(got.Processed), len(got.Leases), got.Truncated, len(h.Leases)-1)
	}
	if _, err := ReadFiles(dir + "/missing.log"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadFiles(missing) error %v, want os.ErrNotExist", err)
	}
}
