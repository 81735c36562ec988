//go:build amd64 && !purego

package md5x

// Costs, in tenths of the time crypto/md5 takes for one 64-byte block, as
// measured on AMD EPYC (Zen 3): a block step of block8 (eight lanes) and of
// block16 (sixteen lanes), and the fixed cost of a SIMD call (building the
// padded tails, transposing the state back).
const (
	costScalar = 10
	costStep8  = 16
	costStep16 = 24
	costCall   = 13
)

// plan decides which messages to hash with crypto/md5 rather than in SIMD
// lanes and returns them as the bit set skip, with the number of messages
// left for the lanes (0 or at least 2). A batch in lanes costs as many
// block steps as its longest message has blocks, so a message much longer
// than the others is cheaper on its own: plan moves the longest messages
// out for as long as that lowers the estimated cost. A single message, and
// any too long for a lane, always goes to crypto/md5.
func plan(msgs [][]byte) (skip uint16, lanes int) {
	var lens [16]int
	for i, m := range msgs {
		lens[i] = len(m)
	}
	return planLengths(lens[:len(msgs)])
}

// planLengths is plan for messages of the given lengths.
func planLengths(lens []int) (skip uint16, lanes int) {
	// Order the candidates for lanes by block count, longest first.
	var blocks, order [16]int
	c := 0
	for i, l := range lens {
		if l > maxLaneLen {
			skip |= 1 << i
			continue
		}
		blocks[i] = (l+8)/blockSize + 1
		j := c
		for ; j > 0 && blocks[order[j-1]] < blocks[i]; j-- {
			order[j] = order[j-1]
		}
		order[j] = i
		c++
	}
	// Moving the k longest out costs their blocks; the others then cost a
	// block step for each block of the longest of them. At least two must
	// be left for the lanes to pay off.
	bestK, best, moved := c, 0, 0
	for _, i := range order[:c] {
		best += costScalar * blocks[i]
	}
	for k := 0; k+2 <= c; k++ {
		step := costStep8
		if c-k > 8 {
			step = costStep16
		}
		if cost := moved + costCall + step*blocks[order[k]]; cost < best {
			best, bestK = cost, k
		}
		moved += costScalar * blocks[order[k]]
	}
	for _, i := range order[:bestK] {
		skip |= 1 << i
	}
	return skip, c - bestK
}
