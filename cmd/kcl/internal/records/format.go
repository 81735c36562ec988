package records

import (
	"encoding/base64"
	"encoding/json"
	"unicode/utf8"

	"github.com/kclgo/kcl/deaggregate"
)

// Record is one user record read by a [Tailer], with its shard.
type Record struct {
	Shard string
	deaggregate.Record
}

// JSONRecord is the --format json form of a Record: one object per line,
// with these field names, which scripts may rely on.
type JSONRecord struct {
	Shard           string `json:"shard"`
	Sequence        string `json:"sequence"`
	SubSequence     uint64 `json:"subSequence"`
	PartitionKey    string `json:"partitionKey"`
	ExplicitHashKey string `json:"explicitHashKey,omitempty"`
	// Arrival is the approximate arrival time, RFC 3339 in UTC with
	// milliseconds; "" when Kinesis gave none.
	Arrival    string `json:"arrival"`
	Aggregated bool   `json:"aggregated"`
	// Encoding is "text" when Data is the payload itself (valid UTF-8) and
	// "base64" when Data is its standard base64 encoding.
	Encoding string `json:"encoding"`
	Data     string `json:"data"`
}

// ToJSON returns r's JSON form.
func (r *Record) ToJSON() JSONRecord {
	j := JSONRecord{
		Shard:           r.Shard,
		Sequence:        r.SequenceNumber,
		SubSequence:     r.SubSequenceNumber,
		PartitionKey:    r.PartitionKey,
		ExplicitHashKey: r.ExplicitHashKey,
		Aggregated:      r.Aggregated,
	}
	if !r.ApproximateArrivalTimestamp.IsZero() {
		j.Arrival = r.ApproximateArrivalTimestamp.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	if utf8.Valid(r.Data) {
		j.Encoding, j.Data = "text", string(r.Data)
	} else {
		j.Encoding, j.Data = "base64", base64.StdEncoding.EncodeToString(r.Data)
	}
	return j
}

// AppendJSON appends r as one line of JSON.
func AppendJSON(b []byte, r *Record) []byte {
	out, _ := json.Marshal(r.ToJSON()) // strings, numbers and booleans only: cannot fail
	b = append(b, out...)
	return append(b, '\n')
}

// AppendRaw appends r's data, and a newline unless the data ends with one.
func AppendRaw(b []byte, r *Record) []byte {
	b = append(b, r.Data...)
	if len(r.Data) == 0 || r.Data[len(r.Data)-1] != '\n' {
		b = append(b, '\n')
	}
	return b
}
