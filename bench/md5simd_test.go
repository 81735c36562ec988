//go:build md5simd

// This file compares the MD5 behind kcl's deaggregation (its own AVX2 code,
// deaggregate/internal/md5x) with github.com/minio/md5-simd. It needs the
// md5simd build tag and the overlay that adds Deaggregator.AppendMD5SIMD to
// package deaggregate, both of which run.sh passes:
//
//	go test -tags md5simd -overlay testdata/md5simd/overlay.json -run MD5 -bench MD5

package bench

import (
	"slices"
	"sync"
	"testing"

	md5simd "github.com/minio/md5-simd"

	"github.com/kclgo/kcl/deaggregate"
)

// md5Cases are the pages of BenchmarkMD5: the aggregate cases of
// BenchmarkDeaggregate, and aggregates of a few 1 KiB records.
var md5Cases = []benchCase{
	cases[0], // 10x100B
	cases[1], // 100x100B
	cases[2], // 1x1KiB
	{name: "4x1KiB", kinesisRecords: 1000, perAggregate: 4, size: 1024},
}

// sharedMD5SIMD is how deaggregate would have to hold md5-simd to avoid
// starting a Server per call: one per process, started on first use and
// never closed, its goroutine living as long as the program.
var sharedMD5SIMD = sync.OnceValue(func() *deaggregate.MD5SIMD {
	return deaggregate.NewMD5SIMD(md5simd.NewServer())
})

// TestMD5SIMDAgrees checks that Append with md5-simd's digests decodes every
// page as Append does, and that it still rejects an aggregate whose digest
// does not match, so that BenchmarkMD5 compares the same work.
func TestMD5SIMDAgrees(t *testing.T) {
	for _, c := range md5Cases {
		t.Run("case="+c.name, func(t *testing.T) {
			in := pageFor(t, c)
			want := deaggregate.Records(in.records)
			d, err := deaggregate.New()
			if err != nil {
				t.Fatal(err)
			}
			got := d.AppendMD5SIMD(sharedMD5SIMD(), nil, in.records)
			if !slices.EqualFunc(got, want, equalRecords) {
				t.Fatalf("AppendMD5SIMD gave %d records unlike Append's %d", len(got), len(want))
			}
			if s := d.Stats(); s.Malformed != 0 || s.Aggregates != uint64(c.kinesisRecords) {
				t.Fatalf("stats %+v, want %d aggregates and none malformed", s, c.kinesisRecords)
			}

			bad := slices.Clone(in.records[:3])
			bad[1].Data = slices.Clone(bad[1].Data)
			bad[1].Data[len(bad[1].Data)-1] ^= 1
			d.AppendMD5SIMD(sharedMD5SIMD(), nil, bad)
			if s := d.Stats(); s.Malformed != 1 {
				t.Fatalf("after a corrupted digest Malformed = %d, want 1", s.Malformed)
			}
		})
	}
}

func equalRecords(a, b deaggregate.Record) bool {
	return string(a.Data) == string(b.Data) && a.PartitionKey == b.PartitionKey &&
		a.ExplicitHashKey == b.ExplicitHashKey && a.SequenceNumber == b.SequenceNumber &&
		a.SubSequenceNumber == b.SubSequenceNumber && a.Aggregated == b.Aggregated
}

// BenchmarkMD5 decodes one page per iteration with deaggregate.Append into
// a reused slice, its digests computed by:
//
//   - impl=md5x: kcl's deaggregate/internal/md5x (Append itself).
//   - impl=md5simd: md5-simd through one process-wide Server and a free list
//     of Hashers (sharedMD5SIMD), the cheapest way deaggregate could use it.
//   - impl=md5simd-server-per-call: md5-simd through a Server started and
//     closed by each call, the way that leaves no goroutine behind.
//
// `benchstat -col /impl` gives md5-simd's cost as a ratio to md5x's.
func BenchmarkMD5(b *testing.B) {
	for _, c := range md5Cases {
		in := pageFor(b, c)
		b.Run("case="+c.name, func(b *testing.B) {
			d, err := deaggregate.New()
			if err != nil {
				b.Fatal(err)
			}
			var dst []deaggregate.Record
			b.Run("impl=md5x", func(b *testing.B) {
				measure(b, c, func() int {
					dst = d.Append(dst[:0], in.records)
					return len(dst)
				})
			})
			b.Run("impl=md5simd", func(b *testing.B) {
				m := sharedMD5SIMD()
				measure(b, c, func() int {
					dst = d.AppendMD5SIMD(m, dst[:0], in.records)
					return len(dst)
				})
			})
			b.Run("impl=md5simd-server-per-call", func(b *testing.B) {
				measure(b, c, func() int {
					m := deaggregate.NewMD5SIMD(md5simd.NewServer())
					dst = d.AppendMD5SIMD(m, dst[:0], in.records)
					m.Close()
					return len(dst)
				})
			})
		})
	}
}
