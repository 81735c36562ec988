package fakekinesis

import (
	"context"
	"errors"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Enhanced fan-out timing of the fake.
const (
	// EventInterval is the time between two events of a subscription. The
	// first event is sent at once.
	EventInterval = time.Second
	// SubscriptionLifetime is how long a subscription lasts before the
	// service ends it (the event channel closes with a nil Err), as on AWS.
	SubscriptionLifetime = 5 * time.Minute
)

// SubscribePlan scripts one subscription: it sends Events events, then
// does Then. The zero SubscribePlan is a normal subscription, which lasts
// [SubscriptionLifetime] or until the end of a closed shard.
type SubscribePlan struct {
	// Events is how many events are sent before Then happens.
	Events int
	// Then is what happens after Events events.
	Then SubscribeEnding
	// Err is the event stream's error with FailStream: an in-stream
	// exception such as a *types.ResourceInUseException, or a transport
	// error such as ConnectionReset().
	Err error
}

// SubscribeEnding is what a [SubscribePlan] does after its events.
type SubscribeEnding uint8

const (
	// Continue keeps the subscription going normally.
	Continue SubscribeEnding = iota
	// EndEarly ends the subscription from the service side: the event
	// channel closes and Err returns nil.
	EndEarly
	// FailStream ends it with SubscribePlan.Err: the event channel closes
	// and Err returns that error.
	FailStream
	// GoSilent sends nothing more and keeps the channel open until the
	// subscriber closes the stream (or its context ends).
	GoSilent
)

// WithSubscribePlan sets fn, called for every SubscribeToShard call that
// succeeds with n (1 for the first such call on the fake) and the call's
// input; the subscription follows the plan fn returns. fn is called with
// the fake's lock held and must not call the fake. The default plans
// nothing: every subscription is normal.
func WithSubscribePlan(fn func(n int, in *kinesis.SubscribeToShardInput) SubscribePlan) Option {
	return func(o *options) { o.sub.plan = fn }
}

// WithEndlessClosedShards mimics kinesis-mock: at the end of a closed shard
// a subscription never sends ChildShards and never ends; it sends an empty
// event every [EventInterval] with an unchanged ContinuationSequenceNumber
// until it is closed or its lifetime is over. GetRecords still reports the
// end (NextShardIterator nil, ChildShards), as kinesis-mock does.
func WithEndlessClosedShards() Option {
	return func(o *options) { o.sub.endless = true }
}

// subscribeOptions are the enhanced fan-out options.
type subscribeOptions struct {
	plan    func(n int, in *kinesis.SubscribeToShardInput) SubscribePlan
	endless bool
}

// subscriptions counts the fake's subscriptions. Guarded by Fake.mu.
type subscriptions struct {
	started int
	open    int
}

// Subscriptions returns how many SubscribeToShard calls succeeded, and how
// many of those subscriptions are still open: not yet closed by the
// subscriber (the event stream's Close), or with their event goroutine not
// yet exited. A subscriber that cleans up leaves open at 0 once its
// goroutines have settled (synctest.Wait).
func (f *Fake) Subscriptions() (started, open int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.subs.started, f.subs.open
}

// SubscribeToShard starts a subscription of the consumer named by
// ConsumerARN (any consumer name is accepted; the ARN must be a consumer
// ARN of a stream of the fake, "<stream ARN>/consumer/<name>:<number>") to
// the shard ShardId, from StartingPosition. The output's GetStream yields
// events on a goroutine owned by the subscription: the first event at
// once, then one every [EventInterval], each with the shard's records not
// yet sent (possibly none), ContinuationSequenceNumber (the sequence
// number of the last record sent, or just before the first record to come)
// and MillisBehindLatest. At the end of a closed shard the last event has
// ContinuationSequenceNumber nil and ChildShards, and the stream ends (see
// [WithEndlessClosedShards] for kinesis-mock's behaviour). The service ends
// a subscription after [SubscriptionLifetime]; [WithSubscribePlan] scripts
// early ends, stream errors and silence.
//
// Cancelling ctx ends the stream with ctx's error, as cancelling a real
// request ends its response body. The subscriber must Close the stream.
// Injected faults (WithFault, op "SubscribeToShard") fail the call itself.
func (f *Fake) SubscribeToShard(ctx context.Context, in *kinesis.SubscribeToShardInput, optFns ...func(*kinesis.Options)) (*kinesis.SubscribeToShardOutput, error) {
	return run(ctx, f, "SubscribeToShard", in, func(in *kinesis.SubscribeToShardInput) (*kinesis.SubscribeToShardOutput, error) {
		s, err := f.consumerStream(aws.ToString(in.ConsumerARN))
		if err != nil {
			return nil, err
		}
		if in.ShardId == nil {
			return nil, invalidArg("ShardId is required")
		}
		sh, err := s.shard(*in.ShardId)
		if err != nil {
			return nil, err
		}
		if in.StartingPosition == nil {
			return nil, invalidArg("StartingPosition is required")
		}
		pos, err := startPosition(s, sh, in.StartingPosition)
		if err != nil {
			return nil, err
		}
		f.subs.started++
		var plan SubscribePlan
		if f.opts.sub.plan != nil {
			plan = f.opts.sub.plan(f.subs.started, in)
		}
		sub := &subscription{
			f:      f,
			stream: s.name,
			shard:  sh.id,
			pos:    pos,
			cont:   formatSeq(sh.startSeq),
			plan:   plan,
			events: make(chan types.SubscribeToShardEventStream),
			done:   make(chan struct{}),
		}
		if pos > 0 {
			sub.cont = formatSeq(sh.records[pos-1].seq)
		}
		out, err := subscribeOutput(kinesis.NewSubscribeToShardEventStream(func(es *kinesis.SubscribeToShardEventStream) {
			es.Reader = sub
		}))
		if err != nil {
			return nil, err
		}
		f.subs.open++
		go sub.run(ctx)
		return out, nil
	})
}

// consumerStream finds the stream of a consumer ARN. f.mu is held.
func (f *Fake) consumerStream(arn string) (*stream, error) {
	const prefix = "arn:aws:kinesis:" + region + ":" + account + ":stream/"
	name, consumer, ok := strings.Cut(strings.TrimPrefix(arn, prefix), "/consumer/")
	if !strings.HasPrefix(arn, prefix) || !ok || name == "" || consumer == "" {
		return nil, invalidArg("ConsumerARN %q is not a stream consumer ARN of this account", arn)
	}
	s, ok := f.streams[name]
	if !ok {
		return nil, notFound("Stream %s under account %s not found.", name, account)
	}
	return s, nil
}

// startPosition returns the index of the first record a subscription from
// p sends, with GetShardIterator's rules. f.mu is held.
func startPosition(s *stream, sh *shard, p *types.StartingPosition) (int, error) {
	switch p.Type {
	case types.ShardIteratorTypeTrimHorizon:
		return 0, nil
	case types.ShardIteratorTypeLatest:
		return len(sh.records), nil
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		str := aws.ToString(p.SequenceNumber)
		n, ok := parseSeq(str)
		if !ok {
			return 0, invalidArg("SequenceNumber %q is not a sequence number", str)
		}
		if n < sh.startSeq || (!sh.isOpen() && n > sh.endSeq) {
			return 0, invalidArg("SequenceNumber %s on shard %s in stream %s under account %s is invalid because it did not come from this shard.", str, sh.id, s.name, account)
		}
		after := p.Type == types.ShardIteratorTypeAfterSequenceNumber
		return sort.Search(len(sh.records), func(i int) bool {
			if after {
				return sh.records[i].seq > n
			}
			return sh.records[i].seq >= n
		}), nil
	case types.ShardIteratorTypeAtTimestamp:
		if p.Timestamp == nil {
			return 0, invalidArg("Timestamp is required for AT_TIMESTAMP")
		}
		ts := *p.Timestamp
		return sort.Search(len(sh.records), func(i int) bool {
			return !sh.records[i].rec.ApproximateArrivalTimestamp.Before(ts)
		}), nil
	}
	return 0, invalidArg("StartingPosition type %q is not valid", p.Type)
}

// subscribeOutput returns a SubscribeToShardOutput whose GetStream returns
// es. The SDK keeps that field unexported and sets it only while decoding
// an HTTP response, so the fake sets it through reflection. If a new SDK
// renames the field, every SubscribeToShard call fails with this error
// (TestSubscribeToShardOutputHasStream catches it first).
func subscribeOutput(es *kinesis.SubscribeToShardEventStream) (*kinesis.SubscribeToShardOutput, error) {
	out := &kinesis.SubscribeToShardOutput{}
	field := reflect.ValueOf(out).Elem().FieldByName("eventStream")
	if !field.IsValid() || field.Type() != reflect.TypeOf(es) {
		return nil, errors.New("fakekinesis: this SDK's SubscribeToShardOutput has no eventStream field")
	}
	reflect.NewAt(field.Type(), unsafe.Pointer(field.UnsafeAddr())).Elem().Set(reflect.ValueOf(es))
	return out, nil
}

// subscription is one SubscribeToShard call's event stream. It implements
// kinesis.SubscribeToShardEventStreamReader. Its goroutine (run) is the
// only sender on events and closes it when it exits.
type subscription struct {
	f      *Fake
	stream string
	shard  string
	plan   SubscribePlan
	events chan types.SubscribeToShardEventStream
	done   chan struct{} // closed by Close

	// Used by run only.
	pos  int    // index of the next record to send
	cont string // ContinuationSequenceNumber of the next event

	closeOnce sync.Once

	mu  sync.Mutex
	err error

	// Guarded by f.mu.
	closed bool // Close was called
	exited bool // run returned
}

var _ kinesis.SubscribeToShardEventStreamReader = (*subscription)(nil)

// Events returns the channel of events; it is closed when the subscription
// ends, for whatever reason.
func (s *subscription) Events() <-chan types.SubscribeToShardEventStream { return s.events }

// Close ends the subscription. It may be called many times, concurrently.
func (s *subscription) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.f.mu.Lock()
		s.closed = true
		s.settle()
		s.f.mu.Unlock()
	})
	return nil
}

// Err returns the error that ended the subscription, nil if none did.
func (s *subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *subscription) fail(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// settle updates the open count once the subscription is both closed and
// exited. f.mu is held.
func (s *subscription) settle() {
	if s.closed && s.exited {
		s.f.subs.open--
	}
}

// run sends the subscription's events until it ends.
func (s *subscription) run(ctx context.Context) {
	defer func() {
		close(s.events)
		s.f.mu.Lock()
		s.exited = true
		s.settle()
		s.f.mu.Unlock()
	}()
	deadline := time.Now().Add(SubscriptionLifetime)
	for sent := 0; ; sent++ {
		if sent == s.plan.Events {
			switch s.plan.Then {
			case EndEarly:
				return
			case FailStream:
				s.fail(s.plan.Err)
				return
			case GoSilent:
				select {
				case <-s.done:
				case <-ctx.Done():
					s.fail(ctx.Err())
				}
				return
			}
		}
		ev, last, err := s.next()
		if err != nil {
			s.fail(err)
			return
		}
		select {
		case s.events <- ev:
		case <-s.done:
			return
		case <-ctx.Done():
			s.fail(ctx.Err())
			return
		}
		if last || !time.Now().Before(deadline) {
			return
		}
		t := time.NewTimer(EventInterval)
		select {
		case <-t.C:
		case <-s.done:
			t.Stop()
			return
		case <-ctx.Done():
			t.Stop()
			s.fail(ctx.Err())
			return
		}
	}
}

// next builds the next event; last reports the shard-end event.
func (s *subscription) next() (_ types.SubscribeToShardEventStream, last bool, _ error) {
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.streams[s.stream]
	if !ok {
		return nil, false, notFound("Stream %s under account %s not found.", s.stream, account)
	}
	sh, err := st.shard(s.shard)
	if err != nil {
		return nil, false, err
	}
	ev := types.SubscribeToShardEvent{Records: []types.Record{}}
	end := min(len(sh.records), s.pos+MaxGetRecordsLimit)
	for _, r := range sh.records[s.pos:end] {
		ev.Records = append(ev.Records, copyRecord(r.rec))
	}
	if end > s.pos {
		s.cont = formatSeq(sh.records[end-1].seq)
	}
	s.pos = end
	behind := int64(0)
	if end < len(sh.records) {
		behind = time.Since(*sh.records[end].rec.ApproximateArrivalTimestamp).Milliseconds()
	}
	ev.MillisBehindLatest = aws.Int64(max(behind, 0))
	if end == len(sh.records) && !sh.isOpen() && !f.opts.sub.endless {
		ev.ChildShards = f.childShards(st, sh)
		last = true
	} else {
		ev.ContinuationSequenceNumber = aws.String(s.cont)
	}
	return &types.SubscribeToShardEventStreamMemberSubscribeToShardEvent{Value: ev}, last, nil
}
