package deaggregate

import "google.golang.org/protobuf/encoding/protowire"

// Field numbers of the KPL's messages.proto:
//
//	message AggregatedRecord {
//	  repeated string partition_key_table = 1;
//	  repeated string explicit_hash_key_table = 2;
//	  repeated Record records = 3;
//	}
//	message Record {
//	  required uint64 partition_key_index = 1;
//	  optional uint64 explicit_hash_key_index = 2;
//	  required bytes data = 3;
//	  repeated Tag tags = 4;
//	}
//	message Tag {
//	  required string key = 1;
//	  optional string value = 2;
//	}
const (
	fieldPartitionKeyTable    protowire.Number = 1
	fieldExplicitHashKeyTable protowire.Number = 2
	fieldRecords              protowire.Number = 3

	fieldPartitionKeyIndex    protowire.Number = 1
	fieldExplicitHashKeyIndex protowire.Number = 2
	fieldData                 protowire.Number = 3
	fieldTags                 protowire.Number = 4

	fieldTagKey   protowire.Number = 1
	fieldTagValue protowire.Number = 2
)

// layout is what the first pass over an AggregatedRecord learns.
type layout struct {
	partitionKeys    int // entries in partition_key_table
	explicitHashKeys int // entries in explicit_hash_key_table
	records          int // entries in records
	keyBytes         int // total length of all key-table entries
}

// scan is the first pass over an AggregatedRecord message: it checks the
// message's top level, so that later passes over it cannot fail, and counts
// what they need. The records themselves are checked as they are emitted.
// Like protobuf-java, scan accepts fields in any order and skips unknown
// fields, including groups.
func scan(msg []byte) (layout, fault) {
	var l layout
	for b := msg; len(b) > 0; {
		num, typ, n := readTag(b)
		if n < 0 {
			return l, fault{kind: faultSyntax, record: -1}
		}
		b = b[n:]
		switch num {
		case fieldPartitionKeyTable, fieldExplicitHashKeyTable, fieldRecords:
			if typ != protowire.BytesType {
				return l, fault{kind: faultWireType, record: -1, field: aggregatedFieldName(num)}
			}
			v, n := readBytes(b)
			if n < 0 {
				return l, fault{kind: faultSyntax, record: -1}
			}
			b = b[n:]
			switch num {
			case fieldPartitionKeyTable:
				l.partitionKeys++
				l.keyBytes += len(v)
			case fieldExplicitHashKeyTable:
				l.explicitHashKeys++
				l.keyBytes += len(v)
			default:
				l.records++
			}
		default:
			n := skipField(num, typ, b)
			if n < 0 {
				return l, fault{kind: faultSyntax, record: -1}
			}
			b = b[n:]
		}
	}
	return l, fault{}
}

// userRecord is one decoded Record message.
type userRecord struct {
	partitionKey       uint64
	explicitHashKey    uint64
	hasExplicitHashKey bool
	data               []byte
}

// parseRecord decodes and validates one Record message into r, and returns
// what is wrong with it, if anything, with the field concerned. The data it
// stores aliases b with its capacity cut to its length, so that appending to
// it cannot overwrite the rest of the aggregate. It takes r by pointer and
// returns no fault struct because copying those dominated its cost.
func parseRecord(b []byte, r *userRecord) (faultKind, string) {
	*r = userRecord{}
	var hasPartitionKey, hasData bool
	for len(b) > 0 {
		num, typ, n := readTag(b)
		if n < 0 {
			return faultSyntax, ""
		}
		b = b[n:]
		switch num {
		case fieldPartitionKeyIndex, fieldExplicitHashKeyIndex:
			if typ != protowire.VarintType {
				return faultWireType, recordFieldName(num)
			}
			v, n := readVarint(b)
			if n < 0 {
				return faultSyntax, ""
			}
			b = b[n:]
			if num == fieldPartitionKeyIndex {
				r.partitionKey, hasPartitionKey = v, true
			} else {
				r.explicitHashKey, r.hasExplicitHashKey = v, true
			}
		case fieldData, fieldTags:
			if typ != protowire.BytesType {
				return faultWireType, recordFieldName(num)
			}
			v, n := readBytes(b)
			if n < 0 {
				return faultSyntax, ""
			}
			b = b[n:]
			if num == fieldData {
				r.data, hasData = v[:len(v):len(v)], true
			} else if k, field := checkTag(v); k != faultNone {
				return k, field
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return faultSyntax, ""
			}
			b = b[n:]
		}
	}
	switch {
	case !hasPartitionKey:
		return faultMissingPartitionKeyIndex, ""
	case !hasData:
		return faultMissingData, ""
	}
	return faultNone, ""
}

// checkTag validates a Tag message and names the field at fault, if any. Tags are not exposed, as KCL does not
// expose them, but a malformed tag makes protobuf-java reject the whole
// aggregate, so it makes this package reject it too.
func checkTag(b []byte) (faultKind, string) {
	hasKey := false
	for len(b) > 0 {
		num, typ, n := readTag(b)
		if n < 0 {
			return faultSyntax, ""
		}
		b = b[n:]
		switch {
		case num == fieldTagKey && typ != protowire.BytesType:
			return faultWireType, "Tag.key"
		case num == fieldTagValue && typ != protowire.BytesType:
			return faultWireType, "Tag.value"
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return faultSyntax, ""
		}
		b = b[n:]
		hasKey = hasKey || num == fieldTagKey
	}
	if !hasKey {
		return faultMissingTagKey, ""
	}
	return faultNone, ""
}

// The decoders below come in pairs: an inlinable fast path for the one-byte
// tags, indexes and lengths that KPL aggregates are made of, which returns
// n == 0 when it does not apply, and the general protowire decoder. Calling
// protowire for every field doubled the cost of decoding.

// readTag decodes a field tag. One-byte tags (fields 1..15), all that KPL
// writes, take a fast path; longer ones go through consumeTag.
func readTag(b []byte) (protowire.Number, protowire.Type, int) {
	if len(b) > 0 && b[0]-8 < 0x80-8 {
		return protowire.Number(b[0] >> 3), protowire.Type(b[0] & 7), 1
	}
	return consumeTag(b)
}

// consumeTag is protowire.ConsumeTag that also rejects field numbers above
// the protobuf maximum.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n >= 0 && num > protowire.MaxValidNumber {
		return 0, 0, -1
	}
	return num, typ, n
}

// readVarint decodes a varint, one-byte values on a fast path.
func readVarint(b []byte) (uint64, int) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	return protowire.ConsumeVarint(b)
}

// readBytes decodes a length-delimited value, values shorter than 128 bytes
// on a fast path.
func readBytes(b []byte) ([]byte, int) {
	if len(b) > 0 && int(b[0]) < min(len(b), 0x80) {
		return b[1 : 1+b[0]], 1 + int(b[0])
	}
	return protowire.ConsumeBytes(b)
}

// skipField returns the length of the field value at the start of b, or a
// negative number if it is malformed. Length-delimited values, the only kind
// KPL aggregates hold at the top level, skip without going through
// protowire's general decoder.
func skipField(num protowire.Number, typ protowire.Type, b []byte) int {
	if typ == protowire.BytesType && len(b) >= 2 {
		var n, l int
		if b[0] < 0x80 {
			n, l = 1, int(b[0])
		} else if b[1] < 0x80 {
			n, l = 2, int(b[0]&0x7f)|int(b[1])<<7
		}
		if n > 0 && l <= len(b)-n {
			return n + l
		}
	}
	return protowire.ConsumeFieldValue(num, typ, b)
}

func aggregatedFieldName(num protowire.Number) string {
	switch num {
	case fieldPartitionKeyTable:
		return "AggregatedRecord.partition_key_table"
	case fieldExplicitHashKeyTable:
		return "AggregatedRecord.explicit_hash_key_table"
	default:
		return "AggregatedRecord.records"
	}
}

func recordFieldName(num protowire.Number) string {
	switch num {
	case fieldPartitionKeyIndex:
		return "Record.partition_key_index"
	case fieldExplicitHashKeyIndex:
		return "Record.explicit_hash_key_index"
	case fieldData:
		return "Record.data"
	default:
		return "Record.tags"
	}
}
