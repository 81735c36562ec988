package retrieval

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/deaggregate"
	"github.com/kclgo/kcl/internal/awserr"
	"github.com/kclgo/kcl/internal/backoff"
)

// Reader reads one shard. [NewReader] builds one from a [Config]: a
// [*Fetcher] for [Polling], a [*Subscriber] for [FanOut]. A Reader is
// immutable; the Worker's shard goroutine runs it and treats both alike.
type Reader interface {
	// Run reads the shard from Shard.Start and sends its batches on out,
	// in order. It blocks until:
	//   - the shard ends: the final Batch (ShardEnd set, with the
	//     ChildShards) has been received from out; Run returns nil;
	//   - ctx is done: Run returns context.Cause(ctx);
	//   - a non-retryable error occurs (the stream, or the FanOut consumer,
	//     is missing, access denied, an invalid request, repeated invalid
	//     results): Run returns it at once, without delivering batches it
	//     holds. Such errors wrap ErrStreamNotFound, ErrConsumerNotFound
	//     or ErrInvalidResult when they are those.
	//
	// With a sequence-number Start, every user record at or before it
	// (sequence, sub-sequence) is dropped: a half-processed KPL aggregate
	// resumes at the next sub-record. Only the final Batch may be empty.
	// Run closes nothing, and returns only after every goroutine it started
	// has exited. Each call starts afresh from Shard.Start.
	Run(ctx context.Context, out chan<- Batch) error
}

var (
	_ Reader = (*Fetcher)(nil)
	_ Reader = (*Subscriber)(nil)
)

// Batch is what Run delivers: the user records of one GetRecords result or
// SubscribeToShard event.
type Batch struct {
	// Records are the deaggregated user records, in order, after the hash
	// range filter and the checkpoint filter. Their Data share memory with
	// the Kinesis result, which nothing else references. Only the final
	// Batch may be empty.
	Records []deaggregate.Record
	// MillisBehindLatest is how far the result was behind the tip of the
	// shard.
	MillisBehindLatest time.Duration
	// ChildShards are the shard's children, set only on the final batch of
	// a closed shard (nil when the shard was not found).
	ChildShards []types.ChildShard
	// ShardEnd marks the final batch: the shard is closed (or gone) and
	// everything in it was delivered.
	ShardEnd bool
}

var (
	// ErrStreamNotFound is wrapped by the error Run returns when the stream
	// itself does not exist (see the package documentation for how that is
	// told apart from a missing shard).
	ErrStreamNotFound = errors.New("retrieval: stream not found")
	// ErrInvalidResult is wrapped by the error Run returns after
	// maxInvalidResults GetRecords results or SubscribeToShard events in a
	// row had both or neither of their next position and ChildShards (or
	// GetShardIterator returned no iterator).
	ErrInvalidResult = errors.New("retrieval: invalid result from Kinesis")
)

// maxInvalidResults is how many invalid results in a row Run retries.
const maxInvalidResults = 5

// NewReader validates cfg and returns the Reader of its mode. It starts
// nothing. An invalid cfg gives a *ConfigError naming the field (it wraps
// ErrInvalidConfig); so does a FanOut mode with an api that is not a
// SubscribeAPI.
func NewReader(api API, cfg Config) (Reader, error) {
	if api == nil {
		return nil, bad("", "api", nil, "required")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var opts []deaggregate.Option
	if cfg.HashRange != nil {
		opts = append(opts, deaggregate.WithKeyRange(*cfg.HashRange))
	}
	if cfg.OnError != nil {
		opts = append(opts, deaggregate.WithErrorHandler(cfg.OnError))
	}
	d, err := deaggregate.New(opts...)
	if err != nil { // only for a hash range, which validate has checked
		return nil, bad("Config", "HashRange", cfg.HashRange, err.Error())
	}
	c := core{cfg: cfg, deagg: d}
	switch m := cfg.Mode.(type) {
	case Polling:
		return &Fetcher{core: c, api: api, poll: m}, nil
	case FanOut:
		sapi, ok := api.(SubscribeAPI)
		if !ok {
			return nil, bad("", "api", fmt.Sprintf("%T", api), "enhanced fan-out needs SubscribeToShard and ListShards")
		}
		return &Subscriber{core: c, api: sapi, fan: m}, nil
	}
	return nil, bad("Config", "Mode", cfg.Mode, "not Polling or FanOut") // unreachable: Mode is sealed
}

// core is what both Readers hold: the validated Config and the
// deaggregator built from it (hash range filter and OnError).
type core struct {
	cfg   Config
	deagg *deaggregate.Deaggregator
}

// decoder returns the decoder of one Run, filtering from Shard.Start.
func (c *core) decoder() decoder {
	return decoder{deagg: c.deagg, start: c.cfg.Start, skipping: c.cfg.Start.IsSequence()}
}

// retries returns the retry state of one Run.
func (c *core) retries() retries {
	return retries{policy: backoff.New(c.cfg.BackoffBase, c.cfg.BackoffMax, nil), shardID: c.cfg.ShardID}
}

func (c *core) hook(info CallInfo) {
	if h := c.cfg.Hooks.Call; h != nil {
		h(info)
	}
}

// outcome is what a Reader does after a failed call: the one mapping of
// awserr kinds to reader behaviour. Each mode acts on it in its own way.
type outcome int

const (
	// retryLater: throttled, transient (network, 5xx), or a per-call
	// timeout (Canceled while Run's context is alive): back off and retry
	// from the same position.
	retryLater outcome = iota + 1
	// retryInUse: ResourceInUse; retryable, and a subscription must wait
	// at least MinResubscribeInUse.
	retryInUse
	// iteratorExpired: get a new iterator from the last accepted record.
	iteratorExpired
	// missing: ResourceNotFound; the mode finds out whether the stream,
	// the shard (its end) or the consumer is gone.
	missing
	// fatal: denied, invalid, unclassified; Run returns the error.
	fatal
)

// outcomeOf maps a failed call's classification to its outcome.
func outcomeOf(kind awserr.Kind) outcome {
	switch {
	case kind == awserr.InUse:
		return retryInUse
	case kind.Retryable(), kind == awserr.Canceled:
		return retryLater
	case kind == awserr.ExpiredIterator:
		return iteratorExpired
	case kind == awserr.NotFound:
		return missing
	}
	return fatal
}

// retries is the retry state of one Run: consecutive failures and invalid
// results, and the backoff between them.
type retries struct {
	policy   backoff.Policy
	shardID  string
	failures int // consecutive failed calls
	invalid  int // consecutive invalid results
}

// backoff waits before the next retry of a failed call.
func (r *retries) backoff(ctx context.Context) error {
	err := r.policy.Wait(ctx, r.failures)
	r.failures++
	return err
}

// invalidResult counts an invalid result (results or events, which had
// both or neither of next and ChildShards) and waits before the retry, or
// returns ErrInvalidResult after maxInvalidResults in a row.
func (r *retries) invalidResult(ctx context.Context, results, next string) error {
	r.invalid++
	if r.invalid > maxInvalidResults {
		return fmt.Errorf("%w: %d %s in a row on shard %s had both or neither of %s and ChildShards",
			ErrInvalidResult, r.invalid, results, r.shardID, next)
	}
	return r.policy.Wait(ctx, r.invalid-1)
}

// callFailed is the error that ends Run after op failed with err.
func (r *retries) callFailed(op string, err error) error {
	return fmt.Errorf("retrieval: %s on shard %s: %w", op, r.shardID, err)
}

// streamNotFound is the error that ends Run when op failed with err
// because the stream is gone.
func (r *retries) streamNotFound(op string, err error) error {
	return fmt.Errorf("%w: %s on shard %s: %w", ErrStreamNotFound, op, r.shardID, err)
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
