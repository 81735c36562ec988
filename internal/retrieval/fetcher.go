package retrieval

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kclgo/kcl/internal/awserr"
)

// errStopped is the cause given to the fetch goroutine's context when Run
// returns.
var errStopped = errors.New("retrieval: Run returned")

// Fetcher is the [Polling] Reader: it reads one shard with GetRecords.
// NewReader builds it; it is immutable.
type Fetcher struct {
	core
	api  API
	poll Polling
}

// result is one answer of a fetch goroutine.
type result struct {
	batch Batch
	bytes int
	err   error
}

// Run is [Reader.Run] for polling. Run calls Kinesis and the hooks on a
// goroutine it starts for each fetch and that exits with the fetch's
// result; fetches run one at a time, so within one Run the hooks and
// OnError are never called concurrently. While it waits out IdleTime no
// such goroutine exists: an idle shard costs Run's own goroutine only, not
// a second one with a stack as deep as a Kinesis client's call. Run
// returns only after the last fetch goroutine has exited. Calls of Run may
// run concurrently (and then so may the hooks and OnError).
//
// Up to Polling.MaxBatches batches (or MaxBytes bytes) are fetched ahead;
// on a non-retryable error Run returns without delivering them.
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
	r := f.newFetchState()
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
		if !fetching && !waiting && !ended && len(queue) < f.poll.MaxBatches && bytes < f.poll.MaxBytes {
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

// fetchState is the state of Run's fetches. Only one fetch goroutine at a
// time uses it, and Run reads it only while none runs.
type fetchState struct {
	f        *Fetcher
	dec      decoder
	retries  retries
	iterator *string   // nil: get one before the next GetRecords
	after    string    // sequence number of the last accepted Kinesis record
	lastCall time.Time // start of the previous GetRecords call
	expired  int       // consecutive GetRecords calls that found the iterator expired
}

func (f *Fetcher) newFetchState() *fetchState {
	return &fetchState{f: f, dec: f.decoder(), retries: f.retries()}
}

// fetch is the body of a fetch goroutine.
func (r *fetchState) fetch(ctx context.Context, results chan<- result) {
	b, n, err := r.next(ctx)
	results <- result{b, n, err}
}

// untilNextCall is how long the next GetRecords call must wait to start
// IdleTime after the previous one.
func (r *fetchState) untilNextCall() time.Duration {
	if r.lastCall.IsZero() {
		return 0
	}
	return time.Until(r.lastCall.Add(r.f.poll.IdleTime))
}

// next calls Kinesis until it has a GetRecords result, the final batch, or
// a non-retryable error. The batch of a result with no records left after
// the filters is empty; Run does not deliver it.
func (r *fetchState) next(ctx context.Context) (Batch, int, error) {
	limit := int32(r.f.poll.MaxRecords)
	for {
		if r.iterator == nil {
			end, err := r.getIterator(ctx)
			if err != nil || end {
				return Batch{ShardEnd: end}, 0, err
			}
			continue
		}
		if err := sleep(ctx, r.untilNextCall()); err != nil {
			return Batch{}, 0, err
		}
		r.lastCall = time.Now()
		out, err := r.f.api.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: r.iterator, Limit: &limit})
		info := CallInfo{Op: "GetRecords", Err: err, Kind: awserr.Classify(err)}
		if err == nil {
			info = recordsInfo("GetRecords", 0, out.Records, out.MillisBehindLatest)
		}
		info.Duration = time.Since(r.lastCall)
		r.f.hook(info)
		if err != nil {
			if outcomeOf(info.Kind) == iteratorExpired {
				// A fresh iterator from the last accepted record; back off
				// only if that keeps happening. Counted apart from failures,
				// which the GetShardIterator call in between resets: the
				// retries would otherwise all come IdleTime apart, in step
				// with whatever made them fail.
				r.iterator = nil
				if r.expired > 0 {
					if err := r.retries.policy.Wait(ctx, r.expired-1); err != nil {
						return Batch{}, 0, err
					}
				}
				r.expired++
				continue
			}
			if end, err := r.failed(ctx, "GetRecords", info.Kind, err); err != nil || end {
				return Batch{ShardEnd: end}, 0, err
			}
			continue
		}
		r.retries.failures = 0
		r.expired = 0
		b, ok := r.dec.batch(out.Records, out.MillisBehindLatest, out.NextShardIterator, out.ChildShards)
		if !ok {
			if err := r.invalidResult(ctx); err != nil {
				return Batch{}, 0, err
			}
			continue
		}
		r.retries.invalid = 0
		if seq := lastSequence(out.Records); seq != "" {
			r.after = seq
		}
		r.iterator = out.NextShardIterator
		return b, info.Bytes, nil
	}
}

// getIterator sets r.iterator from the last accepted record, or the start.
// end reports that the shard was not found.
func (r *fetchState) getIterator(ctx context.Context) (end bool, err error) {
	in := r.f.cfg.iteratorInput(r.after)
	for {
		start := time.Now()
		out, err := r.f.api.GetShardIterator(ctx, in)
		kind := awserr.Classify(err)
		r.f.hook(CallInfo{Op: "GetShardIterator", Duration: time.Since(start), Err: err, Kind: kind})
		if err != nil {
			if end, err := r.failed(ctx, "GetShardIterator", kind, err); err != nil || end {
				return end, err
			}
			continue
		}
		r.retries.failures = 0
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
func (r *fetchState) failed(ctx context.Context, op string, kind awserr.Kind, err error) (end bool, _ error) {
	if ctx.Err() != nil {
		return false, context.Cause(ctx)
	}
	switch outcomeOf(kind) {
	case retryLater, retryInUse:
		return false, r.retries.backoff(ctx)
	case missing:
		return r.notFound(ctx, op, err)
	}
	return false, r.retries.callFailed(op, err)
}

// notFound tells a missing stream (an error) from a missing shard (its end).
func (r *fetchState) notFound(ctx context.Context, op string, err error) (end bool, _ error) {
	d, ok := r.f.api.(streamDescriber)
	if !ok {
		return true, nil
	}
	in := &kinesis.DescribeStreamSummaryInput{}
	in.StreamName, in.StreamARN = r.f.cfg.stream()
	_, derr := d.DescribeStreamSummary(ctx, in)
	if ctx.Err() != nil {
		return false, context.Cause(ctx)
	}
	if awserr.Classify(derr) == awserr.NotFound {
		return false, r.retries.streamNotFound(op, err)
	}
	return true, nil
}

// invalidResult discards an invalid result: the next read starts from a new
// iterator after the last accepted record, after a backoff.
func (r *fetchState) invalidResult(ctx context.Context) error {
	if err := r.retries.invalidResult(ctx, "results", "NextShardIterator"); err != nil {
		return err
	}
	r.iterator = nil
	return nil
}
