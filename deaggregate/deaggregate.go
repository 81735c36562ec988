package deaggregate

import (
	"crypto/md5"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/deaggregate/internal/md5x"
	"github.com/kclgo/kcl/hashkey"
)

// batch is how many aggregates' digests Append computes at once.
const batch = 16

// magic starts the data of every KPL aggregated record.
var magic = [4]byte{0xF3, 0x89, 0x9A, 0xC2}

// minAggregateLen is the shortest data KCL treats as an aggregate: magic,
// a protobuf message of at least one byte and the MD5 digest.
const minAggregateLen = len(magic) + 1 + md5.Size

// Record is one user record: either a record a KPL aggregate carried or a
// plain Kinesis record.
type Record struct {
	// Data is the user record's payload. For a user record from an aggregate
	// it is a sub-slice of the Kinesis record's Data, never a copy, with its
	// capacity cut to its length; for a plain record it is the Kinesis
	// record's Data itself. Either way it shares memory with the input.
	Data []byte
	// PartitionKey is the user record's partition key.
	PartitionKey string
	// ExplicitHashKey is the user record's explicit hash key in decimal, or
	// "" when it has none. Plain Kinesis records never have one.
	ExplicitHashKey string
	// SequenceNumber is the Kinesis record's sequence number, shared by all
	// user records of an aggregate.
	SequenceNumber string
	// SubSequenceNumber is the user record's position in its aggregate,
	// 0..n-1; it is 0 for a plain record. SequenceNumber and
	// SubSequenceNumber together identify a user record, as KCL's extended
	// sequence number does.
	SubSequenceNumber uint64
	// ApproximateArrivalTimestamp is the Kinesis record's arrival time, or
	// the zero time if Kinesis did not report one.
	ApproximateArrivalTimestamp time.Time
	// EncryptionType is the Kinesis record's encryption type.
	EncryptionType types.EncryptionType
	// Aggregated reports whether the record came out of a KPL aggregate.
	Aggregated bool
}

// Option configures a [Deaggregator].
type Option func(*options)

type options struct {
	hashRange  bool
	start, end string         // WithHashRange's bounds, parsed by New
	keyRange   *hashkey.Range // WithKeyRange's range, nil after WithHashRange
	onError    func(*RecordError)
}

// WithHashRange drops every aggregate that holds a user record whose
// effective hash key (its explicit hash key, else the MD5 of its partition
// key) lies outside [startingHashKey, endingHashKey], both inclusive. Pass
// the shard's HashKeyRange from ListShards, as decimal strings. Dropped
// aggregates are counted in [Stats].Filtered and reported with
// [ErrOutOfRange]. Plain records are never filtered.
//
// By default nothing is filtered. [New] returns an error if either bound is
// not a decimal number in [0, 2^128-1] or if start is greater than end.
func WithHashRange(startingHashKey, endingHashKey string) Option {
	return func(o *options) {
		o.hashRange, o.start, o.end, o.keyRange = true, startingHashKey, endingHashKey, nil
	}
}

// WithKeyRange is [WithHashRange] for a range already parsed, such as a
// lease's. [New] returns an error wrapping [hashkey.ErrInvalidRange] if
// r.Start is greater than r.End.
func WithKeyRange(r hashkey.Range) Option {
	return func(o *options) {
		o.hashRange, o.keyRange = true, &r
	}
}

// WithErrorHandler registers fn to hear about every input record that was
// passed through as malformed ([ErrMalformed]) or dropped by the hash range
// filter ([ErrOutOfRange]). Append calls fn synchronously, on the goroutine
// that called Append, before it moves on to the next record; fn must be fast
// and must not call back into the Deaggregator. If Append runs on several goroutines
// at once, so does fn. The default is to report nothing; [Stats] still
// counts.
func WithErrorHandler(fn func(*RecordError)) Option {
	return func(o *options) { o.onError = fn }
}

// Deaggregator expands KPL aggregated records into user records. Create it
// with [New]; it is immutable once created, except for its counters, and is
// safe for concurrent use.
type Deaggregator struct {
	filter    bool
	hashRange hashkey.Range
	onError   func(*RecordError)

	records, aggregates, userRecords, malformed, filtered atomic.Uint64
}

// New returns a Deaggregator configured by opts. It fails only if the bounds
// given to [WithHashRange] are invalid.
func New(opts ...Option) (*Deaggregator, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	d := &Deaggregator{onError: o.onError}
	if o.hashRange {
		r, err := o.parseRange()
		if err != nil {
			return nil, err
		}
		// The whole key space filters nothing; skip hashing every key.
		d.filter, d.hashRange = r != hashkey.Range{End: hashkey.Max}, r
	}
	return d, nil
}

// parseRange returns the range given to WithHashRange or WithKeyRange.
func (o *options) parseRange() (hashkey.Range, error) {
	if r := o.keyRange; r != nil {
		if r.Start.Compare(r.End) > 0 {
			return hashkey.Range{}, fmt.Errorf("deaggregate: WithKeyRange: %w: start %s is greater than end %s", hashkey.ErrInvalidRange, r.Start, r.End)
		}
		return *r, nil
	}
	r, err := hashkey.ParseRange(o.start, o.end)
	if err != nil {
		return hashkey.Range{}, fmt.Errorf("deaggregate: WithHashRange(%q, %q): %w", o.start, o.end, err)
	}
	return r, nil
}

// Stats are a Deaggregator's cumulative counters. Append adds to each
// counter atomically just before it returns, so Stats taken while Appends
// run may count part of a batch in one counter but not yet in another.
type Stats struct {
	// Records counts input records.
	Records uint64
	// Aggregates counts input records that were valid KPL aggregates,
	// including filtered ones and ones that held no user record.
	Aggregates uint64
	// UserRecords counts records appended to dst: user records from
	// aggregates plus plain and passed-through records.
	UserRecords uint64
	// Malformed counts input records that had the KPL magic bytes but were
	// passed through because they were not valid aggregates.
	Malformed uint64
	// Filtered counts aggregates dropped by the hash range filter.
	Filtered uint64
}

// Stats returns the counters accumulated since New.
func (d *Deaggregator) Stats() Stats {
	return Stats{
		Records:     d.records.Load(),
		Aggregates:  d.aggregates.Load(),
		UserRecords: d.userRecords.Load(),
		Malformed:   d.malformed.Load(),
		Filtered:    d.filtered.Load(),
	}
}

// Append appends the user records of in to dst, in order, and returns the
// extended slice. An aggregate contributes its user records, with sub-sequence
// numbers 0..n-1; a plain record, or one that has the KPL magic bytes but is
// malformed, contributes itself. A filtered aggregate contributes nothing.
//
// Appended records share memory with in: see [Record].Data. Append never
// fails and never panics on any input; malformed and filtered records are
// counted in [Stats] and reported to the [WithErrorHandler] function. It is
// safe to call Append from several goroutines at once.
//
// When dst has enough capacity, Append allocates once per aggregate that
// holds user records (a string holding its key tables) and never for plain
// records. When the user records of an aggregate do not fit, Append grows
// dst once, with room for those of the rest of in as well.
func (d *Deaggregator) Append(dst []Record, in []types.Record) []Record {
	var aggregates, malformed, filtered uint64
	first := len(dst)
	// Digests are computed sixteen aggregates at a time (md5x.Sum16 hashes
	// them in parallel SIMD lanes): the MD5 check KCL requires is most of
	// the cost of deaggregation.
	var (
		msgs  [batch][]byte
		sums  [batch][md5.Size]byte
		which [batch]int // index in in of each message
		n, k  int        // messages in the window, next one to use
		next  int        // first record not yet looked at for the window
	)
	for i := range in {
		r := &in[i]
		if !hasMagic(r.Data) {
			dst = appendPlain(dst, r)
			continue
		}
		if k == n && next <= i && checksummed(r.Data) {
			// Fill the next window, starting at this record.
			n, k = 0, 0
			for next = i; next < len(in) && n < batch; next++ {
				if data := in[next].Data; hasMagic(data) && checksummed(data) {
					msgs[n], _ = body(data)
					which[n] = next
					n++
				}
			}
			md5x.Sum16(&sums, &msgs, n)
			clear(msgs[:n]) // do not keep the batch reachable
		}
		var sum *[md5.Size]byte
		if k < n && which[k] == i {
			sum = &sums[k]
			k++
		}
		var f fault
		dst, f = d.appendAggregate(dst, r, sum, in[i+1:])
		switch f.kind {
		case faultNone:
			aggregates++
			continue
		case faultOutOfRange:
			aggregates++
			filtered++
		default:
			malformed++
			dst = appendPlain(dst, r)
		}
		if d.onError != nil {
			d.onError(&RecordError{SequenceNumber: aws.ToString(r.SequenceNumber), Err: &faultError{f: f}})
		}
	}
	d.records.Add(uint64(len(in)))
	d.aggregates.Add(aggregates)
	d.userRecords.Add(uint64(len(dst) - first))
	d.malformed.Add(malformed)
	d.filtered.Add(filtered)
	return dst
}

// defaultDeaggregator backs Records.
var defaultDeaggregator = &Deaggregator{}

// Records returns the user records of in in a fresh slice, as Append on a
// Deaggregator without options would. Malformed aggregates are passed through
// silently.
func Records(in []types.Record) []Record {
	return defaultDeaggregator.Append(make([]Record, 0, len(in)), in)
}

func hasMagic(data []byte) bool {
	return len(data) >= len(magic) && [4]byte(data[:4]) == magic
}

func appendPlain(dst []Record, r *types.Record) []Record {
	return append(dst, Record{
		Data:                        r.Data,
		PartitionKey:                aws.ToString(r.PartitionKey),
		SequenceNumber:              aws.ToString(r.SequenceNumber),
		ApproximateArrivalTimestamp: aws.ToTime(r.ApproximateArrivalTimestamp),
		EncryptionType:              r.EncryptionType,
	})
}
