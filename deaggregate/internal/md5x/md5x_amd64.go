//go:build amd64 && !purego

package md5x

import (
	"crypto/md5"
	"encoding/binary"

	"golang.org/x/sys/cpu"
)

// useSIMD selects the AVX2 code; tests turn it off to cover the fallback.
var useSIMD = cpu.X86.HasAVX2

const (
	blockSize = 64
	// maxTailBlocks is the most blocks the padded end of a message takes:
	// the last partial block plus the 0x80 marker and the 8-byte bit length
	// need a second block when the partial block holds 56 bytes or more.
	maxTailBlocks = 2
	// maxLaneLen bounds a message hashed in a SIMD lane: the assembly counts
	// blocks in signed 32-bit lanes. Longer messages, which no Kinesis record
	// comes near, are hashed with crypto/md5.
	maxLaneLen = (1<<31 - 1 - maxTailBlocks) * blockSize
)

// block8 runs steps 64-byte block steps of MD5 over lanes 0-7, as
// described by ln, updating st (st[j][i] is state word j of lane i) only
// for lanes whose total has not been reached. Lane i reads its message's
// full blocks from msgs[i] and its padded end from tails[i].
//
//go:noescape
func block8(st *[4][8]uint32, msgs *[8][]byte, tails *[8]tailBuf, ln *lanes, steps int)

// block16 is block8 for lanes 0-15, run as two interleaved groups of eight:
// st[g][j][i] is state word j of lane 8g+i.
//
//go:noescape
func block16(st *[2][4][8]uint32, msgs *[16][]byte, tails *[16]tailBuf, ln *lanes, steps int)

// lanes tells the assembly how many blocks each lane reads where. Lane i
// reads first[i] blocks from msgs[i], then ntail[i] blocks from tails[i]
// (its padded end), and then keeps rereading tails[i], so that it never
// reads out of bounds while longer lanes finish; total[i] is how many of
// those blocks count. If first[i] is 0, the lane starts at its tail.
// md5x_amd64.s depends on this layout. It holds no pointers so that
// neither msgs nor the stack buffers escape.
type lanes struct {
	first [16]int
	ntail [16]int
	total [16]uint32
}

// tailBuf holds the padded last one or two blocks of one message.
type tailBuf [maxTailBlocks * blockSize]byte

// prepare fills ln and tails for the lanes of msgs not in skip and
// returns the number of block steps the longest of them needs. Lanes in
// skip or past len(msgs) count no blocks and read a zero block. tails must
// be zeroed and at least as long as msgs.
func prepare(ln *lanes, tails []tailBuf, msgs [][]byte, skip uint16) (steps int) {
	for i := range tails {
		if i >= len(msgs) || skip&(1<<i) != 0 {
			ln.ntail[i] = 1
			continue
		}
		t := &tails[i]
		m := msgs[i]
		full := len(m) &^ (blockSize - 1)
		r := copy(t[:], m[full:])
		t[r] = 0x80
		nt := 1
		if r >= blockSize-8 {
			nt = 2
		}
		// MD5 ends with the message length in bits, modulo 2⁶⁴.
		binary.LittleEndian.PutUint64(t[nt*blockSize-8:], uint64(len(m))<<3)
		ln.first[i] = full / blockSize
		ln.ntail[i] = nt
		total := full/blockSize + nt
		ln.total[i] = uint32(total)
		steps = max(steps, total)
	}
	return steps
}

// initState is MD5's initial state.
var initState = [4]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}

func sum8(out *[8][Size]byte, msgs *[8][]byte, n int) {
	ms := msgs[:n]
	if !useSIMD {
		sumGeneric(out[:n], ms)
		return
	}
	skip, lanes := plan(ms)
	sumSkipped(out[:n], ms, skip)
	if lanes > 0 {
		run8(out, msgs, n, skip)
	}
}

func sum16(out *[16][Size]byte, msgs *[16][]byte, n int) {
	if n <= 8 {
		sum8((*[8][Size]byte)(out[:8]), (*[8][]byte)(msgs[:8]), n)
		return
	}
	ms := msgs[:n]
	if !useSIMD {
		sumGeneric(out[:n], ms)
		return
	}
	skip, lanes := plan(ms)
	sumSkipped(out[:n], ms, skip)
	switch {
	case lanes > 8:
		run16(out, msgs, n, skip)
	case lanes > 0:
		// Few enough lanes are left for one group: gather them.
		var (
			m8  [8][]byte
			o8  [8][Size]byte
			idx [8]int
		)
		k := 0
		for i := range ms {
			if skip&(1<<i) == 0 {
				m8[k], idx[k] = ms[i], i
				k++
			}
		}
		run8(&o8, &m8, k, 0)
		for j, i := range idx[:k] {
			out[i] = o8[j]
		}
	}
}

// sumSkipped hashes the messages in skip with crypto/md5.
func sumSkipped(out [][Size]byte, msgs [][]byte, skip uint16) {
	for i, m := range msgs {
		if skip&(1<<i) != 0 {
			out[i] = md5.Sum(m)
		}
	}
}

// run8 hashes msgs[:n], except those in skip, in one group of SIMD lanes.
func run8(out *[8][Size]byte, msgs *[8][]byte, n int, skip uint16) {
	var (
		ln    lanes
		tails [8]tailBuf
		st    [4][8]uint32
	)
	steps := prepare(&ln, tails[:], msgs[:n], skip)
	for j := range st {
		for i := range st[j] {
			st[j][i] = initState[j]
		}
	}
	block8(&st, msgs, &tails, &ln, steps)
	for i := range n {
		if skip&(1<<i) == 0 {
			for j := range st {
				binary.LittleEndian.PutUint32(out[i][4*j:], st[j][i])
			}
		}
	}
}

// run16 hashes msgs[:n], except those in skip, in two groups of SIMD lanes.
func run16(out *[16][Size]byte, msgs *[16][]byte, n int, skip uint16) {
	var (
		ln    lanes
		tails [16]tailBuf
		st    [2][4][8]uint32
	)
	steps := prepare(&ln, tails[:], msgs[:n], skip)
	for g := range st {
		for j := range st[g] {
			for i := range st[g][j] {
				st[g][j][i] = initState[j]
			}
		}
	}
	block16(&st, msgs, &tails, &ln, steps)
	for i := range n {
		if skip&(1<<i) == 0 {
			for j := range st[i/8] {
				binary.LittleEndian.PutUint32(out[i][4*j:], st[i/8][j][i%8])
			}
		}
	}
}
