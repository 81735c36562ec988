// Package sequenced puts numbered test payloads into a Kinesis stream, for
// kcl's examples (examples/producer, testkit/cmd/kcldemo): for each partition key
// the payloads checker.Payload(key, 0), (key, 1), (key, 2)… in that order,
// so that a consumer can prove nothing was lost and no key went out of order.
//
// Per-key order is kept by having at most one put in flight per key: a
// PutRecords call carries at most one entry per key, and a key moves on only
// once its entry was acknowledged; a failed entry is sent again, alone for
// its key, in the next call. (Kinesis does not order the entries of one
// PutRecords call, and retrying a failed entry after a later one succeeded
// would reorder the key.)
//
// An aggregated entry is a KPL aggregate built from consecutive records of
// one key only. Kinesis routes an aggregate by the hash key of its first
// user record, and a consumer drops the user records of an aggregate that
// belong to another shard's hash range; records of one key share their hash
// key, so an aggregate of one key always lands whole on that key's shard,
// whatever the shard map is at the time, resharding included.
package sequenced

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/aggregate"
	"github.com/kclgo/kcl/testkit/checker"
)

// PutAPI is the part of the Kinesis client a Producer calls: *kinesis.Client
// satisfies it.
type PutAPI interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

// Mode says how user records are put.
type Mode uint8

const (
	// Plain puts each user record as one Kinesis record.
	Plain Mode = iota + 1
	// Aggregated puts user records in KPL aggregates of one key each.
	Aggregated
	// Mixed alternates, per key, plain records and aggregates.
	Mixed
)

func (m Mode) String() string {
	switch m {
	case Plain:
		return "plain"
	case Aggregated:
		return "aggregated"
	case Mixed:
		return "mixed"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// ParseMode parses "plain", "aggregated" or "mixed".
func ParseMode(s string) (Mode, error) {
	for _, m := range []Mode{Plain, Aggregated, Mixed} {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("sequenced: unknown mode %q (want plain, aggregated or mixed)", s)
}

// Config describes what a Producer puts.
type Config struct {
	// Stream is the stream name.
	Stream string
	// Keys are the partition keys; at least one.
	Keys []string
	// Rate is the number of user records put per second over all keys;
	// 0 puts as fast as the stream acknowledges.
	Rate float64
	// Count stops the Producer once it has put this many user records; 0
	// puts until Run's context is done.
	Count int
	// Mode is Plain, Aggregated or Mixed; the zero Mode means Mixed.
	Mode Mode
	// MaxPerAggregate bounds the user records of one aggregate; the default
	// (0) is 8.
	MaxPerAggregate int
	// Acked, when set, is called after every acknowledged entry with the key
	// and the number of its records acknowledged so far: ordinals 0..n-1 of
	// key are in the stream. It is called from Run's goroutine, one call at a
	// time. checker.Checker's Produced method fits.
	Acked func(key string, n int)
}

// Producer puts sequenced payloads. Create one with New and start it with Run.
type Producer struct {
	api PutAPI
	cfg Config

	next      []int  // next ordinal per key
	plainNext []bool // whether the next entry of a key is a plain record
	round     int    // round-robin cursor over the keys

	records, aggregates, aggregated atomic.Int64
}

// Defaults.
const (
	defaultMaxPerAggregate = 8
	tick                   = 50 * time.Millisecond
	callTimeout            = 10 * time.Second
	maxAttempts            = 20 // consecutive failed PutRecords calls before Run gives up
	maxEntries             = 500
)

// New returns a Producer for cfg. It starts nothing.
func New(api PutAPI, cfg Config) (*Producer, error) {
	switch {
	case api == nil:
		return nil, errors.New("sequenced: nil PutAPI")
	case cfg.Stream == "":
		return nil, errors.New("sequenced: Config.Stream is empty")
	case len(cfg.Keys) == 0:
		return nil, errors.New("sequenced: Config.Keys is empty")
	case cfg.Rate < 0 || cfg.Count < 0 || cfg.MaxPerAggregate < 0:
		return nil, errors.New("sequenced: Rate, Count and MaxPerAggregate must not be negative")
	}
	if cfg.Mode == 0 {
		cfg.Mode = Mixed
	}
	if cfg.MaxPerAggregate == 0 {
		cfg.MaxPerAggregate = defaultMaxPerAggregate
	}
	p := &Producer{api: api, cfg: cfg, next: make([]int, len(cfg.Keys)), plainNext: make([]bool, len(cfg.Keys))}
	for i := range p.plainNext {
		p.plainNext[i] = cfg.Mode != Aggregated
	}
	return p, nil
}

// Stats counts what a Producer has put and had acknowledged.
type Stats struct {
	// Records counts user records, plain or aggregated.
	Records int64
	// Aggregates counts KPL aggregates, and AggregatedRecords the user
	// records in them.
	Aggregates, AggregatedRecords int64
}

// Stats returns the counts so far. It may be called from any goroutine.
func (p *Producer) Stats() Stats {
	return Stats{Records: p.records.Load(), Aggregates: p.aggregates.Load(), AggregatedRecords: p.aggregated.Load()}
}

// pending is one entry in flight: records first..first+n-1 of key k.
type pending struct {
	k, first, n int
	aggregated  bool
	entry       types.PutRecordsRequestEntry
}

// Run puts records until Config.Count records were put or ctx is done. When
// ctx is done it starts no new record but still sees the entries it has
// sent through to an acknowledgement, so that every record that may be in
// the stream was reported to Config.Acked; it then returns nil. It returns
// an error when PutRecords keeps failing or an aggregate cannot be built.
func (p *Producer) Run(ctx context.Context) error {
	start := time.Now()
	var (
		sent     int       // user records sent at least once
		retry    []pending // entries to send again
		attempts int
	)
	for {
		stopping := ctx.Err() != nil || (p.cfg.Count > 0 && sent >= p.cfg.Count)
		if stopping && len(retry) == 0 {
			return nil
		}
		budget := maxEntries * p.cfg.MaxPerAggregate
		if p.cfg.Rate > 0 {
			budget = int(p.cfg.Rate*time.Since(start).Seconds()) - sent
		}
		if p.cfg.Count > 0 {
			budget = min(budget, p.cfg.Count-sent)
		}
		if stopping {
			budget = 0
		}
		batch := retry
		retry = nil
		busy := make(map[int]bool, len(batch))
		for _, e := range batch {
			busy[e.k] = true
		}
		for tries := 0; budget > 0 && len(batch) < maxEntries && tries < len(p.cfg.Keys); tries++ {
			k := p.round % len(p.cfg.Keys)
			p.round++
			if busy[k] {
				continue
			}
			e, err := p.entry(k, budget)
			if err != nil {
				return err
			}
			busy[k] = true
			budget -= e.n
			sent += e.n
			batch = append(batch, e)
		}
		if len(batch) == 0 {
			_ = sleep(ctx, tick) // when ctx is done, the loop returns above
			continue
		}
		failed, err := p.put(ctx, batch)
		if err != nil {
			attempts++
			if attempts >= maxAttempts {
				return fmt.Errorf("sequenced: PutRecords failed %d times in a row: %w", attempts, err)
			}
			retry = batch
			_ = sleep(context.WithoutCancel(ctx), min(tick<<attempts, 2*time.Second))
			continue
		}
		attempts = 0
		retry = failed
		if len(failed) > 0 {
			_ = sleep(context.WithoutCancel(ctx), tick)
		} else if p.cfg.Rate > 0 && budget <= 0 {
			_ = sleep(ctx, tick)
		}
	}
}

// entry builds the next entry of key k, holding at most budget records.
func (p *Producer) entry(k, budget int) (pending, error) {
	key := p.cfg.Keys[k]
	first := p.next[k]
	plain := p.plainNext[k]
	if p.cfg.Mode == Mixed {
		p.plainNext[k] = !plain
	}
	if plain {
		return pending{k: k, first: first, n: 1, entry: types.PutRecordsRequestEntry{
			PartitionKey: aws.String(key), Data: checker.Payload(key, first),
		}}, nil
	}
	// Vary the aggregate size: 1..MaxPerAggregate records.
	n := min(1+(first+k)%p.cfg.MaxPerAggregate, budget)
	a, err := aggregate.New()
	if err != nil {
		return pending{}, err
	}
	for i := range n {
		_, full, err := a.Add(aggregate.UserRecord{PartitionKey: key, Data: checker.Payload(key, first+i)})
		if err != nil {
			return pending{}, fmt.Errorf("sequenced: aggregate %s/%d: %w", key, first+i, err)
		}
		if full { // cannot happen: a few short records never fill an aggregate
			return pending{}, fmt.Errorf("sequenced: aggregate %s/%d: aggregate full", key, first+i)
		}
	}
	agg, _ := a.Flush()
	return pending{k: k, first: first, n: n, aggregated: true, entry: types.PutRecordsRequestEntry{
		PartitionKey: aws.String(agg.PartitionKey), ExplicitHashKey: aws.String(agg.ExplicitHashKey), Data: agg.Data,
	}}, nil
}

// put sends batch once and returns the entries that failed. A call that
// fails as a whole returns an error: its entries may or may not be in the
// stream and must be sent again. The call outlives ctx (bounded by
// callTimeout) so that its outcome is known.
func (p *Producer) put(ctx context.Context, batch []pending) ([]pending, error) {
	entries := make([]types.PutRecordsRequestEntry, len(batch))
	for i, e := range batch {
		entries[i] = e.entry
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
	defer cancel()
	out, err := p.api.PutRecords(cctx, &kinesis.PutRecordsInput{StreamName: aws.String(p.cfg.Stream), Records: entries})
	if err != nil {
		return nil, err
	}
	if len(out.Records) != len(batch) {
		return nil, fmt.Errorf("sequenced: PutRecords returned %d results for %d entries", len(out.Records), len(batch))
	}
	var failed []pending
	for i, r := range out.Records {
		e := batch[i]
		if r.ErrorCode != nil {
			failed = append(failed, e)
			continue
		}
		p.next[e.k] = e.first + e.n
		p.records.Add(int64(e.n))
		if e.aggregated {
			p.aggregates.Add(1)
			p.aggregated.Add(int64(e.n))
		}
		if p.cfg.Acked != nil {
			p.cfg.Acked(p.cfg.Keys[e.k], p.next[e.k])
		}
	}
	return failed, nil
}

// sleep waits for d or until ctx is done, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
