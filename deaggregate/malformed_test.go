package deaggregate

import (
	"crypto/md5"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kclgo/kcl/hashkey"
)

// good is a valid record for building otherwise malformed aggregates.
var good = record(pkIndex(0), data("payload"))

func TestMalformedAggregatesPassThroughUnchanged(t *testing.T) {
	emptySum := md5.Sum(nil)
	tests := []struct {
		name string
		data []byte
		want faultKind
	}{
		{"magic alone is too short", magic[:], faultTooShort},
		{"magic and a digest without a message are too short", cat(magic[:], emptySum[:]), faultTooShort},
		{"a wrong digest is a checksum mismatch", func() []byte {
			d := frame(cat(pkEntry("a"), good))
			d[len(d)-1] ^= 1
			return d
		}(), faultChecksum},
		{"a corrupted message is a checksum mismatch", func() []byte {
			d := frame(cat(pkEntry("a"), good))
			d[len(magic)+2] ^= 1
			return d
		}(), faultChecksum},
		{"a truncated tag varint is unparsable", frame([]byte{0x80}), faultSyntax},
		{"field number zero is unparsable", frame([]byte{0x02, 0x00}), faultSyntax},
		{"a field number above 2^29-1 is unparsable", frame(cat(varintField(protowire.MaxValidNumber+1, 1), pkEntry("a"), good)), faultSyntax},
		{"a length running past the end is unparsable", frame(cat(pkEntry("a"), good, []byte{0x0a, 0x09, 'x'})), faultSyntax},
		{"a truncated record varint is unparsable", frame(cat(pkEntry("a"), record([]byte{0x08, 0xff}))), faultSyntax},
		{"a varint longer than ten bytes is unparsable", frame(cat(pkEntry("a"), record([]byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, data("")))), faultSyntax},
		{"reserved wire type 6 is unparsable", frame(cat(pkEntry("a"), good, []byte{0x7e})), faultSyntax},
		{"an unmatched end group is unparsable", frame(cat(pkEntry("a"), good, protowire.AppendTag(nil, 9, protowire.EndGroupType))), faultSyntax},
		{"an unterminated group is unparsable", frame(cat(pkEntry("a"), good, protowire.AppendTag(nil, 9, protowire.StartGroupType))), faultSyntax},
		{"an unknown field inside a record that is truncated is unparsable", frame(cat(pkEntry("a"), record(pkIndex(0), data("x"), []byte{0x2d, 0x01}))), faultSyntax},
		{"a partition key table entry sent as a varint has the wrong wire type", frame(cat(varintField(fieldPartitionKeyTable, 1), good)), faultWireType},
		{"an explicit hash key table entry sent as fixed32 has the wrong wire type", frame(cat(pkEntry("a"), []byte{0x15, 1, 2, 3, 4}, good)), faultWireType},
		{"records sent as a group have the wrong wire type", frame(cat(pkEntry("a"), protowire.AppendTag(nil, fieldRecords, protowire.StartGroupType), protowire.AppendTag(nil, fieldRecords, protowire.EndGroupType))), faultWireType},
		{"a partition key index sent as bytes has the wrong wire type", frame(cat(pkEntry("a"), record(bytesField(fieldPartitionKeyIndex, []byte{0}), data("x")))), faultWireType},
		{"an explicit hash key index sent as fixed64 has the wrong wire type", frame(cat(pkEntry("a"), ehkEntry("1"), record(pkIndex(0), []byte{0x11, 0, 0, 0, 0, 0, 0, 0, 0}, data("x")))), faultWireType},
		{"data sent as a varint has the wrong wire type", frame(cat(pkEntry("a"), record(pkIndex(0), varintField(fieldData, 7)))), faultWireType},
		{"tags sent as a varint have the wrong wire type", frame(cat(pkEntry("a"), record(pkIndex(0), data("x"), varintField(fieldTags, 1)))), faultWireType},
		{"a tag key sent as a varint has the wrong wire type", frame(cat(pkEntry("a"), record(pkIndex(0), data("x"), tag(varintField(fieldTagKey, 1))))), faultWireType},
		{"a tag value sent as a varint has the wrong wire type", frame(cat(pkEntry("a"), record(pkIndex(0), data("x"), tag(tagKey("k"), varintField(fieldTagValue, 1))))), faultWireType},
		{"a record without a partition key index is missing a required field", frame(cat(pkEntry("a"), record(data("x")))), faultMissingPartitionKeyIndex},
		{"a record without data is missing a required field", frame(cat(pkEntry("a"), record(pkIndex(0)))), faultMissingData},
		{"an empty record is missing a required field", frame(cat(pkEntry("a"), record())), faultMissingPartitionKeyIndex},
		{"a tag without a key is missing a required field", frame(cat(pkEntry("a"), record(pkIndex(0), data("x"), tag(tagValue("v"))))), faultMissingTagKey},
		{"a truncated tag is unparsable", frame(cat(pkEntry("a"), record(pkIndex(0), data("x"), tag([]byte{0x0a, 0x05, 'k'})))), faultSyntax},
		{"a partition key index past the table is out of range", frame(cat(pkEntry("a"), pkEntry("b"), good, record(pkIndex(2), data("x")))), faultPartitionKeyIndex},
		{"a partition key index with no table at all is out of range", frame(good), faultPartitionKeyIndex},
		{"an index of 2^32 is out of range rather than truncated as Java does", frame(cat(pkEntry("a"), record(pkIndex(1<<32), data("x")))), faultPartitionKeyIndex},
		{"the largest varint index is out of range", frame(cat(pkEntry("a"), record(pkIndex(1<<64-1), data("x")))), faultPartitionKeyIndex},
		{"an explicit hash key index past the table is out of range", frame(cat(pkEntry("a"), ehkEntry("1"), record(pkIndex(0), ehkIndex(1), data("x")))), faultExplicitHashKeyIndex},
		{"an explicit hash key index with an empty table is out of range", frame(cat(pkEntry("a"), record(pkIndex(0), ehkIndex(0), data("x")))), faultExplicitHashKeyIndex},
		{"a negative explicit hash key is malformed", frame(cat(pkEntry("a"), ehkEntry("-1"), record(pkIndex(0), ehkIndex(0), data("x")))), faultExplicitHashKey},
		{"an explicit hash key of 2^128 is malformed", frame(cat(pkEntry("a"), ehkEntry("340282366920938463463374607431768211456"), record(pkIndex(0), ehkIndex(0), data("x")))), faultExplicitHashKey},
		{"a hexadecimal explicit hash key is malformed", frame(cat(pkEntry("a"), ehkEntry("0xff"), record(pkIndex(0), ehkIndex(0), data("x")))), faultExplicitHashKey},
		{"an empty explicit hash key is malformed", frame(cat(pkEntry("a"), ehkEntry(""), record(pkIndex(0), ehkIndex(0), data("x")))), faultExplicitHashKey},
		{"a bad explicit hash key after good records appends none of them", frame(cat(pkEntry("a"), ehkEntry("5"), ehkEntry("five"), good, record(pkIndex(0), ehkIndex(0), data("y")), record(pkIndex(0), ehkIndex(1), data("z")))), faultExplicitHashKey},
		{"an out of range index after good records appends none of them", frame(cat(pkEntry("a"), good, good, record(pkIndex(9), data("z")))), faultPartitionKeyIndex},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c collector
			d, err := New(WithErrorHandler(c.handle))
			if err != nil {
				t.Fatal(err)
			}
			in := []types.Record{kinesisRecord("42", tt.data)}
			prefix := []Record{{PartitionKey: "already there"}}
			out := d.Append(prefix, in)
			if len(out) != 2 || out[0].PartitionKey != "already there" {
				t.Fatalf("Append returned %d records, want the existing one plus one pass-through: %+v", len(out), out)
			}
			got := out[1]
			if !same(got.Data, tt.data) || got.Aggregated || got.SubSequenceNumber != 0 ||
				got.PartitionKey != "outer-42" || got.SequenceNumber != "42" || got.ExplicitHashKey != "" ||
				!got.ApproximateArrivalTimestamp.Equal(arrival) || got.EncryptionType != types.EncryptionTypeKms {
				t.Fatalf("pass-through record = %+v, want the input unchanged", got)
			}
			if len(c.errs) != 1 {
				t.Fatalf("handler called %d times, want 1", len(c.errs))
			}
			e := c.errs[0]
			if e.SequenceNumber != "42" || !errors.Is(e, ErrMalformed) || errors.Is(e, ErrOutOfRange) || !errors.Is(e, tt.want) {
				t.Fatalf("reported %v, want ErrMalformed with reason %q", e, tt.want)
			}
			if msg := e.Error(); !strings.HasPrefix(msg, "deaggregate: record 42: malformed aggregated record: "+tt.want.Error()) {
				t.Fatalf("message %q", msg)
			}
			if s := d.Stats(); s != (Stats{Records: 1, UserRecords: 1, Malformed: 1}) {
				t.Fatalf("Stats = %+v", s)
			}
		})
	}
}

func TestMalformedErrorsCarryDetails(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"an index fault names the record, index and table size", frame(cat(pkEntry("a"), good, record(pkIndex(7), data("x")))),
			"partition key index out of range: user record 1 has index 7, table has 1 entries"},
		{"a wire type fault names the field", frame(cat(pkEntry("a"), record(pkIndex(0), varintField(fieldData, 7)))),
			"wrong wire type for Record.data: user record 0"},
		{"a bad explicit hash key quotes the key", frame(cat(pkEntry("a"), ehkEntry("x1"), record(pkIndex(0), ehkIndex(0), data("x")))),
			`explicit hash key is not a decimal number in [0, 2^128-1]: user record 0: hashkey: invalid hash key "x1"`},
		{"a checksum fault names no record", cat(frame(cat(pkEntry("a"), good))[:30], make([]byte, 16)),
			"MD5 digest mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c collector
			d, _ := New(WithErrorHandler(c.handle))
			d.Append(nil, []types.Record{kinesisRecord("1", tt.data)})
			if len(c.errs) != 1 || !strings.Contains(c.errs[0].Error(), tt.want) {
				t.Fatalf("errors = %v, want one containing %q", c.errs, tt.want)
			}
			if strings.Contains(tt.want, "user record") {
				return
			}
			if strings.Contains(c.errs[0].Error(), "user record") {
				t.Fatalf("error %q names a user record", c.errs[0])
			}
		})
	}
}

func TestOutOfRangeErrorCarriesTheKey(t *testing.T) {
	var c collector
	d, err := New(WithHashRange("0", "10"), WithErrorHandler(c.handle))
	if err != nil {
		t.Fatal(err)
	}
	d.Append(nil, []types.Record{kinesisRecord("9", frame(cat(pkEntry("a"), ehkEntry("11"), record(pkIndex(0), ehkIndex(0), data("x")))))})
	want := "deaggregate: record 9: user record outside the shard's hash key range: effective hash key outside the shard's range: user record 0 has hash key 11"
	if len(c.errs) != 1 || c.errs[0].Error() != want || !errors.Is(c.errs[0], ErrOutOfRange) || errors.Is(c.errs[0], ErrMalformed) {
		t.Fatalf("errors = %v, want %q", c.errs, want)
	}
}

func TestExplicitHashKeyParseErrorIsWrapped(t *testing.T) {
	var c collector
	d, _ := New(WithErrorHandler(c.handle))
	d.Append(nil, []types.Record{kinesisRecord("1", frame(cat(pkEntry("a"), ehkEntry("+1"), record(pkIndex(0), ehkIndex(0), data("x")))))})
	if len(c.errs) != 1 || !errors.Is(c.errs[0], hashkey.ErrInvalid) {
		t.Fatalf("errors = %v, want one wrapping hashkey.ErrInvalid", c.errs)
	}
}

func TestMalformedWithoutHandlerIsSilent(t *testing.T) {
	d, _ := New()
	in := []types.Record{kinesisRecord("1", frame([]byte{0x80}))}
	if n := testing.AllocsPerRun(100, func() { d.Append(make([]Record, 0, 1), in) }); n > 1 {
		t.Fatalf("a malformed record without a handler allocated %v times", n)
	}
	if s := d.Stats(); s.Malformed == 0 {
		t.Fatalf("Stats = %+v, want Malformed counted", s)
	}
}
