package kprom

import "sync/atomic"

// histogram is a fixed-bucket histogram of integer observations (durations
// in nanoseconds, counts), updated with atomic adds only: no lock, no
// allocation, no CAS loop on the hot path.
type histogram struct {
	bounds []int64 // upper bounds, ascending; shared between histograms of one metric
	counts []atomic.Uint64
	sum    atomic.Int64
}

func newHistogram(bounds []int64) *histogram {
	return &histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

// observe records v.
func (h *histogram) observe(v int64) {
	lo, hi := 0, len(h.bounds) // the first bound >= v, len(bounds) for +Inf
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if h.bounds[m] < v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	h.counts[lo].Add(1)
	h.sum.Add(v)
}

// snapshot returns the count, the sum scaled by unit, and the cumulative
// count of each bucket by its scaled upper bound, as
// prometheus.MustNewConstHistogram takes them. Observations made meanwhile
// may be counted in a bucket and not yet in the sum: a scrape sees an
// instant of each counter, not of the whole.
func (h *histogram) snapshot(unit float64) (count uint64, sum float64, buckets map[float64]uint64) {
	buckets = make(map[float64]uint64, len(h.bounds))
	for i, b := range h.bounds {
		count += h.counts[i].Load()
		buckets[float64(b)*unit] = count
	}
	count += h.counts[len(h.bounds)].Load()
	return count, float64(h.sum.Load()) * unit, buckets
}
