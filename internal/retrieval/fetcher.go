package retrieval

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/deaggregate"
	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/internal/awserr"
	"github.com/kclgo/kcl/internal/backoff"
)

var (
	// ErrStreamNotFound is wrapped by the error Run returns when the stream
	// itself does not exist (see the package documentation for how that is
	// told apart from a missing shard).
	ErrStreamNotFound = errors.New("retrieval: stream not found")
	// ErrInvalidResult is wrapped by the error Run returns after
	// maxInvalidResults GetRecords results in a row had both or neither of
	// NextShardIterator and ChildShards (or GetShardIterator returned no
	// iterator).
	ErrInvalidResult = errors.New("retrieval: invalid result from Kinesis")
)

// maxInvalidResults is how many invalid results in a row Run retries.
const maxInvalidResults = 5

// errStopped is the cause given to the fetch goroutine's context when Run
// returns.
var errStopped = errors.New("retrieval: Run returned")

// Batch is what Run delivers: the user records of one GetRecords result.
type Batch struct {
	// Records are the deaggregated user records, in order, after the hash
	// range filter and the checkpoint filter. Their Data share memory with
	// the GetRecords result, which nothing else references. Only the final
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

// Fetcher reads one shard. Create it with New; it is immutable.
type Fetcher struct {
	api   API
	cfg   Config
	deagg *deaggregate.Deaggregator
}

// New validates cfg and returns a Fetcher for it. It starts nothing. An
// invalid cfg gives a *ConfigError naming the field (it wraps
// ErrInvalidConfig).
func New(api API, cfg Config) (*Fetcher, error) {
	if api == nil {
		return nil, &ConfigError{Field: "api", Value: nil, Reason: "required"}
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var opts []deaggregate.Option
	if cfg.HashRange != (hashkey.Range{}) {
		opts = append(opts, deaggregate.WithHashRange(cfg.HashRange.Start.String(), cfg.HashRange.End.String()))
	}
	if cfg.OnError != nil {
		opts = append(opts, deaggregate.WithErrorHandler(cfg.OnError))
	}
	d, err := deaggregate.New(opts...)
	if err != nil {
		return nil, &ConfigError{Field: "HashRange", Value: cfg.HashRange, Reason: err.Error()}
	}
	return &Fetcher{api: api, cfg: cfg, deagg: d}, nil
}

// result is one answer of a fetch goroutine.
type result struct {
	batch Batch
	bytes int
	err   error
}

// Run reads the shard from Config.Start and sends batches on out, in order.
// It blocks until:
//   - the shard ends: the final Batch (ShardEnd set, with the ChildShards)
//     has been received from out; Run returns nil;
//   - ctx is done: Run returns context.Cause(ctx);
//   - a non-retryable error occurs (the stream is missing, access denied,
//     an invalid request, repeated invalid results): Run returns it at
//     once, without delivering batches still buffered.
//
// Run closes nothing. It calls Kinesis and the hooks on a goroutine it
// starts for each fetch and that exits with the fetch's result; fetches
// run one at a time, so within one Run the hooks and OnError are never
// called concurrently. While it waits out IdleTime no such goroutine
// exists: an idle shard costs Run's own goroutine only, not a second one
// with a stack as deep as a Kinesis client's call. Run returns only after
// the last fetch goroutine has exited. Each call of Run starts afresh from
// Config.Start; calls may run concurrently (and then so may the hooks and
// OnError).
func (f *Fetcher) Run(ctx context.Context, out chan<- Batch) error {
	ctx, cancel := context.WithCancelCause(ctx)
	// Buffered, so that a fetch goroutine can always deliver and exit.
	results := make(chan result, 1)
	var fetches sync.WaitGroup
	var pacing *time.Timer
	defer func() {
		cancel(errStopped)
		fetches.Wait()
		if pacing != nil {
			pacing.Stop()
		}
	}()
	r := f.newReader()
	fetch := func() { fetches.Go(func() { r.fetch(ctx, results) }) }

	type queued struct {
		batch Batch
		bytes int
	}
	var (
		queue    []queued
		bytes    int
		fetching bool // a fetch goroutine runs; only it touches r
		waiting  bool // the next fetch waits for pacing to fire
		ended    bool // the final batch is queued
	)
	for {
		if !fetching && !waiting && !ended && len(queue) < f.cfg.MaxBatches && bytes < f.cfg.MaxBytes {
			if d := r.untilNextCall(); d > 0 {
				if pacing == nil {
					pacing = time.NewTimer(d)
				} else {
					pacing.Reset(d)
				}
				waiting = true
			} else {
				fetch()
				fetching = true
			}
		}
		var paced <-chan time.Time
		if waiting {
			paced = pacing.C
		}
		var sendCh chan<- Batch
		var head Batch
		if len(queue) > 0 {
			sendCh, head = out, queue[0].batch
		}
		select {
		case <-paced:
			waiting = false
			fetch()
			fetching = true
		case res := <-results:
			fetching = false
			if res.err != nil {
				return res.err
			}
			if len(res.batch.Records) == 0 && !res.batch.ShardEnd {
				continue // an empty result is not delivered
			}
			queue = append(queue, queued{res.batch, res.bytes})
			bytes += res.bytes
			ended = res.batch.ShardEnd
		case sendCh <- head:
			bytes -= queue[0].bytes
			queue[0] = queued{}
			queue = queue[1:]
			if head.ShardEnd {
				return nil
			}
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// reader is the state of Run's fetches. Only one fetch goroutine at a time
// uses it, and Run reads it only while none runs.
type reader struct {
	f        *Fetcher
	dec      decoder
	policy   backoff.Policy
	iterator *string   // nil: get one before the next GetRecords
	after    string    // sequence number of the last accepted Kinesis record
	lastCall time.Time // start of the previous GetRecords call
	failures int       // consecutive failed calls, for the backoff
	invalid  int       // consecutive invalid results
}

func (f *Fetcher) newReader() *reader {
	return &reader{
		f:      f,
		dec:    decoder{deagg: f.deagg, start: f.cfg.Start, skipping: f.cfg.Start.IsSequence()},
		policy: backoff.New(f.cfg.BackoffBase, f.cfg.BackoffMax, nil),
	}
}

// fetch is the body of a fetch goroutine.
func (r *reader) fetch(ctx context.Context, results chan<- result) {
	b, n, err := r.next(ctx)
	results <- result{b, n, err}
}

// untilNextCall is how long the next GetRecords call must wait to start
// IdleTime after the previous one.
func (r *reader) untilNextCall() time.Duration {
	if r.lastCall.IsZero() {
		return 0
	}
	return time.Until(r.lastCall.Add(r.f.cfg.IdleTime))
}

// next calls Kinesis until it has a GetRecords result, the final batch, or
// a non-retryable error. The batch of a result with no records left after
// the filters is empty; Run does not deliver it.
func (r *reader) next(ctx context.Context) (Batch, int, error) {
	cfg := &r.f.cfg
	limit := int32(cfg.MaxRecords)
	for {
		if r.iterator == nil {
			end, err := r.getIterator(ctx)
			if err != nil || end {
				return Batch{ShardEnd: end}, 0, err
			}
			continue
		}
		if !r.lastCall.IsZero() {
			if err := sleep(ctx, time.Until(r.lastCall.Add(cfg.IdleTime))); err != nil {
				return Batch{}, 0, err
			}
		}
		r.lastCall = time.Now()
		out, err := r.f.api.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: r.iterator, Limit: &limit})
		info := CallInfo{Op: "GetRecords", Duration: time.Since(r.lastCall), Err: err, Kind: awserr.Classify(err)}
		if err == nil {
			info.Records = len(out.Records)
			info.Bytes = recordBytes(out.Records)
			info.MillisBehindLatest = millis(out.MillisBehindLatest)
		}
		r.hook(info)
		if err != nil {
			if info.Kind == awserr.ExpiredIterator {
				// A fresh iterator from the last accepted record; back off
				// only if that keeps happening.
				r.iterator = nil
				if r.failures > 0 {
					if err := r.policy.Wait(ctx, r.failures-1); err != nil {
						return Batch{}, 0, err
					}
				}
				r.failures++
				continue
			}
			if end, err := r.failed(ctx, "GetRecords", info.Kind, err); err != nil || end {
				return Batch{ShardEnd: end}, 0, err
			}
			continue
		}
		r.failures = 0
		if (out.NextShardIterator == nil) == (len(out.ChildShards) == 0) {
			if err := r.invalidResult(ctx); err != nil {
				return Batch{}, 0, err
			}
			continue
		}
		r.invalid = 0
		b := r.dec.decode(out)
		if n := len(out.Records); n > 0 && out.Records[n-1].SequenceNumber != nil {
			r.after = *out.Records[n-1].SequenceNumber
		}
		if out.NextShardIterator == nil {
			b.ShardEnd = true
			b.ChildShards = out.ChildShards
			return b, info.Bytes, nil
		}
		r.iterator = out.NextShardIterator
		return b, info.Bytes, nil
	}
}

// getIterator sets r.iterator from the last accepted record, or the start.
// end reports that the shard was not found.
func (r *reader) getIterator(ctx context.Context) (end bool, err error) {
	cfg := &r.f.cfg
	in := cfg.startIterator()
	if r.after != "" {
		in = cfg.iteratorInput()
		in.ShardIteratorType = types.ShardIteratorTypeAfterSequenceNumber
		in.StartingSequenceNumber = &r.after
	}
	for {
		start := time.Now()
		out, err := r.f.api.GetShardIterator(ctx, in)
		kind := awserr.Classify(err)
		r.hook(CallInfo{Op: "GetShardIterator", Duration: time.Since(start), Err: err, Kind: kind})
		if err != nil {
			if end, err := r.failed(ctx, "GetShardIterator", kind, err); err != nil || end {
				return end, err
			}
			continue
		}
		r.failures = 0
		if out.ShardIterator == nil {
			if err := r.invalidResult(ctx); err != nil {
				return false, err
			}
			continue
		}
		r.iterator = out.ShardIterator
		return false, nil
	}
}

// failed handles a failed call: it waits before a retry (nil, false), or
// reports the shard's end, or returns the error that ends Run.
func (r *reader) failed(ctx context.Context, op string, kind awserr.Kind, err error) (end bool, _ error) {
	if ctx.Err() != nil {
		return false, context.Cause(ctx)
	}
	switch {
	case kind.Retryable(), kind == awserr.Canceled:
		// Canceled with ctx alive is a per-attempt timeout: transient.
		werr := r.policy.Wait(ctx, r.failures)
		r.failures++
		return false, werr
	case kind == awserr.NotFound:
		return r.notFound(ctx, op, err)
	}
	return false, fmt.Errorf("retrieval: %s on shard %s: %w", op, r.f.cfg.ShardID, err)
}

// notFound tells a missing stream (an error) from a missing shard (its end).
func (r *reader) notFound(ctx context.Context, op string, err error) (end bool, _ error) {
	d, ok := r.f.api.(streamDescriber)
	if !ok {
		return true, nil
	}
	cfg := &r.f.cfg
	in := &kinesis.DescribeStreamSummaryInput{}
	if cfg.StreamName != "" {
		in.StreamName = &cfg.StreamName
	}
	if cfg.StreamARN != "" {
		in.StreamARN = &cfg.StreamARN
	}
	_, derr := d.DescribeStreamSummary(ctx, in)
	if ctx.Err() != nil {
		return false, context.Cause(ctx)
	}
	if awserr.Classify(derr) == awserr.NotFound {
		return false, fmt.Errorf("%w: %s on shard %s: %w", ErrStreamNotFound, op, cfg.ShardID, err)
	}
	return true, nil
}

// invalidResult discards an invalid result: the next read starts from a new
// iterator after the last accepted record, after a backoff.
func (r *reader) invalidResult(ctx context.Context) error {
	r.invalid++
	if r.invalid > maxInvalidResults {
		return fmt.Errorf("%w: %d results in a row on shard %s had both or neither of NextShardIterator and ChildShards",
			ErrInvalidResult, r.invalid, r.f.cfg.ShardID)
	}
	r.iterator = nil
	return r.policy.Wait(ctx, r.invalid-1)
}

func (r *reader) hook(info CallInfo) {
	if h := r.f.cfg.Hooks.Call; h != nil {
		h(info)
	}
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
