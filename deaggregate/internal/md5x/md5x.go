// Package md5x computes the MD5 digests of several independent messages at
// once. On amd64 CPUs with AVX2 it hashes one message per 32-bit SIMD lane,
// which turns MD5's single long dependency chain into eight (Sum8) or sixteen
// (Sum16) chains that run side by side on one core; elsewhere it calls
// crypto/md5 once per message.
//
// MD5 is used here as a checksum (the KPL aggregation format carries one),
// not for security.
//
// # Why not github.com/minio/md5-simd
//
// md5-simd (v1.1.2) also hashes messages in 8 or 16 SIMD lanes (AVX2,
// AVX-512), but it is built for long streams: every Hasher sends its blocks
// over channels to a Server goroutine, which copies them into its own
// buffers, gathers lanes from whichever Hashers have data, and hashes each
// message's padded end with scalar code. Measured inside deaggregate.Append
// on pages of 1000 aggregates (BenchmarkMD5 in the bench module: md5-simd's
// digests from one process-wide Server and reused Hashers, a window's 16
// messages written before their sums are read), it was 1.9 to 4 times
// slower than this package, for the same allocations:
//
//	aggregates of          md5x      md5-simd   ratio   allocs/op (md5x, md5-simd)
//	10 × 100 B records     1.24 ms   3.90 ms    3.15    1000, 1001
//	100 × 100 B records    10.5 ms   19.5 ms    1.85    1000, 1001
//	1 × 1 KiB record       0.57 ms   2.27 ms    4.00    1000, 1001
//	4 × 1 KiB records      2.93 ms   6.01 ms    2.05    1000, 1001
//
// (benchstat medians of 10 runs, all p = 0.000, from
// `BENCH=MD5 COUNT=10 bench/run.sh`, go1.26.8, on 2 vCPUs of an AMD EPYC of
// family 25 model 17 (Zen 4) with AVX2 and AVX-512, so md5-simd ran its
// 16-lane AVX-512 code; the machine was shared with other jobs, hence
// spreads of 10 to 40 %.) A Server per Append call, which would leave no
// goroutine behind, costs 1.6 MB and 69 allocations more per call and was
// 1.9 to 6.4 times slower than md5x; reading a window's 16 sums on 16
// goroutines was slower than reading them in turn (in a single run).
//
// Beside speed, md5-simd would cost deaggregate a design rule: to be
// usable its Server must be shared, so library code would start a goroutine
// that runs for the life of the process and is never stopped. And its
// Hashers must be pooled rather than closed: in v1.1.2 a closed Hasher stays
// registered with its Server (about 300 B each), and the Server scans every
// registered Hasher on each round, so creating one per message slows the
// Server down without bound.
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
