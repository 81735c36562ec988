package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kclgo/kcl/checkpoint"
)

// Line is one line of a log: *Produced, *Processed, *LeaseEvent,
// *Checkpoint or *Lifecycle (or the same types as values).
type Line interface {
	// lineType returns the value of the line's "type" field.
	lineType() string
}

// The values of the "type" field, one per line type.
const (
	TypeProduced   = "produced"
	TypeProcessed  = "processed"
	TypeLease      = "lease"
	TypeCheckpoint = "checkpoint"
	TypeLifecycle  = "lifecycle"
)

// Produced is written by the producer once a record's put is acknowledged:
// the N-th record (0, 1, 2, … in put order) of partition key Key is at
// sequence number Seq of shard Shard. Aggregated marks a user record inside
// a KPL aggregate; Seq is then the aggregate's.
type Produced struct {
	T          time.Time `json:"t"` // when the put was acknowledged
	Key        string    `json:"key"`
	N          int       `json:"n"`
	Shard      string    `json:"shard"`
	Seq        string    `json:"seq"`
	Aggregated bool      `json:"agg,omitempty"`
}

// Processed is written by a worker for every user record its processor was
// given, before the batch is checkpointed.
type Processed struct {
	T      time.Time `json:"t"`
	Worker string    `json:"w"`
	Shard  string    `json:"shard"`
	Seq    string    `json:"seq"`
	Sub    uint64    `json:"sub,omitempty"`
	Key    string    `json:"key"`
	N      int       `json:"n"` // the ordinal in the record's payload
}

// LeaseKind says what happened to a lease; the spellings are those of
// consumer.LeaseEventKind's String.
type LeaseKind string

// The lease event kinds.
const (
	Acquired   LeaseKind = "acquired"
	Lost       LeaseKind = "lost"
	Released   LeaseKind = "released"
	ShardEnded LeaseKind = "shard ended"
)

// LeaseEvent is written by a worker from its consumer.LeaseHook.
type LeaseEvent struct {
	T time.Time `json:"t"`
	// Start is, for Acquired, consumer.LeaseEvent.Since: the acquisition
	// took effect at some moment in [Start, T]. Zero when not known (then
	// T is taken).
	Start  time.Time `json:"start,omitzero"`
	Worker string    `json:"w"`
	Shard  string    `json:"shard"`
	Kind   LeaseKind `json:"kind"`
}

// Checkpoint is written by a worker from its consumer.CheckpointHook, once
// per checkpoint write. Position is the checkpoint.Position's text form
// ("sequence/sub" or a sentinel such as SHARD_END).
type Checkpoint struct {
	T        time.Time `json:"t"`     // when the write returned
	Start    time.Time `json:"start"` // when it began: T minus CheckpointInfo.Duration
	Worker   string    `json:"w"`
	Shard    string    `json:"shard"`
	Position string    `json:"pos"`
	Err      string    `json:"err,omitempty"` // "" when the write is durable
}

// LifecycleKind is what the harness did to, or saw of, a worker process.
type LifecycleKind string

// The lifecycle kinds.
const (
	Start   LifecycleKind = "start"
	SIGTERM LifecycleKind = "sigterm"
	SIGKILL LifecycleKind = "sigkill"
	SIGSTOP LifecycleKind = "sigstop"
	SIGCONT LifecycleKind = "sigcont"
	// Partition and Heal bracket a time the harness cut the worker off from
	// DynamoDB (its Kinesis calls still went through).
	Partition LifecycleKind = "partition"
	Heal      LifecycleKind = "heal"
	Exit      LifecycleKind = "exit"
)

// Lifecycle is written by the harness for each worker process: started,
// signalled, partitioned, exited.
type Lifecycle struct {
	T      time.Time     `json:"t"`
	Worker string        `json:"w"`
	Kind   LifecycleKind `json:"kind"`
	// Leader is set when the harness acted on the worker because it led
	// its kcl fleet (the leader lock named it just before).
	Leader bool `json:"leader,omitempty"`
}

func (Produced) lineType() string   { return TypeProduced }
func (Processed) lineType() string  { return TypeProcessed }
func (LeaseEvent) lineType() string { return TypeLease }
func (Checkpoint) lineType() string { return TypeCheckpoint }
func (Lifecycle) lineType() string  { return TypeLifecycle }

// AppendLine appends l as one JSON line, newline included: l's fields
// preceded by "type". Write the line with a single Write so that a killed
// process leaves at most its last line cut short.
func AppendLine(b []byte, l Line) ([]byte, error) {
	j, err := json.Marshal(l)
	if err != nil {
		return b, fmt.Errorf("history: encoding %s line: %w", l.lineType(), err)
	}
	b = append(b, `{"type":"`...)
	b = append(b, l.lineType()...)
	b = append(b, `",`...)
	b = append(b, j[1:]...) // every line type has fields: j is {"t":…}
	return append(b, '\n'), nil
}

// History is everything the producer, the workers and the harness wrote.
// Lines are kept in the order read; Check does not need them sorted.
type History struct {
	Produced    []Produced
	Processed   []Processed
	Leases      []LeaseEvent
	Checkpoints []Checkpoint
	Lifecycle   []Lifecycle
	// Truncated counts logs whose last line was cut short (a killed
	// process); that line is dropped.
	Truncated int
}

// ErrMalformed is matched by every *ParseError.
var ErrMalformed = errors.New("history: malformed line")

// ParseError reports a line that is not a valid log line. It matches
// ErrMalformed.
type ParseError struct {
	File string
	Line int // 1-based
	Err  error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("history: %s:%d: %v", e.File, e.Line, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// Is reports whether target is ErrMalformed.
func (e *ParseError) Is(target error) bool { return target == ErrMalformed }

// ReadFiles reads the logs at paths into one History; see Read.
func ReadFiles(paths ...string) (History, error) {
	var h History
	for _, p := range paths {
		if err := h.ReadFile(p); err != nil {
			return History{}, err
		}
	}
	return h, nil
}

// ReadFile reads the log at path into h; see Read.
func (h *History) ReadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	return h.Read(path, f)
}

// Read appends the lines of one log to h; name is used in errors. A line
// that is not valid is a *ParseError, except a last line without its
// newline: that is what a killed process leaves, so it is dropped and
// counted in Truncated. Blank lines are not valid.
func (h *History) Read(name string, r io.Reader) error {
	br := bufio.NewReaderSize(r, 256<<10)
	var (
		p    parser
		line []byte
		n    int
	)
	for {
		n++
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) { // a line longer than the buffer
			line = append(line[:0], b...)
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = br.ReadSlice('\n')
				line = append(line, b...)
			}
			b = line
		}
		switch {
		case err == nil:
			if perr := p.parse(h, b[:len(b)-1]); perr != nil {
				return &ParseError{File: name, Line: n, Err: perr}
			}
		case errors.Is(err, io.EOF): // no newline: the end, maybe cut short
			if len(b) > 0 && p.parse(h, b) != nil {
				h.Truncated++
			}
			return nil
		default:
			return fmt.Errorf("history: reading %s: %w", name, err)
		}
	}
}

// wireLine holds the fields of every line type: a line is decoded once
// (by parser.decode; the tags are encoding/json's, which FuzzDecode
// compares it with), then checked to carry only its type's fields.
type wireLine struct {
	Type     string    `json:"type"`
	T        time.Time `json:"t"`
	Start    time.Time `json:"start"`
	Worker   string    `json:"w"`
	Shard    string    `json:"shard"`
	Key      string    `json:"key"`
	N        int       `json:"n"`
	Seq      string    `json:"seq"`
	Sub      uint64    `json:"sub"`
	Agg      bool      `json:"agg"`
	Kind     string    `json:"kind"`
	Position string    `json:"pos"`
	Err      string    `json:"err"`
	Leader   bool      `json:"leader"`
}

// parser decodes lines, sharing the strings that repeat (worker, shard and
// key names) so that a long history holds one copy of each.
type parser struct {
	w       wireLine
	strings map[string]string
}

func (p *parser) intern(s string) string {
	if p.strings == nil {
		p.strings = make(map[string]string)
	}
	if t, ok := p.strings[s]; ok {
		return t
	}
	p.strings[s] = s
	return s
}

func (p *parser) parse(h *History, b []byte) error {
	p.w = wireLine{}
	if len(bytes.TrimSpace(b)) == 0 {
		return errors.New("blank line")
	}
	if err := p.decode(b); err != nil {
		return err
	}
	w := &p.w
	if w.T.IsZero() {
		return errors.New(`no "t"`)
	}
	var foreign []string // fields set that the type does not have
	not := func(set bool, name string) {
		if set {
			foreign = append(foreign, name)
		}
	}
	switch w.Type {
	case TypeProduced:
		not(w.Worker != "", "w")
		not(!w.Start.IsZero(), "start")
		not(w.Sub != 0, "sub")
		not(w.Kind != "", "kind")
		not(w.Position != "", "pos")
		not(w.Err != "", "err")
		not(w.Leader, "leader")
		if err := recordFields(w.Key, w.N, w.Shard, w.Seq); err != nil {
			return err
		}
		if err := foreignErr(w.Type, foreign); err != nil {
			return err
		}
		h.Produced = append(h.Produced, Produced{T: w.T, Key: p.intern(w.Key), N: w.N,
			Shard: p.intern(w.Shard), Seq: w.Seq, Aggregated: w.Agg})
	case TypeProcessed:
		not(!w.Start.IsZero(), "start")
		not(w.Agg, "agg")
		not(w.Kind != "", "kind")
		not(w.Position != "", "pos")
		not(w.Err != "", "err")
		not(w.Leader, "leader")
		if w.Worker == "" {
			return errors.New(`no "w"`)
		}
		if err := recordFields(w.Key, w.N, w.Shard, w.Seq); err != nil {
			return err
		}
		if err := foreignErr(w.Type, foreign); err != nil {
			return err
		}
		h.Processed = append(h.Processed, Processed{T: w.T, Worker: p.intern(w.Worker), Shard: p.intern(w.Shard),
			Seq: w.Seq, Sub: w.Sub, Key: p.intern(w.Key), N: w.N})
	case TypeLease:
		not(!w.Start.IsZero() && w.Kind != string(Acquired), "start")
		not(w.Key != "", "key")
		not(w.N != 0, "n")
		not(w.Seq != "", "seq")
		not(w.Sub != 0, "sub")
		not(w.Agg, "agg")
		not(w.Position != "", "pos")
		not(w.Err != "", "err")
		not(w.Leader, "leader")
		if w.Worker == "" || w.Shard == "" {
			return errors.New(`no "w" or "shard"`)
		}
		switch k := LeaseKind(w.Kind); k {
		case Acquired, Lost, Released, ShardEnded:
		default:
			return fmt.Errorf("unknown lease event kind %q", w.Kind)
		}
		if w.Start.After(w.T) {
			return errors.New(`"start" after "t"`)
		}
		if err := foreignErr(w.Type, foreign); err != nil {
			return err
		}
		h.Leases = append(h.Leases, LeaseEvent{T: w.T, Start: w.Start, Worker: p.intern(w.Worker), Shard: p.intern(w.Shard),
			Kind: LeaseKind(w.Kind)})
	case TypeCheckpoint:
		not(w.Key != "", "key")
		not(w.N != 0, "n")
		not(w.Seq != "", "seq")
		not(w.Sub != 0, "sub")
		not(w.Agg, "agg")
		not(w.Kind != "", "kind")
		not(w.Leader, "leader")
		if w.Worker == "" || w.Shard == "" || w.Start.IsZero() {
			return errors.New(`no "w", "shard" or "start"`)
		}
		if w.Start.After(w.T) {
			return errors.New(`"start" after "t"`)
		}
		var pos checkpoint.Position
		if err := pos.UnmarshalText([]byte(w.Position)); err != nil || pos.IsZero() {
			return fmt.Errorf(`"pos" %q is not a checkpoint position`, w.Position)
		}
		if err := foreignErr(w.Type, foreign); err != nil {
			return err
		}
		h.Checkpoints = append(h.Checkpoints, Checkpoint{T: w.T, Start: w.Start, Worker: p.intern(w.Worker),
			Shard: p.intern(w.Shard), Position: w.Position, Err: w.Err})
	case TypeLifecycle:
		not(!w.Start.IsZero(), "start")
		not(w.Shard != "", "shard")
		not(w.Key != "", "key")
		not(w.N != 0, "n")
		not(w.Seq != "", "seq")
		not(w.Sub != 0, "sub")
		not(w.Agg, "agg")
		not(w.Position != "", "pos")
		not(w.Err != "", "err")
		if w.Worker == "" {
			return errors.New(`no "w"`)
		}
		switch k := LifecycleKind(w.Kind); k {
		case Start, SIGTERM, SIGKILL, SIGSTOP, SIGCONT, Partition, Heal, Exit:
		default:
			return fmt.Errorf("unknown lifecycle kind %q", w.Kind)
		}
		if err := foreignErr(w.Type, foreign); err != nil {
			return err
		}
		h.Lifecycle = append(h.Lifecycle, Lifecycle{T: w.T, Worker: p.intern(w.Worker), Kind: LifecycleKind(w.Kind), Leader: w.Leader})
	default:
		return fmt.Errorf("unknown line type %q", w.Type)
	}
	return nil
}

// foreignErr reports the first field set on a line whose type lacks it.
func foreignErr(typ string, foreign []string) error {
	if len(foreign) > 0 {
		return fmt.Errorf("a %s line has no field %q", typ, foreign[0])
	}
	return nil
}

// recordFields checks the fields that name a record.
func recordFields(key string, n int, shard, seq string) error {
	switch {
	case key == "":
		return errors.New(`no "key"`)
	case n < 0:
		return fmt.Errorf(`negative "n" %d`, n)
	case shard == "":
		return errors.New(`no "shard"`)
	}
	if _, err := checkpoint.At(seq, 0); err != nil {
		return fmt.Errorf(`"seq": %w`, err)
	}
	return nil
}
