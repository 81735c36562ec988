package aggregate

import (
	"crypto/md5"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kclgo/kcl/hashkey"
)

// magic starts the data of every KPL aggregated record.
var magic = [4]byte{0xF3, 0x89, 0x9A, 0xC2}

// Field numbers of the KPL's messages.proto; see package deaggregate.
const (
	fieldPartitionKeyTable    protowire.Number = 1
	fieldExplicitHashKeyTable protowire.Number = 2
	fieldRecords              protowire.Number = 3

	fieldPartitionKeyIndex    protowire.Number = 1
	fieldExplicitHashKeyIndex protowire.Number = 2
	fieldData                 protowire.Number = 3
)

const (
	// DefaultMaxSize is the default limit on the encoded size of an
	// aggregate, in bytes: the KPL's default AggregationMaxSize.
	DefaultMaxSize = 51200

	// MaxSizeLimit is the largest value [WithMaxSize] accepts, in bytes: the
	// 1 MiB Kinesis limit on a record's data.
	MaxSizeLimit = 1 << 20

	// MinMaxSize is the smallest value [WithMaxSize] accepts, in bytes: the
	// encoded size of an aggregate holding one user record with a
	// one-byte partition key and no data.
	MinMaxSize = len(magic) + 3 + 6 + md5.Size

	// MaxPartitionKeyLen is the most Unicode characters a partition key may
	// have, as Kinesis requires.
	MaxPartitionKeyLen = 256
)

// Errors returned by [Aggregator.Add], [Marshal] and [New]; branch on them
// with errors.Is.
var (
	ErrRecordTooLarge         = errors.New("aggregate: user record too large for an aggregate")
	ErrInvalidPartitionKey    = errors.New("aggregate: invalid partition key")
	ErrInvalidExplicitHashKey = errors.New("aggregate: invalid explicit hash key")
	ErrInvalidMaxSize         = errors.New("aggregate: invalid maximum aggregate size")
	ErrNoRecords              = errors.New("aggregate: no user records")
)

// UserRecord is one record as a producer wants it delivered.
type UserRecord struct {
	// PartitionKey must be 1 to 256 Unicode characters of valid UTF-8.
	PartitionKey string
	// ExplicitHashKey, when not "", is a decimal number in [0, 2^128-1] that
	// overrides the MD5 of PartitionKey as the record's hash key.
	ExplicitHashKey string
	// Data is the payload. The Aggregator copies it during Add.
	Data []byte
}

// Entry is one Kinesis record to put, holding one aggregate.
type Entry struct {
	// PartitionKey is the partition key of the aggregate's first user record.
	PartitionKey string
	// ExplicitHashKey is the effective hash key of the aggregate's first user
	// record in decimal (its explicit hash key, or the MD5 of its partition
	// key), so that Kinesis puts the aggregate on the shard the first user
	// record would have gone to. Pass it as PutRecordsRequestEntry's
	// ExplicitHashKey.
	ExplicitHashKey string
	// Data is the encoded aggregate. It is freshly allocated and owned by the
	// caller.
	Data []byte
	// Records is the number of user records in the aggregate.
	Records int
}

// Option configures an [Aggregator].
type Option func(*options)

type options struct {
	maxSize int
}

// WithMaxSize sets the largest encoded size of an aggregate, in bytes,
// counting the magic bytes, the protobuf message and the MD5 digest. The
// default is [DefaultMaxSize]. [New] returns an error wrapping
// [ErrInvalidMaxSize] unless [MinMaxSize] <= n <= [MaxSizeLimit].
//
// Kinesis counts an entry's partition key towards its 1 MiB record limit, so
// with n near MaxSizeLimit leave room for the first user record's partition
// key.
func WithMaxSize(n int) Option {
	return func(o *options) { o.maxSize = n }
}

// Aggregator packs user records into KPL aggregated records that KCL, the
// KPL's own consumers and package deaggregate can expand.
//
// Each distinct partition key and explicit hash key is stored once per
// aggregate. An aggregate is always emitted in aggregated form, even if it
// holds a single user record. An Aggregator is not safe for concurrent use.
type Aggregator struct {
	maxSize int

	pkIndex  map[string]uint64
	ehkIndex map[string]uint64
	pkTable  []string
	ehkTable []string
	records  []byte // encoded AggregatedRecord.records fields
	count    int    // user records pending
	msgSize  int    // encoded size of the pending AggregatedRecord message

	firstPK, firstHash string
}

// New returns an empty Aggregator configured by opts.
func New(opts ...Option) (*Aggregator, error) {
	o := options{maxSize: DefaultMaxSize}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxSize < MinMaxSize || o.maxSize > MaxSizeLimit {
		return nil, fmt.Errorf("%w: WithMaxSize(%d) is outside [%d, %d]", ErrInvalidMaxSize, o.maxSize, MinMaxSize, MaxSizeLimit)
	}
	return newAggregator(o.maxSize), nil
}

func newAggregator(maxSize int) *Aggregator {
	return &Aggregator{
		maxSize:  maxSize,
		pkIndex:  make(map[string]uint64),
		ehkIndex: make(map[string]uint64),
	}
}

// Add adds r to the pending aggregate. If r does not fit in it, Add returns
// the pending aggregate as full with ok true and starts the next aggregate
// with r. Add returns an error, and changes nothing, if r is invalid
// ([ErrInvalidPartitionKey], [ErrInvalidExplicitHashKey]) or would not fit
// even in an aggregate of its own ([ErrRecordTooLarge]).
//
// Add copies r.Data. An explicit hash key is stored in canonical decimal
// form, without leading zeros.
func (a *Aggregator) Add(r UserRecord) (full Entry, ok bool, err error) {
	ehk, err := validate(r)
	if err != nil {
		return Entry{}, false, err
	}
	hasEHK := ehk != ""
	alone := len(magic) + keySize(fieldPartitionKeyTable, r.PartitionKey) + recordSize(0, 0, hasEHK, len(r.Data)) + md5.Size
	if hasEHK {
		alone += keySize(fieldExplicitHashKeyTable, ehk)
	}
	if alone > a.maxSize {
		return Entry{}, false, fmt.Errorf("%w: it encodes to %d bytes alone, the limit is %d", ErrRecordTooLarge, alone, a.maxSize)
	}
	if a.count > 0 && len(magic)+a.msgSize+a.growth(r.PartitionKey, ehk, len(r.Data))+md5.Size > a.maxSize {
		full, ok = a.Flush()
	}
	a.add(r.PartitionKey, ehk, r.Data)
	return full, ok, nil
}

// Flush returns the pending aggregate with ok true, if there is one, and
// starts an empty one.
func (a *Aggregator) Flush() (e Entry, ok bool) {
	if a.count == 0 {
		return Entry{}, false
	}
	e = Entry{
		PartitionKey:    a.firstPK,
		ExplicitHashKey: a.firstHash,
		Data:            a.encode(),
		Records:         a.count,
	}
	a.reset()
	return e, true
}

// Len returns the number of user records pending.
func (a *Aggregator) Len() int { return a.count }

// Size returns the encoded size in bytes that the pending aggregate would
// have if flushed now, or 0 if there is none.
func (a *Aggregator) Size() int {
	if a.count == 0 {
		return 0
	}
	return len(magic) + a.msgSize + md5.Size
}

// Marshal encodes records as one aggregate, in order, with no size limit. It
// is meant for tests and tools. It returns an error wrapping
// [ErrNoRecords] if records is empty, and the error Add would return for
// the first invalid record otherwise.
func Marshal(records []UserRecord) ([]byte, error) {
	if len(records) == 0 {
		return nil, ErrNoRecords
	}
	a := newAggregator(math.MaxInt)
	for i, r := range records {
		ehk, err := validate(r)
		if err != nil {
			return nil, fmt.Errorf("%w (user record %d)", err, i)
		}
		a.add(r.PartitionKey, ehk, r.Data)
	}
	return a.encode(), nil
}

// validate checks r and returns its explicit hash key in canonical form.
func validate(r UserRecord) (string, error) {
	if err := validatePartitionKey(r.PartitionKey); err != nil {
		return "", err
	}
	if r.ExplicitHashKey == "" {
		return "", nil
	}
	k, err := hashkey.Parse(r.ExplicitHashKey)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidExplicitHashKey, err)
	}
	if len(r.ExplicitHashKey) > 1 && r.ExplicitHashKey[0] == '0' {
		return k.String(), nil
	}
	return r.ExplicitHashKey, nil
}

func validatePartitionKey(pk string) error {
	switch {
	case pk == "":
		return fmt.Errorf("%w: empty", ErrInvalidPartitionKey)
	case !utf8.ValidString(pk):
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidPartitionKey)
	case len(pk) > MaxPartitionKeyLen && utf8.RuneCountInString(pk) > MaxPartitionKeyLen:
		return fmt.Errorf("%w: longer than %d characters", ErrInvalidPartitionKey, MaxPartitionKeyLen)
	}
	return nil
}

// keySize is the encoded size of one key-table entry.
func keySize(field protowire.Number, key string) int {
	return protowire.SizeTag(field) + protowire.SizeBytes(len(key))
}

// recordSize is the encoded size of one AggregatedRecord.records entry.
func recordSize(pkIndex, ehkIndex uint64, hasEHK bool, dataLen int) int {
	n := recordBodySize(pkIndex, ehkIndex, hasEHK, dataLen)
	return protowire.SizeTag(fieldRecords) + protowire.SizeBytes(n)
}

// recordBodySize is the encoded size of a Record message.
func recordBodySize(pkIndex, ehkIndex uint64, hasEHK bool, dataLen int) int {
	n := protowire.SizeTag(fieldPartitionKeyIndex) + protowire.SizeVarint(pkIndex) +
		protowire.SizeTag(fieldData) + protowire.SizeBytes(dataLen)
	if hasEHK {
		n += protowire.SizeTag(fieldExplicitHashKeyIndex) + protowire.SizeVarint(ehkIndex)
	}
	return n
}

// indexes returns the table indexes a record with these keys would get,
// and the growth of the key tables it would cause.
func (a *Aggregator) indexes(pk, ehk string) (pkIndex, ehkIndex uint64, growth int) {
	pkIndex, ok := a.pkIndex[pk]
	if !ok {
		pkIndex = uint64(len(a.pkTable))
		growth += keySize(fieldPartitionKeyTable, pk)
	}
	if ehk != "" {
		ehkIndex, ok = a.ehkIndex[ehk]
		if !ok {
			ehkIndex = uint64(len(a.ehkTable))
			growth += keySize(fieldExplicitHashKeyTable, ehk)
		}
	}
	return pkIndex, ehkIndex, growth
}

// growth is how much adding a record would grow the pending message.
func (a *Aggregator) growth(pk, ehk string, dataLen int) int {
	pkIndex, ehkIndex, n := a.indexes(pk, ehk)
	return n + recordSize(pkIndex, ehkIndex, ehk != "", dataLen)
}

// add appends a validated record to the pending aggregate.
func (a *Aggregator) add(pk, ehk string, data []byte) {
	pkIndex, ehkIndex, n := a.indexes(pk, ehk)
	if pkIndex == uint64(len(a.pkTable)) {
		a.pkIndex[pk] = pkIndex
		a.pkTable = append(a.pkTable, pk)
	}
	hasEHK := ehk != ""
	if hasEHK && ehkIndex == uint64(len(a.ehkTable)) {
		a.ehkIndex[ehk] = ehkIndex
		a.ehkTable = append(a.ehkTable, ehk)
	}
	body := recordBodySize(pkIndex, ehkIndex, hasEHK, len(data))
	before := len(a.records)
	a.records = protowire.AppendTag(a.records, fieldRecords, protowire.BytesType)
	a.records = protowire.AppendVarint(a.records, uint64(body))
	a.records = protowire.AppendTag(a.records, fieldPartitionKeyIndex, protowire.VarintType)
	a.records = protowire.AppendVarint(a.records, pkIndex)
	if hasEHK {
		a.records = protowire.AppendTag(a.records, fieldExplicitHashKeyIndex, protowire.VarintType)
		a.records = protowire.AppendVarint(a.records, ehkIndex)
	}
	a.records = protowire.AppendTag(a.records, fieldData, protowire.BytesType)
	a.records = protowire.AppendBytes(a.records, data)
	a.msgSize += n + len(a.records) - before

	if a.count == 0 {
		a.firstPK = pk
		if hasEHK {
			a.firstHash = ehk
		} else {
			a.firstHash = hashkey.FromPartitionKey(pk).String()
		}
	}
	a.count++
}

// encode returns the pending aggregate: magic, the AggregatedRecord message
// with the key tables first, as the KPL writes it, and the message's MD5.
func (a *Aggregator) encode() []byte {
	out := make([]byte, 0, len(magic)+a.msgSize+md5.Size)
	out = append(out, magic[:]...)
	for _, pk := range a.pkTable {
		out = protowire.AppendTag(out, fieldPartitionKeyTable, protowire.BytesType)
		out = protowire.AppendString(out, pk)
	}
	for _, ehk := range a.ehkTable {
		out = protowire.AppendTag(out, fieldExplicitHashKeyTable, protowire.BytesType)
		out = protowire.AppendString(out, ehk)
	}
	out = append(out, a.records...)
	sum := md5.Sum(out[len(magic):])
	return append(out, sum[:]...)
}

func (a *Aggregator) reset() {
	clear(a.pkIndex)
	clear(a.ehkIndex)
	clear(a.pkTable)
	clear(a.ehkTable)
	a.pkTable, a.ehkTable = a.pkTable[:0], a.ehkTable[:0]
	a.records = a.records[:0]
	a.count, a.msgSize = 0, 0
	a.firstPK, a.firstHash = "", ""
}
