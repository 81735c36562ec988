package protocol

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Message is what a child writes to its stdout: a [Status], a
// [CheckpointRequest] or a [Garbage].
type Message interface {
	message()
}

// Status ends the call in progress: {"action":"status","responseFor":A}.
// The host must check that ResponseFor is the action of the message it is
// answering; a missing or null responseFor decodes as "", which matches none.
type Status struct {
	ResponseFor string
}

// CheckpointRequest asks the host to checkpoint:
// {"action":"checkpoint","sequenceNumber":S,"subSequenceNumber":N}.
//
// SequenceNumber nil (null or absent) asks for everything delivered so far
// (during shardEnded: SHARD_END); SubSequenceNumber nil with a sequence number
// means sub-sequence 0. The host validates both (a negative SubSequenceNumber
// is an [IllegalArgumentException]) and echoes them unchanged in its reply
// with [AppendCheckpoint].
type CheckpointRequest struct {
	SequenceNumber    *string
	SubSequenceNumber *int64
}

// Garbage is a line that is not a message a child may send. The Java host logs
// and skips such lines, and so should a compatible host.
type Garbage struct {
	// Line is the line as read, without its line ending.
	Line string
	// Reason says briefly why Line is not a message.
	Reason string
}

func (Status) message()            {}
func (CheckpointRequest) message() {}
func (Garbage) message()           {}

// Decode classifies one line (without its line ending) written by a child.
//
// It accepts what the Java host's Jackson reader accepts, field names matched
// exactly: a JSON object whose "action" is "status" or "checkpoint" with no
// other fields than that action's (a checkpoint request may carry the "error"
// field of the Java message class, which is ignored). As in Jackson, a number
// where a string field is expected is taken as its text. Everything else is
// Garbage: an unknown or missing action, a host-to-child action, an extra
// field, a value of the wrong type, trailing data after the object. Decode is
// stricter than Jackson's coercions in two ways, both Garbage here: a boolean
// for a string field, and a float or string for subSequenceNumber.
//
// Decode never panics. An empty or blank line is Garbage with reason "empty
// line"; [Reader.Next] skips those before calling Decode.
func Decode(line []byte) Message {
	if len(bytes.TrimSpace(line)) == 0 {
		return Garbage{Line: string(line), Reason: "empty line"}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(line, &fields); err != nil {
		return Garbage{Line: string(line), Reason: "not a JSON object: " + err.Error()}
	}
	if fields == nil {
		return Garbage{Line: string(line), Reason: "not a JSON object"}
	}
	raw, ok := fields["action"]
	if !ok {
		return Garbage{Line: string(line), Reason: "no action"}
	}
	action, ok := stringValue(raw)
	if !ok || action == nil {
		return Garbage{Line: string(line), Reason: "action is not a string"}
	}
	switch *action {
	case "status":
		if f := extraField(fields, "responseFor"); f != "" {
			return Garbage{Line: string(line), Reason: "unknown field " + strconv.Quote(f)}
		}
		var s Status
		if raw, ok := fields["responseFor"]; ok {
			v, ok := stringValue(raw)
			if !ok {
				return Garbage{Line: string(line), Reason: "responseFor is not a string"}
			}
			if v != nil {
				s.ResponseFor = *v
			}
		}
		return s
	case "checkpoint":
		if f := extraField(fields, "sequenceNumber", "subSequenceNumber", "error"); f != "" {
			return Garbage{Line: string(line), Reason: "unknown field " + strconv.Quote(f)}
		}
		var c CheckpointRequest
		if raw, ok := fields["sequenceNumber"]; ok {
			if c.SequenceNumber, ok = stringValue(raw); !ok {
				return Garbage{Line: string(line), Reason: "sequenceNumber is not a string"}
			}
		}
		if raw, ok := fields["subSequenceNumber"]; ok {
			if c.SubSequenceNumber, ok = intValue(raw); !ok {
				return Garbage{Line: string(line), Reason: "subSequenceNumber is not a 64-bit integer"}
			}
		}
		if raw, ok := fields["error"]; ok {
			if _, ok := stringValue(raw); !ok {
				return Garbage{Line: string(line), Reason: "error is not a string"}
			}
		}
		return c
	case "initialize", "processRecords", "shutdown", "shutdownRequested", "leaseLost", "shardEnded":
		return Garbage{Line: string(line), Reason: "action " + strconv.Quote(*action) + " is sent by the host, not the child"}
	default:
		return Garbage{Line: string(line), Reason: "unknown action " + strconv.Quote(*action)}
	}
}

// extraField returns the name of a field other than "action" and allowed, or
// "" if there is none.
func extraField(fields map[string]json.RawMessage, allowed ...string) string {
next:
	for name := range fields {
		if name == "action" {
			continue
		}
		for _, a := range allowed {
			if name == a {
				continue next
			}
		}
		return name
	}
	return ""
}

// stringValue decodes a JSON string field as Jackson does: null is nil, a
// string is itself, a number is its text. ok is false for other types.
func stringValue(raw json.RawMessage) (v *string, ok bool) {
	switch {
	case len(raw) == 0:
		return nil, false
	case string(raw) == "null":
		return nil, true
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, false
		}
		return &s, true
	case raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9':
		s := string(raw)
		return &s, true
	default:
		return nil, false
	}
}

// intValue decodes a JSON integer field: null is nil, an integer that fits in
// an int64 is itself. ok is false for other values.
func intValue(raw json.RawMessage) (v *int64, ok bool) {
	if string(raw) == "null" {
		return nil, true
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return nil, false
	}
	return &n, true
}

// DefaultMaxLine is the longest line, in bytes, a [Reader] made with
// NewReader(r, 0) accepts. Status and checkpoint messages are well under 1 KiB.
const DefaultMaxLine = 1 << 20

// ErrLineTooLong is returned by [Reader.Next] when the child writes a line
// longer than the Reader's limit. The Reader is then unusable: the host should
// treat the child as failed.
var ErrLineTooLong = errors.New("protocol: line too long")

// Reader reads a child's messages from its stdout, one line at a time, with
// memory bounded by its maximum line length. A Reader is not safe for
// concurrent use.
type Reader struct {
	r       *bufio.Reader
	maxLine int
	line    []byte // reused across lines; holds partial lines longer than r's buffer
	err     error  // sticky
}

// NewReader returns a Reader of r that accepts lines of at most maxLine bytes
// (without the line ending); maxLine ≤ 0 means [DefaultMaxLine].
func NewReader(r io.Reader, maxLine int) *Reader {
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	return &Reader{r: bufio.NewReaderSize(r, min(maxLine+2, 64<<10)), maxLine: maxLine}
}

// Next returns the next message, skipping empty and blank lines (clients
// write "\n" before each message). A line ends at "\n"; a "\r" before it is
// dropped, and a last line without "\n" is still decoded.
//
// Next blocks until a line is read. At the end of the input it returns io.EOF;
// a line longer than the limit returns an error wrapping [ErrLineTooLong];
// other errors are the underlying reader's. Once Next returned an error it
// returns that error again.
func (r *Reader) Next() (Message, error) {
	for r.err == nil {
		line, err := r.readLine()
		if err != nil {
			r.err = err
			if len(line) == 0 || errors.Is(err, ErrLineTooLong) {
				break
			}
			// A last line without "\n": decode it, report err on the next call.
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		return Decode(line), nil
	}
	return nil, r.err
}

// readLine reads one line without its "\n" (or "\r\n"). The line is valid
// until the next call. It holds at most maxLine+2 bytes of a line in memory.
func (r *Reader) readLine() ([]byte, error) {
	r.line = r.line[:0]
	for {
		frag, err := r.r.ReadSlice('\n')
		if len(r.line)+len(frag) > r.maxLine+2 {
			return nil, r.tooLong()
		}
		if err == bufio.ErrBufferFull {
			r.line = append(r.line, frag...)
			continue
		}
		line := frag // no copy in the common case
		if len(r.line) > 0 {
			r.line = append(r.line, frag...)
			line = r.line
		}
		if err == nil {
			line = line[:len(line)-1]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
		}
		if len(line) > r.maxLine {
			return nil, r.tooLong()
		}
		return line, err
	}
}

func (r *Reader) tooLong() error {
	return fmt.Errorf("%w: more than %d bytes", ErrLineTooLong, r.maxLine)
}
