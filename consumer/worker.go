package consumer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/kclgo/kcl/internal/awserr"
	"github.com/kclgo/kcl/internal/backoff"
	"github.com/kclgo/kcl/internal/leasing"
	"github.com/kclgo/kcl/internal/retrieval"
	"github.com/kclgo/kcl/lease"
)

// KinesisAPI is the part of the Kinesis client the Worker calls, with the
// aws-sdk-go-v2 signatures: *kinesis.Client satisfies it.
type KinesisAPI interface {
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

var (
	// ErrAlreadyRunning is returned by a second call to Worker.Run.
	ErrAlreadyRunning = errors.New("consumer: Worker.Run called twice")
	// ErrStreamNotFound is matched by the error Run returns when the
	// stream does not exist (or was deleted while the Worker ran).
	ErrStreamNotFound = errors.New("consumer: stream not found")
	// ErrShutdownTimeout is the cause with which processors' contexts are
	// cancelled when a graceful stop outlasts the shutdown timeout; Run
	// then returns an error matching it.
	ErrShutdownTimeout = errors.New("consumer: shutdown timeout")
)

// Why the Worker stopped processing a shard: the causes of a processor
// context's cancellation and of LeaseEvent.Cause. Branch on them with
// errors.Is.
var (
	// ErrStopping means the Worker is stopping gracefully and releases the
	// lease after the in-flight batch and the final checkpoint.
	ErrStopping = leasing.ErrStopping
	// ErrHandoffRequested means another worker asked for the lease to
	// balance the fleet; the lease is handed over after the in-flight batch
	// and the final checkpoint.
	ErrHandoffRequested = leasing.ErrHandoffRequested
	// ErrLeaseExpired means the Worker could not renew the lease before its
	// deadline (the lease duration after its last successful write, less a
	// small safety margin) and must assume another worker takes it. It
	// matches lease.ErrLeaseLost, as does a renewal fenced off by another
	// worker.
	ErrLeaseExpired = leasing.ErrExpired
)

// Worker consumes one Kinesis stream as one member of a fleet: it takes a
// fair share of the stream's shard leases from the lease table, runs a
// Processor for each, follows resharding, and releases its leases when it
// stops. Create one with New and run it with Run.
//
// One Worker consumes one stream today. A later option will let one Worker
// consume several streams, with KCL's multi-stream lease keys; New's
// signature and the processor API (ShardInfo carries the stream) will not
// change for it.
type Worker struct {
	api     KinesisAPI
	store   lease.Store
	factory Factory
	cfg     config
	coord   *leasing.Coordinator
	log     *zap.Logger

	streamName string
	streamARN  string // set by New for an ARN, by Run otherwise
	byARN      bool   // the stream was given by ARN: address it by ARN only
	// consumerARN is the enhanced fan-out consumer, set by Run when
	// enhanced fan-out is on.
	consumerARN string

	started atomic.Bool
	syncNow chan struct{} // asks the shard-sync loop for an early pass
	// finishedSince is when the shard-sync goroutine first saw each
	// finished lease (see cleanable).
	finishedSince map[string]time.Time

	failOnce sync.Once
	fail     func(error) // set by Run: stops the Worker with a fatal error

	// For Health: written by Run's goroutines, read by any goroutine.
	state    atomic.Uint32 // a WorkerState
	synced   atomic.Bool   // the first shard sync completed
	lastSync atomic.Int64  // Unix nanoseconds at the end of the last successful sync pass
	fatal    atomic.Pointer[error]
	coordPtr atomic.Pointer[leasing.Coordinator] // w.coord, once Run set it
	status   shardStatuses
}

// Backoff of the Worker's own retried calls (DescribeStreamSummary,
// ListShards, lease-table writes).
const (
	retryBase = 100 * time.Millisecond
	retryMax  = 5 * time.Second
)

// efoAPI is what enhanced fan-out needs of the Kinesis client besides
// KinesisAPI; *kinesis.Client has it.
type efoAPI interface {
	retrieval.SubscribeAPI
	retrieval.ConsumerAPI
}

// streamNameRE is Kinesis's rule for stream names.
var streamNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)

// New returns a Worker that processes stream, given by name or by ARN, with
// processors from f, keeping its leases in store (dynamolease.Store for
// DynamoDB, the table of a KCL application included). It validates its
// arguments and options and starts nothing; bad ones give a *ConfigError,
// which matches ErrInvalidConfig.
func New(api KinesisAPI, store lease.Store, stream string, f Factory, opts ...Option) (*Worker, error) {
	if api == nil {
		return nil, configErr("api", "a Kinesis client is required")
	}
	if store == nil {
		return nil, configErr("store", "a lease store is required")
	}
	if f == nil {
		return nil, configErr("factory", "a processor Factory is required")
	}
	if ff, ok := f.(FactoryFunc); ok && ff == nil {
		return nil, configErr("factory", "FactoryFunc(nil)")
	}
	name, arn, err := parseStream(stream)
	if err != nil {
		return nil, err
	}
	cfg, err := newConfig(opts...)
	if err != nil {
		return nil, err
	}
	if _, ok := api.(efoAPI); cfg.efo() && !ok {
		return nil, configErr("WithEnhancedFanOut", "the Kinesis client (%T) lacks SubscribeToShard, DescribeStreamConsumer or RegisterStreamConsumer", api)
	}
	if cfg.workerID == "" {
		cfg.workerID = defaultWorkerID()
	}
	log := cfg.logger.With(zap.String("stream", name), zap.String("worker_id", cfg.workerID))
	cfg.hooks.guard = &hookGuard{log: log}
	// Both coordinators' options are checked now; Run creates the one the
	// table calls for.
	for _, fleet := range []bool{false, true} {
		if fleet && cfg.coordination.kind == coordinationKCL || !fleet && cfg.coordination.kind == coordinationFleet {
			continue
		}
		if fleet && cfg.coordination.kind == coordinationAuto && !leasing.CanFleet(store) {
			continue // Auto means KCL-compatible on this store
		}
		_, err := leasing.NewCoordinator(store, cfg.workerID, cfg.leasingOptions(fleet)...)
		if oe := (*leasing.OptionError)(nil); errors.As(err, &oe) {
			if strings.HasPrefix(oe.Option, "WithFleet(") {
				return nil, configErr(fmt.Sprintf("WithFleetFailoverTime(%v)", cfg.fleetFailover), "%s", oe.Reason)
			}
			return nil, configErr(oe.Option, "%s", oe.Reason)
		} else if err != nil {
			return nil, configErr("lease options", "%v", err)
		}
	}
	w := &Worker{
		api: api, store: store, factory: f, cfg: cfg, log: log,
		streamName: name, streamARN: arn, byARN: arn != "",
		syncNow:       make(chan struct{}, 1),
		finishedSince: make(map[string]time.Time),
	}
	w.state.Store(uint32(WorkerCreated))
	return w, nil
}

// parseStream accepts a stream name or a Kinesis stream ARN
// (arn:PARTITION:kinesis:REGION:ACCOUNT:stream/NAME).
func parseStream(s string) (name, arn string, err error) {
	if strings.HasPrefix(s, "arn:") {
		parts := strings.SplitN(s, ":", 6)
		if len(parts) != 6 || parts[2] != "kinesis" || !strings.HasPrefix(parts[5], "stream/") {
			return "", "", configErr(fmt.Sprintf("stream %q", s), "not a Kinesis stream ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME)")
		}
		name = strings.TrimPrefix(parts[5], "stream/")
		if !streamNameRE.MatchString(name) {
			return "", "", configErr(fmt.Sprintf("stream %q", s), "the ARN's stream name is not a valid stream name")
		}
		return name, s, nil
	}
	if !streamNameRE.MatchString(s) {
		return "", "", configErr(fmt.Sprintf("stream %q", s), "a stream name is 1 to 128 characters of a-z, A-Z, 0-9, '_', '.' and '-'")
	}
	return s, "", nil
}

func defaultWorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// ID returns the worker id written as lease owner.
func (w *Worker) ID() string { return w.cfg.workerID }

// Run consumes the stream until ctx is cancelled, then stops gracefully and
// returns nil; or until a non-retryable error — the stream or the lease
// table does not exist, access is denied — which it returns after the same
// graceful stop. Throttling and transient failures are retried.
//
// Run first checks the stream and lists its shards, creating leases for
// shards the application has not processed (see WithInitialPosition), and
// returns at once if either fails for good. It then runs the lease
// coordinator, the shard-sync loop and, per lease it acquires, a goroutine
// that waits until the shard's parents are processed, creates the Processor
// and feeds it batches.
//
// A graceful stop (ctx cancelled, or a fatal error) stops taking leases and
// fetching, lets each in-flight batch finish, calls ShutdownRequested,
// applies the checkpoint policy and releases the leases. It is bounded by
// one deadline, the shutdown timeout (WithShutdownTimeout) after the stop
// began. At the deadline the Worker stops renewing its leases and writes
// nothing more to the lease table: the leases still held are left to
// expire, and the contexts of processors still running are cancelled with
// cause ErrShutdownTimeout.
//
// Run returns only after every goroutine it started has returned, processors
// included: once it has returned, no Processor method is running or will be
// called. A processor that ignores its cancelled context therefore delays
// Run past the deadline, for as long as it runs (Go cannot stop a
// goroutine); Run logs the number of such processors at the deadline and
// each one as it returns. When the deadline passed with processors running,
// Run's error matches ErrShutdownTimeout. A program that cannot trust its
// processors to return bounds its own exit.
//
// Run may be called once; a second call returns ErrAlreadyRunning.
func (w *Worker) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	w.state.Store(uint32(WorkerStarting))
	defer w.state.Store(uint32(WorkerStopped))
	if err := w.describe(ctx); err != nil {
		return startErr(ctx, err)
	}
	if w.cfg.efo() {
		arn, err := retrieval.EnsureConsumer(ctx, w.api.(efoAPI), retrieval.ConsumerSpec{
			StreamARN: w.streamARN, Name: w.cfg.efoName, ARN: w.cfg.efoARN,
		})
		if err != nil {
			return startErr(ctx, fmt.Errorf("consumer: enhanced fan-out consumer: %w", err))
		}
		w.consumerARN = arn
		w.log.Info("enhanced fan-out", zap.String("consumer_arn", arn))
	}
	if err := w.newCoordinator(ctx); err != nil {
		return startErr(ctx, err)
	}
	if err := w.firstSync(ctx); err != nil {
		return startErr(ctx, err)
	}
	w.synced.Store(true)

	// run ends taking leases, shard sync and fetching: it is cancelled with
	// ctx, or with the cause of a fatal error (fail).
	run, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	w.fail = func(err error) {
		w.failOnce.Do(func() {
			w.log.Error("stopping: non-retryable error", zap.Error(err))
			w.fatal.Store(&err)
			stopRun(err)
		})
	}
	// drain is the context of the held leases and everything done under
	// them: renewals, the processors, the final checkpoints and the lease
	// releases. It is the Worker's one context detached from ctx
	// (context.WithoutCancel), because cancelling ctx must begin the
	// graceful stop, not abort its final checkpoints and releases. The
	// shutdown deadline cancels it with ErrShutdownTimeout; Run's return
	// cancels it in any case.
	drain, endDrain := context.WithCancelCause(context.WithoutCancel(ctx))
	defer endDrain(errRunReturned)

	// The tree: the coordinator (whose Run joins its own renewer), the
	// shard-sync loop and one goroutine per acquired lease, all joined by
	// g.Wait below.
	var g errgroup.Group
	var shards shardCount
	g.Go(func() error {
		err := w.coord.Run(run, drain, func(h *leasing.Held) {
			// Called on the coordinator's goroutine, which is in g: g's
			// count is positive, so Go may be called during g.Wait.
			shards.start()
			g.Go(func() error {
				defer shards.end()
				w.consume(drain, h)
				return nil
			})
		})
		if err != nil {
			w.fail(fmt.Errorf("consumer: lease coordinator: %w", err))
		}
		return err
	})
	g.Go(func() error {
		w.syncLoop(run)
		return nil
	})
	w.state.CompareAndSwap(uint32(WorkerStarting), uint32(WorkerRunning))

	<-run.Done()
	w.state.Store(uint32(WorkerStopping))
	began := time.Now()
	w.log.Info("stopping", zap.Duration("shutdown_timeout", w.cfg.shutdownTimeout))
	fired := make(chan struct{})
	deadline := time.AfterFunc(w.cfg.shutdownTimeout, func() {
		defer close(fired)
		if n := shards.atDeadline(); n > 0 {
			w.log.Error("shutdown timeout: processors still running; their leases are left to expire and Run waits for them to return",
				zap.Int("shards", n), zap.Duration("shutdown_timeout", w.cfg.shutdownTimeout))
		}
		endDrain(ErrShutdownTimeout)
	})
	_ = g.Wait() // a coordinator error already went to fail
	if !deadline.Stop() {
		<-fired // the deadline passed: its callback, too, returns before Run
	}

	var errs []error
	if cause := context.Cause(run); ctx.Err() == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		errs = append(errs, cause)
	}
	if n := shards.late(); n > 0 {
		errs = append(errs, fmt.Errorf("%w: %d processors still ran at the deadline (%v); the last returned %v after the stop began",
			ErrShutdownTimeout, n, w.cfg.shutdownTimeout, time.Since(began).Round(time.Millisecond)))
	}
	w.log.Info("stopped")
	return errors.Join(errs...)
}

// errRunReturned is the cause with which drain ends when Run returns
// before the deadline.
var errRunReturned = errors.New("consumer: Run returned")

// shardCount counts the shard goroutines running, and those still running
// at the shutdown deadline.
type shardCount struct {
	mu      sync.Mutex
	running int
	overran int // running at the deadline
}

func (c *shardCount) start() { c.mu.Lock(); c.running++; c.mu.Unlock() }
func (c *shardCount) end()   { c.mu.Lock(); c.running--; c.mu.Unlock() }

// atDeadline records and returns the shards running at the deadline.
func (c *shardCount) atDeadline() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.overran = c.running
	return c.overran
}

// late returns how many shards were running at the deadline.
func (c *shardCount) late() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.overran
}

// startErr is what Run returns when its start failed with err: nil if ctx
// was cancelled meanwhile (a stop requested before the Worker got going is
// still a stop), err otherwise.
func startErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// describe checks that the stream exists and learns its ARN, retrying
// throttling and transient failures.
func (w *Worker) describe(ctx context.Context) error {
	in := &kinesis.DescribeStreamSummaryInput{}
	if w.streamARN != "" {
		in.StreamARN = &w.streamARN
	} else {
		in.StreamName = &w.streamName
	}
	return w.retry(ctx, kinesisStream, "DescribeStreamSummary", func() error {
		out, err := w.api.DescribeStreamSummary(ctx, in)
		if err != nil {
			return err
		}
		if d := out.StreamDescriptionSummary; d != nil && d.StreamARN != nil && w.streamARN == "" {
			w.streamARN = *d.StreamARN
		}
		return nil
	})
}

// resource is what a call the Worker retries addresses. It decides what an
// error means, by type, never by message: a NotFound from Kinesis is the
// stream gone, while the lease store's errors keep their own meaning (a
// missing lease table among them).
type resource uint8

const (
	// kinesisStream is a Kinesis call about the Worker's stream.
	kinesisStream resource = iota + 1
	// leaseTable is a lease store call.
	leaseTable
)

// verdict is what retry does about an error.
type verdict uint8

const (
	retryIt    verdict = iota + 1 // back off and call again
	stopped                       // ctx ended: return its cause
	streamGone                    // the stream does not exist: ErrStreamNotFound
	giveUp                        // retrying cannot fix it: return it
)

// judge classifies an error of a call to res. ctxDone reports whether the
// caller's context has ended.
func judge(res resource, err error, ctxDone bool) verdict {
	k := awserr.Classify(err)
	switch {
	case k.Retryable(), res == leaseTable && errors.Is(err, lease.ErrThrottled):
		return retryIt
	case k == awserr.Canceled, ctxDone:
		return stopped
	case res == kinesisStream && k == awserr.NotFound:
		return streamGone
	default:
		return giveUp
	}
}

// retry calls f, a call named op to res, until it succeeds, ctx ends, or it
// fails with an error that retrying cannot fix, which it returns
// classified: a missing stream wraps ErrStreamNotFound.
func (w *Worker) retry(ctx context.Context, res resource, op string, f func() error) error {
	pol := backoff.New(retryBase, retryMax, nil)
	for attempt := 0; ; attempt++ {
		err := f()
		if err == nil {
			return nil
		}
		switch judge(res, err, ctx.Err() != nil) {
		case retryIt:
			w.log.Warn("retrying", zap.String("op", op), zap.Int("attempt", attempt+1), zap.Error(err))
		case stopped:
			return context.Cause(ctx)
		case streamGone:
			return fmt.Errorf("%w: %s: %s: %w", ErrStreamNotFound, w.streamName, op, err)
		default:
			return fmt.Errorf("consumer: %s: %w", op, err)
		}
		if err := pol.Wait(ctx, attempt); err != nil {
			return err
		}
	}
}

// consume runs the shard of one acquired lease, then gives the lease back.
// drain is Run's drain context: the final checkpoint and the release are
// made under it, so after the shutdown deadline they are not made and the
// lease is left to expire.
func (w *Worker) consume(drain context.Context, h *leasing.Held) {
	s := newShardRun(w, h)
	defer w.status.remove(s.st)
	w.cfg.hooks.leaseChanged(LeaseEvent{
		StreamName: w.streamName, WorkerID: w.cfg.workerID, ShardID: s.shardID,
		Kind: LeaseAcquired, Since: h.AcquiredAt(),
	})
	ev := s.run(drain)
	if errors.Is(context.Cause(drain), ErrShutdownTimeout) {
		s.log.Warn("processing returned after the shutdown deadline; the lease is left to expire")
	}
	if err := h.Done(drain); err != nil {
		s.log.Warn("giving up the lease failed; it will expire", zap.Error(err))
	}
	ev.StreamName, ev.WorkerID, ev.ShardID = w.streamName, w.cfg.workerID, s.shardID
	if c, ok := s.proc.(Closer); ok {
		ctx, cancel := context.WithTimeout(drain, w.cfg.shutdownTimeout)
		if err := protect(func() error { c.Close(ctx, ev); return nil }); err != nil {
			s.log.Error("Close panicked", zap.Error(err))
			s.processorFailed(MethodClose, 1, err, 0, false)
		}
		cancel()
	}
	w.cfg.hooks.leaseChanged(ev)
}

// requestSync asks the shard-sync loop for a pass soon, without blocking.
func (w *Worker) requestSync() {
	select {
	case w.syncNow <- struct{}{}:
	default:
	}
}

// readMode is how every shard of the Worker is read: enhanced fan-out
// through the consumer Run registered, or polling with the Worker's
// options. Only the shard (retrieval.Shard) differs between readers.
func (w *Worker) readMode() retrieval.Mode {
	if w.cfg.efo() {
		return retrieval.FanOut{ConsumerARN: w.consumerARN}
	}
	return retrieval.Polling{
		MaxRecords: w.cfg.maxRecords,
		IdleTime:   w.cfg.idleTime,
		MaxBatches: w.cfg.prefetchBatches,
		MaxBytes:   w.cfg.prefetchBytes,
	}
}
