// Package mlchild is the chaos harness's MultiLangDaemon child: the record
// processor a `kcl multilang` host runs for each shard in the harness's
// multilang mode (testkit/internal/chaos/scenario, Config.Multilang). It
// speaks the protocol of /work/shared/MULTILANG.md on stdin and stdout and
// writes what it is given as history lines (package
// testkit/internal/chaos/history), as the Go worker's recorder does:
//
//   - initialize: a LeaseEvent "acquired" (a new child is a new tenure of
//     the shard: after a child is killed, the host replays from the last
//     checkpoint, which the checker explains as a takeover);
//   - processRecords: one Processed line per record, in one write, then a
//     checkpoint of the batch (every -every batches), alternately with the
//     last record's sequence numbers and with a null sequence number;
//   - each checkpoint reply: a Checkpoint line, durable when the reply has no
//     error (a request equal to the last durable checkpoint is a no-op for the
//     host and is not logged);
//   - shardEnded: a null checkpoint (SHARD_END), retried while the host
//     answers ThrottlingException or KinesisClientLibDependencyException,
//     then a LeaseEvent "shard ended";
//   - shutdownRequested: a null checkpoint if anything was delivered since
//     the last durable one, then a LeaseEvent "released";
//   - leaseLost: a LeaseEvent "lost".
//
// The lines go to PREFIX.SHARD.PID.jsonl (-log PREFIX), one file per child,
// so that a line cut short by a SIGKILL is the last of its file. The host's
// workerId is -worker; the harness writes both into the executableName of
// the properties file it gives each host.
//
// The child also checks the host: messages in the protocol's order, records
// in increasing positions after the initialize checkpoint, checkpoint replies
// echoing the request and carrying an error the situation allows. What it
// finds goes, one line each, to PREFIX.SHARD.PID.problems (and to stderr),
// which the harness reports as problems of the run.
//
// Main is the whole program; the child exits 0 on stdin EOF, 1 when the host
// broke the protocol so that it cannot go on, 2 on bad flags.
package mlchild

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/testkit/checker"
	"github.com/kclgo/kcl/testkit/internal/chaos/history"
)

// Main runs the child with the command-line arguments args (without the
// program name), reading the host's messages from stdin and answering on
// stdout. It returns the process exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kclchaos mlchild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		worker = fs.String("worker", "", "the host's workerId (required)")
		prefix = fs.String("log", "", "history log path prefix: the child writes PREFIX.SHARD.PID.jsonl (required)")
		every  = fs.Int("every", 1, "checkpoint after every N-th batch")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *worker == "" || *prefix == "" || *every < 1 {
		fmt.Fprintln(stderr, "kclchaos mlchild: -worker and -log are required, -every must be positive")
		return 2
	}
	c := &child{
		worker: *worker, prefix: *prefix, every: *every, pid: os.Getpid(),
		in: bufio.NewReaderSize(stdin, 1<<20), out: bufio.NewWriter(stdout), stderr: stderr,
	}
	defer c.close()
	if err := c.run(); err != nil {
		c.problem("%v", err)
		return 1
	}
	return 0
}

// state is where the child is in the protocol's order of calls.
type state int

const (
	fresh        state = iota // before initialize
	processing                // after initialize
	shuttingDown              // after shutdownRequested: only leaseLost may follow
	ended                     // after leaseLost or shardEnded: only EOF may follow
)

type child struct {
	worker, prefix string
	every          int
	pid            int
	in             *bufio.Reader
	out            *bufio.Writer
	stderr         io.Writer

	state    state
	shard    string
	log      *os.File // opened at initialize
	problems *os.File // opened at the first problem
	buf      []byte
	// last is the position of the last record delivered; durable the last
	// checkpoint known to be stored (the initialize position at first).
	last, durable checkpoint.Position
	batches       int
	uncovered     bool // records delivered since the last durable checkpoint
}

// hostMessage is every field of the host's messages.
type hostMessage struct {
	Action            string   `json:"action"`
	ShardID           string   `json:"shardId"`
	SequenceNumber    *string  `json:"sequenceNumber"`
	SubSequenceNumber *uint64  `json:"subSequenceNumber"`
	Records           []record `json:"records"`
	Error             *string  `json:"error"`
}

type record struct {
	Data              []byte `json:"data"` // standard base64
	PartitionKey      string `json:"partitionKey"`
	SequenceNumber    string `json:"sequenceNumber"`
	SubSequenceNumber uint64 `json:"subSequenceNumber"`
}

// The child's messages.
type statusMessage struct {
	Action      string `json:"action"` // "status"
	ResponseFor string `json:"responseFor"`
}

type checkpointMessage struct {
	Action            string  `json:"action"` // "checkpoint"
	SequenceNumber    *string `json:"sequenceNumber"`
	SubSequenceNumber *uint64 `json:"subSequenceNumber"`
}

// errHostBroke wraps what makes the child give up: the host broke the
// protocol in a way the child cannot answer.
var errHostBroke = errors.New("host broke the protocol")

func (c *child) run() error {
	for {
		m, err := c.read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch m.Action {
		case "initialize":
			err = c.initialize(m)
		case "processRecords":
			err = c.processRecords(m)
		case "shardEnded":
			err = c.shardEnded()
		case "shutdownRequested":
			err = c.shutdownRequested()
		case "leaseLost":
			err = c.leaseLost()
		case "checkpoint":
			return fmt.Errorf("%w: a checkpoint reply with no checkpoint outstanding", errHostBroke)
		default:
			return fmt.Errorf("%w: unknown action %q", errHostBroke, m.Action)
		}
		if err != nil {
			return err
		}
		if err := c.write(statusMessage{Action: "status", ResponseFor: m.Action}); err != nil {
			return err
		}
	}
}

func (c *child) initialize(m hostMessage) error {
	if c.state != fresh {
		return fmt.Errorf("%w: initialize after %s", errHostBroke, c.stateName())
	}
	if m.ShardID == "" {
		return fmt.Errorf("%w: initialize without shardId", errHostBroke)
	}
	if strings.ContainsAny(m.ShardID, "/\x00") {
		return fmt.Errorf("%w: shardId %q is not a file name", errHostBroke, m.ShardID)
	}
	c.shard = m.ShardID
	c.state = processing
	path := fmt.Sprintf("%s.%s.%d.jsonl", c.prefix, c.shard, c.pid)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("mlchild: opening the history log: %w", err)
	}
	c.log = f
	at := "null"
	if m.SequenceNumber != nil {
		at = *m.SequenceNumber
		var sub uint64
		if m.SubSequenceNumber != nil {
			sub = *m.SubSequenceNumber
		}
		p, err := checkpoint.Parse(*m.SequenceNumber, sub)
		if err != nil {
			c.problem("initialize: sequenceNumber %q: %v", *m.SequenceNumber, err)
		} else if p.IsSequence() {
			c.durable, c.last = p, p
		}
	}
	fmt.Fprintf(c.stderr, "mlchild: %s initialized at %s (pid %d)\n", c.shard, at, c.pid)
	return c.lines(history.LeaseEvent{T: time.Now(), Worker: c.worker, Shard: c.shard, Kind: history.Acquired})
}

func (c *child) processRecords(m hostMessage) error {
	if c.state != processing {
		return fmt.Errorf("%w: processRecords after %s", errHostBroke, c.stateName())
	}
	if len(m.Records) == 0 {
		return nil
	}
	now := time.Now()
	c.buf = c.buf[:0]
	for i, r := range m.Records {
		pos, err := checkpoint.At(r.SequenceNumber, r.SubSequenceNumber)
		if err != nil {
			return fmt.Errorf("%w: record %d: %v", errHostBroke, i, err)
		}
		if !c.last.IsZero() && pos.Compare(c.last) <= 0 {
			c.problem("record %s delivered after %s", pos, c.last)
		}
		c.last = pos
		key, n, err := checker.ParsePayload(r.Data)
		if err != nil || key != r.PartitionKey {
			// Not the producer's record: logged under its partition key with
			// the ordinal the Go worker uses, so that the checker counts it
			// as unexpected.
			key, n = r.PartitionKey, foreignOrdinal
		}
		c.buf, err = history.AppendLine(c.buf, history.Processed{T: now, Worker: c.worker, Shard: c.shard,
			Seq: r.SequenceNumber, Sub: r.SubSequenceNumber, Key: key, N: n})
		if err != nil {
			return err
		}
	}
	if _, err := c.log.Write(c.buf); err != nil {
		return fmt.Errorf("mlchild: writing the history log: %w", err)
	}
	c.uncovered = true
	c.batches++
	if c.batches%c.every != 0 {
		return nil
	}
	// Both forms of the request: the last record's numbers, and null
	// ("everything delivered so far"), which is the same position.
	if c.batches/c.every%2 == 0 {
		seq, sub := c.last.SequenceNumber(), c.last.SubSequenceNumber()
		_, err := c.checkpoint(&seq, &sub, c.last)
		return err
	}
	_, err := c.checkpoint(nil, nil, c.last)
	return err
}

// Checkpoint errors a host may answer under faults; anything else is a
// problem of the host.
const (
	errShutdown   = "ShutdownException"
	errThrottling = "ThrottlingException"
	errDependency = "KinesisClientLibDependencyException"
)

// checkpoint asks the host for a checkpoint at (seq, sub), nil meaning
// null, which stands for pos, and logs the outcome. It returns the error
// name of the reply, "" on success.
func (c *child) checkpoint(seq *string, sub *uint64, pos checkpoint.Position) (string, error) {
	start := time.Now()
	if err := c.write(checkpointMessage{Action: "checkpoint", SequenceNumber: seq, SubSequenceNumber: sub}); err != nil {
		return "", err
	}
	m, err := c.read()
	if err != nil {
		return "", err // EOF included: the host is gone
	}
	end := time.Now()
	if m.Action != "checkpoint" {
		return "", fmt.Errorf("%w: %s while a checkpoint request was outstanding", errHostBroke, m.Action)
	}
	if !sameString(m.SequenceNumber, seq) || !sameUint(m.SubSequenceNumber, sub) {
		c.problem("checkpoint reply echoes (%s, %s), the request was (%s, %s)",
			strOrNull(m.SequenceNumber), uintOrNull(m.SubSequenceNumber), strOrNull(seq), uintOrNull(sub))
	}
	name := ""
	if m.Error != nil {
		name = *m.Error
	}
	switch name {
	case "":
		if pos.Compare(c.durable) <= 0 {
			return "", nil // a no-op for the host: nothing was written
		}
		c.durable = pos
		if pos.Compare(c.last) >= 0 {
			c.uncovered = false
		}
	case errShutdown, errThrottling, errDependency:
	default:
		c.problem("checkpoint at %s answered %s", pos, name)
	}
	txt, err := pos.MarshalText()
	if err != nil {
		return name, err
	}
	return name, c.lines(history.Checkpoint{T: end, Start: start, Worker: c.worker, Shard: c.shard, Position: string(txt), Err: name})
}

func (c *child) shardEnded() error {
	if c.state != processing {
		return fmt.Errorf("%w: shardEnded after %s", errHostBroke, c.stateName())
	}
	c.state = ended
	// Retried as long as the failure is one to retry: the host cannot
	// finish the shard without it.
	for attempt := 0; ; attempt++ {
		name, err := c.checkpoint(nil, nil, checkpoint.ShardEnd)
		if err != nil {
			return err
		}
		switch {
		case name == "":
			fmt.Fprintf(c.stderr, "mlchild: %s ended\n", c.shard)
			return c.lines(history.LeaseEvent{T: time.Now(), Worker: c.worker, Shard: c.shard, Kind: history.ShardEnded})
		case (name == errThrottling || name == errDependency) && attempt < 50:
			time.Sleep(200 * time.Millisecond)
		default:
			return nil
		}
	}
}

func (c *child) shutdownRequested() error {
	if c.state != processing {
		return fmt.Errorf("%w: shutdownRequested after %s", errHostBroke, c.stateName())
	}
	c.state = shuttingDown
	if c.uncovered {
		if _, err := c.checkpoint(nil, nil, c.last); err != nil {
			return err
		}
	}
	return c.lines(history.LeaseEvent{T: time.Now(), Worker: c.worker, Shard: c.shard, Kind: history.Released})
}

func (c *child) leaseLost() error {
	switch c.state {
	case processing:
		c.state = ended
		return c.lines(history.LeaseEvent{T: time.Now(), Worker: c.worker, Shard: c.shard, Kind: history.Lost})
	case shuttingDown: // the lease released after shutdownRequested: already logged
		c.state = ended
		return nil
	}
	return fmt.Errorf("%w: leaseLost after %s", errHostBroke, c.stateName())
}

func (c *child) stateName() string {
	return [...]string{"nothing (no initialize)", "initialize", "shutdownRequested", "the shard's ending"}[c.state]
}

// foreignOrdinal is the ordinal logged for a record that is not the
// producer's (the Go worker's value).
const foreignOrdinal = 1_000_000

// read returns the next host message, skipping empty lines. io.EOF means
// stdin ended.
func (c *child) read() (hostMessage, error) {
	for {
		line, err := c.in.ReadBytes('\n')
		if len(line) == 0 && err != nil {
			return hostMessage{}, err
		}
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		var m hostMessage
		if jerr := json.Unmarshal(line, &m); jerr != nil {
			return hostMessage{}, fmt.Errorf("%w: a line that is not a message: %v", errHostBroke, jerr)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return hostMessage{}, err
		}
		return m, nil
	}
}

// write sends one message framed as the clients frame it: "\n" JSON "\n".
func (c *child) write(m any) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	c.out.WriteByte('\n')
	c.out.Write(b)
	c.out.WriteByte('\n')
	if err := c.out.Flush(); err != nil {
		return fmt.Errorf("mlchild: writing to the host: %w", err)
	}
	return nil
}

// lines appends history lines to the log in one write.
func (c *child) lines(ls ...history.Line) error {
	if c.log == nil {
		return nil
	}
	c.buf = c.buf[:0]
	for _, l := range ls {
		var err error
		if c.buf, err = history.AppendLine(c.buf, l); err != nil {
			return err
		}
	}
	if _, err := c.log.Write(c.buf); err != nil {
		return fmt.Errorf("mlchild: writing the history log: %w", err)
	}
	return nil
}

// problem records something the host did wrong.
func (c *child) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	shard := c.shard
	if shard == "" {
		shard = "unknown"
	}
	fmt.Fprintf(c.stderr, "mlchild: PROBLEM: %s\n", msg)
	if c.problems == nil {
		f, err := os.OpenFile(fmt.Sprintf("%s.%s.%d.problems", c.prefix, shard, c.pid), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintf(c.stderr, "mlchild: %v\n", err)
			return
		}
		c.problems = f
	}
	fmt.Fprintf(c.problems, "%s %s pid %d: %s\n", time.Now().Format(time.RFC3339Nano), shard, c.pid, msg)
}

func (c *child) close() {
	if c.log != nil {
		c.log.Close()
	}
	if c.problems != nil {
		c.problems.Close()
	}
}

func sameString(a, b *string) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

// sameUint compares sub-sequence numbers; the host may echo an absent one
// as null or as 0 only if it was sent so, hence an exact comparison.
func sameUint(a, b *uint64) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

func strOrNull(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}

func uintOrNull(u *uint64) string {
	if u == nil {
		return "null"
	}
	return fmt.Sprint(*u)
}
