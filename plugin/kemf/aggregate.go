package kemf

import (
	"math/rand/v2"
	"slices"
	"time"
)

// maxValues is the most values EMF allows in one metric's array.
const maxValues = 100

// dist is a distribution observed over one interval: every value up to
// maxValues, then a uniform sample of them that always holds the minimum
// and the maximum, so CloudWatch's Minimum and Maximum stay exact and its
// Average and percentiles are estimated from the sample.
type dist struct {
	n        int
	min, max float64
	vals     []float64
}

func (d *dist) add(v float64) {
	d.n++
	if d.n == 1 || v < d.min {
		d.min = v
	}
	if d.n == 1 || v > d.max {
		d.max = v
	}
	if len(d.vals) < maxValues {
		d.vals = append(d.vals, v)
		return
	}
	// Reservoir sampling: the n-th value replaces a random slot with
	// probability maxValues/n.
	if j := rand.IntN(d.n); j < maxValues {
		d.vals[j] = v
	}
}

// merge adds o's values into d. Values o left out of its sample stay out,
// so the result is a sample too; its count, minimum and maximum are exact.
func (d *dist) merge(o *dist) {
	if o.n == 0 {
		return
	}
	n, lo, hi := d.n+o.n, o.min, o.max
	if d.n > 0 {
		lo, hi = min(d.min, lo), max(d.max, hi)
	}
	for _, v := range o.vals {
		d.add(v)
	}
	d.n, d.min, d.max = n, lo, hi
}

// values returns the values to emit: all of them, or a sample of
// maxValues that holds the minimum and the maximum.
func (d *dist) values() []float64 {
	if d.n > len(d.vals) {
		if !slices.Contains(d.vals, d.min) {
			d.vals[d.slotOtherThan(d.max)] = d.min
		}
		if !slices.Contains(d.vals, d.max) {
			d.vals[d.slotOtherThan(d.min)] = d.max
		}
	}
	return d.vals
}

// slotOtherThan returns the index of a value other than keep.
func (d *dist) slotOtherThan(keep float64) int {
	for i, v := range d.vals {
		if v != keep {
			return i
		}
	}
	return 0
}

// millis converts a duration to CloudWatch Milliseconds.
func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// callAgg aggregates one Kinesis operation's calls on a shard.
type callAgg struct {
	success, throttled, errors int64
	time                       dist // every call, failed ones included, as KCL times them
}

// shardAgg aggregates one shard's hooks over an interval.
type shardAgg struct {
	records, bytes, aggregates int64
	skippedBatches, skipped    int64
	retries                    int64
	lag                        dist // MillisBehindLatest of batches and empty reads
	processTime                dist // RecordProcessor.processRecords.Time
	procErrors, procPanics     int64
	calls                      map[string]*callAgg
	expiredIterators, renewals int64
	checkpoints, checkpointE   int64
	checkpointTime             dist
	kplMalformed, kplDropped   int64
}

func (a *shardAgg) call(op string) *callAgg {
	if a.calls == nil {
		a.calls = map[string]*callAgg{}
	}
	c := a.calls[op]
	if c == nil {
		c = &callAgg{}
		a.calls[op] = c
	}
	return c
}

// merge adds o into a, for the aggregate of every shard.
func (a *shardAgg) merge(o *shardAgg) {
	a.records += o.records
	a.bytes += o.bytes
	a.aggregates += o.aggregates
	a.procErrors += o.procErrors
	a.procPanics += o.procPanics
	a.renewals += o.renewals
	a.kplMalformed += o.kplMalformed
	a.kplDropped += o.kplDropped
	a.skippedBatches += o.skippedBatches
	a.skipped += o.skipped
	a.retries += o.retries
	a.lag.merge(&o.lag)
	a.processTime.merge(&o.processTime)
	for op, oc := range o.calls {
		c := a.call(op)
		c.success += oc.success
		c.throttled += oc.throttled
		c.errors += oc.errors
		c.time.merge(&oc.time)
	}
	a.expiredIterators += o.expiredIterators
	a.checkpoints += o.checkpoints
	a.checkpointE += o.checkpointE
	a.checkpointTime.merge(&o.checkpointTime)
}

func (a *shardAgg) empty() bool {
	return a.records == 0 && a.skippedBatches == 0 && a.lag.n == 0 && a.processTime.n == 0 && a.procErrors == 0 &&
		len(a.calls) == 0 && a.checkpoints == 0 && a.kplMalformed == 0 && a.kplDropped == 0
}

// leaseAgg counts a worker's lease events over an interval.
type leaseAgg struct {
	acquired, lost, released, ended int64
}

// syncAgg aggregates shard sync passes over an interval.
type syncAgg struct {
	success, errors int64
	time            dist
}
