package retrieval

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/internal/awserr"
)

// ErrSilentSubscription is the Err of the CallInfo reported when the
// watchdog cancels a subscription that delivered no event for
// FanOut.Silence. Run does not return it: it subscribes again.
var ErrSilentSubscription = errors.New("retrieval: subscription silent")

// Subscriber is the [FanOut] Reader: it reads one shard through enhanced
// fan-out. NewReader builds it; it is immutable.
type Subscriber struct {
	core
	api SubscribeAPI
	fan FanOut
}

// Run is [Reader.Run] for enhanced fan-out.
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
// SDK's goroutines for that stream told to stop.
func (s *Subscriber) Run(ctx context.Context, out chan<- Batch) error {
	r := &subRun{s: s, out: out, dec: s.decoder(), retries: s.retries(), endCheck: s.fan.EndCheck}
	watchdog := time.NewTimer(s.fan.Silence)
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
	s       *Subscriber
	out     chan<- Batch
	dec     decoder
	retries retries
	// continuation is the ContinuationSequenceNumber of the last event
	// accepted (delivered, or empty), or the sequence number of the last
	// record delivered by the shard-end check: renewals subscribe
	// AFTER_SEQUENCE_NUMBER of it. Empty until the first event.
	continuation string
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
// took longer than FanOut.Silence.
var errSubscribeTimeout = errors.New("retrieval: SubscribeToShard timed out")

// close ends the subscription; it may be called again.
func (sub *subscription) close() {
	_ = sub.stream.Close() // its error is the stream's Err, already handled
	sub.cancel(errSubscriptionClosed)
}

// subscribe calls SubscribeToShard once and returns the subscription, or
// the error and its kind. The request's context lives as long as the
// subscription (cancelling it ends the response body), so the call's time
// limit is a timer that cancels it only while the call runs; a call that
// timed out is Transient.
func (r *subRun) subscribe(ctx context.Context) (*subscription, awserr.Kind, error) {
	silence := r.s.fan.Silence
	in := &kinesis.SubscribeToShardInput{
		ConsumerARN:      &r.s.fan.ConsumerARN,
		ShardId:          &r.s.cfg.ShardID,
		StartingPosition: r.s.cfg.startingPosition(r.continuation),
	}
	subCtx, cancel := context.WithCancelCause(ctx)
	timeout := time.AfterFunc(silence, func() { cancel(errSubscribeTimeout) })
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
			err = fmt.Errorf("%w after %v: %w", errSubscribeTimeout, silence, err)
		}
		kind = awserr.Transient
	case err == nil && stream == nil:
		err, kind = errNoEventStream, awserr.Other
	}
	r.s.hook(CallInfo{Op: "SubscribeToShard", Duration: time.Since(start), Err: err, Kind: kind, Renewal: r.continuation != ""})
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
	fan := &r.s.fan
	events := sub.stream.Events()
	got := false        // an event came on this subscription
	var stuck time.Time // since when events are empty with an unchanged continuation
	for {
		watchdog.Reset(fan.Silence)
		var ev types.SubscribeToShardEventStream
		select {
		case <-ctx.Done():
			return false, context.Cause(ctx)
		case <-watchdog.C:
			r.s.hook(CallInfo{Op: "SubscribeToShardEvent", Err: ErrSilentSubscription, Kind: awserr.Transient})
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
		if r.retries.invalid > 0 {
			return false, nil // resubscribe from the last accepted event
		}
		if len(e.Value.Records) > 0 || r.continuation != before {
			stuck = time.Time{}
			r.endCheck = fan.EndCheck
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
	r.s.hook(CallInfo{Op: "SubscribeToShardEvent", Err: err, Kind: kind})
	sub.close()
	return r.failed(ctx, "SubscribeToShard event stream", kind, err)
}

// event handles one SubscribeToShardEvent: it delivers its records, or
// the final batch (end), or counts it invalid (r.retries.invalid > 0, after
// a backoff) so that read subscribes again from the last accepted event.
func (r *subRun) event(ctx context.Context, ev *types.SubscribeToShardEvent) (end bool, _ error) {
	r.s.hook(recordsInfo("SubscribeToShardEvent", 0, ev.Records, ev.MillisBehindLatest))
	r.retries.failures = 0
	// An invalid event is dropped, records and all.
	b, ok := r.dec.batch(ev.Records, ev.MillisBehindLatest, ev.ContinuationSequenceNumber, ev.ChildShards)
	if !ok {
		return false, r.invalidEvent(ctx)
	}
	r.retries.invalid = 0
	if b.ShardEnd {
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
	return r.retries.invalidResult(ctx, "events", "ContinuationSequenceNumber")
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
	switch outcomeOf(kind) {
	case retryInUse:
		// Another subscription of this consumer to this shard is less than
		// 5 s old (or took this one over): wait it out.
		werr := sleep(ctx, max(MinResubscribeInUse, r.retries.policy.Delay(r.retries.failures)))
		r.retries.failures++
		return false, werr
	case retryLater:
		return false, r.retries.backoff(ctx)
	case missing:
		return r.notFound(ctx, op, err)
	}
	return false, r.retries.callFailed(op, err)
}
