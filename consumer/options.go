package consumer

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/internal/leasing"
	"github.com/kclgo/kcl/internal/retrieval"
)

// Option configures the Worker. Options are applied in order and validated
// together when the Worker is created; an invalid option makes New return a
// *ConfigError naming it.
type Option func(*config)

// ErrInvalidConfig is matched (errors.Is) by every error New returns for bad
// arguments or options.
var ErrInvalidConfig = errors.New("consumer: invalid configuration")

// ConfigError is the error New returns for an invalid argument or option.
type ConfigError struct {
	// Option names the argument or option at fault with its value, such as
	// "WithRetryLimit(-1)" or "stream".
	Option string
	// Reason says what is wrong with it.
	Reason string
}

func (e *ConfigError) Error() string { return "consumer: " + e.Option + ": " + e.Reason }

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

func configErr(option, format string, args ...any) error {
	return &ConfigError{Option: option, Reason: fmt.Sprintf(format, args...)}
}

// config holds every setting an Option can change. Defaults are set in
// defaultConfig and nowhere else.
type config struct {
	retryLimit       int
	retryBase        time.Duration
	retryMax         time.Duration
	errorHandler     ErrorHandler
	handlerSet       bool
	checkpointPolicy CheckpointPolicy

	workerID         string
	logger           *zap.Logger
	initial          checkpoint.Position
	initialTimestamp time.Time
	leaseDuration    time.Duration
	renewInterval    time.Duration // 0: leaseDuration / 3
	takeInterval     time.Duration
	assignmentPoll   time.Duration
	handoffTimeout   time.Duration // 0: leaseDuration
	maxLeases        int
	shardSync        time.Duration
	parentPoll       time.Duration
	maxRecords       int
	idleTime         time.Duration
	prefetchBatches  int
	prefetchBytes    int
	pollingSet       []string // the polling options given, for the check against enhanced fan-out
	efoName          string
	efoARN           string
	shutdownTimeout  time.Duration
	hooks            hooks
	hookErr          error
	coordination     Coordination
	fleetFailover    time.Duration // 0: leasing.DefaultFailoverTime
}

// Defaults, documented on the options that change them.
const (
	defaultRetryBase       = 100 * time.Millisecond
	defaultRetryMax        = 30 * time.Second
	defaultShardSync       = time.Minute
	defaultParentPoll      = time.Second
	defaultShutdownTimeout = 20 * time.Second
)

func defaultConfig() config {
	return config{
		retryLimit:       0, // retry forever
		retryBase:        defaultRetryBase,
		retryMax:         defaultRetryMax,
		checkpointPolicy: CheckpointManual(),
		logger:           zap.NewNop(),
		initial:          checkpoint.Latest,
		shardSync:        defaultShardSync,
		parentPoll:       defaultParentPoll,
		maxRecords:       retrieval.DefaultMaxRecords,
		idleTime:         retrieval.DefaultIdleTime,
		prefetchBatches:  retrieval.DefaultMaxBatches,
		prefetchBytes:    retrieval.DefaultMaxBytes,
		shutdownTimeout:  defaultShutdownTimeout,
		leaseDuration:    leasing.DefaultLeaseDuration,
		takeInterval:     leasing.DefaultTakeInterval,
		assignmentPoll:   leasing.DefaultAssignmentPollInterval,
	}
}

// leasingOptions maps the lease options onto the coordinator's, for
// kcl-fleet coordination when fleet is true.
func (c *config) leasingOptions(fleet bool) []leasing.Option {
	if fleet {
		return []leasing.Option{
			leasing.WithFleet(c.fleetFailover, 0),
			leasing.WithLeaseDuration(c.leaseDuration), // how long a per-lease owner outside the fleet keeps its leases
			leasing.WithAssignmentPollInterval(c.assignmentPoll),
			leasing.WithMaxLeases(c.maxLeases),
		}
	}
	return []leasing.Option{
		leasing.WithLeaseDuration(c.leaseDuration),
		leasing.WithRenewInterval(c.renewInterval),
		leasing.WithTakeInterval(c.takeInterval),
		leasing.WithAssignmentPollInterval(c.assignmentPoll),
		leasing.WithHandoffTimeout(c.handoffTimeout),
		leasing.WithMaxLeases(c.maxLeases),
	}
}

// newConfig applies opts over the defaults and validates the result. nil
// options are ignored.
func newConfig(opts ...Option) (config, error) {
	c := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if err := c.validate(); err != nil {
		return config{}, err
	}
	return c, nil
}

func (c *config) validate() error {
	if c.retryLimit < 0 {
		return configErr(fmt.Sprintf("WithRetryLimit(%d)", c.retryLimit), "limit must not be negative (0 retries forever)")
	}
	if c.retryBase <= 0 {
		return configErr(fmt.Sprintf("WithRetryBackoff(%v, %v)", c.retryBase, c.retryMax), "base must be positive")
	}
	if c.retryMax < c.retryBase {
		return configErr(fmt.Sprintf("WithRetryBackoff(%v, %v)", c.retryBase, c.retryMax), "max must not be less than base")
	}
	if c.handlerSet && c.errorHandler == nil {
		return configErr("WithErrorHandler(nil)", "handler must not be nil")
	}
	if c.handlerSet && c.retryLimit == 0 {
		return configErr("WithErrorHandler", "WithErrorHandler needs WithRetryLimit above 0: with the default limit of 0 a failing batch is retried forever and the handler is never called")
	}
	if err := c.checkpointPolicy.validate(); err != nil {
		return configErr(fmt.Sprintf("WithCheckpointPolicy(%v)", c.checkpointPolicy), "%v", err)
	}
	if c.logger == nil {
		return configErr("WithLogger(nil)", "logger must not be nil (the default is a no-op logger)")
	}
	if c.fleetFailover != 0 && c.fleetFailover < 100*time.Millisecond {
		return configErr(fmt.Sprintf("WithFleetFailoverTime(%v)", c.fleetFailover), "must be at least 100ms (0 means the default, 2s)")
	}
	switch c.initial.Kind() {
	case checkpoint.KindTrimHorizon, checkpoint.KindLatest:
	case checkpoint.KindAtTimestamp:
		if c.initialTimestamp.IsZero() {
			return configErr("WithInitialPosition(AT_TIMESTAMP)", "use WithInitialTimestamp, which sets the timestamp")
		}
	default:
		return configErr(fmt.Sprintf("WithInitialPosition(%v)", c.initial), "must be checkpoint.TrimHorizon or checkpoint.Latest (or use WithInitialTimestamp)")
	}
	if c.shardSync <= 0 {
		return configErr(fmt.Sprintf("WithShardSyncInterval(%v)", c.shardSync), "interval must be positive")
	}
	if c.parentPoll <= 0 {
		return configErr(fmt.Sprintf("WithParentPollInterval(%v)", c.parentPoll), "interval must be positive")
	}
	if c.maxRecords < 1 || c.maxRecords > retrieval.DefaultMaxRecords {
		return configErr(fmt.Sprintf("WithMaxRecords(%d)", c.maxRecords), "must be in [1, 10000], the GetRecords limit")
	}
	if c.idleTime < retrieval.MinIdleTime {
		return configErr(fmt.Sprintf("WithIdleTime(%v)", c.idleTime), "must be at least 200ms: Kinesis allows 5 GetRecords calls per second per shard")
	}
	if c.prefetchBatches < 1 || c.prefetchBytes < 1 {
		return configErr(fmt.Sprintf("WithPrefetch(%d, %d)", c.prefetchBatches, c.prefetchBytes), "both bounds must be positive")
	}
	if c.efoName != "" && c.efoARN != "" {
		return configErr("WithEnhancedFanOut and WithEnhancedFanOutConsumerARN", "give the consumer by name or by ARN, not both")
	}
	if c.efoName != "" || c.efoARN != "" {
		if len(c.pollingSet) > 0 {
			return configErr(c.pollingSet[0], "is a polling option, and enhanced fan-out is on: the two retrieval modes are exclusive")
		}
		if c.efoName != "" && !consumerNameRE.MatchString(c.efoName) {
			return configErr(fmt.Sprintf("WithEnhancedFanOut(%q)", c.efoName), "a consumer name is 1 to 128 characters of a-z, A-Z, 0-9, '_', '.' and '-'")
		}
		if c.efoARN != "" && !strings.HasPrefix(c.efoARN, "arn:") {
			return configErr(fmt.Sprintf("WithEnhancedFanOutConsumerARN(%q)", c.efoARN), "not an ARN")
		}
	}
	if c.shutdownTimeout <= 0 {
		return configErr(fmt.Sprintf("WithShutdownTimeout(%v)", c.shutdownTimeout), "timeout must be positive")
	}
	if c.hookErr != nil {
		return c.hookErr
	}
	return nil
}

// WithRetryLimit sets how many times a batch whose ProcessRecords call
// failed (returned an error or panicked) is delivered again before the
// ErrorHandler decides what to do with it. The default, 0, retries forever:
// a batch is never skipped. n must not be negative. With a limit and no
// WithErrorHandler the Worker stops the shard (StopShard) once the retries
// are used up.
func WithRetryLimit(n int) Option {
	return func(c *config) { c.retryLimit = n }
}

// WithErrorHandler sets the function that decides, once a batch has failed
// on every retry allowed by WithRetryLimit, whether to Retry it, Skip it or
// StopShard. It requires a retry limit above 0, since without one the
// handler would never be called. h must not be nil. The default, used when
// a limit is set without a handler, always returns StopShard.
func WithErrorHandler(h ErrorHandler) Option {
	return func(c *config) { c.errorHandler, c.handlerSet = h, true }
}

// WithRetryBackoff sets the delays between deliveries of a failing batch:
// the n-th retry waits a random duration between half of and the whole of
// base·2ⁿ, capped at max, so that retries slow down and spread out. base
// must be positive and max at least base. The defaults are 100ms and 30s.
func WithRetryBackoff(base, max time.Duration) Option {
	return func(c *config) { c.retryBase, c.retryMax = base, max }
}

// WithCheckpointPolicy sets when the Worker checkpoints on the processor's
// behalf. The default is CheckpointManual(). Whatever the policy, the Worker
// writes SHARD_END at the end of a closed shard itself.
func WithCheckpointPolicy(p CheckpointPolicy) Option {
	return func(c *config) { c.checkpointPolicy = p }
}

// WithWorkerID sets the id the Worker writes as lease owner. It must be
// unique in the fleet and stable for the life of the process. The default is
// the host name, the process id and a random suffix.
func WithWorkerID(id string) Option {
	return func(c *config) { c.workerID = id }
}

// WithLogger sets the logger. Every entry carries the fields stream and
// worker_id, and shard_id where one shard is concerned. The default logs
// nothing.
func WithLogger(l *zap.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithInitialPosition sets where processing starts in the parts of the
// stream the application has never processed (no lease, no checkpoint):
// checkpoint.TrimHorizon (the oldest record kept) or checkpoint.Latest (only
// records put from now on). The default is checkpoint.Latest, as in KCL.
// Shards that follow processed ones always start at their first record.
func WithInitialPosition(p checkpoint.Position) Option {
	return func(c *config) { c.initial, c.initialTimestamp = p, time.Time{} }
}

// WithInitialTimestamp makes processing of never-processed parts of the
// stream start at the first record put at or after t (AT_TIMESTAMP).
func WithInitialTimestamp(t time.Time) Option {
	return func(c *config) { c.initial, c.initialTimestamp = checkpoint.AtTimestamp, t }
}

// WithLeaseDuration sets how long a lease stays valid without renewal (KCL's
// failoverTimeMillis): a crashed worker's shards are taken over about this
// long after its last renewal (the Worker wakes at the earliest instant an
// observed lease can expire, so at most this plus WithTakeInterval). The
// default is 10 seconds, KCL's default, and it must be at least the
// failoverTimeMillis of any Java KCL worker sharing the lease table: a Java
// holder counts its lease valid for its own failover time after its last
// renewal, so a shorter duration here takes leases their Java holders still
// process (duplicates, and Java checkpoints that fail). A fleet of kcl
// workers only may lower it for faster failover, at the cost of more renewal
// writes (one per lease per duration/3: 1,080 per lease-hour at 10 s, 1,800
// at 6 s).
func WithLeaseDuration(d time.Duration) Option {
	return func(c *config) { c.leaseDuration = d }
}

// WithRenewInterval sets how often held leases are renewed. It must be less
// than half of the holder's validity — the lease duration less the expiry
// margin, max(1 % of the duration, 200 ms) — so that one failed renewal is
// retried before the holder's deadline. The default is a third of the lease
// duration.
func WithRenewInterval(d time.Duration) Option {
	return func(c *config) { c.renewInterval = d }
}

// WithTakeInterval sets how often the Worker reads the whole lease table to
// take unowned and expired leases and to rebalance the fleet; each pass is
// one table scan. The Worker also wakes at the earliest instant an observed
// lease can expire, so crash failover does not wait for the next pass. The
// default is 2 seconds.
func WithTakeInterval(d time.Duration) Option {
	return func(c *config) { c.takeInterval = d }
}

// WithAssignmentPollInterval sets how often the Worker checks for leases
// handed to it (by a peer that stops gracefully, or at the end of a handoff
// it asked for) through the lease table's owner index, when the store has
// one (dynamolease does). The default is 500 milliseconds.
func WithAssignmentPollInterval(d time.Duration) Option {
	return func(c *config) { c.assignmentPoll = d }
}

// WithHandoffTimeout sets how long the Worker waits for a peer to hand over a
// lease it asked for (to balance the fleet) before taking it anyway. It must
// be at least the lease duration: only then has an unresponsive holder
// stopped by its own clock. The default is the lease duration.
func WithHandoffTimeout(d time.Duration) Option {
	return func(c *config) { c.handoffTimeout = d }
}

// WithMaxLeases caps how many leases the Worker holds at once (KCL's
// maxLeasesForWorker). The default, 0, means no cap.
func WithMaxLeases(n int) Option {
	return func(c *config) { c.maxLeases = n }
}

// WithShardSyncInterval sets how often the Worker lists the stream's shards
// to create leases for new shards and to delete the leases of finished
// shards whose children have started. The Worker also syncs at start and
// whenever a shard it processes ends. The default is one minute.
func WithShardSyncInterval(d time.Duration) Option {
	return func(c *config) { c.shardSync = d }
}

// WithParentPollInterval sets how often the Worker checks, for a child shard
// whose lease it holds, whether every parent shard has been processed to its
// end. It bounds how long a child waits after its last parent ends. The
// default is one second.
func WithParentPollInterval(d time.Duration) Option {
	return func(c *config) { c.parentPoll = d }
}

// WithMaxRecords sets the GetRecords limit: at most n Kinesis records per
// call, 1 to 10,000 (the default).
func WithMaxRecords(n int) Option {
	return func(c *config) {
		c.maxRecords, c.pollingSet = n, append(c.pollingSet, fmt.Sprintf("WithMaxRecords(%d)", n))
	}
}

// WithIdleTime sets the least time between the starts of two GetRecords
// calls on one shard, at least 200ms. Kinesis allows 5 calls per second per
// shard, shared by every application reading it. The default is one second.
func WithIdleTime(d time.Duration) Option {
	return func(c *config) {
		c.idleTime, c.pollingSet = d, append(c.pollingSet, fmt.Sprintf("WithIdleTime(%v)", d))
	}
}

// WithPrefetch bounds what the Worker fetches ahead of the processor, per
// shard: at most batches GetRecords results, or bytes bytes of record data,
// fetched but not yet delivered. The defaults are 3 and 8 MiB.
func WithPrefetch(batches, bytes int) Option {
	return func(c *config) {
		c.prefetchBatches, c.prefetchBytes = batches, bytes
		c.pollingSet = append(c.pollingSet, fmt.Sprintf("WithPrefetch(%d, %d)", batches, bytes))
	}
}

// consumerNameRE is Kinesis's rule for stream consumer names.
var consumerNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)

// WithEnhancedFanOut makes the Worker read shards through enhanced fan-out
// (SubscribeToShard over HTTP/2) instead of polling GetRecords: the
// application gets its own 2 MB/s per shard and records arrive about 70 ms
// after they are put, where polling applications share 2 MB/s and 5 calls
// per second per shard. name is the stream consumer to read as; the Worker
// registers it (RegisterStreamConsumer) if it does not exist and waits until
// it is ACTIVE. Every worker of the application uses the same name.
//
// Enhanced fan-out and the polling options (WithMaxRecords, WithIdleTime,
// WithPrefetch) are exclusive. The processor API, checkpoints, resharding
// and shutdown behave exactly as with polling. The api given to New must
// also have SubscribeToShard, DescribeStreamConsumer and
// RegisterStreamConsumer (*kinesis.Client has them).
//
// The Worker never deregisters the consumer: registered consumers are billed
// per shard-hour, so deregister one you no longer use, for example with
// `aws kinesis deregister-stream-consumer --stream-arn ARN --consumer-name
// NAME` or the SDK's DeregisterStreamConsumer.
func WithEnhancedFanOut(name string) Option {
	return func(c *config) { c.efoName = name }
}

// WithEnhancedFanOutConsumerARN is WithEnhancedFanOut for a consumer that
// is already registered, given by its ARN; the Worker waits until it is
// ACTIVE but never registers one.
func WithEnhancedFanOutConsumerARN(arn string) Option {
	return func(c *config) { c.efoARN = arn }
}

// efo reports whether enhanced fan-out is on.
func (c *config) efo() bool { return c.efoName != "" || c.efoARN != "" }

// WithShutdownTimeout bounds a graceful stop: after Run's context is
// cancelled, processors have this long to finish their in-flight batch,
// checkpoint and return from ShutdownRequested. At this deadline processors
// still running have their context cancelled with ErrShutdownTimeout, the
// Worker writes nothing more to the lease table, and their leases are left
// to expire; Run returns once they have returned (see Worker.Run). It is
// the stop's one deadline. The default is 20 seconds.
func WithShutdownTimeout(d time.Duration) Option {
	return func(c *config) { c.shutdownTimeout = d }
}
