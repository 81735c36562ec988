package md5x

import (
	"crypto/md5"
	"fmt"
	"math/rand/v2"
	"testing"
)

// forEachPath runs f once with the fallback and, where the CPU has AVX2,
// once more with the assembly.
func forEachPath(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	have := useSIMD
	t.Cleanup(func() { useSIMD = have })
	paths := []struct {
		name string
		simd bool
	}{{"crypto-md5", false}}
	if have {
		paths = append(paths, struct {
			name string
			simd bool
		}{"avx2", true})
	}
	for _, p := range paths {
		useSIMD = p.simd
		t.Run(p.name, f)
	}
	useSIMD = have
}

// randomBytes returns n bytes from a generator seeded with seed.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x6d643578))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// pool is shared message material; lanes take slices at different offsets
// so that they differ in content and alignment.
var pool = randomBytes(1, 1<<16)

func msg(lane, n int) []byte {
	off := (lane*1031 + n*7) % (len(pool) - n)
	return pool[off : off+n : off+n]
}

var sentinel = [Size]byte{0xde, 0xad, 0xbe, 0xef}

// check8 runs Sum8 on msgs[:n] and compares every lane with crypto/md5. It
// also checks that out[n:] is left alone.
func check8(t *testing.T, msgs *[8][]byte, n int) {
	t.Helper()
	var out [8][Size]byte
	for i := range out {
		out[i] = sentinel
	}
	Sum8(&out, msgs, n)
	for i := range out {
		want := sentinel
		if i < n {
			want = md5.Sum(msgs[i])
		}
		if out[i] != want {
			t.Fatalf("Sum8 with n=%d, lengths %v: lane %d = %x, want %x", n, lengths(msgs[:n]), i, out[i], want)
		}
	}
}

func check16(t *testing.T, msgs *[16][]byte, n int) {
	t.Helper()
	var out [16][Size]byte
	for i := range out {
		out[i] = sentinel
	}
	Sum16(&out, msgs, n)
	for i := range out {
		want := sentinel
		if i < n {
			want = md5.Sum(msgs[i])
		}
		if out[i] != want {
			t.Fatalf("Sum16 with n=%d, lengths %v: lane %d = %x, want %x", n, lengths(msgs[:n]), i, out[i], want)
		}
	}
}

func lengths(msgs [][]byte) []int {
	l := make([]int, len(msgs))
	for i, m := range msgs {
		l[i] = len(m)
	}
	return l
}

// patterns give lane i's length for a base length l; they mix equal
// lengths, lengths that cross block and padding boundaries in different
// lanes, and empty lanes.
var patterns = []struct {
	name string
	len  func(l, i int) int
}{
	{"all lanes the same length", func(l, _ int) int { return l }},
	{"lane i one byte longer than lane i-1", func(l, i int) int { return l + i }},
	{"lane i nine bytes shorter than lane i-1", func(l, i int) int { return max(l-9*i, 0) }},
	{"lane i 61 bytes longer than lane i-1", func(l, i int) int { return l + 61*i }},
	{"every other lane empty", func(l, i int) int { return l * (i % 2) }},
	{"only the last lane non-empty", func(l, i int) int {
		if i == 7 || i == 15 {
			return l
		}
		return 0
	}},
	{"lengths scattered around l", func(l, i int) int { return (l * (i + 3)) % 301 }},
}

func TestSum8MatchesCryptoMD5ForAllShortLengths(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		for _, p := range patterns {
			t.Run(p.name, func(t *testing.T) {
				for l := 0; l <= 300; l++ {
					var msgs [8][]byte
					for i := range msgs {
						msgs[i] = msg(i, p.len(l, i))
					}
					for n := 0; n <= 8; n++ {
						check8(t, &msgs, n)
					}
				}
			})
		}
	})
}

func TestSum16MatchesCryptoMD5ForAllShortLengths(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		for _, p := range patterns {
			t.Run(p.name, func(t *testing.T) {
				for l := 0; l <= 300; l++ {
					var msgs [16][]byte
					for i := range msgs {
						msgs[i] = msg(i, p.len(l, i))
					}
					for _, n := range []int{0, 1, 2, 7, 8, 9, 12, 15, 16} {
						check16(t, &msgs, n)
					}
				}
			})
		}
	})
}

func TestSumMatchesCryptoMD5ForLargeMessages(t *testing.T) {
	big := randomBytes(2, 1<<20+400)
	cases := []struct {
		name string
		lens []int
	}{
		{"eight 1 MiB messages", []int{1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20}},
		{"1 MiB messages whose tails differ", []int{1 << 20, 1<<20 + 1, 1<<20 + 55, 1<<20 + 56, 1<<20 + 63, 1<<20 + 64, 1<<20 - 1, 1<<20 + 119}},
		{"one 1 MiB message among short ones", []int{3, 1 << 20, 0, 64, 1200, 55, 56, 1}},
		{"a 1 MiB message and an empty one", []int{1 << 20, 0}},
		{"large and medium messages mixed", []int{1 << 20, 50_000, 1 << 19, 4096, 1<<20 - 64, 1 << 16, 12345, 1 << 18}},
	}
	forEachPath(t, func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var m8 [8][]byte
				var m16 [16][]byte
				for i, l := range c.lens {
					m8[i] = big[i : i+l]
					m16[i] = m8[i]
					m16[15-i] = big[200-i : 200-i+l]
				}
				check8(t, &m8, len(c.lens))
				check16(t, &m16, 16)
			})
		}
	})
}

func TestSumDoesNotAllocate(t *testing.T) {
	var m8 [8][]byte
	var m16 [16][]byte
	for i := range m16 {
		m16[i] = msg(i, 1000+i*10)
	}
	copy(m8[:], m16[:])
	var o8 [8][Size]byte
	var o16 [16][Size]byte
	forEachPath(t, func(t *testing.T) {
		for _, n := range []int{1, 5, 8} {
			if a := testing.AllocsPerRun(100, func() { Sum8(&o8, &m8, n) }); a != 0 {
				t.Errorf("Sum8 with n=%d: %v allocations per call, want 0", n, a)
			}
		}
		for _, n := range []int{3, 8, 9, 16} {
			if a := testing.AllocsPerRun(100, func() { Sum16(&o16, &m16, n) }); a != 0 {
				t.Errorf("Sum16 with n=%d: %v allocations per call, want 0", n, a)
			}
		}
	})
}

func TestSumPanicsOnOutOfRangeN(t *testing.T) {
	var m8 [8][]byte
	var o8 [8][Size]byte
	var m16 [16][]byte
	var o16 [16][Size]byte
	calls := map[string]func(){
		"Sum8 with n=-1":  func() { Sum8(&o8, &m8, -1) },
		"Sum8 with n=9":   func() { Sum8(&o8, &m8, 9) },
		"Sum16 with n=-1": func() { Sum16(&o16, &m16, -1) },
		"Sum16 with n=17": func() { Sum16(&o16, &m16, 17) },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			call()
		})
	}
}

func ExampleSum8() {
	msgs := [8][]byte{[]byte("a"), []byte("bc"), []byte("")}
	var sums [8][Size]byte
	Sum8(&sums, &msgs, 3)
	for _, s := range sums[:3] {
		fmt.Printf("%x\n", s)
	}
	// Output:
	// 0cc175b9c0f1b6a831c399e269772661
	// 5360af35bde9ebd8f01f492dc059593c
	// d41d8cd98f00b204e9800998ecf8427e
}
