// Package checker proves delivery properties of a consumer run: every
// produced record processed at least once, per-partition-key order kept, and
// how many duplicates there were. The demo and the end-to-end tests share it.
//
// Producers put payloads made by Payload: a partition key and an ordinal
// (0, 1, 2, … per key, in the order the producer put them, one put at a time
// per key). Consumers report each processed payload. A duplicate is a
// payload processed again; an order violation is a payload processed for the
// first time after a later payload of the same key was already processed —
// the symptom of a child shard started before its parent finished, or of a
// skipped batch. Re-deliveries after a crash replay from a checkpoint and
// are duplicates, not violations.
package checker

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Payload returns the record data for the n-th record of key.
func Payload(key string, n int) []byte {
	return fmt.Appendf(nil, "%s/%d", key, n)
}

// ErrPayload is matched by ParsePayload's errors.
var ErrPayload = errors.New("checker: not a checker payload")

// ParsePayload is the inverse of Payload.
func ParsePayload(b []byte) (key string, n int, err error) {
	s := string(b)
	i := strings.LastIndexByte(s, '/')
	if i <= 0 {
		return "", 0, fmt.Errorf("%w: %q", ErrPayload, s)
	}
	n, err = strconv.Atoi(s[i+1:])
	if err != nil || n < 0 {
		return "", 0, fmt.Errorf("%w: %q", ErrPayload, s)
	}
	return s[:i], n, nil
}

// Checker accumulates produced and processed records. It is safe for
// concurrent use.
type Checker struct {
	mu         sync.Mutex
	produced   map[string]int // key → number of records produced (ordinals 0..n-1)
	keys       map[string]*keyState
	processed  int
	dups       int
	violations int
	samples    []string
}

type keyState struct {
	seen map[int]int // ordinal → times processed
	max  int         // largest ordinal processed, -1 before any
}

// New returns an empty Checker.
func New() *Checker {
	return &Checker{produced: make(map[string]int), keys: make(map[string]*keyState)}
}

// Produced records that ordinals 0..n-1 of key were put (acknowledged).
func (c *Checker) Produced(key string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.produced[key] = max(c.produced[key], n)
}

// Processed records one processing of ordinal n of key and reports whether
// it was the first for that record and in order.
func (c *Checker) Processed(key string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.processed++
	ks := c.keys[key]
	if ks == nil {
		ks = &keyState{seen: make(map[int]int), max: -1}
		c.keys[key] = ks
	}
	ks.seen[n]++
	switch {
	case ks.seen[n] > 1:
		c.dups++
	case n < ks.max:
		if len(c.samples) < 10 {
			c.samples = append(c.samples, fmt.Sprintf("%s/%d first processed after %s/%d", key, n, key, ks.max))
		}
		c.violations++
	}
	ks.max = max(ks.max, n)
}

// Report is the verdict.
type Report struct {
	// Produced is the number of records produced, Processed the number of
	// processings (duplicates included), Unique the distinct records
	// processed.
	Produced, Processed, Unique int
	// Duplicates counts processings of an already processed record.
	Duplicates int
	// Lost counts produced records never processed; LostSamples names some.
	Lost        int
	LostSamples []string
	// Unexpected counts distinct processed records that were never produced.
	Unexpected int
	// OrderViolations counts records first processed after a later record
	// of the same key; ViolationSamples describes some.
	OrderViolations  int
	ViolationSamples []string
}

// OK reports whether nothing was lost, nothing unexpected appeared and no
// key went out of order.
func (r Report) OK() bool { return r.Lost == 0 && r.OrderViolations == 0 && r.Unexpected == 0 }

func (r Report) String() string {
	s := fmt.Sprintf("produced %d, processed %d (unique %d), duplicates %d, lost %d, order violations %d",
		r.Produced, r.Processed, r.Unique, r.Duplicates, r.Lost, r.OrderViolations)
	if r.Unexpected > 0 {
		s += fmt.Sprintf(", unexpected %d", r.Unexpected)
	}
	return s
}

// Report compares what was produced with what was processed.
func (c *Checker) Report() Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := Report{Processed: c.processed, Duplicates: c.dups, OrderViolations: c.violations,
		ViolationSamples: slices.Clone(c.samples)}
	keys := make([]string, 0, len(c.produced))
	for k, n := range c.produced {
		r.Produced += n
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ks := c.keys[k]
		for i := range c.produced[k] {
			if ks == nil || ks.seen[i] == 0 {
				r.Lost++
				if len(r.LostSamples) < 10 {
					r.LostSamples = append(r.LostSamples, fmt.Sprintf("%s/%d", k, i))
				}
			}
		}
	}
	for k, ks := range c.keys {
		r.Unique += len(ks.seen)
		for n := range ks.seen {
			if n >= c.produced[k] {
				r.Unexpected++
			}
		}
	}
	return r
}
