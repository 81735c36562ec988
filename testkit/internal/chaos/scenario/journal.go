package scenario

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/kclgo/kcl/testkit/internal/chaos/history"
)

// journal is the harness's own history log (Produced and Lifecycle lines)
// and its fault log (one text line per action, for people).
type journal struct {
	mu     sync.Mutex
	hist   *os.File
	faults *os.File
	out    io.Writer // progress, may be io.Discard
	start  time.Time
	buf    []byte
	err    error
}

func openJournal(histPath, faultPath string, out io.Writer, start time.Time) (*journal, error) {
	h, err := os.OpenFile(histPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(faultPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		h.Close()
		return nil, err
	}
	return &journal{hist: h, faults: f, out: out, start: start}, nil
}

// lines appends history lines in one write.
func (j *journal) lines(ls ...history.Line) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.buf = j.buf[:0]
	for _, l := range ls {
		var err error
		if j.buf, err = history.AppendLine(j.buf, l); err != nil && j.err == nil {
			j.err = err
		}
	}
	if _, err := j.hist.Write(j.buf); err != nil && j.err == nil {
		j.err = err
	}
}

// logf writes one line to the fault log and to the progress writer,
// prefixed by the time since the start.
func (j *journal) logf(format string, args ...any) {
	line := fmt.Sprintf("%8.3fs  %s\n", time.Since(j.start).Seconds(), fmt.Sprintf(format, args...))
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := io.WriteString(j.faults, line); err != nil && j.err == nil {
		j.err = err
	}
	_, _ = io.WriteString(j.out, line)
}

func (j *journal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	err1, err2 := j.hist.Close(), j.faults.Close()
	for _, err := range []error{j.err, err1, err2} {
		if err != nil {
			return err
		}
	}
	return nil
}
