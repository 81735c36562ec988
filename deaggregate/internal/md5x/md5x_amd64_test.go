//go:build amd64 && !purego

package md5x

import (
	"crypto/md5"
	"testing"
	"unsafe"
)

func requireAVX2(t *testing.T) {
	t.Helper()
	if !useSIMD {
		t.Skip("the CPU has no AVX2")
	}
}

// TestLanesLayout pins the offsets md5x_amd64.s uses.
func TestLanesLayout(t *testing.T) {
	var ln lanes
	for _, c := range []struct {
		field     string
		got, want uintptr
	}{
		{"first", unsafe.Offsetof(ln.first), 0},
		{"ntail", unsafe.Offsetof(ln.ntail), 128},
		{"total", unsafe.Offsetof(ln.total), 256},
		{"tailBuf size", unsafe.Sizeof(tailBuf{}), 128},
		{"slice header size", unsafe.Sizeof([]byte(nil)), 24},
	} {
		if c.got != c.want {
			t.Errorf("%s at %d, md5x_amd64.s assumes %d", c.field, c.got, c.want)
		}
	}
}

// The kernels are tested directly, with every lane in SIMD, because plan
// sends some of the lanes of the public tests to crypto/md5.

func TestRun8MatchesCryptoMD5InEveryLane(t *testing.T) {
	requireAVX2(t)
	skips := []uint16{0, 0b1010_0101, 0b0111_1110}
	for _, p := range patterns {
		t.Run(p.name, func(t *testing.T) {
			for l := 0; l <= 300; l++ {
				var msgs [8][]byte
				for i := range msgs {
					msgs[i] = msg(i, p.len(l, i))
				}
				for n := 2; n <= 8; n++ {
					for _, skip := range skips {
						var out [8][Size]byte
						run8(&out, &msgs, n, skip)
						for i := range n {
							if skip&(1<<i) == 0 && out[i] != md5.Sum(msgs[i]) {
								t.Fatalf("n=%d, skip=%b, lengths %v: lane %d = %x, want %x", n, skip, lengths(msgs[:n]), i, out[i], md5.Sum(msgs[i]))
							}
						}
					}
				}
			}
		})
	}
}

func TestRun16MatchesCryptoMD5InEveryLane(t *testing.T) {
	requireAVX2(t)
	skips := []uint16{0, 0b1010_0101_1100_0011, 0b0000_0000_1111_1110}
	for _, p := range patterns {
		t.Run(p.name, func(t *testing.T) {
			for l := 0; l <= 300; l++ {
				var msgs [16][]byte
				for i := range msgs {
					msgs[i] = msg(i, p.len(l, i))
				}
				for _, n := range []int{9, 12, 16} {
					for _, skip := range skips {
						var out [16][Size]byte
						run16(&out, &msgs, n, skip)
						for i := range n {
							if skip&(1<<i) == 0 && out[i] != md5.Sum(msgs[i]) {
								t.Fatalf("n=%d, skip=%b, lengths %v: lane %d = %x, want %x", n, skip, lengths(msgs[:n]), i, out[i], md5.Sum(msgs[i]))
							}
						}
					}
				}
			}
		})
	}
}

func TestPlanLengths(t *testing.T) {
	sized := func(lens ...int) []int { return lens }
	cases := []struct {
		name      string
		lens      []int
		wantSkip  uint16
		wantLanes int
	}{
		{"an empty batch needs nothing", nil, 0, 0},
		{"a single message goes to crypto/md5", sized(1200), 0b1, 0},
		{"two short messages go to crypto/md5", sized(100, 100), 0b11, 0},
		{"two aggregate-sized messages go to the lanes", sized(1200, 1200), 0, 2},
		{"eight messages of similar length all go to the lanes", sized(1150, 1160, 1170, 1180, 1190, 1200, 1210, 1220), 0, 8},
		{"one 50 KB message among 1.2 KB ones goes to crypto/md5", sized(1200, 1200, 1200, 50_000, 1200, 1200, 1200, 1200), 0b1000, 7},
		{"two long messages of similar length share the lanes with short ones", sized(50_000, 100, 100, 100, 100, 100, 40_000, 100), 0, 8},
		{"two long messages of different lengths among short ones go to crypto/md5", sized(50_000, 100, 100, 100, 100, 100, 20_000, 100), 0b100_0001, 6},
		{"a long message with one short one goes wholly to crypto/md5", sized(50_000, 100), 0b11, 0},
		{"nine similar messages use sixteen lanes", sized(1200, 1200, 1200, 1200, 1200, 1200, 1200, 1200, 1200), 0, 9},
		{"a message too long for a lane goes to crypto/md5", sized(100, maxLaneLen+1, 100, 100), 0b10, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			skip, lanes := planLengths(c.lens)
			if skip != c.wantSkip || lanes != c.wantLanes {
				t.Errorf("planLengths(%v) = %b, %d; want %b, %d", c.lens, skip, lanes, c.wantSkip, c.wantLanes)
			}
		})
	}
}
