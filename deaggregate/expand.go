package deaggregate

import (
	"crypto/md5"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/hashkey"
)

// tableEntry locates one key-table string in an aggregate's key string and
// caches its hash key.
type tableEntry struct {
	start, end uint32
	hashed     bool
	hash       hashkey.Key
}

// smallTable is how many key-table entries an aggregate may have before its
// scratch table comes from entryPool instead of the stack.
const smallTable = 16

// entryPool holds scratch tables for aggregates with many keys.
var entryPool = sync.Pool{New: func() any { return new([]tableEntry) }}

// maxPooledEntries bounds the scratch tables kept in entryPool, so that one
// huge aggregate does not pin its scratch space.
const maxPooledEntries = 4096

// maxAggregateLen bounds the data this package decodes as an aggregate, so
// that key offsets fit in a uint32. Kinesis records are at most 10 MiB;
// anything longer is reported as unparsable.
const maxAggregateLen = math.MaxUint32

// checksummed reports whether data is long enough, and short enough, to be
// checked as an aggregate: only then is its MD5 digest computed.
func checksummed(data []byte) bool {
	return len(data) >= minAggregateLen && uint64(len(data)) <= maxAggregateLen
}

// body returns the protobuf message of an aggregate's data and its digest.
func body(data []byte) (msg []byte, digest [md5.Size]byte) {
	return data[len(magic) : len(data)-md5.Size], [md5.Size]byte(data[len(data)-md5.Size:])
}

// appendAggregate appends the user records of r, whose data starts with the
// magic bytes and whose MD5 digest, when checksummed(r.Data), is sum; rest
// is the input after r, for sizing dst. On a fault it appends nothing.
func (d *Deaggregator) appendAggregate(dst []Record, r *types.Record, sum *[md5.Size]byte, rest []types.Record) ([]Record, fault) {
	data := r.Data
	if len(data) < minAggregateLen {
		return dst, fault{kind: faultTooShort, record: -1}
	}
	if uint64(len(data)) > maxAggregateLen {
		return dst, fault{kind: faultSyntax, record: -1}
	}
	msg, digest := body(data)
	if sum == nil {
		// Not in a digest window (Append always provides one; this keeps
		// appendAggregate correct on its own).
		s := md5.Sum(msg)
		sum = &s
	}
	if *sum != digest {
		return dst, fault{kind: faultChecksum, record: -1}
	}
	l, f := scan(msg)
	if !f.ok() || l.records == 0 {
		// KCL yields nothing for an aggregate without user records.
		return dst, f
	}
	n := l.partitionKeys + l.explicitHashKeys
	if n <= smallTable {
		var stack [smallTable]tableEntry
		return d.emit(dst, r, msg, l, stack[:n], rest)
	}
	p := entryPool.Get().(*[]tableEntry)
	if cap(*p) < n {
		*p = make([]tableEntry, n)
	}
	dst, f = d.emit(dst, r, msg, l, (*p)[:n], rest)
	if cap(*p) <= maxPooledEntries {
		entryPool.Put(p)
	}
	return dst, f
}

// emit makes the second and third passes over a message that scan accepted:
// it copies the key tables into one string, then decodes, checks and appends
// the user records in order. On a fault it removes what it appended. If dst
// is too short for them, emit grows it once for r and rest together.
func (d *Deaggregator) emit(dst []Record, r *types.Record, msg []byte, l layout, table []tableEntry, rest []types.Record) ([]Record, fault) {
	keys := collectKeys(msg, l, table)
	pks, ehks := table[:l.partitionKeys], table[l.partitionKeys:]
	base := len(dst)
	if cap(dst)-len(dst) < l.records {
		// Growing dst aggregate by aggregate copied a large batch's
		// records several times over: for a GetRecords result of 10 MiB of
		// small user records that cost more than deaggregating them.
		dst = slices.Grow(dst, l.records+countRecords(rest))
	}
	seq := aws.ToString(r.SequenceNumber)
	arrival := aws.ToTime(r.ApproximateArrivalTimestamp)
	sub := 0
	var u userRecord
	for b := msg; len(b) > 0; {
		num, typ, n := readTag(b)
		if n < 0 {
			break // unreachable: scan accepted msg
		}
		b = b[n:]
		if num != fieldRecords {
			if n = skipField(num, typ, b); n < 0 {
				break
			}
			b = b[n:]
			continue
		}
		v, n := readBytes(b)
		if n < 0 {
			break
		}
		b = b[n:]
		if k, field := parseRecord(v, &u); k != faultNone {
			clear(dst[base:])
			return dst[:base], fault{kind: k, record: sub, field: field}
		}
		if k := d.check(&u, pks, ehks, keys); k != faultNone {
			clear(dst[base:])
			return dst[:base], d.describe(k, sub, &u, pks, ehks, keys)
		}
		pk := &pks[u.partitionKey]
		out := Record{
			Data:                        u.data,
			PartitionKey:                keys[pk.start:pk.end],
			SequenceNumber:              seq,
			SubSequenceNumber:           uint64(sub),
			ApproximateArrivalTimestamp: arrival,
			EncryptionType:              r.EncryptionType,
			Aggregated:                  true,
		}
		if u.hasExplicitHashKey {
			ehk := &ehks[u.explicitHashKey]
			out.ExplicitHashKey = keys[ehk.start:ehk.end]
		}
		dst = append(dst, out)
		sub++
	}
	return dst, fault{}
}

// countRecords returns at least how many records Append appends for in: an
// aggregate counts its user records, as far as the first pass over it can
// tell without checking them or its digest; any other record counts one.
// It never counts fewer than Append appends, so that one growth of dst is
// enough.
func countRecords(in []types.Record) int {
	n := 0
	for i := range in {
		data := in[i].Data
		if !hasMagic(data) || !checksummed(data) {
			n++
			continue
		}
		msg, _ := body(data)
		// A malformed or empty aggregate is passed through or dropped:
		// one record at most.
		l, _ := scan(msg)
		n += max(l.records, 1)
	}
	return n
}

// check validates a decoded user record against the key tables: indexes in
// range, explicit hash key parsable, effective hash key inside the hash
// range when filtering. Parsed and hashed keys are cached in the tables.
func (d *Deaggregator) check(u *userRecord, pks, ehks []tableEntry, keys string) faultKind {
	if u.partitionKey >= uint64(len(pks)) {
		return faultPartitionKeyIndex
	}
	var e *tableEntry
	if u.hasExplicitHashKey {
		if u.explicitHashKey >= uint64(len(ehks)) {
			return faultExplicitHashKeyIndex
		}
		e = &ehks[u.explicitHashKey]
		if !e.hashed {
			k, err := hashkey.Parse(keys[e.start:e.end])
			if err != nil {
				return faultExplicitHashKey
			}
			e.hash, e.hashed = k, true
		}
	} else if d.filter {
		e = &pks[u.partitionKey]
		if !e.hashed {
			e.hash, e.hashed = hashkey.FromPartitionKey(keys[e.start:e.end]), true
		}
	}
	if d.filter && !d.hashRange.Contains(e.hash) {
		return faultOutOfRange
	}
	return faultNone
}

// describe builds the fault for a user record that check rejected with
// kind k, off the fast path.
func (d *Deaggregator) describe(k faultKind, sub int, u *userRecord, pks, ehks []tableEntry, keys string) fault {
	f := fault{kind: k, record: sub}
	switch k {
	case faultPartitionKeyIndex:
		f.index, f.size = u.partitionKey, len(pks)
	case faultExplicitHashKeyIndex:
		f.index, f.size = u.explicitHashKey, len(ehks)
	case faultExplicitHashKey:
		e := &ehks[u.explicitHashKey]
		_, f.cause = hashkey.Parse(keys[e.start:e.end])
	case faultOutOfRange:
		if u.hasExplicitHashKey {
			f.hash = ehks[u.explicitHashKey].hash
		} else {
			f.hash = pks[u.partitionKey].hash
		}
	}
	return f
}

// collectKeys copies every key-table string of msg into one string, so that
// an aggregate costs one allocation however many keys it has, and records in
// table where each entry lies: partition keys first, then explicit hash keys.
func collectKeys(msg []byte, l layout, table []tableEntry) string {
	var sb strings.Builder
	sb.Grow(l.keyBytes)
	pk, ehk := 0, l.partitionKeys
	for b := msg; len(b) > 0; {
		num, typ, n := readTag(b)
		if n < 0 {
			break // unreachable: scan accepted msg
		}
		b = b[n:]
		if num != fieldPartitionKeyTable && num != fieldExplicitHashKeyTable {
			if n = skipField(num, typ, b); n < 0 {
				break
			}
			b = b[n:]
			continue
		}
		v, n := readBytes(b)
		if n < 0 {
			break
		}
		b = b[n:]
		i := &pk
		if num == fieldExplicitHashKeyTable {
			i = &ehk
		}
		start := sb.Len()
		sb.Write(v)
		table[*i] = tableEntry{start: uint32(start), end: uint32(sb.Len())}
		*i++
	}
	return sb.String()
}
