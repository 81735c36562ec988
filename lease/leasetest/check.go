package leasetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/lease"
)

// seq56 is a sequence number of the length Kinesis hands out today.
const seq56 = "49590338271490256608559692538361571095921575989136588898"

// Worker ids used throughout the suite.
const (
	workerA = "worker-a"
	workerB = "worker-b"
	workerC = "worker-c"
)

// at returns the record position seq/sub, failing the test if it is invalid.
func at(t testing.TB, seq string, sub uint64) checkpoint.Position {
	t.Helper()
	p, err := checkpoint.At(seq, sub)
	if err != nil {
		t.Fatalf("checkpoint.At(%q, %d): %v", seq, sub, err)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

// plainLease is a lease as shard sync creates it: unowned, counter 0, at
// TRIM_HORIZON, with no optional attribute.
func plainLease(key string) lease.Lease {
	return lease.Lease{Key: key, Checkpoint: checkpoint.TrimHorizon}
}

// heldLease is a lease held by owner with every field set except
// CheckpointOwner, so that a write touching a field it should not is seen.
func heldLease(t testing.TB, key, owner string) lease.Lease {
	t.Helper()
	return lease.Lease{
		Key:                          key,
		Owner:                        owner,
		Counter:                      7,
		Checkpoint:                   at(t, seq56, 7),
		PendingCheckpoint:            at(t, seq56[:len(seq56)-1]+"9", 2),
		PendingCheckpointState:       []byte("prepared state"),
		OwnerSwitchesSinceCheckpoint: 2,
		ParentShardIDs:               []string{"shardId-000000000001", "shardId-000000000002"},
		HashRange:                    &hashkey.Range{Start: hashkey.Key{Hi: 1 << 62}, End: hashkey.Key{Hi: 1 << 63, Lo: 17}},
		ThroughputKBps:               ptr(812.5),
	}
}

// fullLease sets every field of Lease, with the extreme values a store must
// keep: a multi-stream key, a 56-digit checkpoint with sub-sequence number 7,
// binary state with zero and 0xff bytes, the whole hash key space [0, 2^128-1].
func fullLease(t testing.TB) lease.Lease {
	t.Helper()
	return lease.Lease{
		Key:                          "123456789012:orders:1700000000:shardId-000000000007",
		Owner:                        workerA,
		Counter:                      42,
		Checkpoint:                   at(t, seq56, 7),
		PendingCheckpoint:            at(t, "49590338271490256608559692538361571095921575989136588899", 3),
		PendingCheckpointState:       []byte{0, 1, 2, 0xfe, 0xff, 'k', 'c', 'l'},
		OwnerSwitchesSinceCheckpoint: 3,
		ParentShardIDs:               []string{"shardId-000000000003", "shardId-000000000004"},
		ChildShardIDs:                []string{"shardId-000000000009", "shardId-000000000010"},
		HashRange:                    &hashkey.Range{Start: hashkey.Key{}, End: hashkey.Max},
		CheckpointOwner:              workerB,
		ThroughputKBps:               ptr(1536.25),
		StreamName:                   "orders",
		ShardID:                      "shardId-000000000007",
	}
}

// diff lists the fields in which got differs from want. Slices compare as
// documented on the package: nil equals empty, and the shard-id sets ignore
// order.
func diff(got, want lease.Lease) []string {
	var d []string
	add := func(field, g, w string) {
		d = append(d, fmt.Sprintf("%s = %s, want %s", field, g, w))
	}
	str := func(field, g, w string) {
		if g != w {
			add(field, strconv.Quote(g), strconv.Quote(w))
		}
	}
	num := func(field string, g, w int64) {
		if g != w {
			add(field, strconv.FormatInt(g, 10), strconv.FormatInt(w, 10))
		}
	}
	pos := func(field string, g, w checkpoint.Position) {
		if g != w {
			add(field, fmtPos(g), fmtPos(w))
		}
	}
	set := func(field string, g, w []string) {
		if !sameSet(g, w) {
			add(field, fmt.Sprintf("%q", g), fmt.Sprintf("%q", w))
		}
	}
	str("Key", got.Key, want.Key)
	str("Owner", got.Owner, want.Owner)
	num("Counter", got.Counter, want.Counter)
	pos("Checkpoint", got.Checkpoint, want.Checkpoint)
	pos("PendingCheckpoint", got.PendingCheckpoint, want.PendingCheckpoint)
	if !bytes.Equal(got.PendingCheckpointState, want.PendingCheckpointState) {
		add("PendingCheckpointState", fmt.Sprintf("%q", got.PendingCheckpointState), fmt.Sprintf("%q", want.PendingCheckpointState))
	}
	num("OwnerSwitchesSinceCheckpoint", got.OwnerSwitchesSinceCheckpoint, want.OwnerSwitchesSinceCheckpoint)
	set("ParentShardIDs", got.ParentShardIDs, want.ParentShardIDs)
	set("ChildShardIDs", got.ChildShardIDs, want.ChildShardIDs)
	if g, w := fmtRange(got.HashRange), fmtRange(want.HashRange); g != w {
		add("HashRange", g, w)
	}
	str("CheckpointOwner", got.CheckpointOwner, want.CheckpointOwner)
	if g, w := fmtFloat(got.ThroughputKBps), fmtFloat(want.ThroughputKBps); g != w {
		add("ThroughputKBps", g, w)
	}
	str("StreamName", got.StreamName, want.StreamName)
	str("ShardID", got.ShardID, want.ShardID)
	return d
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func fmtPos(p checkpoint.Position) string {
	if p.IsZero() {
		return "none"
	}
	return p.String()
}

func fmtRange(r *hashkey.Range) string {
	if r == nil {
		return "nil"
	}
	return "[" + r.Start.String() + ", " + r.End.String() + "]"
}

func fmtFloat(f *float64) string {
	if f == nil {
		return "nil"
	}
	return strconv.FormatFloat(*f, 'g', -1, 64)
}

// checkLease reports every field in which got differs from want.
func checkLease(t testing.TB, what string, got, want lease.Lease) {
	t.Helper()
	if d := diff(got, want); len(d) > 0 {
		t.Errorf("%s: lease %q differs:\n\t%s", what, want.Key, strings.Join(d, "\n\t"))
	}
}

// create creates l, failing the test on error, and returns it as stored.
func create(t testing.TB, s lease.Store, l lease.Lease) lease.Lease {
	t.Helper()
	if err := s.Create(t.Context(), l); err != nil {
		t.Fatalf("Create(%q): %v", l.Key, err)
	}
	got := get(t, s, l.Key)
	checkLease(t, "Get after Create", got, l)
	return got
}

// get returns the lease with key, failing the test on error.
func get(t testing.TB, s lease.Store, key string) lease.Lease {
	t.Helper()
	l, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return l
}

// wantStored checks that the store holds want under want.Key.
func wantStored(t testing.TB, s lease.Store, what string, want lease.Lease) {
	t.Helper()
	checkLease(t, "Get "+what, get(t, s, want.Key), want)
}

// wantMissing checks that the store holds no lease with key.
func wantMissing(t testing.TB, s lease.Store, what, key string) {
	t.Helper()
	if l, err := s.Get(t.Context(), key); !errors.Is(err, lease.ErrNotFound) {
		t.Errorf("Get %s = %+v, %v; want error matching lease.ErrNotFound", what, l, err)
	}
}

// wantErr checks that err matches every target.
func wantErr(t testing.TB, call string, err error, targets ...error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s succeeded; want an error matching %v", call, targets)
		return
	}
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Errorf("%s = %v; want an error matching %v", call, err, target)
		}
	}
}

// wantOK fails the test if err is not nil.
func wantOK(t testing.TB, call string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", call, err)
	}
}

// scribble overwrites, in place, everything a lease shares by reference, so
// that a store which kept a reference to it would see the change.
func scribble(l *lease.Lease) {
	for i := range l.PendingCheckpointState {
		l.PendingCheckpointState[i] ^= 0xff
	}
	for i := range l.ParentShardIDs {
		l.ParentShardIDs[i] = "scribbled"
	}
	for i := range l.ChildShardIDs {
		l.ChildShardIDs[i] = "scribbled"
	}
	if l.HashRange != nil {
		l.HashRange.Start = hashkey.Key{Hi: 3, Lo: 3}
		l.HashRange.End = hashkey.Key{Hi: 4, Lo: 4}
	}
	if l.ThroughputKBps != nil {
		*l.ThroughputKBps = -1
	}
}
