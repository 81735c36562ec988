package records

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/aggregate"
	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/internal/awserr"
	"github.com/kclgo/kcl/internal/backoff"
)

// PutAPI is the part of the Kinesis client a [Producer] calls.
// ListShards is called only with [PutConfig].Aggregate.
type PutAPI interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

// PutRecords limits, as Kinesis enforces them (kinesis-mock does not check
// the record count, so the Producer does).
const (
	MaxBatchRecords = 500
	MaxBatchBytes   = 5 << 20
)

// PutConfig configures a [Producer]. Zero optional fields select defaults.
type PutConfig struct {
	// Stream is the stream's name. Required.
	Stream string
	// Key gives each line's partition key. Required.
	Key KeyFunc
	// Aggregate packs lines into KPL aggregates, one aggregator per open
	// shard (ListShards once, at the start), each line going to the
	// aggregator of the shard whose hash key range holds its key.
	Aggregate bool
	// MaxAttempts bounds how often one record is sent; a record that
	// still fails then counts in PutStats.Failed. Default 8.
	MaxAttempts int
	// BackoffBase and BackoffMax shape the backoff before a batch that
	// retries failed records (exponential, jittered). Defaults 100 ms, 5 s.
	BackoffBase, BackoffMax time.Duration
	// Linger is how long lines wait for more before a partial batch (and
	// any pending aggregate) is sent. Default 200 ms.
	Linger time.Duration
	// Progress, when set, is called about every ProgressEvery with the
	// counts so far, on Run's goroutine. Default interval 1 s.
	Progress      func(PutStats)
	ProgressEvery time.Duration
}

// PutStats counts what a Producer did. Lines and records count user
// records; Entries counts Kinesis records (aggregates count once).
type PutStats struct {
	Lines   int // lines read
	Put     int // user records Kinesis accepted
	Failed  int // user records that failed MaxAttempts times, or were invalid
	Entries int // Kinesis records accepted
	Calls   int // PutRecords calls
	Retried int // Kinesis records sent again after a failure
	Elapsed time.Duration
	// FirstFailure says why the first failed record failed.
	FirstFailure string
}

// ErrRecordsFailed is wrapped by the error Run returns when some records
// finally failed; the PutStats say how many.
var ErrRecordsFailed = errors.New("records failed")

// Producer puts lines into a stream. Build it with [NewProducer].
type Producer struct {
	cfg   PutConfig
	api   PutAPI
	retry backoff.Policy
}

// NewProducer validates cfg. It makes no calls.
func NewProducer(api PutAPI, cfg PutConfig) (*Producer, error) {
	if cfg.Stream == "" {
		return nil, errors.New("records: stream name required")
	}
	if cfg.Key == nil {
		return nil, errors.New("records: partition key function required")
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = 100 * time.Millisecond
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 5 * time.Second
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 200 * time.Millisecond
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = time.Second
	}
	return &Producer{cfg: cfg, api: api, retry: backoff.New(cfg.BackoffBase, cfg.BackoffMax, nil)}, nil
}

// entry is one Kinesis record to send.
type entry struct {
	pk, ehk  string
	data     []byte
	records  int    // user records it holds
	attempts int    // sends so far
	lastErr  string // why the last send failed
}

func (e *entry) size() int { return len(e.data) + len(e.pk) }

// shardAgg is the aggregator of one shard.
type shardAgg struct {
	r   hashkey.Range
	agg *aggregate.Aggregator
}

// putRun is the state of one Run.
type putRun struct {
	p       *Producer
	stats   PutStats
	retries []entry // failed entries, sent first
	pending []entry // new entries, in input order
	aggs    []shardAgg
	// wait is the backoff attempt before the next batch with retries; -1
	// when the last batch failed nothing.
	wait int
}

// Run reads lines from in until it is closed (or ctx ends), puts them, and
// returns the counts. Lines are sent in batches of at most 500 records and
// 5 MiB; records that Kinesis rejects are sent again, at the front of the
// next batch after a backoff, up to MaxAttempts times. Run returns an error
// wrapping ErrRecordsFailed when some records finally failed, and at once
// on a call error that retrying cannot fix (an unknown stream, access
// denied) or when ctx ends.
func (p *Producer) Run(ctx context.Context, in <-chan []byte) (PutStats, error) {
	start := time.Now()
	r := &putRun{p: p, wait: -1}
	if p.cfg.Aggregate {
		aggs, err := p.shardAggregators(ctx)
		if err != nil {
			return r.stats, err
		}
		r.aggs = aggs
	}
	err := r.loop(ctx, in)
	r.stats.Elapsed = time.Since(start)
	if err == nil && r.stats.Failed > 0 {
		err = fmt.Errorf("%d of %d %w; the first: %s", r.stats.Failed, r.stats.Lines, ErrRecordsFailed, r.stats.FirstFailure)
	}
	return r.stats, err
}

func (r *putRun) loop(ctx context.Context, in <-chan []byte) error {
	linger := time.NewTimer(r.p.cfg.Linger)
	defer linger.Stop()
	progress := time.NewTicker(r.p.cfg.ProgressEvery)
	defer progress.Stop()
	idle := true
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-progress.C:
			if r.p.cfg.Progress != nil {
				r.p.cfg.Progress(r.stats)
			}
		case <-linger.C:
			if idle {
				if err := r.drain(ctx); err != nil {
					return err
				}
			}
			idle = true
			linger.Reset(r.p.cfg.Linger)
		case line, ok := <-in:
			if !ok {
				return r.drain(ctx)
			}
			idle = false
			r.add(line)
			for r.full() {
				if err := r.send(ctx); err != nil {
					return err
				}
			}
		}
	}
}

// add turns one line into an entry, or adds it to its shard's aggregate.
func (r *putRun) add(line []byte) {
	n := uint64(r.stats.Lines)
	r.stats.Lines++
	pk, err := r.p.cfg.Key(n, line)
	if err == nil && !validKey(pk) {
		err = fmt.Errorf("line %d: partition key %q is not 1 to 256 characters", n+1, pk)
	}
	if err != nil {
		r.failed(1, err.Error())
		return
	}
	if r.aggs == nil {
		if len(line)+len(pk) > 1<<20 {
			r.failed(1, fmt.Sprintf("line %d: %d bytes with its partition key, more than a record's 1 MiB", n+1, len(line)+len(pk)))
			return
		}
		r.pending = append(r.pending, entry{pk: pk, data: line, records: 1})
		return
	}
	a := r.aggFor(hashkey.FromPartitionKey(pk))
	full, ok, err := a.Add(aggregate.UserRecord{PartitionKey: pk, Data: line})
	if err != nil {
		r.failed(1, fmt.Sprintf("line %d: %v", n+1, err))
		return
	}
	if ok {
		r.pending = append(r.pending, fromAggregate(full))
	}
}

func validKey(pk string) bool {
	n := 0
	for range pk {
		n++
	}
	return n >= 1 && n <= aggregate.MaxPartitionKeyLen
}

func fromAggregate(e aggregate.Entry) entry {
	return entry{pk: e.PartitionKey, ehk: e.ExplicitHashKey, data: e.Data, records: e.Records}
}

// aggFor returns the aggregator of the shard holding k (the last one if
// the shards listed do not cover k, which a consistent stream rules out).
func (r *putRun) aggFor(k hashkey.Key) *aggregate.Aggregator {
	i, _ := slices.BinarySearchFunc(r.aggs, k, func(s shardAgg, k hashkey.Key) int {
		if s.r.End.Compare(k) < 0 {
			return -1
		}
		if s.r.Start.Compare(k) > 0 {
			return 1
		}
		return 0
	})
	return r.aggs[min(i, len(r.aggs)-1)].agg
}

// full reports whether a whole batch is waiting.
func (r *putRun) full() bool {
	n, size := 0, 0
	for _, q := range [][]entry{r.retries, r.pending} {
		for i := range q {
			n++
			size += q[i].size()
			if n >= MaxBatchRecords || size >= MaxBatchBytes {
				return true
			}
		}
	}
	return false
}

// drain flushes the aggregates and sends everything waiting.
func (r *putRun) drain(ctx context.Context) error {
	for _, a := range r.aggs {
		if e, ok := a.agg.Flush(); ok {
			r.pending = append(r.pending, fromAggregate(e))
		}
	}
	for len(r.retries)+len(r.pending) > 0 {
		if err := r.send(ctx); err != nil {
			return err
		}
	}
	return nil
}

// send makes one PutRecords call with the retries first, then new entries.
func (r *putRun) send(ctx context.Context) error {
	if len(r.retries) > 0 && r.wait >= 0 {
		if err := r.p.retry.Wait(ctx, r.wait); err != nil {
			return err
		}
	}
	batch := make([]entry, 0, MaxBatchRecords)
	size := 0
	take := func(q []entry) []entry {
		i := 0
		for ; i < len(q) && len(batch) < MaxBatchRecords; i++ {
			if len(batch) > 0 && size+q[i].size() > MaxBatchBytes {
				break
			}
			batch = append(batch, q[i])
			size += q[i].size()
		}
		return q[i:]
	}
	r.retries = take(r.retries)
	r.pending = take(r.pending)

	in := &kinesis.PutRecordsInput{StreamName: aws.String(r.p.cfg.Stream), Records: make([]types.PutRecordsRequestEntry, len(batch))}
	for i := range batch {
		e := &batch[i]
		in.Records[i] = types.PutRecordsRequestEntry{Data: e.data, PartitionKey: aws.String(e.pk)}
		if e.ehk != "" {
			in.Records[i].ExplicitHashKey = aws.String(e.ehk)
		}
		e.attempts++
	}
	r.stats.Calls++
	out, err := r.p.api.PutRecords(ctx, in)
	var failed []entry
	switch {
	case err != nil && awserr.Classify(err) == awserr.NotFound:
		return fmt.Errorf("%w: %s", ErrStreamNotFound, r.p.cfg.Stream)
	case err != nil && !awserr.Classify(err).Retryable():
		return fmt.Errorf("put records: %w", err)
	case err != nil:
		for i := range batch {
			batch[i].lastErr = awserr.Classify(err).String()
		}
		failed = batch
	default:
		for i, res := range out.Records {
			if i >= len(batch) {
				break
			}
			if res.ErrorCode != nil {
				batch[i].lastErr = aws.ToString(res.ErrorCode)
				failed = append(failed, batch[i])
				continue
			}
			r.stats.Put += batch[i].records
			r.stats.Entries++
		}
	}
	if len(failed) == 0 {
		r.wait = -1
		return nil
	}
	r.wait++
	var again []entry
	for _, e := range failed {
		if e.attempts >= r.p.cfg.MaxAttempts {
			r.failed(e.records, fmt.Sprintf("rejected %d times (%s)", e.attempts, e.lastErr))
			continue
		}
		r.stats.Retried++
		again = append(again, e)
	}
	r.retries = append(again, r.retries...)
	return nil
}

// failed counts n user records as failed, keeping the first reason.
func (r *putRun) failed(n int, why string) {
	if r.stats.Failed == 0 {
		r.stats.FirstFailure = why
	}
	r.stats.Failed += n
}

// shardAggregators lists the open shards, sorted by hash range, each with
// an aggregator.
func (p *Producer) shardAggregators(ctx context.Context) ([]shardAgg, error) {
	shards, err := listShards(ctx, p.api, p.cfg.Stream)
	if err != nil {
		return nil, err
	}
	var out []shardAgg
	for _, s := range shards {
		if s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil {
			continue
		}
		rg, err := hashkey.ParseRange(aws.ToString(s.HashKeyRange.StartingHashKey), aws.ToString(s.HashKeyRange.EndingHashKey))
		if err != nil {
			return nil, fmt.Errorf("shard %s: %w", aws.ToString(s.ShardId), err)
		}
		a, err := aggregate.New()
		if err != nil {
			return nil, err
		}
		out = append(out, shardAgg{r: rg, agg: a})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("stream %s has no open shard", p.cfg.Stream)
	}
	slices.SortFunc(out, func(a, b shardAgg) int { return a.r.Start.Compare(b.r.Start) })
	return out, nil
}

// ShardLister is ListShards with the SDK's signature.
type ShardLister interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

// ErrStreamNotFound is wrapped by errors about a stream that does not exist.
var ErrStreamNotFound = errors.New("stream not found")

// listShards returns every shard of the stream, following NextToken.
func listShards(ctx context.Context, api ShardLister, stream string) ([]types.Shard, error) {
	var shards []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	for {
		out, err := api.ListShards(ctx, in)
		if err != nil {
			if awserr.Classify(err) == awserr.NotFound {
				return nil, fmt.Errorf("%w: %s", ErrStreamNotFound, stream)
			}
			return nil, fmt.Errorf("list shards of %s: %w", stream, err)
		}
		shards = append(shards, out.Shards...)
		if out.NextToken == nil {
			return shards, nil
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}
