package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kclgo/kcl/testkit/checker"
)

// fleet runs the worker processes (examples/worker) and reads what they
// report: each processed record goes to the checker, each lease change to
// the event list.
type fleet struct {
	bin  string   // the worker binary
	args []string // flags common to every worker
	dir  string   // where each worker's standard error goes, as <id>.log
	chk  *checker.Checker

	mu      sync.Mutex
	members map[string]*member
	events  []event
	bad     []string // lines that are not what the worker contract says
}

// member is one worker id: one process at a time, restarts keep the id.
type member struct {
	id      string
	proc    *process // the current or last process
	records int      // records reported, over all processes
	owned   map[string]bool
	starts  int
	metrics string // the current process's -metrics-addr
}

// process is one run of the worker binary.
type process struct {
	cmd    *exec.Cmd
	asked  bool          // we signalled it: an exit is expected
	killed bool          // we sent SIGKILL: a non-zero exit is expected
	done   chan struct{} // closed when the process exited and its output was read
	err    error         // cmd.Wait's result, set before done is closed
}

// event is one lease change reported by a worker.
type event struct {
	at    time.Time
	w     string
	kind  string // acquired, lost, released or "shard ended"
	shard string
}

// line is any line the worker writes: a record or a lease event.
type line struct {
	W     string  `json:"w"`
	Shard string  `json:"shard"`
	Event string  `json:"event"`
	Key   string  `json:"key"`
	Seq   string  `json:"seq"`
	Sub   *uint64 `json:"sub"`
	Data  *string `json:"data"`
}

func newFleet(bin, dir string, chk *checker.Checker, args ...string) *fleet {
	return &fleet{bin: bin, dir: dir, chk: chk, args: args, members: make(map[string]*member)}
}

// start starts a worker process with id, which may have run before.
func (f *fleet) start(id string) error {
	logf, err := os.OpenFile(f.logPath(id), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own copy
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	cmd := exec.Command(f.bin, append(slices.Clone(f.args), "-id", id, "-metrics-addr", addr)...)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start worker %s: %w", id, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	f.mu.Lock()
	m := f.members[id]
	if m == nil {
		m = &member{id: id, owned: make(map[string]bool)}
		f.members[id] = m
	}
	m.proc = p
	m.starts++
	m.metrics = addr
	f.mu.Unlock()

	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			f.handle(id, sc.Bytes())
		}
		// Wait only after the output was read to its end, as exec requires.
		p.err = cmd.Wait()
		close(p.done)
	}()
	return nil
}

func (f *fleet) logPath(id string) string { return filepath.Join(f.dir, id+".log") }

// handle takes one line of worker id's standard output.
func (f *fleet) handle(id string, b []byte) {
	var l line
	if err := json.Unmarshal(b, &l); err != nil || l.W != id || l.Shard == "" {
		f.badLine(id, b, "not a record or event line of this worker")
		return
	}
	if l.Event != "" {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.events = append(f.events, event{at: time.Now(), w: id, kind: l.Event, shard: l.Shard})
		m := f.members[id]
		if l.Event == "acquired" {
			m.owned[l.Shard] = true
		} else {
			delete(m.owned, l.Shard)
		}
		return
	}
	if l.Data == nil || l.Sub == nil || l.Seq == "" {
		f.badLine(id, b, "record line without seq, sub or data")
		return
	}
	key, n, err := checker.ParsePayload([]byte(*l.Data))
	if err != nil || key != l.Key {
		f.badLine(id, b, "data is not a sequenced payload of the record's key")
		return
	}
	// The checker is fed as soon as a line is read. A worker writes a
	// batch's lines before the batch can be checkpointed, and a child shard
	// or a shard's next owner starts only after that checkpoint, so the
	// lines of one key reach us in processing order even across workers.
	f.chk.Processed(key, n)
	f.mu.Lock()
	f.members[id].records++
	f.mu.Unlock()
}

func (f *fleet) badLine(id string, b []byte, why string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.bad) < 10 {
		f.bad = append(f.bad, fmt.Sprintf("%s: %s: %.200s", id, why, b))
	}
}

// signal sends sig to the current process of id.
func (f *fleet) signal(id string, sig syscall.Signal) (*process, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.members[id]
	if m == nil || m.proc == nil {
		return nil, fmt.Errorf("no worker %s", id)
	}
	m.proc.asked = true
	if sig == syscall.SIGKILL {
		m.proc.killed = true
		// Its leases are no longer processed, whatever the table says.
		clear(m.owned)
	}
	return m.proc, m.proc.cmd.Process.Signal(sig)
}

// owned returns the shards id processes now, by its events.
func (f *fleet) owned(id string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.members[id].owned))
}

// acquiredAfter reports, for each shard, when a worker other than id first
// acquired it after since; missing shards were not acquired yet.
func (f *fleet) acquiredAfter(since time.Time, id string, shards []string) map[string]event {
	f.mu.Lock()
	defer f.mu.Unlock()
	got := make(map[string]event)
	for _, e := range f.events {
		if e.kind != "acquired" || e.w == id || e.at.Before(since) || !slices.Contains(shards, e.shard) {
			continue
		}
		if _, ok := got[e.shard]; !ok {
			got[e.shard] = e
		}
	}
	return got
}

// freeAddr returns a loopback address with a port free a moment ago, for a
// worker's -metrics-addr.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// metricsAddrs returns the -metrics-addr of each running worker, by id.
func (f *fleet) metricsAddrs() map[string]string {
	out := make(map[string]string)
	for _, id := range f.running() {
		f.mu.Lock()
		out[id] = f.members[id].metrics
		f.mu.Unlock()
	}
	return out
}

// running returns the ids whose current process has not exited.
func (f *fleet) running() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id, m := range f.members {
		select {
		case <-m.proc.done:
		default:
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// failures lists the processes that exited without being asked to, or
// with an error they were not killed for.
func (f *fleet) failures() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, id := range slices.Sorted(maps.Keys(f.members)) {
		p := f.members[id].proc
		select {
		case <-p.done:
			switch {
			case !p.asked:
				out = append(out, fmt.Sprintf("worker %s exited on its own (%v); log: %s", id, p.err, f.logPath(id)))
			case p.err != nil && !p.killed:
				out = append(out, fmt.Sprintf("worker %s exited: %v; log: %s", id, p.err, f.logPath(id)))
			}
		default:
		}
	}
	return out
}

// status is one worker's line in the progress view.
func (f *fleet) status() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(f.members)) {
		m := f.members[id]
		state := ""
		select {
		case <-m.proc.done:
			state = " (stopped)"
			if m.proc.killed {
				state = " (killed)"
			}
		default:
		}
		fmt.Fprintf(&b, "  %s %d [%s]%s", id, m.records, shortShards(slices.Sorted(maps.Keys(m.owned))), state)
	}
	return b.String()
}

// counts returns the records reported per worker id.
func (f *fleet) counts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int)
	for id, m := range f.members {
		out[id] = m.records
	}
	return out
}

// shortShards writes shard ids as their numbers: "shardId-000000000004" as 4.
func shortShards(ids []string) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		n := strings.TrimLeft(strings.TrimPrefix(id, "shardId-"), "0")
		if n == "" {
			n = "0"
		}
		s[i] = n
	}
	return strings.Join(s, " ")
}
