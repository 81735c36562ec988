package scenario

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/kclgo/kcl/testkit/internal/chaos/history"
)

// fleet runs the worker processes. A worker id is a member; each start of
// it is a new process with its own history log (<id>.<n>.jsonl), so that
// a line cut short by SIGKILL is always the last of its file. In the
// multilang mode a member is a host, started with its own properties file
// (<id>.<n>.properties), whose children write the logs.
type fleet struct {
	cmd  []string // worker command, before the per-process flags
	args []string // flags common to every worker
	env  []string
	dir  string
	j    *journal
	// dynamoDB returns the DynamoDB endpoint of worker id: its own
	// listener of the DynamoDB proxy, so that a partition cuts it alone.
	// It is called with mu held.
	dynamoDB func(id string) (string, error)
	// host is the host command in the multilang mode (nil otherwise), and
	// props renders the properties file of worker id whose children log
	// to logPrefix.* and reach DynamoDB at ddbURL.
	host  []string
	props func(id, logPrefix, ddbURL string) (string, error)

	mu      sync.Mutex
	members map[string]*member
	logs    []string
}

type member struct {
	starts int
	proc   *process
}

type process struct {
	cmd     *exec.Cmd
	asked   bool // signalled by the harness: an exit is expected
	killed  bool
	stopped bool // SIGSTOPped and not yet continued
	done    chan struct{}
	err     error
}

// start starts a process for id, which must not be running.
func (f *fleet) start(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.members[id]
	if m == nil {
		m = &member{}
		f.members[id] = m
	}
	if m.proc != nil && !isDone(m.proc) {
		return fmt.Errorf("worker %s is running", id)
	}
	ddbURL, err := f.dynamoDB(id)
	if err != nil {
		return err
	}
	m.starts++
	prefix := filepath.Join(f.dir, fmt.Sprintf("%s.%d", id, m.starts))
	logPath := prefix + ".jsonl"
	var cmd *exec.Cmd
	if f.host != nil {
		props, err := f.props(id, prefix, ddbURL)
		if err != nil {
			return err
		}
		if err := os.WriteFile(prefix+".properties", []byte(props), 0o644); err != nil {
			return err
		}
		cmd = exec.Command(f.host[0], append(slices.Clone(f.host[1:]), "--properties-file", prefix+".properties")...)
		logPath = ""
	} else {
		args := append(slices.Clone(f.cmd[1:]), f.args...)
		args = append(args, "-id", id, "-log", logPath)
		cmd = exec.Command(f.cmd[0], args...)
	}
	errf, err := os.OpenFile(filepath.Join(f.dir, id+".stderr"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer errf.Close()
	cmd.Env = append(slices.Clone(f.env), "KCL_DYNAMODB_ENDPOINT="+ddbURL)
	cmd.Stderr = errf
	// A process group of its own: when the harness's group is orphaned
	// (the shell that started it exits) while a worker is SIGSTOPped, the
	// kernel sends the stopped group SIGHUP, which would kill a worker the
	// harness means to continue; and a terminal's ^C reaches the harness
	// alone, which stops the workers itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	f.j.lines(history.Lifecycle{T: time.Now(), Worker: id, Kind: history.Start})
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start worker %s: %w", id, err)
	}
	if logPath != "" {
		f.logs = append(f.logs, logPath)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	m.proc = p
	go func() {
		p.err = cmd.Wait()
		f.j.lines(history.Lifecycle{T: time.Now(), Worker: id, Kind: history.Exit})
		close(p.done)
	}()
	return nil
}

func isDone(p *process) bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to id's process, journaling it as kind first (for
// SIGCONT, after) unless kind is "".
func (f *fleet) signal(id string, sig syscall.Signal, kind history.LifecycleKind) (*process, error) {
	return f.signalAs(id, sig, kind, false)
}

// signalAs is signal, journaling whether id was signalled as the fleet's
// leader.
func (f *fleet) signalAs(id string, sig syscall.Signal, kind history.LifecycleKind, leader bool) (*process, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.members[id]
	if m == nil || m.proc == nil || isDone(m.proc) {
		return nil, fmt.Errorf("worker %s is not running", id)
	}
	p := m.proc
	if sig == syscall.SIGTERM || sig == syscall.SIGKILL {
		p.asked = true
	}
	p.killed = p.killed || sig == syscall.SIGKILL
	if kind != "" && sig != syscall.SIGCONT {
		f.j.lines(history.Lifecycle{T: time.Now(), Worker: id, Kind: kind, Leader: leader})
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return p, err
	}
	switch sig {
	case syscall.SIGSTOP:
		p.stopped = true
	case syscall.SIGCONT:
		p.stopped = false
		if kind != "" {
			f.j.lines(history.Lifecycle{T: time.Now(), Worker: id, Kind: kind})
		}
	case syscall.SIGKILL:
		p.stopped = false
	}
	return p, nil
}

// wait waits up to d for p to exit and reports whether it did.
func wait(p *process, d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// ids returns the member ids, sorted.
func (f *fleet) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.members))
}

// running reports whether id's process is running.
func (f *fleet) running(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.members[id]
	return m != nil && m.proc != nil && !isDone(m.proc)
}

// stopAll continues stopped processes, sends SIGTERM to every running one,
// waits up to grace, then kills what is left. It journals no SIGTERM: the
// end of a run is not a fault (the checker would count its shards as
// failovers that never resolved).
func (f *fleet) stopAll(grace time.Duration) {
	var procs []*process
	for _, id := range f.ids() {
		if !f.running(id) {
			continue
		}
		_, _ = f.signal(id, syscall.SIGCONT, "")
		if p, err := f.signal(id, syscall.SIGTERM, ""); err == nil {
			procs = append(procs, p)
		}
	}
	deadline := time.Now().Add(grace)
	for _, p := range procs {
		if !wait(p, time.Until(deadline)) {
			p.killed = true
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// problems lists processes that exited without being asked to, or failed
// without being killed.
func (f *fleet) problems() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, id := range slices.Sorted(maps.Keys(f.members)) {
		p := f.members[id].proc
		if p == nil || !isDone(p) {
			continue
		}
		switch {
		case !p.asked:
			out = append(out, fmt.Sprintf("worker %s exited on its own (%v); see %s", id, p.err, filepath.Join(f.dir, id+".stderr")))
		case p.err != nil && !p.killed:
			out = append(out, fmt.Sprintf("worker %s exited: %v; see %s", id, p.err, filepath.Join(f.dir, id+".stderr")))
		}
	}
	return out
}

// logFiles returns every worker history log so far; in the multilang mode,
// every child's (which the children name).
func (f *fleet) logFiles() []string {
	if f.host != nil {
		logs, _ := filepath.Glob(filepath.Join(f.dir, "w*.jsonl")) // the pattern is valid
		return logs
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.logs)
}

// pid returns the pid of id's running process.
func (f *fleet) pid(id string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.members[id]
	if m == nil || m.proc == nil || isDone(m.proc) {
		return 0, fmt.Errorf("worker %s is not running", id)
	}
	return m.proc.cmd.Process.Pid, nil
}
