package protocol

import (
	"fmt"
	"io"

	"testing"
	"time"
)

// BenchmarkAppendProcessRecords encodes a batch of 100 records into a reused
// buffer, as the host does per child, and reports the cost per record.
func BenchmarkAppendProcessRecords(b *testing.B) {
	for _, size := range []int{100, 1024} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			recs := make([]Record, 100)
			arrival := time.UnixMilli(1733500000123)
			for i := range recs {
				data := make([]byte, size)
				for j := range data {
					data[j] = byte(i + j)
				}
				recs[i] = Record{
					Data:              data,
					PartitionKey:      fmt.Sprintf("partition-key-%d", i),
					SequenceNumber:    fmt.Sprintf("4959033827149025660855969253836157109592157598913658%04d", i),
					SubSequenceNumber: uint64(i % 3),
					ArrivalTime:       arrival,
				}
			}
			behind := int64(1500)
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				buf = AppendProcessRecords(buf[:0], recs, &behind)
			}
			b.SetBytes(int64(len(buf)))
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
		})
	}
}

// BenchmarkReaderNext reads the lines a child writes per batch: a checkpoint
// request and a status, each preceded by an empty line as clients write them.
func BenchmarkReaderNext(b *testing.B) {
	batch := "\n{\"action\":\"checkpoint\",\"sequenceNumber\":\"49590338271490256608559692538361571095921575989136588898\"}\n" +
		"\n{\"action\":\"status\",\"responseFor\":\"processRecords\"}\n"
	src := &repeat{s: batch}
	r := NewReader(src, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

type repeat struct {
	s   string
	off int
}

func (r *repeat) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.s[r.off:])
		n += c
		r.off = (r.off + c) % len(r.s)
	}
	return n, nil
}

var _ io.Reader = (*repeat)(nil)
