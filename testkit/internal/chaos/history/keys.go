package history

import (
	"maps"
	"slices"
)

// keyState is what Check knows of one partition key's records, by
// ordinal. Producers number a key's records 0, 1, 2, …, so ordinals live in
// slices; an ordinal far beyond the others (a malformed log) goes to a map
// instead, so that it costs no memory.
type keyState struct {
	produced []bool
	first    []tick // first processing of each ordinal; i < 0 when none

	sparseProduced map[int]bool
	sparseFirst    map[int]tick
}

// dense reports whether ordinal n belongs in a slice of length l.
func dense(n, l int) bool { return n < 2*l+1<<16 }

// produce marks n produced and reports whether it was not already.
func (ks *keyState) produce(n int) bool {
	if !dense(n, len(ks.produced)) {
		if ks.sparseProduced == nil {
			ks.sparseProduced = make(map[int]bool)
		}
		was := ks.sparseProduced[n]
		ks.sparseProduced[n] = true
		return !was
	}
	if n >= len(ks.produced) {
		ks.produced = append(ks.produced, make([]bool, n+1-len(ks.produced))...)
	}
	was := ks.produced[n]
	ks.produced[n] = true
	return !was
}

func (ks *keyState) isProduced(n int) bool {
	if n < len(ks.produced) {
		return ks.produced[n]
	}
	return ks.sparseProduced[n]
}

// firstAt returns the first processing of n, if any.
func (ks *keyState) firstAt(n int) (tick, bool) {
	if n < len(ks.first) {
		return ks.first[n], ks.first[n].i >= 0
	}
	f, ok := ks.sparseFirst[n]
	return f, ok
}

// processed records a processing of n and reports whether n had been
// processed before (at any position).
func (ks *keyState) processed(n int, tk tick) (again bool) {
	if !dense(n, len(ks.first)) {
		if ks.sparseFirst == nil {
			ks.sparseFirst = make(map[int]tick)
		}
		f, ok := ks.sparseFirst[n]
		if !ok || tk.before(f) {
			ks.sparseFirst[n] = tk
		}
		return ok
	}
	if n >= len(ks.first) {
		l := len(ks.first)
		ks.first = append(ks.first, make([]tick, n+1-l)...)
		for j := l; j < len(ks.first); j++ {
			ks.first[j].i = -1
		}
	}
	f := &ks.first[n]
	if f.i < 0 || tk.before(*f) {
		again := f.i >= 0
		*f = tk
		return again
	}
	return true
}

// producedOrdinals returns the produced ordinals in increasing order.
func (ks *keyState) producedOrdinals(yield func(int) bool) {
	for n, ok := range ks.produced {
		if ok && !yield(n) {
			return
		}
	}
	for _, n := range slices.Sorted(maps.Keys(ks.sparseProduced)) {
		if !yield(n) {
			return
		}
	}
}

// firstsDescending yields the processed ordinals and their first
// processings, from the largest ordinal down.
func (ks *keyState) firstsDescending(yield func(int, tick) bool) {
	sparse := slices.Sorted(maps.Keys(ks.sparseFirst))
	for i := len(sparse) - 1; i >= 0; i-- {
		if !yield(sparse[i], ks.sparseFirst[sparse[i]]) {
			return
		}
	}
	for n := len(ks.first) - 1; n >= 0; n-- {
		if ks.first[n].i >= 0 && !yield(n, ks.first[n]) {
			return
		}
	}
}
