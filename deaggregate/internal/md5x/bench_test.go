package md5x

import (
	"crypto/md5"
	"fmt"
	"testing"
)

// benchSizes are the batches measured: a KPL aggregate of ten 100-byte user
// records with their keys is about 1.2 KB, and lanes of a real batch differ
// in length, so the 1.2 KB messages span 18 to 20 blocks.
var benchSizes = []struct {
	name string
	len  func(lane int) int
}{
	{"100B", func(int) int { return 100 }},
	{"1.2KB", func(lane int) int { return 1150 + 17*lane%136 }},
	{"50KB", func(lane int) int { return 50_000 + 100*lane }},
	{"1.2KB-and-one-50KB", func(lane int) int {
		if lane == 3 {
			return 50_000
		}
		return 1150 + 17*lane%136
	}},
}

func benchMessages(n int, size func(int) int) (msgs [16][]byte, total int64) {
	for i := range n {
		msgs[i] = randomBytes(uint64(i), size(i))
		total += int64(len(msgs[i]))
	}
	return msgs, total
}

// BenchmarkSum compares, per batch size, crypto/md5 called once per
// message with Sum8 (8 messages) and Sum16 (16 messages), all in bytes
// hashed per second.
func BenchmarkSum(b *testing.B) {
	for _, size := range benchSizes {
		m16, total16 := benchMessages(16, size.len)
		m8 := (*[8][]byte)(m16[:8])
		_, total8 := benchMessages(8, func(i int) int { return len(m16[i]) })
		b.Run(size.name+"/crypto-md5-x8", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(total8)
			var out [8][Size]byte
			for b.Loop() {
				for i := range m8 {
					out[i] = md5.Sum(m8[i])
				}
			}
		})
		b.Run(size.name+"/Sum8", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(total8)
			var out [8][Size]byte
			for b.Loop() {
				Sum8(&out, m8, 8)
			}
		})
		b.Run(size.name+"/Sum16", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(total16)
			var out [16][Size]byte
			for b.Loop() {
				Sum16(&out, &m16, 16)
			}
		})
	}
}

// BenchmarkSum8Lanes shows what a partly filled batch costs: Sum8 with n
// messages of about 1.2 KB against n calls of crypto/md5.
func BenchmarkSum8Lanes(b *testing.B) {
	m16, _ := benchMessages(8, benchSizes[1].len)
	m8 := (*[8][]byte)(m16[:8])
	for n := 1; n <= 8; n++ {
		var total int64
		for _, m := range m8[:n] {
			total += int64(len(m))
		}
		b.Run(fmt.Sprintf("n=%d/crypto-md5", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(total)
			var out [8][Size]byte
			for b.Loop() {
				for i := range n {
					out[i] = md5.Sum(m8[i])
				}
			}
		})
		b.Run(fmt.Sprintf("n=%d/Sum8", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(total)
			var out [8][Size]byte
			for b.Loop() {
				Sum8(&out, m8, n)
			}
		})
	}
}
