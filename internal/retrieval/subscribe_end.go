package retrieval

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/internal/awserr"
)

// maxEndCheckCalls bounds the GetRecords calls of one shard-end
// confirmation; they are paced MinIdleTime apart.
const maxEndCheckCalls = 100

// findShard describes the Subscriber's shard with ListShards; nil when the
// stream has no such shard (any more).
func (r *subRun) findShard(ctx context.Context) (*types.Shard, error) {
	in := &kinesis.ListShardsInput{}
	in.StreamName, in.StreamARN = r.s.cfg.stream()
	for {
		start := time.Now()
		res, err := r.s.api.ListShards(ctx, in)
		r.s.hook(CallInfo{Op: "ListShards", Duration: time.Since(start), Err: err, Kind: awserr.Classify(err)})
		if err != nil {
			return nil, err
		}
		for i := range res.Shards {
			if sh := &res.Shards[i]; sh.ShardId != nil && *sh.ShardId == r.s.cfg.ShardID {
				return sh, nil
			}
		}
		if res.NextToken == nil {
			return nil, nil
		}
		// A NextToken carries the stream and may not be combined with it.
		in = &kinesis.ListShardsInput{NextToken: res.NextToken}
	}
}

// isClosed reports whether ListShards describes sh as closed. Only the
// presence of EndingSequenceNumber counts: kinesis-mock sets it to a value
// smaller than real sequence numbers.
func isClosed(sh *types.Shard) bool {
	return sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil
}

// shardClosed is the first half of the shard-end check of an idle
// subscription. Only a missing stream is an error: when ListShards fails
// otherwise (throttled, not permitted), the subscription goes on and the
// check is tried again later.
func (r *subRun) shardClosed(ctx context.Context) (bool, error) {
	sh, err := r.findShard(ctx)
	switch {
	case ctx.Err() != nil:
		return false, context.Cause(ctx)
	case err == nil:
		return sh != nil && isClosed(sh), nil
	case awserr.Classify(err) == awserr.NotFound:
		return false, fmt.Errorf("%w: ListShards for shard %s: %w", ErrStreamNotFound, r.s.cfg.ShardID, err)
	}
	return false, nil
}

// notFound handles ResourceNotFound from SubscribeToShard or its event
// stream. Kinesis uses it for a missing stream, shard or consumer alike,
// so ListShards decides: no stream is an error wrapping ErrStreamNotFound;
// no shard (trimmed) is the shard's end, without children, as for the
// Fetcher; a closed shard is confirmed as a shard end with GetRecords; an
// open shard means the consumer is missing: an error wrapping
// ErrConsumerNotFound, since ending an open shard would lose its records.
func (r *subRun) notFound(ctx context.Context, op string, err error) (done bool, _ error) {
	sh, lerr := r.findShard(ctx)
	if ctx.Err() != nil {
		return false, context.Cause(ctx)
	}
	if lerr != nil {
		return r.listFailed(ctx, op, err, lerr)
	}
	switch {
	case sh == nil:
		return true, r.send(ctx, Batch{ShardEnd: true})
	case isClosed(sh):
		return r.confirmEnd(ctx)
	}
	return false, fmt.Errorf("%w: %s on shard %s: %w", ErrConsumerNotFound, op, r.s.cfg.ShardID, err)
}

// listFailed handles a ListShards failure while handling err from op.
func (r *subRun) listFailed(ctx context.Context, op string, err, lerr error) (done bool, _ error) {
	switch outcomeOf(awserr.Classify(lerr)) {
	case missing:
		return false, r.retries.streamNotFound(op, err)
	case retryLater, retryInUse:
		return false, r.retries.backoff(ctx)
	}
	return false, r.retries.callFailed(op, fmt.Errorf("%w (ListShards: %w)", err, lerr))
}

// confirmEnd reads the shard with GetRecords from the continuation point
// (or the start position when no event was accepted yet) to its end,
// delivering records in order and then the final batch with the children
// (done). When the shard turns out not to be at its end (two caught-up
// empty results, or maxEndCheckCalls calls), it returns (false, nil) with
// the continuation moved past what it delivered, and Run subscribes again.
func (r *subRun) confirmEnd(ctx context.Context) (done bool, _ error) {
	start := time.Now()
	it, err := r.s.api.GetShardIterator(ctx, r.s.cfg.iteratorInput(r.continuation))
	r.s.hook(CallInfo{Op: "GetShardIterator", Duration: time.Since(start), Err: err, Kind: awserr.Classify(err)})
	if err != nil {
		return r.endCheckFailed(ctx, "GetShardIterator", err)
	}
	iterator := it.ShardIterator
	caughtUp := 0
	for calls := 0; iterator != nil && calls < maxEndCheckCalls; calls++ {
		if calls > 0 {
			if err := sleep(ctx, MinIdleTime); err != nil {
				return false, err
			}
		}
		start := time.Now()
		res, err := r.s.api.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iterator})
		info := CallInfo{Op: "GetRecords", Err: err, Kind: awserr.Classify(err)}
		if err == nil {
			info = recordsInfo("GetRecords", 0, res.Records, res.MillisBehindLatest)
		}
		info.Duration = time.Since(start)
		r.s.hook(info)
		if err != nil {
			return r.endCheckFailed(ctx, "GetRecords", err)
		}
		b, ok := r.dec.batch(res.Records, res.MillisBehindLatest, res.NextShardIterator, res.ChildShards)
		if !ok {
			return false, r.invalidEvent(ctx)
		}
		if b.ShardEnd {
			return true, r.send(ctx, b)
		}
		if len(b.Records) > 0 {
			if err := r.send(ctx, b); err != nil {
				return false, err
			}
		}
		switch seq := lastSequence(res.Records); {
		case seq != "":
			r.continuation = seq
			caughtUp = 0
		case len(res.Records) == 0 && info.MillisBehindLatest == 0:
			if caughtUp++; caughtUp == 2 {
				return false, nil
			}
		}
		iterator = res.NextShardIterator
	}
	return false, nil
}

// endCheckFailed handles a failed call of confirmEnd: ResourceNotFound is
// the shard's end without children unless the stream is gone; retryable
// errors (an expired iterator too) wait before Run subscribes again.
func (r *subRun) endCheckFailed(ctx context.Context, op string, err error) (done bool, _ error) {
	if ctx.Err() != nil {
		return false, context.Cause(ctx)
	}
	switch outcomeOf(awserr.Classify(err)) {
	case missing:
		if _, lerr := r.findShard(ctx); lerr != nil {
			return r.listFailed(ctx, op, err, lerr)
		}
		return true, r.send(ctx, Batch{ShardEnd: true})
	case retryLater, retryInUse, iteratorExpired:
		return false, r.retries.backoff(ctx)
	}
	return false, r.retries.callFailed(op, err)
}
