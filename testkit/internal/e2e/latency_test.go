package e2e

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease/dynamolease"
	"github.com/kclgo/kcl/testkit/checker"
	"github.com/kclgo/kcl/testkit/testenv"
)

// Latency measurement: a steady, modest rate for long enough to have a
// meaningful 99th percentile, far below kinesis-mock's limits.
const (
	latencyRate   = 20 // records per second
	latencyPeriod = 15 * time.Second
)

// latencyApp is one consumer application of TestLatency: its own lease
// table and Worker, and when it processed each record first.
type latencyApp struct {
	name string
	chk  *checker.Checker

	// mu guards the fields below.
	mu        sync.Mutex
	processed map[string]time.Time // payload → first processed
	arrived   map[string]time.Time // payload → ApproximateArrivalTimestamp
	shards    map[string]time.Time // shard → last record processed
	malformed int
}

func newLatencyApp(name string) *latencyApp {
	return &latencyApp{name: name, chk: checker.New(), processed: map[string]time.Time{},
		arrived: map[string]time.Time{}, shards: map[string]time.Time{}}
}

func (a *latencyApp) factory() consumer.Factory {
	return consumer.FactoryFunc(func(consumer.ShardInfo) (consumer.Processor, error) {
		return consumer.ProcessorFunc(func(_ context.Context, b *consumer.Batch) error {
			now := time.Now()
			a.mu.Lock()
			defer a.mu.Unlock()
			for _, r := range b.Records {
				key, n, err := checker.ParsePayload(r.Data)
				if err != nil {
					a.malformed++
					continue
				}
				a.chk.Processed(key, n)
				p := string(r.Data)
				if _, ok := a.processed[p]; !ok {
					a.processed[p] = now
					a.arrived[p] = r.ApproximateArrivalTimestamp
				}
				a.shards[b.ShardID] = now
			}
			return nil
		}), nil
	})
}

// processing reports whether the app processed a record of every shard
// after since.
func (a *latencyApp) processing(shards []string, since time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range shards {
		if !a.shards[s].After(since) {
			return false
		}
	}
	return true
}

// latencies returns, for the records in acked, the time from their put
// being acknowledged and from their ApproximateArrivalTimestamp to their
// first processing, each sorted, and how many were not processed.
func (a *latencyApp) latencies(acked map[string]time.Time) (fromAck, fromArrival []time.Duration, missing int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for p, ack := range acked {
		at, ok := a.processed[p]
		if !ok {
			missing++
			continue
		}
		fromAck = append(fromAck, at.Sub(ack))
		fromArrival = append(fromArrival, at.Sub(a.arrived[p]))
	}
	slices.Sort(fromAck)
	slices.Sort(fromArrival)
	return fromAck, fromArrival, missing
}

// percentile returns the p-th percentile of sorted by the nearest-rank method.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (p*len(sorted) + 99) / 100 // ⌈p·n/100⌉
	return sorted[max(rank, 1)-1]
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// TestLatency measures put-to-process latency of polling and of enhanced
// fan-out in the same run: two consumer applications (each its own lease
// table and Worker) read the same stream at once, one polling every 200 ms,
// the other subscribed through enhanced fan-out over h2c, while records are
// put one per PutRecord call at latencyRate per second for latencyPeriod.
//
// Latency is the time from the PutRecord call returning (the put
// acknowledged) to the record being handed to the processor, both on this
// process's clock; the time from the record's ApproximateArrivalTimestamp
// (kinesis-mock's clock, the same machine) is logged too. The result is
// logged as "latency: polling p50 Xms p99 Yms, efo p50 Xms p99 Yms (n
// records)". On kinesis-mock enhanced fan-out is the slower of the two: it
// sends events once a second (EMULATORS.md, quirk 6), where AWS pushes
// records about 70 ms after they arrive. The test asserts delivery and the
// put rate, not the latencies.
func TestLatency(t *testing.T) {
	start := time.Now()
	f := newFixture(t, 2)
	polling, efo := newLatencyApp("polling"), newLatencyApp("efo")
	launchWorker(t, f.kc, f.newStore(t), f.stream, "poll", polling.factory(), consumer.WithIdleTime(idleTime))
	launchWorker(t, efoClient(t, testenv.EFOH2C), newTable(t, f), f.stream, "efo", efo.factory(),
		consumer.WithEnhancedFanOut(testenv.UniqueName(t, "app")))

	// One putter per key, each putting every len(keys)/latencyRate seconds,
	// staggered: the rate stays steady however long a put takes (up to
	// that period), and each key has one put in flight at a time, so its
	// records keep their order.
	keys := spreadKeys(2) // at least one key per shard
	var (
		mu        sync.Mutex
		acked     = map[string]time.Time{} // payload → when its put returned, while measuring
		measuring bool
		putErr    error
	)
	quit := make(chan struct{})
	var putters sync.WaitGroup
	period := time.Duration(len(keys)) * time.Second / latencyRate
	for k, key := range keys {
		putters.Go(func() {
			select {
			case <-quit:
				return
			case <-time.After(time.Duration(k) * period / time.Duration(len(keys))):
			}
			ticker := time.NewTicker(period)
			defer ticker.Stop()
			for n := 0; ; n++ {
				data := checker.Payload(key, n)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // never cut a put short
				_, err := f.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(f.stream), PartitionKey: aws.String(key), Data: data})
				cancel()
				now := time.Now()
				mu.Lock()
				if err != nil {
					putErr = err
					mu.Unlock()
					return
				}
				if measuring {
					acked[string(data)] = now
				}
				mu.Unlock()
				polling.chk.Produced(key, n+1)
				efo.chk.Produced(key, n+1)
				select {
				case <-quit:
					return
				case <-ticker.C:
				}
			}
		})
	}
	stopPutters := sync.OnceFunc(func() { close(quit); putters.Wait() })
	defer stopPutters()

	// Warm up until both applications process every shard, so that the
	// measurement starts with subscriptions open and nothing behind.
	shards := shardIDs(f.openShards(t))
	warm := time.Now()
	waitFor(t, 30*time.Second, func() bool { return polling.processing(shards, warm) && efo.processing(shards, warm) },
		"the applications do not process every shard of %v", shards)
	t.Logf("warm-up: both applications process every shard after %v", time.Since(warm).Round(100*time.Millisecond))

	mu.Lock()
	measuring = true
	mu.Unlock()
	measured := time.Now()
	select { // the measurement window, not a wait for a condition
	case <-time.After(latencyPeriod):
	case <-t.Context().Done():
	}
	mu.Lock()
	measuring = false
	mu.Unlock()
	stopPutters()
	if putErr != nil {
		t.Fatalf("PutRecord: %v", putErr)
	}
	elapsed := time.Since(measured)
	n := len(acked)
	for _, app := range []*latencyApp{polling, efo} {
		waitFor(t, 30*time.Second, func() bool { _, _, missing := app.latencies(acked); return missing == 0 && app.chk.Report().Lost == 0 },
			"%s did not process every record: %v", app.name, lazy(func() string { return app.chk.Report().String() }))
		rep := app.chk.Report()
		if !rep.OK() || rep.Duplicates > 0 || app.malformed > 0 {
			t.Errorf("%s: delivery broken: %v, %d malformed records", app.name, rep, app.malformed)
		}
	}
	pa, parr, _ := polling.latencies(acked)
	ea, earr, _ := efo.latencies(acked)
	t.Logf("latency: polling p50 %dms p99 %dms, efo p50 %dms p99 %dms (%d records)",
		ms(percentile(pa, 50)), ms(percentile(pa, 99)), ms(percentile(ea, 50)), ms(percentile(ea, 99)), n)
	t.Logf("latency from ApproximateArrivalTimestamp: polling p50 %dms p99 %dms max %dms, efo p50 %dms p99 %dms max %dms; %d records put in %v (%.1f/s), %v in all",
		ms(percentile(parr, 50)), ms(percentile(parr, 99)), ms(parr[len(parr)-1]),
		ms(percentile(earr, 50)), ms(percentile(earr, 99)), ms(earr[len(earr)-1]),
		n, elapsed.Round(100*time.Millisecond), float64(n)/elapsed.Seconds(), time.Since(start).Round(100*time.Millisecond))
	if want := int(latencyPeriod.Seconds() * latencyRate); n < want*9/10 {
		t.Errorf("%d records put in %v, want about %d (%d/s): the rate was not held", n, elapsed.Round(100*time.Millisecond), want, latencyRate)
	}
}

// newTable creates a second lease table next to the fixture's, for another
// application on the same stream, and deletes it in t.Cleanup.
func newTable(t *testing.T, f *fixture) *dynamolease.Store {
	t.Helper()
	name := testenv.UniqueName(t, "leases")
	s, err := dynamolease.New(f.ddb, name)
	if err != nil {
		t.Fatalf("dynamolease.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := f.ddb.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
		var nf *ddbtypes.ResourceNotFoundException
		if err != nil && !errors.As(err, &nf) {
			t.Errorf("delete table %s: %v", name, err)
		}
	})
	if err := s.EnsureTable(t.Context()); err != nil {
		t.Fatalf("EnsureTable %s: %v", name, err)
	}
	return s
}
