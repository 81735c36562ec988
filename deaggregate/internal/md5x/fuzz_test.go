package md5x

import (
	"crypto/md5"
	"encoding/binary"
	"testing"
)

// fuzzSpecLen is the number of leading fuzz bytes that place the lanes.
const fuzzSpecLen = 8 * 4

// fuzzLanes derives eight messages from data: lane i is the slice of
// data[fuzzSpecLen:] at the offset and with the length given by bytes
// 4i to 4i+3 (two little-endian uint16s, reduced to fit). Lanes may
// overlap and may be empty.
func fuzzLanes(data []byte) (msgs [8][]byte) {
	var spec [fuzzSpecLen]byte
	copy(spec[:], data)
	rest := data[min(len(data), fuzzSpecLen):]
	for i := range msgs {
		off := int(binary.LittleEndian.Uint16(spec[4*i:])) % (len(rest) + 1)
		n := int(binary.LittleEndian.Uint16(spec[4*i+2:])) % (len(rest) - off + 1)
		msgs[i] = rest[off : off+n : off+n]
	}
	return msgs
}

func FuzzSum8(f *testing.F) {
	f.Add(uint8(8), make([]byte, fuzzSpecLen+300))
	f.Add(uint8(3), []byte("short"))
	f.Fuzz(func(t *testing.T, n uint8, data []byte) {
		msgs := fuzzLanes(data)
		k := int(n % 9)
		var m16 [16][]byte
		copy(m16[:], msgs[:])
		for i := range 8 {
			m16[15-i] = msgs[i]
		}
		have := useSIMD
		defer func() { useSIMD = have }()
		for _, simd := range []bool{false, have} {
			useSIMD = simd
			var out [8][Size]byte
			Sum8(&out, &msgs, k)
			for i := range k {
				if want := md5.Sum(msgs[i]); out[i] != want {
					t.Fatalf("simd=%v: Sum8 lane %d of %d (lengths %v) = %x, want %x", simd, i, k, lengths(msgs[:k]), out[i], want)
				}
			}
			var out16 [16][Size]byte
			Sum16(&out16, &m16, 8+k)
			for i := range 8 + k {
				if want := md5.Sum(m16[i]); out16[i] != want {
					t.Fatalf("simd=%v: Sum16 lane %d of %d (lengths %v) = %x, want %x", simd, i, 8+k, lengths(m16[:8+k]), out16[i], want)
				}
			}
		}
	})
}
