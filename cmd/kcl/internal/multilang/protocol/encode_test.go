package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

func TestAppendGolden(t *testing.T) {
	arrival := time.UnixMilli(1733500000123)
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{
			name: "initialize at a checkpoint sends its sequence and sub-sequence numbers",
			got:  AppendInitialize(nil, Initialize{ShardID: "shardId-000000000001", SequenceNumber: ptr("49590338271490256608559692538361571095921575989136588898"), SubSequenceNumber: ptr[uint64](3)}),
			want: `{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":3}` + "\n",
		},
		{
			name: "initialize at a sentinel sends it as the sequence number",
			got:  AppendInitialize(nil, Initialize{ShardID: "shardId-000000000000", SequenceNumber: ptr("TRIM_HORIZON"), SubSequenceNumber: ptr[uint64](0)}),
			want: `{"action":"initialize","shardId":"shardId-000000000000","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}` + "\n",
		},
		{
			name: "initialize without a checkpoint sends nulls",
			got:  AppendInitialize(nil, Initialize{ShardID: "shardId-000000000000"}),
			want: `{"action":"initialize","shardId":"shardId-000000000000","sequenceNumber":null,"subSequenceNumber":null}` + "\n",
		},
		{
			name: "processRecords sends each record with base64 data, its numbers, arrival in epoch ms and action record",
			got: AppendProcessRecords(nil, []Record{
				{Data: []byte("hello"), PartitionKey: "pk-1", SequenceNumber: "495903382714902566085596925383615710959215759891365888", ArrivalTime: arrival},
				{Data: []byte{0xff, 0x00}, PartitionKey: "agg", SequenceNumber: "495903382714902566085596925383615710959215759891365889", SubSequenceNumber: 2, ArrivalTime: arrival},
			}, ptr[int64](1500)),
			want: `{"action":"processRecords","records":[` +
				`{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"495903382714902566085596925383615710959215759891365888","subSequenceNumber":0,"approximateArrivalTimestamp":1733500000123,"action":"record"},` +
				`{"data":"/wA=","partitionKey":"agg","sequenceNumber":"495903382714902566085596925383615710959215759891365889","subSequenceNumber":2,"approximateArrivalTimestamp":1733500000123,"action":"record"}` +
				`],"millisBehindLatest":1500}` + "\n",
		},
		{
			name: "processRecords sends a zero arrival time and an unknown lag as null",
			got:  AppendProcessRecords(nil, []Record{{Data: nil, PartitionKey: "", SequenceNumber: "1"}}, nil),
			want: `{"action":"processRecords","records":[{"data":"","partitionKey":"","sequenceNumber":"1","subSequenceNumber":0,"approximateArrivalTimestamp":null,"action":"record"}],"millisBehindLatest":null}` + "\n",
		},
		{
			name: "processRecords with no records sends an empty array",
			got:  AppendProcessRecords(nil, nil, ptr[int64](0)),
			want: `{"action":"processRecords","records":[],"millisBehindLatest":0}` + "\n",
		},
		{
			name: "processRecords escapes a partition key as encoding/json does",
			got:  AppendProcessRecords(nil, []Record{{PartitionKey: "a\"b\\c\nd\x01\xffé\u2028<&>", SequenceNumber: "7"}}, nil),
			want: `{"action":"processRecords","records":[{"data":"","partitionKey":"a\"b\\c\nd\u0001\ufffdé\u2028<&>","sequenceNumber":"7","subSequenceNumber":0,"approximateArrivalTimestamp":null,"action":"record"}],"millisBehindLatest":null}` + "\n",
		},
		{
			name: "leaseLost has no fields",
			got:  AppendLeaseLost(nil),
			want: `{"action":"leaseLost"}` + "\n",
		},
		{
			name: "shardEnded has no fields",
			got:  AppendShardEnded(nil),
			want: `{"action":"shardEnded"}` + "\n",
		},
		{
			name: "shutdownRequested has no fields",
			got:  AppendShutdownRequested(nil),
			want: `{"action":"shutdownRequested"}` + "\n",
		},
		{
			name: "a successful checkpoint reply echoes both numbers and sends a null error",
			got:  AppendCheckpoint(nil, CheckpointRequest{SequenceNumber: ptr("123"), SubSequenceNumber: ptr[int64](4)}, ""),
			want: `{"action":"checkpoint","sequenceNumber":"123","subSequenceNumber":4,"error":null}` + "\n",
		},
		{
			name: "a checkpoint reply to a request without numbers sends nulls",
			got:  AppendCheckpoint(nil, CheckpointRequest{}, ""),
			want: `{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}` + "\n",
		},
		{
			name: "a failed checkpoint reply echoes a negative sub-sequence number and names the exception",
			got:  AppendCheckpoint(nil, CheckpointRequest{SequenceNumber: ptr("123"), SubSequenceNumber: ptr[int64](-1)}, IllegalArgumentException),
			want: `{"action":"checkpoint","sequenceNumber":"123","subSequenceNumber":-1,"error":"IllegalArgumentException"}` + "\n",
		},
		{
			name: "a checkpoint reply during initialize is InvalidStateException",
			got:  AppendCheckpoint(nil, CheckpointRequest{SequenceNumber: ptr("9")}, InvalidStateException),
			want: `{"action":"checkpoint","sequenceNumber":"9","subSequenceNumber":null,"error":"InvalidStateException"}` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Errorf("got  %s\nwant %s", tt.got, tt.want)
			}
			if !json.Valid(tt.got) {
				t.Errorf("not valid JSON: %s", tt.got)
			}
		})
	}
}

func TestAppendAppendsToDst(t *testing.T) {
	dst := []byte("prefix")
	got := AppendLeaseLost(dst)
	if want := "prefix{\"action\":\"leaseLost\"}\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// jsonString is what encoding/json writes for s with HTML escaping off.
func jsonString(t testing.TB, s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	var all strings.Builder
	for b := range 256 {
		all.WriteByte(byte(b))
	}
	for _, s := range []string{
		"", "plain", `"`, `\`, "\x00\x1f\x7f", "\b\f\n\r\t", "\u2028\u2029", "日本語", "\xff\xfe", "a\xc3", "\xed\xa0\x80",
		"\U0001F600", "<script>&", all.String(),
	} {
		if got, want := string(appendString(nil, s)), jsonString(t, s); got != want {
			t.Errorf("appendString(%q) = %s, encoding/json writes %s", s, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "pk", "a\"\\\n\x00\xff\u2028é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(appendString(nil, s)), jsonString(t, s); got != want {
			t.Errorf("appendString(%q) = %s, encoding/json writes %s", s, got, want)
		}
	})
}

// TestProcessRecordsRoundTrip decodes the message with encoding/json, as a
// client does, and finds every record as it was sent.
func TestProcessRecordsRoundTrip(t *testing.T) {
	recs := []Record{
		{Data: bytes.Repeat([]byte{0, 1, 2, 0xff}, 100), PartitionKey: "ключ\t\"q\"", SequenceNumber: "1", SubSequenceNumber: 0, ArrivalTime: time.UnixMilli(1)},
		{Data: []byte("x"), PartitionKey: "k", SequenceNumber: "2", SubSequenceNumber: 18446744073709551615},
	}
	line := AppendProcessRecords(nil, recs, ptr[int64](-5))
	if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
		t.Fatalf("not one line: %q", line)
	}
	var msg struct {
		Action  string `json:"action"`
		Records []struct {
			Data         string  `json:"data"`
			PartitionKey string  `json:"partitionKey"`
			Seq          string  `json:"sequenceNumber"`
			SubSeq       uint64  `json:"subSequenceNumber"`
			Arrival      *int64  `json:"approximateArrivalTimestamp"`
			Action       *string `json:"action"`
		} `json:"records"`
		Behind *int64 `json:"millisBehindLatest"`
	}
	if err := json.Unmarshal(line, &msg); err != nil {
		t.Fatal(err)
	}
	if msg.Action != "processRecords" || msg.Behind == nil || *msg.Behind != -5 || len(msg.Records) != len(recs) {
		t.Fatalf("got %+v", msg)
	}
	for i, r := range msg.Records {
		data, err := base64.StdEncoding.DecodeString(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		want := recs[i]
		if !bytes.Equal(data, want.Data) || r.PartitionKey != want.PartitionKey || r.Seq != want.SequenceNumber || r.SubSeq != want.SubSequenceNumber || r.Action == nil || *r.Action != "record" {
			t.Errorf("record %d: got %+v, want %+v", i, r, want)
		}
		if want.ArrivalTime.IsZero() != (r.Arrival == nil) || r.Arrival != nil && *r.Arrival != want.ArrivalTime.UnixMilli() {
			t.Errorf("record %d: arrival %v, want %v", i, r.Arrival, want.ArrivalTime)
		}
	}
}
