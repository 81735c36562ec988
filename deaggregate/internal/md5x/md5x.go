// Package md5x computes the MD5 digests of several independent messages at
// once. On amd64 CPUs with AVX2 it hashes one message per 32-bit SIMD lane,
// which turns MD5's single long dependency chain into eight (Sum8) or sixteen
// (Sum16) chains that run side by side on one core; elsewhere it calls
// crypto/md5 once per message.
//
// MD5 is used here as a checksum (the KPL aggregation format carries one),
// not for security.
package md5x

import "crypto/md5"

// Size is the length of an MD5 digest in bytes.
const Size = md5.Size

// Sum8 writes into out[i] the MD5 digest of msgs[i] for i < n; out[n:] is
// left untouched. The messages may have any lengths, including zero, and
// need not be related. Sum8 uses AVX2 when the CPU has it and crypto/md5
// otherwise. It does not allocate, does not retain msgs and is safe to call
// from several goroutines at once. It panics if n is outside [0, 8], as
// slicing msgs[:n] would.
//
// The lanes advance together, so a batch costs about one SIMD block step
// per 64-byte block of its longest message whatever n is: batches of
// similar lengths make the best use of it. Sum8 hashes with crypto/md5
// instead the messages for which that is cheaper: a message on its own,
// two short ones, and messages much longer than the rest of the batch.
func Sum8(out *[8][Size]byte, msgs *[8][]byte, n int) {
	sum8(out, msgs, n)
}

// Sum16 is Sum8 for up to 16 messages: it writes into out[i] the MD5 digest
// of msgs[i] for i < n and panics if n is outside [0, 16]. With AVX2 it runs
// two groups of eight lanes interleaved, which keeps more of the CPU's
// vector units busy than one group can, so it hashes more bytes per second
// than Sum8 when it has more than eight messages; with n ≤ 8 it does what
// Sum8 does.
func Sum16(out *[16][Size]byte, msgs *[16][]byte, n int) {
	sum16(out, msgs, n)
}

// sumGeneric hashes each message on its own with crypto/md5.
func sumGeneric(out [][Size]byte, msgs [][]byte) {
	for i, m := range msgs {
		out[i] = md5.Sum(m)
	}
}
