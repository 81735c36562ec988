package protocol

import (
	"encoding/base64"
	"strconv"
	"time"
	"unicode/utf8"
)

// Record is one Kinesis record as the host sends it to the child in a
// processRecords message. Records of a KPL aggregate are sent de-aggregated,
// one Record each, with their sub-sequence numbers.
type Record struct {
	// Data is the record's payload, sent as standard base64 with padding.
	Data []byte
	// PartitionKey is any UTF-8 string; invalid UTF-8 is sent as U+FFFD.
	PartitionKey string
	// SequenceNumber is the record's decimal sequence number.
	SequenceNumber string
	// SubSequenceNumber is the record's index inside its KPL aggregate, 0 for
	// a plain record.
	SubSequenceNumber uint64
	// ArrivalTime is the approximate arrival time, sent as epoch
	// milliseconds; the zero Time is sent as null.
	ArrivalTime time.Time
}

// Initialize is the first message a child receives.
type Initialize struct {
	// ShardID is the shard the child processes.
	ShardID string
	// SequenceNumber is the lease's checkpoint: a decimal sequence number or
	// one of TRIM_HORIZON, LATEST, AT_TIMESTAMP, SHARD_END; nil is sent as null
	// (no checkpoint).
	SequenceNumber *string
	// SubSequenceNumber goes with SequenceNumber; nil is sent as null.
	SubSequenceNumber *uint64
}

// AppendInitialize appends the initialize message m, terminated by "\n".
func AppendInitialize(dst []byte, m Initialize) []byte {
	dst = append(dst, `{"action":"initialize","shardId":`...)
	dst = appendString(dst, m.ShardID)
	dst = append(dst, `,"sequenceNumber":`...)
	if m.SequenceNumber == nil {
		dst = append(dst, "null"...)
	} else {
		dst = appendString(dst, *m.SequenceNumber)
	}
	dst = append(dst, `,"subSequenceNumber":`...)
	if m.SubSequenceNumber == nil {
		dst = append(dst, "null"...)
	} else {
		dst = strconv.AppendUint(dst, *m.SubSequenceNumber, 10)
	}
	return append(dst, "}\n"...)
}

// AppendProcessRecords appends a processRecords message carrying recs (which
// may be empty), terminated by "\n". millisBehindLatest nil is sent as null.
//
// It allocates nothing when dst has room; hosts reuse one buffer per child.
// A host that must not hold a whole large batch encoded builds the same
// bytes piecewise with AppendProcessRecordsStart, AppendRecord and
// AppendProcessRecordsEnd, writing out as it goes.
func AppendProcessRecords(dst []byte, recs []Record, millisBehindLatest *int64) []byte {
	dst = AppendProcessRecordsStart(dst)
	for i := range recs {
		dst = AppendRecord(dst, &recs[i], i == 0)
	}
	return AppendProcessRecordsEnd(dst, millisBehindLatest)
}

// AppendProcessRecordsStart appends the beginning of a processRecords
// message, up to its first record.
func AppendProcessRecordsStart(dst []byte) []byte {
	return append(dst, `{"action":"processRecords","records":[`...)
}

// AppendRecord appends one record of a processRecords message; first
// reports whether it is the message's first record (no separating comma).
func AppendRecord(dst []byte, r *Record, first bool) []byte {
	if !first {
		dst = append(dst, ',')
	}
	dst = append(dst, `{"data":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, r.Data)
	dst = append(dst, `","partitionKey":`...)
	dst = appendString(dst, r.PartitionKey)
	dst = append(dst, `,"sequenceNumber":`...)
	dst = appendString(dst, r.SequenceNumber)
	dst = append(dst, `,"subSequenceNumber":`...)
	dst = strconv.AppendUint(dst, r.SubSequenceNumber, 10)
	dst = append(dst, `,"approximateArrivalTimestamp":`...)
	if r.ArrivalTime.IsZero() {
		dst = append(dst, "null"...)
	} else {
		dst = strconv.AppendInt(dst, r.ArrivalTime.UnixMilli(), 10)
	}
	return append(dst, `,"action":"record"}`...)
}

// AppendProcessRecordsEnd appends the end of a processRecords message, after
// its last record, terminated by "\n". millisBehindLatest nil is sent as
// null.
func AppendProcessRecordsEnd(dst []byte, millisBehindLatest *int64) []byte {
	dst = append(dst, `],"millisBehindLatest":`...)
	if millisBehindLatest == nil {
		dst = append(dst, "null"...)
	} else {
		dst = strconv.AppendInt(dst, *millisBehindLatest, 10)
	}
	return append(dst, "}\n"...)
}

// AppendLeaseLost appends the leaseLost message: the worker no longer holds
// the shard's lease, and the child cannot checkpoint.
func AppendLeaseLost(dst []byte) []byte {
	return append(dst, "{\"action\":\"leaseLost\"}\n"...)
}

// AppendShardEnded appends the shardEnded message: every record of the
// closed shard was delivered, and the child must checkpoint (normally with a
// null sequence number) before it replies.
func AppendShardEnded(dst []byte) []byte {
	return append(dst, "{\"action\":\"shardEnded\"}\n"...)
}

// AppendShutdownRequested appends the shutdownRequested message: no more
// records follow; the child may checkpoint, then replies.
func AppendShutdownRequested(dst []byte) []byte {
	return append(dst, "{\"action\":\"shutdownRequested\"}\n"...)
}

// AppendCheckpoint appends the host's reply to the child's checkpoint request
// req: the request's sequence and sub-sequence numbers echoed as the child
// sent them (null if absent), and err, null when it is empty (success).
func AppendCheckpoint(dst []byte, req CheckpointRequest, err CheckpointError) []byte {
	dst = append(dst, `{"action":"checkpoint","sequenceNumber":`...)
	if req.SequenceNumber == nil {
		dst = append(dst, "null"...)
	} else {
		dst = appendString(dst, *req.SequenceNumber)
	}
	dst = append(dst, `,"subSequenceNumber":`...)
	if req.SubSequenceNumber == nil {
		dst = append(dst, "null"...)
	} else {
		dst = strconv.AppendInt(dst, *req.SubSequenceNumber, 10)
	}
	dst = append(dst, `,"error":`...)
	if err == "" {
		dst = append(dst, "null"...)
	} else {
		dst = appendString(dst, string(err))
	}
	return append(dst, "}\n"...)
}

const hex = "0123456789abcdef"

// plain holds the bytes a JSON string carries unescaped: ASCII from space on,
// except quote and backslash.
var plain = func() (t [256]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

// appendString appends s as a JSON string, escaped the way encoding/json
// escapes it with HTML escaping off: quote, backslash and control characters
// escaped, invalid UTF-8 replaced by \ufffd, and U+2028 and U+2029 escaped
// (JavaScript clients may evaluate lines).
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if plain[s[i]] {
			i++
			continue
		}
		if b := s[i]; b < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
