package scenario

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/aggregate"
	"github.com/kclgo/kcl/testkit/checker"
	"github.com/kclgo/kcl/testkit/internal/chaos/history"
)

// producer puts sequenced records (checker.Payload(key, n), n = 0, 1, 2, …
// per key), alternating per key plain records and KPL aggregates of one key,
// at a steady rate, and journals a Produced line per user record once its
// put is acknowledged, with the shard and sequence number Kinesis gave it.
//
// Per-key order holds because a key has at most one entry in flight: a
// PutRecords call carries at most one entry per key, and a failed entry is
// sent again before the key moves on.
type producer struct {
	kc     *kinesis.Client
	stream string
	keys   []string
	rate   float64
	j      *journal

	next  []int  // next ordinal per key
	agg   []bool // whether the key's next entry is an aggregate
	round int

	produced int
}

type entry struct {
	k, first, n int
	aggregated  bool
	e           types.PutRecordsRequestEntry
}

func newProducer(kc *kinesis.Client, stream string, keys int, rate float64, j *journal) *producer {
	p := &producer{kc: kc, stream: stream, rate: rate, j: j, next: make([]int, keys), agg: make([]bool, keys)}
	for i := range keys {
		p.keys = append(p.keys, fmt.Sprintf("key-%02d", i))
		p.agg[i] = i%2 == 1
	}
	return p
}

// run puts records until ctx is done, then sees its entries in flight
// through to an acknowledgement (bounded) and returns.
func (p *producer) run(ctx context.Context) error {
	start := time.Now()
	var (
		sent     int
		retry    []entry
		failures int
	)
	for {
		stopping := ctx.Err() != nil
		if stopping && len(retry) == 0 {
			return nil
		}
		budget := int(p.rate*time.Since(start).Seconds()) - sent
		if stopping {
			budget = 0
		}
		batch := retry
		retry = nil
		busy := make(map[int]bool)
		for _, e := range batch {
			busy[e.k] = true
		}
		for tries := 0; budget > 0 && tries < len(p.keys); tries++ {
			k := p.round % len(p.keys)
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
			sleep(ctx, 50*time.Millisecond)
			continue
		}
		failed, err := p.put(ctx, batch)
		if err != nil {
			failures++
			if failures >= 20 {
				return fmt.Errorf("producer: PutRecords failed %d times in a row: %w", failures, err)
			}
			retry = batch
			sleep(context.WithoutCancel(ctx), min(50*time.Millisecond<<failures, 2*time.Second))
			continue
		}
		failures = 0
		retry = failed
		if len(failed) > 0 || budget <= 0 {
			sleep(context.WithoutCancel(ctx), 50*time.Millisecond)
		}
	}
}

func (p *producer) entry(k, budget int) (entry, error) {
	key, first := p.keys[k], p.next[k]
	aggregated := p.agg[k]
	p.agg[k] = !aggregated
	if !aggregated { // the key moves on only once acknowledged: see put
		return entry{k: k, first: first, n: 1, e: types.PutRecordsRequestEntry{PartitionKey: aws.String(key), Data: checker.Payload(key, first)}}, nil
	}
	n := min(1+(first+k)%4, budget)
	a, err := aggregate.New()
	if err != nil {
		return entry{}, err
	}
	for i := range n {
		if _, _, err := a.Add(aggregate.UserRecord{PartitionKey: key, Data: checker.Payload(key, first+i)}); err != nil {
			return entry{}, fmt.Errorf("producer: aggregate %s/%d: %w", key, first+i, err)
		}
	}
	agg, _ := a.Flush()
	return entry{k: k, first: first, n: n, aggregated: true, e: types.PutRecordsRequestEntry{
		PartitionKey: aws.String(agg.PartitionKey), ExplicitHashKey: aws.String(agg.ExplicitHashKey), Data: agg.Data,
	}}, nil
}

// put sends batch once and returns the entries that failed; an error means
// the call failed as a whole (its entries may be in the stream: they are
// sent again, and the checker counts such producer duplicates).
func (p *producer) put(ctx context.Context, batch []entry) ([]entry, error) {
	in := &kinesis.PutRecordsInput{StreamName: aws.String(p.stream)}
	for _, e := range batch {
		in.Records = append(in.Records, e.e)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	out, err := p.kc.PutRecords(cctx, in)
	if err != nil {
		return nil, err
	}
	if len(out.Records) != len(batch) {
		return nil, fmt.Errorf("producer: PutRecords returned %d results for %d entries", len(out.Records), len(batch))
	}
	now := time.Now()
	var failed []entry
	var lines []history.Line
	for i, r := range out.Records {
		e := batch[i]
		if r.ErrorCode != nil {
			failed = append(failed, e)
			continue
		}
		for n := e.first; n < e.first+e.n; n++ {
			lines = append(lines, history.Produced{T: now, Key: p.keys[e.k], N: n, Shard: aws.ToString(r.ShardId),
				Seq: aws.ToString(r.SequenceNumber), Aggregated: e.aggregated})
		}
		p.next[e.k] = e.first + e.n
		p.produced += e.n
	}
	p.j.lines(lines...)
	return failed, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
