// Package host is the kcl multilang host: a consumer.Worker whose
// processors are MultiLangDaemon child processes, one per shard, driven
// through the child and protocol packages.
//
// The Worker does the leasing, reading, de-aggregation and checkpoint
// storage; this package turns each of its processor calls into a protocol
// call on the shard's child (see shard.go) and maps the properties file onto
// the Worker's options (see options.go).
package host

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/kclgo/kcl/cmd/kcl/internal/multilang/child"
	"github.com/kclgo/kcl/cmd/kcl/internal/properties"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease"
)

// Config is what a Host needs.
type Config struct {
	// Properties is the validated properties file.
	Properties *properties.Config
	// Kinesis is the Kinesis client of the stream.
	Kinesis consumer.KinesisAPI
	// Store is the lease store; the caller has made sure its table exists.
	Store lease.Store
	// Logger receives the host's entries and every child's stderr lines.
	// Nil means no logging.
	Logger *zap.Logger
	// Hooks are handed to the Worker (consumer.WithHooks).
	Hooks []any
}

// Stats counts what the host did with its children.
type Stats struct {
	// Started is how many child processes were started.
	Started int64
	// Failed is how many children failed a call (exited, timed out, sent
	// the wrong status, ...) and were killed.
	Failed int64
	// Replayed is how many records were delivered again to a replacement
	// child, because its predecessor had not checkpointed them.
	Replayed int64
	// Garbage is how many stdout lines of children were neither a status
	// nor a checkpoint request.
	Garbage int64
	// Running is how many children are running now.
	Running int64
}

// Host runs one Worker whose processors are child processes.
type Host struct {
	cfg      Config
	props    *properties.Config
	log      *zap.Logger
	workerID string
	// shardLog is log with the fields the Worker's own entries carry.
	shardLog *zap.Logger

	mu       sync.Mutex
	children map[*child.Child]struct{}
	killed   bool

	started, failed, replayed, garbage atomic.Int64
	// worker is Run's Worker, once created: Health reads it.
	worker atomic.Pointer[consumer.Worker]
}

// New validates cfg and returns a Host; it starts nothing. A workerId
// missing from the properties is generated here, as a random UUID like
// KCL's.
func New(cfg Config) (*Host, error) {
	switch {
	case cfg.Properties == nil:
		return nil, errors.New("host: no properties")
	case cfg.Kinesis == nil:
		return nil, errors.New("host: no Kinesis client")
	case cfg.Store == nil:
		return nil, errors.New("host: no lease store")
	case len(cfg.Properties.Executable) == 0:
		return nil, errors.New("host: executableName is empty")
	}
	// Every shard would fail the same way: say so once, before leasing.
	if _, err := exec.LookPath(cfg.Properties.Executable[0]); err != nil {
		return nil, fmt.Errorf("host: executableName: %w", err)
	}
	h := &Host{cfg: cfg, props: cfg.Properties, log: cfg.Logger, children: map[*child.Child]struct{}{}}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	h.workerID = cfg.Properties.WorkerID
	if h.workerID == "" {
		id, err := randomUUID()
		if err != nil {
			return nil, fmt.Errorf("host: generating a worker id: %w", err)
		}
		h.workerID = id
	}
	return h, nil
}

// WorkerID is the id the host's Worker writes as lease owner.
func (h *Host) WorkerID() string { return h.workerID }

// Run runs the Worker until ctx is cancelled, then stops gracefully:
// shutdownRequested to every child, final checkpoints, leases released,
// children reaped, within the properties' shutdownGraceMillis (or the
// Worker's shutdown timeout when it is unset). It returns nil after a
// graceful stop.
func (h *Host) Run(ctx context.Context) error {
	stream := h.props.StreamName
	if h.props.StreamARN != "" {
		stream = h.props.StreamARN
	}
	h.shardLog = h.log.With(zap.String("stream", stream), zap.String("worker_id", h.workerID))
	for _, w := range h.warnings() {
		h.log.Warn(w)
	}
	w, err := consumer.New(h.cfg.Kinesis, h.cfg.Store, stream, consumer.FactoryFunc(h.newShard), h.options()...)
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	h.worker.Store(w)
	h.log.Info("multilang host starting", zap.String("worker_id", h.workerID), zap.String("stream", stream),
		zap.String("table", h.props.TableName), zap.Strings("executable", h.props.Executable),
		zap.Stringer("retrieval", h.props.RetrievalMode))
	err = w.Run(ctx)
	st := h.Stats()
	h.log.Info("multilang host stopped", zap.Int64("children_started", st.Started),
		zap.Int64("children_failed", st.Failed), zap.Int64("records_replayed", st.Replayed),
		zap.Int64("garbage_lines", st.Garbage), zap.Int64("children_running", st.Running))
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	return nil
}

// Health returns the health of the host's Worker (see consumer.Health):
// before Run has created it, a Worker that has not started.
func (h *Host) Health() consumer.Health {
	if w := h.worker.Load(); w != nil {
		return w.Health()
	}
	return consumer.Health{At: time.Now(), StreamName: h.props.StreamName, WorkerID: h.workerID, State: consumer.WorkerCreated}
}

// Kill kills every child process at once (SIGKILL) and refuses to start
// new ones; a Run in progress then returns soon. It is for a second
// interrupt signal.
func (h *Host) Kill() {
	h.mu.Lock()
	h.killed = true
	cs := make([]*child.Child, 0, len(h.children))
	for c := range h.children {
		cs = append(cs, c)
	}
	h.mu.Unlock()
	for _, c := range cs {
		_ = c.Kill()
	}
}

// Stats returns the host's counters.
func (h *Host) Stats() Stats {
	h.mu.Lock()
	running := int64(len(h.children))
	h.mu.Unlock()
	return Stats{
		Started:  h.started.Load(),
		Failed:   h.failed.Load(),
		Replayed: h.replayed.Load(),
		Garbage:  h.garbage.Load(),
		Running:  running,
	}
}

// errKilled is returned for a child the host may not start after Kill.
var errKilled = errors.New("host: killed; starting no more children")

// startChild starts a child for shard and registers it for Kill.
func (h *Host) startChild(ctx context.Context, shard string, log *zap.Logger) (*child.Child, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.killed {
		return nil, errKilled
	}
	c, err := child.Start(ctx, child.Spec{
		Argv:    h.props.Executable,
		ShardID: shard,
		Logger:  log,
		Timeout: h.props.Timeout,
	})
	if err != nil {
		return nil, err
	}
	h.children[c] = struct{}{}
	h.started.Add(1)
	return c, nil
}

// forget unregisters a child that was closed or killed, adding its garbage
// count to the host's.
func (h *Host) forget(c *child.Child) {
	h.garbage.Add(int64(c.Garbage()))
	h.mu.Lock()
	delete(h.children, c)
	h.mu.Unlock()
}
