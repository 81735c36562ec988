package retrieval

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/deaggregate"
	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/internal/awserr"
	"github.com/kclgo/kcl/internal/backoff"
)

// SubscribeAPI is the part of the Kinesis client a Subscriber calls, with
// the aws-sdk-go-v2 signatures: *kinesis.Client satisfies it. GetRecords,
// GetShardIterator and ListShards confirm the end of a shard whose
// subscription keeps delivering empty events, and tell a missing shard from
// a missing stream or consumer (see the package documentation).
type SubscribeAPI interface {
	API
	SubscribeToShard(ctx context.Context, in *kinesis.SubscribeToShardInput, optFns ...func(*kinesis.Options)) (*kinesis.SubscribeToShardOutput, error)
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

// Defaults of [SubscribeConfig].
const (
	// DefaultSilence is the default SubscribeConfig.Silence.
	DefaultSilence = 30 * time.Second
	// DefaultEndCheck is the default SubscribeConfig.EndCheck.
	DefaultEndCheck = 10 * time.Second
	// MinResubscribeInUse is the least wait after ResourceInUse on
	// SubscribeToShard: Kinesis refuses a subscription within 5 s of the
	// previous one for the same consumer and shard.
	MinResubscribeInUse = 5 * time.Second
	// MaxEndCheck bounds the interval between two shard-end checks of a
	// shard that stays idle: each check that finds the shard open doubles
	// the interval from SubscribeConfig.EndCheck up to this.
	MaxEndCheck = 5 * time.Minute
)

// SubscribeConfig says which shard a [Subscriber] reads through enhanced
// fan-out, for which registered consumer, and from where. The zero value of
// every optional field selects its default.
type SubscribeConfig struct {
	// ConsumerARN is the registered stream consumer (see EnsureConsumer).
	// Required.
	ConsumerARN string
	// StreamName or StreamARN names the stream, for the shard-end check;
	// at least one is required.
	StreamName string
	StreamARN  string
	// ShardID is the shard to read. Required.
	ShardID string
	// HashRange, Start, Timestamp and OnError mean what they mean in Config.
	// OnError is called on Run's goroutine.
	HashRange hashkey.Range
	Start     checkpoint.Position
	Timestamp time.Time
	OnError   func(*deaggregate.RecordError)
	// Silence is how long a subscription may deliver no event at all before
	// it is cancelled and replaced (the watchdog); it also bounds one
	// SubscribeToShard call. Time the consumer takes to receive a batch
	// does not count. Default 30 s.
	Silence time.Duration
	// EndCheck is how long a subscription may deliver only empty events
	// without moving its continuation before the Subscriber asks ListShards
	// whether the shard is closed and, if so, confirms the end with
	// GetRecords from the continuation point. While the shard stays open
	// and idle, each further check waits twice as long as the previous one,
	// up to MaxEndCheck. Default 10 s.
	EndCheck time.Duration
	// BackoffBase and BackoffMax shape the backoff between failed
	// subscriptions (at least MinResubscribeInUse after ResourceInUse).
	// Defaults as in Config.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// Hooks observe calls, on Run's goroutine: each SubscribeToShard call
	// (Op "SubscribeToShard", with its Err), each event and each failure
	// of an event stream (Op "SubscribeToShardEvent", with Records, Bytes
	// and MillisBehindLatest, or Err and Kind; a subscription cancelled by
	// the watchdog reports ErrSilentSubscription), and the calls of the
	// shard-end check ("ListShards", "GetShardIterator", "GetRecords").
	Hooks Hooks
}

// ErrSilentSubscription is the Err of the CallInfo reported when the
// watchdog cancels a subscription that delivered no event for
// SubscribeConfig.Silence. Run does not return it: it subscribes again.
var ErrSilentSubscription = errors.New("retrieval: subscription silent")

// Subscriber reads one shard through enhanced fan-out. Create it with
// NewSubscriber; it is immutable, and its Run has the contract of
// [Fetcher.Run], so the Worker treats both alike.
type Subscriber struct {
	api   SubscribeAPI
	cfg   SubscribeConfig
	deagg *deaggregate.Deaggregator
}

// NewSubscriber validates cfg and returns a Subscriber for it. It starts
// nothing. An invalid cfg gives a *ConfigError naming the field (it wraps
// ErrInvalidConfig).
func NewSubscriber(api SubscribeAPI, cfg SubscribeConfig) (*Subscriber, error) {
	if api == nil {
		return nil, &ConfigError{Field: "api", Value: nil, Reason: "required"}
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	d, err := newDeaggregator(cfg.HashRange, cfg.OnError)
	if err != nil {
		return nil, err
	}
	return &Subscriber{api: api, cfg: cfg, deagg: d}, nil
}

// newDeaggregator returns the deaggregator of a Subscriber.
func newDeaggregator(hr hashkey.Range, onError func(*deaggregate.RecordError)) (*deaggregate.Deaggregator, error) {
	var opts []deaggregate.Option
	if hr != (hashkey.Range{}) {
		opts = append(opts, deaggregate.WithHashRange(hr.Start.String(), hr.End.String()))
	}
	if onError != nil {
		opts = append(opts, deaggregate.WithErrorHandler(onError))
	}
	d, err := deaggregate.New(opts...)
	if err != nil {
		return nil, &ConfigError{Field: "HashRange", Value: hr, Reason: err.Error()}
	}
	return d, nil
}

// withDefaults returns cfg with defaults applied, or the first problem. The
// fields it shares with Config are checked by Config's rules.
func (cfg SubscribeConfig) withDefaults() (SubscribeConfig, error) {
	bad := func(field string, v any, reason string) (SubscribeConfig, error) {
		return SubscribeConfig{}, &ConfigError{Field: field, Value: v, Reason: reason}
	}
	if cfg.ConsumerARN == "" {
		return bad("ConsumerARN", `""`, "required")
	}
	shared, err := Config{
		StreamName:  cfg.StreamName,
		StreamARN:   cfg.StreamARN,
		ShardID:     cfg.ShardID,
		Start:       cfg.Start,
		Timestamp:   cfg.Timestamp,
		BackoffBase: cfg.BackoffBase,
		BackoffMax:  cfg.BackoffMax,
	}.withDefaults()
	if err != nil {
		return SubscribeConfig{}, err
	}
	cfg.BackoffBase, cfg.BackoffMax = shared.BackoffBase, shared.BackoffMax
	if cfg.Silence == 0 {
		cfg.Silence = DefaultSilence
	}
	if cfg.Silence < 0 {
		return bad("Silence", cfg.Silence, "must be positive")
	}
	if cfg.EndCheck == 0 {
		cfg.EndCheck = DefaultEndCheck
	}
	if cfg.EndCheck < 0 {
		return bad("EndCheck", cfg.EndCheck, "must be positive")
	}
	return cfg, nil
}

// Run reads the shard from SubscribeConfig.Start and sends batches on out,
// in order, with the contract of [Fetcher.Run]. It blocks until:
//   - the shard ends: the final Batch (ShardEnd set, with the ChildShards)
//     has been received from out; Run returns nil;
//   - ctx is done: Run returns context.Cause(ctx);
//   - a non-retryable error occurs (the stream or the consumer is missing,
//     access denied, an invalid request, repeated invalid events): Run
//     returns it at once. ErrStreamNotFound and ErrConsumerNotFound are
//     wrapped by the errors of the first two.
//
// Back-pressure: one event is in flight. Run reads an event, sends its
// batch, and reads the next event only after out has received the batch
// (the SDK's event stream buffers a little more). Events whose records are
// all filtered out are not delivered; only the final Batch may be empty.
//
// Run starts no goroutine of its own: it subscribes, reads events and
// calls the hooks and OnError on the calling goroutine, so they are never
// called concurrently within one Run. Every subscription it opens is
// closed (its event stream's Close, and its request context cancelled)
// before the next one is opened and before Run returns; only then are the
// SDK's goroutines for that stream told to stop. Each call of Run starts
// afresh from SubscribeConfig.Start.
func (s *Subscriber) Run(ctx context.Context, out chan<- Batch) error {
	r := &subRun{
		s:        s,
		out:      out,
		dec:      decoder{deagg: s.deagg, start: s.cfg.Start, skipping: s.cfg.Start.IsSequence()},
		policy:   backoff.New(s.cfg.BackoffBase, s.cfg.BackoffMax, nil),
		endCheck: s.cfg.EndCheck,
	}
	watchdog := time.NewTimer(s.cfg.Silence)
	defer watchdog.Stop()
	for {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		sub, kind, err := r.subscribe(ctx)
		if err != nil {
			if done, err := r.failed(ctx, "SubscribeToShard", kind, err); err != nil || done {
				return err
			}
			continue
		}
		done, err := r.read(ctx, sub, watchdog)
		sub.close()
		if err != nil || done {
			return err
		}
	}
}

// subRun is the state of one Run. Only Run's goroutine uses it.
type subRun struct {
	s      *Subscriber
	out    chan<- Batch
	dec    decoder
	policy backoff.Policy
	// continuation is the ContinuationSequenceNumber of the last event
	// accepted (delivered, or empty), or the sequence number of the last
	// record delivered by the shard-end check: renewals subscribe
	// AFTER_SEQUENCE_NUMBER of it. Empty until the first event.
	continuation string
	failures     int           // consecutive failures, for the backoff
	invalid      int           // consecutive invalid events
	endCheck     time.Duration // wait before the next shard-end check
}

// subscription is an open SubscribeToShard event stream with the context
// of its request.
type subscription struct {
	stream *kinesis.SubscribeToShardEventStream
	cancel context.CancelCauseFunc
}

// errSubscriptionClosed is the cause given to a subscription's context
// when Run closes it.
var errSubscriptionClosed = errors.New("retrieval: subscription closed")

// errEmptySubscription is reported when a subscription ends without error
// and without delivering an event.
var errEmptySubscription = errors.New("retrieval: subscription ended without an event")

// errNoEventStream is returned by Run when SubscribeToShard succeeds
// without an event stream (an API value that is not a real client).
var errNoEventStream = errors.New("retrieval: SubscribeToShard returned no event stream")

// errSubscribeTimeout is the cause given to a SubscribeToShard call that
// took longer than SubscribeConfig.Silence.
var errSubscribeTimeout = errors.New("retrieval: SubscribeToShard timed out")

// close ends the subscription; it may be called again.
func (sub *subscription) close() {
	_ = sub.stream.Close() // its error is the stream's Err, already handled
	sub.cancel(errSubscriptionClosed)
}

// position is where the next subscription starts.
func (r *subRun) position() *types.StartingPosition {
	cfg := &r.s.cfg
	if r.continuation != "" {
		c := r.continuation
		return &types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: &c}
	}
	switch cfg.Start.Kind() {
	case checkpoint.KindSequence:
		seq := cfg.Start.SequenceNumber()
		return &types.StartingPosition{Type: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: &seq}
	case checkpoint.KindLatest:
		return &types.StartingPosition{Type: types.ShardIteratorTypeLatest}
	case checkpoint.KindAtTimestamp:
		ts := cfg.Timestamp
		return &types.StartingPosition{Type: types.ShardIteratorTypeAtTimestamp, Timestamp: &ts}
	}
	return &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}
}

// subscribe calls SubscribeToShard once and returns the subscription, or
// the error and its kind. The request's context lives as long as the
// subscription (cancelling it ends the response body), so the call's time
// limit is a timer that cancels it only while the call runs; a call that
// timed out is Transient.
func (r *subRun) subscribe(ctx context.Context) (*subscription, awserr.Kind, error) {
	cfg := &r.s.cfg
	in := &kinesis.SubscribeToShardInput{
		ConsumerARN:      &cfg.ConsumerARN,
		ShardId:          &cfg.ShardID,
		StartingPosition: r.position(),
	}
	subCtx, cancel := context.WithCancelCause(ctx)
	timeout := time.AfterFunc(cfg.Silence, func() { cancel(errSubscribeTimeout) })
	start := time.Now()
	res, err := r.s.api.SubscribeToShard(subCtx, in)
	fired := !timeout.Stop()
	var stream *kinesis.SubscribeToShardEventStream
	if res != nil {
		stream = res.GetStream()
	}
	kind := awserr.Classify(err)
	switch {
	case fired && ctx.Err() == nil:
		// Whether the call failed or returned as the timer fired, the
		// stream's context is gone.
		if err == nil {
			err = errSubscribeTimeout
		} else {
			err = fmt.Errorf("%w after %v: %w", errSubscribeTimeout, cfg.Silence, err)
		}
		kind = awserr.Transient
	case err == nil && stream == nil:
		err, kind = errNoEventStream, awserr.Other
	}
	r.hook(CallInfo{Op: "SubscribeToShard", Duration: time.Since(start), Err: err, Kind: kind})
	if err != nil {
		if stream != nil {
			_ = stream.Close()
		}
		cancel(errSubscriptionClosed)
		return nil, kind, err
	}
	return &subscription{stream: stream, cancel: cancel}, 0, nil
}

// read delivers the events of sub until it ends (then Run subscribes
// again), the shard ends (done), or an error ends Run. It reads an event
// only after the previous batch was received from out. The watchdog timer
// is reset before each wait for an event, so only the subscription's
// silence counts, not the consumer's processing time.
func (r *subRun) read(ctx context.Context, sub *subscription, watchdog *time.Timer) (done bool, _ error) {
	cfg := &r.s.cfg
	events := sub.stream.Events()
	got := false        // an event came on this subscription
	var stuck time.Time // since when events are empty with an unchanged continuation
	for {
		watchdog.Reset(cfg.Silence)
		var ev types.SubscribeToShardEventStream
		select {
		case <-ctx.Done():
			return false, context.Cause(ctx)
		case <-watchdog.C:
			r.hook(CallInfo{Op: "SubscribeToShardEvent", Err: ErrSilentSubscription, Kind: awserr.Transient})
			sub.close()
			return r.failed(ctx, "SubscribeToShard event stream", awserr.Transient, ErrSilentSubscription)
		case e, ok := <-events:
			if !ok {
				return r.ended(ctx, sub, got)
			}
			ev = e
		}
		got = true
		e, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
		if !ok {
			continue // an event type this SDK does not know: only a sign of life
		}
		before := r.continuation
		end, err := r.event(ctx, &e.Value)
		if err != nil || end {
			return end, err
		}
		if r.invalid > 0 {
			return false, nil // resubscribe from the last accepted event
		}
		if len(e.Value.Records) > 0 || r.continuation != before {
			stuck = time.Time{}
			r.endCheck = cfg.EndCheck
			continue
		}
		if stuck.IsZero() {
			stuck = time.Now()
			continue
		}
		if time.Since(stuck) < r.endCheck {
			continue
		}
		closed, err := r.shardClosed(ctx)
		if err != nil {
			return false, err
		}
		r.endCheck = min(2*r.endCheck, MaxEndCheck)
		if !closed {
			stuck = time.Now()
			continue
		}
		// Confirm the end with GetRecords. The subscription is closed first:
		// if the check delivers records, it must not deliver them again.
		sub.close()
		return r.confirmEnd(ctx)
	}
}

// ended handles the end of sub's event channel: nil Err is the service
// ending the subscription (about every 5 minutes), renewed at once unless
// it delivered nothing.
func (r *subRun) ended(ctx context.Context, sub *subscription, got bool) (done bool, _ error) {
	if ctx.Err() != nil {
		return false, context.Cause(ctx)
	}
	err := sub.stream.Err()
	kind := awserr.Classify(err)
	if err == nil {
		if got {
			return false, nil
		}
		// Ended without a single event: back off rather than loop on it.
		err, kind = errEmptySubscription, awserr.Transient
	}
	r.hook(CallInfo{Op: "SubscribeToShardEvent", Err: err, Kind: kind})
	sub.close()
	return r.failed(ctx, "SubscribeToShard event stream", kind, err)
}

// event handles one SubscribeToShardEvent: it delivers its records, or
// the final batch (end), or counts it invalid (r.invalid > 0, after a
// backoff) so that read subscribes again from the last accepted event.
func (r *subRun) event(ctx context.Context, ev *types.SubscribeToShardEvent) (end bool, _ error) {
	info := CallInfo{
		Op:                 "SubscribeToShardEvent",
		Records:            len(ev.Records),
		Bytes:              recordBytes(ev.Records),
		MillisBehindLatest: millis(ev.MillisBehindLatest),
	}
	r.hook(info)
	r.failures = 0
	// As KCL: valid when exactly one of ContinuationSequenceNumber and
	// ChildShards is present; an invalid event is dropped, records and all.
	if (ev.ContinuationSequenceNumber == nil) == (len(ev.ChildShards) == 0) {
		return false, r.invalidEvent(ctx)
	}
	r.invalid = 0
	b := r.dec.decode(&kinesis.GetRecordsOutput{Records: ev.Records, MillisBehindLatest: ev.MillisBehindLatest})
	if ev.ContinuationSequenceNumber == nil {
		b.ShardEnd = true
		b.ChildShards = ev.ChildShards
		return true, r.send(ctx, b)
	}
	if len(b.Records) > 0 {
		if err := r.send(ctx, b); err != nil {
			return false, err
		}
	}
	r.continuation = *ev.ContinuationSequenceNumber
	return false, nil
}

// invalidEvent counts an invalid event and waits before the resubscription,
// or returns ErrInvalidResult after maxInvalidResults in a row.
func (r *subRun) invalidEvent(ctx context.Context) error {
	r.invalid++
	if r.invalid > maxInvalidResults {
		return fmt.Errorf("%w: %d events in a row on shard %s had both or neither of ContinuationSequenceNumber and ChildShards",
			ErrInvalidResult, r.invalid, r.s.cfg.ShardID)
	}
	return r.policy.Wait(ctx, r.invalid-1)
}

// send delivers b, blocking until out receives it or ctx is done.
func (r *subRun) send(ctx context.Context, b Batch) error {
	select {
	case r.out <- b:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// failed handles a failed subscription or call: it waits before Run
// subscribes again (false, nil), or reports the shard's end after
// delivering the final batch (done), or returns the error that ends Run.
func (r *subRun) failed(ctx context.Context, op string, kind awserr.Kind, err error) (done bool, _ error) {
	if ctx.Err() != nil {
		return false, context.Cause(ctx)
	}
	switch {
	case kind == awserr.InUse:
		// Another subscription of this consumer to this shard is less than
		// 5 s old (or took this one over): wait it out.
		werr := sleep(ctx, max(MinResubscribeInUse, r.policy.Delay(r.failures)))
		r.failures++
		return false, werr
	case kind.Retryable(), kind == awserr.Canceled:
		// Canceled with ctx alive is a per-call timeout: transient.
		werr := r.policy.Wait(ctx, r.failures)
		r.failures++
		return false, werr
	case kind == awserr.NotFound:
		return r.notFound(ctx, op, err)
	}
	return false, fmt.Errorf("retrieval: %s on shard %s: %w", op, r.s.cfg.ShardID, err)
}

func (r *subRun) hook(info CallInfo) {
	if h := r.s.cfg.Hooks.Call; h != nil {
		h(info)
	}
}
