package deaggregate

import (
	"bytes"
	"crypto/md5"
	"time"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"google.golang.org/protobuf/encoding/protowire"
)

// Hand-written protobuf pieces, for building aggregates the aggregate
// package would refuse to write.

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func bytesField(num protowire.Number, v []byte) []byte {
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func varintField(num protowire.Number, v uint64) []byte {
	b := protowire.AppendTag(nil, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func pkEntry(s string) []byte  { return bytesField(fieldPartitionKeyTable, []byte(s)) }
func ehkEntry(s string) []byte { return bytesField(fieldExplicitHashKeyTable, []byte(s)) }
func record(fields ...[]byte) []byte {
	return bytesField(fieldRecords, cat(fields...))
}
func pkIndex(i uint64) []byte     { return varintField(fieldPartitionKeyIndex, i) }
func ehkIndex(i uint64) []byte    { return varintField(fieldExplicitHashKeyIndex, i) }
func data(s string) []byte        { return bytesField(fieldData, []byte(s)) }
func tag(fields ...[]byte) []byte { return bytesField(fieldTags, cat(fields...)) }
func tagKey(s string) []byte      { return bytesField(fieldTagKey, []byte(s)) }
func tagValue(s string) []byte    { return bytesField(fieldTagValue, []byte(s)) }

// frame wraps an AggregatedRecord message in magic bytes and its digest.
func frame(msg []byte) []byte {
	sum := md5.Sum(msg)
	return cat(magic[:], msg, sum[:])
}

var arrival = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// kinesisRecord is a Kinesis record as GetRecords would return it.
func kinesisRecord(seq string, d []byte) types.Record {
	return types.Record{
		Data:                        d,
		PartitionKey:                aws.String("outer-" + seq),
		SequenceNumber:              aws.String(seq),
		ApproximateArrivalTimestamp: aws.Time(arrival),
		EncryptionType:              types.EncryptionTypeKms,
	}
}

// within reports whether sub lies inside buf's memory.
func within(sub, buf []byte) bool {
	if len(sub) == 0 {
		return true
	}
	s := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	b := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	return s >= b && s+uintptr(len(sub)) <= b+uintptr(len(buf))
}

// same reports whether a and b are the same slice: same memory, same length.
func same(a, b []byte) bool {
	return len(a) == len(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
}

// collector records what an error handler heard.
type collector struct{ errs []*RecordError }

func (c *collector) handle(e *RecordError) { c.errs = append(c.errs, e) }
