package protocol

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestDecode(t *testing.T) {
	garbage := func(line string) Message { return Garbage{Line: line} } // Reason is checked for presence only
	tests := []struct {
		name string
		line string
		want Message
	}{
		// What aws-kcl 2.3.2 writes (JSON.stringify, no spaces; an undefined sequence number is left out).
		{"aws-kcl's status for initialize is a status", `{"action":"status","responseFor":"initialize"}`, Status{ResponseFor: "initialize"}},
		{"aws-kcl's status for processRecords is a status", `{"action":"status","responseFor":"processRecords"}`, Status{ResponseFor: "processRecords"}},
		{"aws-kcl's status for shardEnded is a status", `{"action":"status","responseFor":"shardEnded"}`, Status{ResponseFor: "shardEnded"}},
		{"aws-kcl's checkpoint at a sequence number has no sub-sequence number", `{"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898"}`, CheckpointRequest{SequenceNumber: ptr("49590338271490256608559692538361571095921575989136588898")}},
		{"aws-kcl's checkpoint without an argument has no fields", `{"action":"checkpoint"}`, CheckpointRequest{}},
		{"aws-kcl's checkpoint with null asks for everything delivered", `{"action":"checkpoint","sequenceNumber":null}`, CheckpointRequest{}},
		// What kclpy writes (json.dumps, with spaces, both numbers always present).
		{"kclpy's status is a status", `{"action": "status", "responseFor": "shutdownRequested"}`, Status{ResponseFor: "shutdownRequested"}},
		{"kclpy's checkpoint carries both numbers", `{"action": "checkpoint", "sequenceNumber": "123", "subSequenceNumber": 4}`, CheckpointRequest{SequenceNumber: ptr("123"), SubSequenceNumber: ptr[int64](4)}},
		{"kclpy's checkpoint with None for both asks for everything delivered", `{"action": "checkpoint", "sequenceNumber": null, "subSequenceNumber": null}`, CheckpointRequest{}},
		{"field order does not matter", `{"responseFor":"leaseLost","action":"status"}`, Status{ResponseFor: "leaseLost"}},
		{"a negative sub-sequence number is decoded for the host to refuse", `{"action":"checkpoint","sequenceNumber":"5","subSequenceNumber":-1}`, CheckpointRequest{SequenceNumber: ptr("5"), SubSequenceNumber: ptr[int64](-1)}},
		{"a numeric sequence number is taken as its text, as Jackson does", `{"action":"checkpoint","sequenceNumber":49590338271490256608559692538361571095921575989136588898}`, CheckpointRequest{SequenceNumber: ptr("49590338271490256608559692538361571095921575989136588898")}},
		{"a checkpoint may carry the Java message's error field", `{"action":"checkpoint","sequenceNumber":"1","error":null}`, CheckpointRequest{SequenceNumber: ptr("1")}},
		{"a status without responseFor answers nothing", `{"action":"status"}`, Status{}},
		{"a status with a null responseFor answers nothing", `{"action":"status","responseFor":null}`, Status{}},
		{"a wrong responseFor is still a status, for the host to refuse", `{"action":"status","responseFor":"bogus"}`, Status{ResponseFor: "bogus"}},
		{"escapes in strings are decoded", `{"action":"status","responseFor":"init\u0069alize"}`, Status{ResponseFor: "initialize"}},
		{"surrounding whitespace is allowed", " \t{\"action\":\"status\",\"responseFor\":\"initialize\"} ", Status{ResponseFor: "initialize"}},

		{"a blank line is garbage", "   ", garbage("   ")},
		{"text is garbage", `Processing record 42`, garbage(`Processing record 42`)},
		{"a JSON array is garbage", `[{"action":"status"}]`, garbage(`[{"action":"status"}]`)},
		{"JSON null is garbage", `null`, garbage(`null`)},
		{"a JSON string is garbage", `"status"`, garbage(`"status"`)},
		{"an object without action is garbage", `{"responseFor":"initialize"}`, garbage(`{"responseFor":"initialize"}`)},
		{"a null action is garbage", `{"action":null}`, garbage(`{"action":null}`)},
		{"a numeric action is garbage", `{"action":1}`, garbage(`{"action":1}`)},
		{"an unknown action is garbage", `{"action":"hello"}`, garbage(`{"action":"hello"}`)},
		{"the action name is case-sensitive", `{"action":"Status","responseFor":"initialize"}`, garbage(`{"action":"Status","responseFor":"initialize"}`)},
		{"field names are case-sensitive", `{"Action":"status","responseFor":"initialize"}`, garbage(`{"Action":"status","responseFor":"initialize"}`)},
		{"a host action from the child is garbage", `{"action":"initialize","shardId":"s"}`, garbage(`{"action":"initialize","shardId":"s"}`)},
		{"a status with an extra field is garbage", `{"action":"status","responseFor":"initialize","extra":1}`, garbage(`{"action":"status","responseFor":"initialize","extra":1}`)},
		{"a checkpoint with an extra field is garbage", `{"action":"checkpoint","sequenceNumber":"1","reason":"x"}`, garbage(`{"action":"checkpoint","sequenceNumber":"1","reason":"x"}`)},
		{"a status with an error field is garbage", `{"action":"status","responseFor":"initialize","error":null}`, garbage(`{"action":"status","responseFor":"initialize","error":null}`)},
		{"an object responseFor is garbage", `{"action":"status","responseFor":{}}`, garbage(`{"action":"status","responseFor":{}}`)},
		{"a boolean sequence number is garbage", `{"action":"checkpoint","sequenceNumber":true}`, garbage(`{"action":"checkpoint","sequenceNumber":true}`)},
		{"an array sequence number is garbage", `{"action":"checkpoint","sequenceNumber":["1"]}`, garbage(`{"action":"checkpoint","sequenceNumber":["1"]}`)},
		{"a string sub-sequence number is garbage", `{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":"2"}`, garbage(`{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":"2"}`)},
		{"a fractional sub-sequence number is garbage", `{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":1.5}`, garbage(`{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":1.5}`)},
		{"a sub-sequence number beyond int64 is garbage", `{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":9223372036854775808}`, garbage(`{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":9223372036854775808}`)},
		{"an object error field is garbage", `{"action":"checkpoint","error":{}}`, garbage(`{"action":"checkpoint","error":{}}`)},
		{"trailing data after the object is garbage", `{"action":"status","responseFor":"initialize"}}`, garbage(`{"action":"status","responseFor":"initialize"}}`)},
		{"two messages on one line are garbage", `{"action":"status","responseFor":"a"}{"action":"status","responseFor":"b"}`, garbage(`{"action":"status","responseFor":"a"}{"action":"status","responseFor":"b"}`)},
		{"a truncated object is garbage", `{"action":"status","respon`, garbage(`{"action":"status","respon`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decode([]byte(tt.line))
			if g, ok := got.(Garbage); ok {
				if g.Reason == "" {
					t.Errorf("garbage without a reason: %+v", g)
				}
				g.Reason = ""
				got = g
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decode(%s) = %#v, want %#v", tt.line, got, tt.want)
			}
		})
	}
}

// TestDecodeCheckpointEchoesAsSent shows a decoded request, echoed by
// AppendCheckpoint, carries the numbers as the child sent them.
func TestDecodeCheckpointEchoesAsSent(t *testing.T) {
	for _, tt := range []struct{ line, want string }{
		{`{"action":"checkpoint","sequenceNumber":"77","subSequenceNumber":2}`, `{"action":"checkpoint","sequenceNumber":"77","subSequenceNumber":2,"error":null}` + "\n"},
		{`{"action":"checkpoint"}`, `{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}` + "\n"},
	} {
		req, ok := Decode([]byte(tt.line)).(CheckpointRequest)
		if !ok {
			t.Fatalf("%s: not a checkpoint request", tt.line)
		}
		if got := string(AppendCheckpoint(nil, req, "")); got != tt.want {
			t.Errorf("%s: reply %s, want %s", tt.line, got, tt.want)
		}
	}
}

func readAll(t *testing.T, r *Reader) ([]Message, error) {
	t.Helper()
	var msgs []Message
	for {
		m, err := r.Next()
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, m)
	}
}

func TestReaderSkipsEmptyLinesAsClientsWriteThem(t *testing.T) {
	// aws-kcl and kclpy write "\n<json>\n"; a Windows child writes "\r\n".
	input := "\n{\"action\":\"checkpoint\",\"sequenceNumber\":\"1\"}\n" +
		"\n{\"action\":\"status\",\"responseFor\":\"processRecords\"}\n" +
		"\r\n  \n{\"action\":\"status\",\"responseFor\":\"shardEnded\"}\r\n" +
		"debug output\n"
	msgs, err := readAll(t, NewReader(iotest.OneByteReader(strings.NewReader(input)), 0))
	if !errors.Is(err, io.EOF) {
		t.Fatalf("err = %v, want io.EOF", err)
	}
	want := []Message{
		CheckpointRequest{SequenceNumber: ptr("1")},
		Status{ResponseFor: "processRecords"},
		Status{ResponseFor: "shardEnded"},
		Garbage{Line: "debug output", Reason: "not a JSON object: invalid character 'd' looking for beginning of value"},
	}
	if !reflect.DeepEqual(msgs, want) {
		t.Errorf("got %#v\nwant %#v", msgs, want)
	}
}

func TestReaderDecodesALastLineWithoutNewline(t *testing.T) {
	msgs, err := readAll(t, NewReader(strings.NewReader("\n{\"action\":\"status\",\"responseFor\":\"leaseLost\"}"), 0))
	if !errors.Is(err, io.EOF) {
		t.Fatalf("err = %v, want io.EOF", err)
	}
	if want := []Message{Status{ResponseFor: "leaseLost"}}; !reflect.DeepEqual(msgs, want) {
		t.Errorf("got %#v, want %#v", msgs, want)
	}
}

func TestReaderReturnsTheUnderlyingError(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(io.MultiReader(strings.NewReader("{\"action\":\"status\",\"responseFor\":\"x\"}\n"), iotest.ErrReader(boom)), 0)
	msgs, err := readAll(t, r)
	if !errors.Is(err, boom) || len(msgs) != 1 {
		t.Fatalf("got %v, %v; want one message and boom", msgs, err)
	}
	if _, err := r.Next(); !errors.Is(err, boom) {
		t.Errorf("second Next: %v, want boom again", err)
	}
}

func TestReaderAcceptsALineOfExactlyTheLimit(t *testing.T) {
	line := `{"action":"status","responseFor":"` + strings.Repeat("x", 100) + `"}`
	for _, ending := range []string{"\n", "\r\n", ""} {
		msgs, err := readAll(t, NewReader(strings.NewReader(line+ending), len(line)))
		if !errors.Is(err, io.EOF) || len(msgs) != 1 {
			t.Errorf("ending %q: got %v, %v", ending, msgs, err)
		}
	}
	_, err := readAll(t, NewReader(strings.NewReader(line+"\n"), len(line)-1))
	if !errors.Is(err, ErrLineTooLong) {
		t.Errorf("one byte over the limit: err = %v, want ErrLineTooLong", err)
	}
}

// endless is a child that writes without ever ending the line.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	e.n += int64(len(p))
	return len(p), nil
}

func TestReaderStopsALineWithoutNewlineAtTheLimit(t *testing.T) {
	const limit = 1 << 20
	src := &endless{}
	r := NewReader(src, limit)
	if _, err := r.Next(); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("err = %v, want ErrLineTooLong", err)
	}
	// Without the limit the reader would read (and hold) the 1 GB line, or never return.
	if src.n > limit+2*(64<<10) {
		t.Errorf("read %d bytes for a limit of %d", src.n, limit)
	}
	if cap(r.line) > 2*limit+(64<<10) {
		t.Errorf("holds %d bytes for a limit of %d", cap(r.line), limit)
	}
	if _, err := r.Next(); !errors.Is(err, ErrLineTooLong) {
		t.Errorf("second Next: %v, want ErrLineTooLong again", err)
	}
}

// Seed lines are the shapes aws-kcl 2.3.2 and kclpy 3.1.3 write, per
// MULTILANG.md, and damaged variants of them.
var fuzzSeeds = []string{
	`{"action":"status","responseFor":"initialize"}`,
	`{"action":"status","responseFor":"processRecords"}`,
	`{"action":"status","responseFor":"leaseLost"}`,
	`{"action":"status","responseFor":"shardEnded"}`,
	`{"action":"status","responseFor":"shutdownRequested"}`,
	`{"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898"}`,
	`{"action":"checkpoint","sequenceNumber":null}`,
	`{"action":"checkpoint"}`,
	`{"action": "checkpoint", "sequenceNumber": "123", "subSequenceNumber": 4}`,
	`{"action": "checkpoint", "sequenceNumber": null, "subSequenceNumber": null}`,
	`{"action": "status", "responseFor": "processRecords"}`,
	`{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":-9223372036854775808,"error":null}`,
	`{"action":"initialize","shardId":"shardId-000000000000","sequenceNumber":null,"subSequenceNumber":null}`,
	"",
	"\r",
	"null",
	`{"action":"status","responseFor":"initialize"}}`,
	"{\"action\":\"status\",\"responseFor\":\"\xff\"}",
	`{"action":"checkpoint","sequenceNumber":1e400,"subSequenceNumber":1e2}`,
}

func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		switch m := Decode(line).(type) {
		case Status:
		case CheckpointRequest:
			// Whatever is accepted can be echoed as a valid reply line.
			reply := AppendCheckpoint(nil, m, IllegalArgumentException)
			if _, ok := Decode(reply[:len(reply)-1]).(CheckpointRequest); !ok {
				t.Errorf("the reply %s to %q does not decode as a checkpoint", reply, line)
			}
		case Garbage:
			if m.Reason == "" || m.Line != string(line) {
				t.Errorf("garbage %+v for %q", m, line)
			}
		default:
			t.Fatalf("Decode(%q) = %#v", line, m)
		}
		// Through a Reader, with a small limit, in one-byte reads.
		r := NewReader(iotest.OneByteReader(strings.NewReader(string(line))), 64)
		for range len(line) + 2 {
			if _, err := r.Next(); err != nil {
				return
			}
		}
		t.Errorf("Reader did not stop on %q", line)
	})
}
