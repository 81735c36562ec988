package records

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/deaggregate"
	"github.com/kclgo/kcl/internal/awserr"
	"github.com/kclgo/kcl/internal/backoff"
)

// TailAPI is the part of the Kinesis client a [Tailer] calls.
type TailAPI interface {
	ShardLister
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// ErrShardNotFound is wrapped by the error Run returns for a --shard the
// stream does not have.
var ErrShardNotFound = errors.New("shard not found")

// minPoll is the least time between two GetRecords calls on one shard:
// Kinesis allows five per second per shard, shared by every reader.
const minPoll = 200 * time.Millisecond

// TailConfig configures a [Tailer]. Zero optional fields select defaults.
type TailConfig struct {
	// Stream is the stream's name. Required.
	Stream string
	// From is where reading starts on the first shards. Children of a shard
	// read to its end start at their trim horizon (at From.Time for
	// FromTime). Default FromLatest.
	From Start
	// Shard, when set, reads only this shard (and, with Follow, its
	// descendants). FromSequence requires it: a sequence number belongs
	// to one shard.
	Shard string
	// Follow keeps reading at the tip of open shards, and into the
	// children of shards that end, until ctx ends or Limit is reached.
	// Without it each shard is read until it is caught up (or, if it is
	// closed, to its end and on into its children).
	Follow bool
	// Limit, when positive, stops after that many records.
	Limit int
	// Match, when set, keeps only the records it accepts (before Limit
	// counts them).
	Match func(*Record) bool
	// PollInterval is the time between GetRecords calls on a shard that is
	// caught up; at least 200 ms. Default 1 s.
	PollInterval time.Duration
}

// Sink receives the records of one GetRecords result of one shard, in
// order. Run calls it from one goroutine at a time; the slice is reused
// after it returns. An error from Sink stops Run, which returns it.
type Sink func(recs []Record) error

// Tailer reads a stream's records. Build it with [NewTailer].
type Tailer struct {
	cfg TailConfig
	api TailAPI
}

// NewTailer validates cfg. It makes no calls.
func NewTailer(api TailAPI, cfg TailConfig) (*Tailer, error) {
	if cfg.Stream == "" {
		return nil, errors.New("records: stream name required")
	}
	if cfg.From.Kind == 0 {
		cfg.From.Kind = FromLatest
	}
	if cfg.From.Kind == FromSequence && cfg.Shard == "" {
		return nil, errors.New("a sequence number start needs --shard: a sequence number belongs to one shard")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	cfg.PollInterval = max(cfg.PollInterval, minPoll)
	return &Tailer{cfg: cfg, api: api}, nil
}

// errLimit ends a run that reached its Limit.
var errLimit = errors.New("limit reached")

// tailRun is the state of one Run, owned by Run's goroutine except where
// noted.
type tailRun struct {
	t    *Tailer
	sink Sink

	// mu serialises Sink calls and guards count.
	mu    sync.Mutex
	count int
}

// shardDone is what a shard's goroutine reports when it returns.
type shardDone struct {
	id       string
	children []types.ChildShard
	err      error
}

// Run lists the stream's shards and reads them, calling sink with their
// records, until every shard read is caught up (without Follow), Limit
// records were delivered, or ctx ends. Shards are read concurrently, one
// goroutine each; a child shard starts only after every parent being read
// has ended, so a partition key's records come in order across reshards.
// Run returns nil after Limit records or when ctx ends with
// context.Canceled; otherwise the first error (an unknown stream or shard,
// a call that retrying cannot fix, the sink's error). It returns only after
// every goroutine it started has exited.
func (t *Tailer) Run(ctx context.Context, sink Sink) error {
	shards, err := listShards(ctx, t.api, t.cfg.Stream)
	if err != nil {
		return err
	}
	first, err := t.firstShards(shards)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r := &tailRun{t: t, sink: sink}
	lin := newLineage(shards, first)
	done := make(chan shardDone)
	reading := map[string]bool{}     // started and not ended
	waiting := map[string][]string{} // child -> parents
	start := func(id string, from Start) {
		lin.started[id], reading[id] = true, true
		go func() {
			children, err := r.readShard(ctx, id, from)
			done <- shardDone{id: id, children: children, err: err}
		}()
	}
	for _, id := range first {
		start(id, t.cfg.From)
	}
	childFrom := Start{Kind: FromTrimHorizon}
	if t.cfg.From.Kind == FromTime {
		childFrom = t.cfg.From
	}
	var firstErr error
	fail := func(err error) {
		if firstErr == nil {
			firstErr = err
			cancel(err)
		}
	}
	for len(reading) > 0 {
		d := <-done
		delete(reading, d.id)
		if d.err != nil {
			fail(d.err)
			continue
		}
		if firstErr != nil || d.children == nil {
			continue
		}
		lin.ended[d.id] = true
		for _, c := range d.children {
			id := aws.ToString(c.ShardId)
			if !lin.started[id] {
				waiting[id] = c.ParentShards
				lin.parents[id] = c.ParentShards
			}
		}
		if lin.unknownParents(waiting) {
			// A shard newer than the listing: list again to learn whether
			// it descends from what is being read.
			shards, err := listShards(ctx, t.api, t.cfg.Stream)
			if err != nil {
				fail(err)
				continue
			}
			lin.add(shards)
		}
		for _, id := range slices.Sorted(maps.Keys(waiting)) {
			if lin.ready(waiting[id]) {
				delete(waiting, id)
				start(id, childFrom)
			}
		}
	}
	if errors.Is(firstErr, errLimit) || errors.Is(firstErr, context.Canceled) {
		return nil
	}
	return firstErr
}

// lineage knows which shards a run reads: the first shards and their
// descendants. Owned by Run's goroutine.
type lineage struct {
	parents map[string][]string // by shard, from ListShards and ChildShards
	first   map[string]bool
	started map[string]bool
	ended   map[string]bool // read to the end
	memo    map[string]bool // read reports
}

func newLineage(shards []types.Shard, first []string) *lineage {
	l := &lineage{parents: map[string][]string{}, first: map[string]bool{}, started: map[string]bool{}, ended: map[string]bool{}}
	for _, id := range first {
		l.first[id] = true
	}
	l.add(shards)
	return l
}

func (l *lineage) add(shards []types.Shard) {
	for _, s := range shards {
		var ps []string
		for _, p := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
			if p != nil {
				ps = append(ps, *p)
			}
		}
		l.parents[aws.ToString(s.ShardId)] = ps
	}
	l.memo = nil
}

// read reports whether the run reads shard id: it is a first shard or a
// child of one it reads.
func (l *lineage) read(id string) bool {
	if l.first[id] || l.started[id] {
		return true
	}
	if l.memo == nil {
		l.memo = map[string]bool{}
	}
	if v, ok := l.memo[id]; ok {
		return v
	}
	l.memo[id] = false // cuts cycles, which a consistent stream does not have
	for _, p := range l.parents[id] {
		if l.read(p) {
			l.memo[id] = true
			return true
		}
	}
	return false
}

// ready reports whether a child may start: every parent the run reads has
// ended. A parent it does not read (not selected, or trimmed) does not
// hold the child back.
func (l *lineage) ready(parents []string) bool {
	for _, p := range parents {
		if !l.ended[p] && l.read(p) {
			return false
		}
	}
	return true
}

// unknownParents reports whether a waiting child has a parent the run
// knows nothing of.
func (l *lineage) unknownParents(waiting map[string][]string) bool {
	for _, ps := range waiting {
		for _, p := range ps {
			if _, ok := l.parents[p]; !ok {
				return true
			}
		}
	}
	return false
}

// firstShards picks the shards Run starts with: the --shard, the open
// shards from latest, or else the shards none of whose parents is listed.
func (t *Tailer) firstShards(shards []types.Shard) ([]string, error) {
	listed := map[string]bool{}
	for _, s := range shards {
		listed[aws.ToString(s.ShardId)] = true
	}
	if t.cfg.Shard != "" {
		if !listed[t.cfg.Shard] {
			return nil, fmt.Errorf("%w: stream %s has no shard %s", ErrShardNotFound, t.cfg.Stream, t.cfg.Shard)
		}
		return []string{t.cfg.Shard}, nil
	}
	var ids []string
	for _, s := range shards {
		open := s.SequenceNumberRange == nil || s.SequenceNumberRange.EndingSequenceNumber == nil
		root := !listed[aws.ToString(s.ParentShardId)] && !listed[aws.ToString(s.AdjacentParentShardId)]
		if (t.cfg.From.Kind == FromLatest && open) || (t.cfg.From.Kind != FromLatest && root) {
			ids = append(ids, aws.ToString(s.ShardId))
		}
	}
	return ids, nil
}

// readShard reads one shard from from. It returns the shard's children
// (non-nil, possibly empty) when it read the shard to its end, nil when it
// stopped at the tip without Follow.
func (r *tailRun) readShard(ctx context.Context, id string, from Start) ([]types.ChildShard, error) {
	cfg := &r.t.cfg
	retry := backoff.New(100*time.Millisecond, 5*time.Second, nil)
	attempt := 0
	last := "" // sequence number of the last Kinesis record read
	iter, err := r.iterator(ctx, id, from, last)
	if err != nil {
		return nil, err
	}
	var users []deaggregate.Record
	var out []Record
	for {
		res, err := r.t.api.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(iter)})
		if err != nil {
			switch kind := awserr.Classify(err); {
			case ctx.Err() != nil:
				return nil, context.Cause(ctx)
			case kind == awserr.ExpiredIterator:
				iter, err = r.iterator(ctx, id, from, last)
				if err != nil {
					return nil, err
				}
				continue
			case kind.Retryable():
				if err := retry.Wait(ctx, attempt); err != nil {
					return nil, err
				}
				attempt++
				continue
			default:
				return nil, fmt.Errorf("get records from %s: %w", id, err)
			}
		}
		attempt = 0
		if n := len(res.Records); n > 0 {
			last = aws.ToString(res.Records[n-1].SequenceNumber)
		}
		users = deaggregate.Records(res.Records)
		out = out[:0]
		for _, u := range users {
			rec := Record{Shard: id, Record: u}
			if cfg.Match == nil || cfg.Match(&rec) {
				out = append(out, rec)
			}
		}
		if err := r.deliver(out); err != nil {
			return nil, err
		}
		if res.NextShardIterator == nil {
			if res.ChildShards == nil {
				return []types.ChildShard{}, nil
			}
			return res.ChildShards, nil
		}
		iter = aws.ToString(res.NextShardIterator)
		behind := aws.ToInt64(res.MillisBehindLatest)
		if len(res.Records) == 0 && behind == 0 && !cfg.Follow {
			return nil, nil
		}
		wait := cfg.PollInterval
		if len(res.Records) > 0 && behind > 0 {
			wait = minPoll
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// deliver hands recs to the sink, cut to the Limit.
func (r *tailRun) deliver(recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	limit := r.t.cfg.Limit
	if limit > 0 {
		if r.count >= limit {
			return errLimit
		}
		recs = recs[:min(len(recs), limit-r.count)]
	}
	r.count += len(recs)
	if err := r.sink(recs); err != nil {
		return err
	}
	if limit > 0 && r.count >= limit {
		return errLimit
	}
	return nil
}

// iterator returns a shard iterator at from, or after the last record read.
func (r *tailRun) iterator(ctx context.Context, id string, from Start, last string) (string, error) {
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(r.t.cfg.Stream), ShardId: aws.String(id)}
	switch {
	case last != "":
		in.ShardIteratorType, in.StartingSequenceNumber = types.ShardIteratorTypeAfterSequenceNumber, aws.String(last)
	case from.Kind == FromTrimHorizon:
		in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
	case from.Kind == FromTime:
		in.ShardIteratorType, in.Timestamp = types.ShardIteratorTypeAtTimestamp, aws.Time(from.Time)
	case from.Kind == FromSequence:
		in.ShardIteratorType, in.StartingSequenceNumber = types.ShardIteratorTypeAtSequenceNumber, aws.String(from.Sequence)
	default:
		in.ShardIteratorType = types.ShardIteratorTypeLatest
	}
	retry := backoff.New(100*time.Millisecond, 5*time.Second, nil)
	for attempt := 0; ; attempt++ {
		out, err := r.t.api.GetShardIterator(ctx, in)
		if err == nil {
			return aws.ToString(out.ShardIterator), nil
		}
		kind := awserr.Classify(err)
		switch {
		case ctx.Err() != nil:
			return "", context.Cause(ctx)
		case kind.Retryable():
			if err := retry.Wait(ctx, attempt); err != nil {
				return "", err
			}
		case (kind == awserr.NotFound || kind == awserr.Invalid) && from.Kind == FromSequence && last == "":
			// The shard was listed: the sequence number is what is wrong.
			return "", fmt.Errorf("%w: sequence number %s is not in shard %s", ErrBadStart, from.Sequence, id)
		case kind == awserr.NotFound:
			return "", fmt.Errorf("%w: %s/%s", ErrShardNotFound, r.t.cfg.Stream, id)
		case kind == awserr.Invalid && from.Kind == FromSequence:
			return "", fmt.Errorf("%w: sequence number %s is not in shard %s: %w", ErrBadStart, from.Sequence, id, err)
		default:
			return "", fmt.Errorf("get shard iterator for %s: %w", id, err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
