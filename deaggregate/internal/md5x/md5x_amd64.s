//go:build amd64 && !purego

#include "textflag.h"

// Multi-buffer MD5 with AVX2: each 32-bit lane of a Y register holds the
// state of a different message, so one instruction advances eight messages.
// MD5 is a single dependency chain of about six instructions per step, so
// one group of eight lanes mostly waits on latency; block16 interleaves two
// independent groups to fill the gaps.
//
// Per block step, every lane's 64 bytes are loaded from its own pointer and
// transposed in registers (4x4 dword transposes in each 128-bit half, with
// lanes i and i+4 in the two halves), so that W[j] holds message word j of
// all eight lanes; the words are kept in a 32-byte-aligned scratch area in
// the frame and used as memory operands by the rounds. Lanes that have
// consumed all their blocks keep their state through a blend, and keep
// reading their (valid) padded tail; see type lanes in md5x_amd64.go.
//
// Both functions are ABI0 and use their frame (768 and 1728 bytes) only
// through DX; they are not NOSPLIT, so the assembler adds the stack check
// such frames need. R15 is left alone (it is clobbered by global accesses
// when dynamically linking); R14 and X15 may be clobbered in ABI0.
//
// Register use:
//	AX     round constants (kvec)
//	BX     *lanes
//	CX     block steps left
//	DX     scratch area (32-byte aligned, in the frame)
//	R8-R13, SI, DI  lane pointers while loading a block
//	R14    temporary
//	Y0-Y3  state a, b, c, d of group 0
//	Y4-Y7  block8: state at block start; block16: state of group 1
//	Y8, Y9 step temporaries of group 0 (and transposition)
//	Y10    all ones
//	Y11, Y12  step temporaries of group 1 (and transposition)
//	Y13, Y14  transposition and mask temporaries
//	Y15    byte shuffle that rotates each dword by 16

// Offsets in type lanes.
#define LN_FIRST 0
#define LN_NTAIL 128
#define LN_TOTAL 256

// Round constants K[i] = floor(abs(sin(i+1)) * 2^32), each repeated in all
// eight lanes of a 32-byte vector.
#define KVEC(off, k) \
	DATA kvec<>+(off+0)(SB)/4, k; \
	DATA kvec<>+(off+4)(SB)/4, k; \
	DATA kvec<>+(off+8)(SB)/4, k; \
	DATA kvec<>+(off+12)(SB)/4, k; \
	DATA kvec<>+(off+16)(SB)/4, k; \
	DATA kvec<>+(off+20)(SB)/4, k; \
	DATA kvec<>+(off+24)(SB)/4, k; \
	DATA kvec<>+(off+28)(SB)/4, k

KVEC(0, $0xd76aa478)
KVEC(32, $0xe8c7b756)
KVEC(64, $0x242070db)
KVEC(96, $0xc1bdceee)
KVEC(128, $0xf57c0faf)
KVEC(160, $0x4787c62a)
KVEC(192, $0xa8304613)
KVEC(224, $0xfd469501)
KVEC(256, $0x698098d8)
KVEC(288, $0x8b44f7af)
KVEC(320, $0xffff5bb1)
KVEC(352, $0x895cd7be)
KVEC(384, $0x6b901122)
KVEC(416, $0xfd987193)
KVEC(448, $0xa679438e)
KVEC(480, $0x49b40821)
KVEC(512, $0xf61e2562)
KVEC(544, $0xc040b340)
KVEC(576, $0x265e5a51)
KVEC(608, $0xe9b6c7aa)
KVEC(640, $0xd62f105d)
KVEC(672, $0x02441453)
KVEC(704, $0xd8a1e681)
KVEC(736, $0xe7d3fbc8)
KVEC(768, $0x21e1cde6)
KVEC(800, $0xc33707d6)
KVEC(832, $0xf4d50d87)
KVEC(864, $0x455a14ed)
KVEC(896, $0xa9e3e905)
KVEC(928, $0xfcefa3f8)
KVEC(960, $0x676f02d9)
KVEC(992, $0x8d2a4c8a)
KVEC(1024, $0xfffa3942)
KVEC(1056, $0x8771f681)
KVEC(1088, $0x6d9d6122)
KVEC(1120, $0xfde5380c)
KVEC(1152, $0xa4beea44)
KVEC(1184, $0x4bdecfa9)
KVEC(1216, $0xf6bb4b60)
KVEC(1248, $0xbebfbc70)
KVEC(1280, $0x289b7ec6)
KVEC(1312, $0xeaa127fa)
KVEC(1344, $0xd4ef3085)
KVEC(1376, $0x04881d05)
KVEC(1408, $0xd9d4d039)
KVEC(1440, $0xe6db99e5)
KVEC(1472, $0x1fa27cf8)
KVEC(1504, $0xc4ac5665)
KVEC(1536, $0xf4292244)
KVEC(1568, $0x432aff97)
KVEC(1600, $0xab9423a7)
KVEC(1632, $0xfc93a039)
KVEC(1664, $0x655b59c3)
KVEC(1696, $0x8f0ccc92)
KVEC(1728, $0xffeff47d)
KVEC(1760, $0x85845dd1)
KVEC(1792, $0x6fa87e4f)
KVEC(1824, $0xfe2ce6e0)
KVEC(1856, $0xa3014314)
KVEC(1888, $0x4e0811a1)
KVEC(1920, $0xf7537e82)
KVEC(1952, $0xbd3af235)
KVEC(1984, $0x2ad7d2bb)
KVEC(2016, $0xeb86d391)
GLOBL kvec<>(SB), RODATA|NOPTR, $2048

// VPSHUFB control that swaps the 16-bit halves of each dword: a rotation
// by 16 in one instruction instead of three.
DATA rot16<>+0(SB)/8, $0x0504070601000302
DATA rot16<>+8(SB)/8, $0x0d0c0f0e09080b0a
DATA rot16<>+16(SB)/8, $0x0504070601000302
DATA rot16<>+24(SB)/8, $0x0d0c0f0e09080b0a
GLOBL rot16<>(SB), RODATA|NOPTR, $32

// LOAD8 loads the pointers of lanes 8g to 8g+7 from the scratch area.
#define LOAD8(p) \
	MOVQ (p+0)(DX), R8; \
	MOVQ (p+8)(DX), R9; \
	MOVQ (p+16)(DX), R10; \
	MOVQ (p+24)(DX), R11; \
	MOVQ (p+32)(DX), R12; \
	MOVQ (p+40)(DX), R13; \
	MOVQ (p+48)(DX), SI; \
	MOVQ (p+56)(DX), DI

// TRANSPOSE4 loads bytes off to off+15 of the eight lanes' current blocks
// (message words off/4 to off/4+3) and stores them as four vectors, word
// by word, at w(DX).
#define TRANSPOSE4(off, w) \
	VMOVDQU     off(R8), X8; \
	VINSERTI128 $1, off(R12), Y8, Y8; \
	VMOVDQU     off(R9), X9; \
	VINSERTI128 $1, off(R13), Y9, Y9; \
	VMOVDQU     off(R10), X11; \
	VINSERTI128 $1, off(SI), Y11, Y11; \
	VMOVDQU     off(R11), X12; \
	VINSERTI128 $1, off(DI), Y12, Y12; \
	VPUNPCKLDQ  Y9, Y8, Y13; \
	VPUNPCKHDQ  Y9, Y8, Y14; \
	VPUNPCKLDQ  Y12, Y11, Y8; \
	VPUNPCKHDQ  Y12, Y11, Y9; \
	VPUNPCKLQDQ Y8, Y13, Y11; \
	VPUNPCKHQDQ Y8, Y13, Y12; \
	VMOVDQU     Y11, (w+0)(DX); \
	VMOVDQU     Y12, (w+32)(DX); \
	VPUNPCKLQDQ Y9, Y14, Y11; \
	VPUNPCKHQDQ Y9, Y14, Y12; \
	VMOVDQU     Y11, (w+64)(DX); \
	VMOVDQU     Y12, (w+96)(DX)

// TRANSPOSE16 stores the sixteen message words of the current blocks of
// the lanes in R8-R13, SI, DI at w(DX).
#define TRANSPOSE16(w) \
	TRANSPOSE4(0, w); \
	TRANSPOSE4(16, (w+128)); \
	TRANSPOSE4(32, (w+256)); \
	TRANSPOSE4(48, (w+384))

// ADVANCE moves lane i, whose pointer is in r, to its next block: the
// next 64 bytes, or its tail (pointer at t+8i(DX)) once its block counter
// at c+8i(DX) runs out, and stores the pointer at p+8i(DX).
#define ADVANCE(r, i, p, c, t) \
	ADDQ    $64, r; \
	DECQ    (c+8*i)(DX); \
	CMOVQEQ (t+8*i)(DX), r; \
	MOVQ    (LN_NTAIL+8*i)(BX), R14; \
	CMOVQNE (c+8*i)(DX), R14; \
	MOVQ    R14, (c+8*i)(DX); \
	MOVQ    r, (p+8*i)(DX)

// ADVANCE8 advances lanes 8g to 8g+7 (first is 8g).
#define ADVANCE8(first, p, c, t) \
	ADVANCE(R8, (first+0), p, c, t); \
	ADVANCE(R9, (first+1), p, c, t); \
	ADVANCE(R10, (first+2), p, c, t); \
	ADVANCE(R11, (first+3), p, c, t); \
	ADVANCE(R12, (first+4), p, c, t); \
	ADVANCE(R13, (first+5), p, c, t); \
	ADVANCE(SI, (first+6), p, c, t); \
	ADVANCE(DI, (first+7), p, c, t)

// START sets up lane i: its tail pointer at t+8i(DX), its first block's
// pointer at p+8i(DX) and its block counter at c+8i(DX). It starts in the
// message (SI = msgs) unless it has no full blocks, in which case it starts
// in the tail (DI = tails).
#define START(i, p, c, t) \
	MOVQ    (24*i)(SI), R8; \
	LEAQ    (128*i)(DI), R9; \
	MOVQ    R9, (t+8*i)(DX); \
	MOVQ    (LN_FIRST+8*i)(BX), R10; \
	TESTQ   R10, R10; \
	CMOVQEQ R9, R8; \
	CMOVQEQ (LN_NTAIL+8*i)(BX), R10; \
	MOVQ    R8, (p+8*i)(DX); \
	MOVQ    R10, (c+8*i)(DX)

#define START8(first, p, c, t) \
	START((first+0), p, c, t); \
	START((first+1), p, c, t); \
	START((first+2), p, c, t); \
	START((first+3), p, c, t); \
	START((first+4), p, c, t); \
	START((first+5), p, c, t); \
	START((first+6), p, c, t); \
	START((first+7), p, c, t)

// ROTATE sets a = a<<<s + b; t is clobbered.
#define ROTATE(a, b, s, t) \
	VPSLLD $s, a, t; \
	VPSRLD $(32-s), a, a; \
	VPOR   t, a, a; \
	VPADDD b, a, a

// One MD5 step of one group: a = b + (a + f(b, c, d) + K[k] + W[g]) <<< s,
// with W at w(DX) and t0, t1 clobbered. The caller rotates the roles of
// the four state registers from step to step instead of moving values. The terms not involving b, the newest value, come first
// so that they are off the critical path.
#define STEPF1(a, b, c, d, k, g, s, w, t0, t1) \
	VPADDD (k*32)(AX), a, a; \
	VPADDD (w+g*32)(DX), a, a; \
	VPXOR  c, d, t0; \
	VPAND  b, t0, t0; \
	VPXOR  d, t0, t0; \
	VPADDD t0, a, a; \
	ROTATE(a, b, s, t1)

// G = (b & d) | (c &^ d); the two terms have no common bits, so they are
// added separately and only b & d waits for b.
#define STEPG1(a, b, c, d, k, g, s, w, t0, t1) \
	VPADDD (k*32)(AX), a, a; \
	VPADDD (w+g*32)(DX), a, a; \
	VPANDN c, d, t0; \
	VPADDD t0, a, a; \
	VPAND  b, d, t1; \
	VPADDD t1, a, a; \
	ROTATE(a, b, s, t1)

#define STEPH1(a, b, c, d, k, g, s, w, t0, t1) \
	VPADDD (k*32)(AX), a, a; \
	VPADDD (w+g*32)(DX), a, a; \
	VPXOR  c, d, t0; \
	VPXOR  b, t0, t0; \
	VPADDD t0, a, a; \
	ROTATE(a, b, s, t1)

// I = c ^ (b | ^d), with Y10 all ones.
// STEPH16 is STEPH1 for a rotation by 16 (Y15 holds the shuffle).
#define STEPH161(a, b, c, d, k, g, w, t0) \
	VPADDD  (k*32)(AX), a, a; \
	VPADDD  (w+g*32)(DX), a, a; \
	VPXOR   c, d, t0; \
	VPXOR   b, t0, t0; \
	VPADDD  t0, a, a; \
	VPSHUFB Y15, a, a; \
	VPADDD  b, a, a

#define STEPI1(a, b, c, d, k, g, s, w, t0, t1) \
	VPADDD (k*32)(AX), a, a; \
	VPADDD (w+g*32)(DX), a, a; \
	VPXOR  Y10, d, t0; \
	VPOR   b, t0, t0; \
	VPXOR  c, t0, t0; \
	VPADDD t0, a, a; \
	ROTATE(a, b, s, t1)

#define STEPF(a, b, c, d, k, g, s) STEPF1(a, b, c, d, k, g, s, 0, Y8, Y9)
#define STEPG(a, b, c, d, k, g, s) STEPG1(a, b, c, d, k, g, s, 0, Y8, Y9)
#define STEPH(a, b, c, d, k, g, s) STEPH1(a, b, c, d, k, g, s, 0, Y8, Y9)
#define STEPI(a, b, c, d, k, g, s) STEPI1(a, b, c, d, k, g, s, 0, Y8, Y9)
#define STEPH16(a, b, c, d, k, g) STEPH161(a, b, c, d, k, g, 0, Y8)

// Scratch layout of block8, from DX: the transposed message words, the
// block step as a vector (for the finished-lane mask), and per lane the
// current block pointer, the blocks left before the next switch to the
// tail, and the tail pointer.
#define S8_W 0
#define S8_STEP 512
#define S8_P 544
#define S8_C 608
#define S8_T 672
#define S8_SIZE 736

// func block8(st *[4][8]uint32, msgs *[8][]byte, tails *[8]tailBuf, ln *lanes, steps int)
// The frame is the scratch area plus 32 bytes to align it: 768 = S8_SIZE+32.
TEXT ·block8(SB), 0, $768-40
	MOVQ steps+32(FP), CX
	TESTQ CX, CX
	JZ   done8
	MOVQ ln+24(FP), BX
	MOVQ st+0(FP), DI
	LEAQ kvec<>(SB), AX
	LEAQ 31(SP), DX
	ANDQ $~31, DX

	VMOVDQU 0(DI), Y0
	VMOVDQU 32(DI), Y1
	VMOVDQU 64(DI), Y2
	VMOVDQU 96(DI), Y3
	VPCMPEQD Y10, Y10, Y10
	VMOVDQU rot16<>(SB), Y15
	VPXOR   Y13, Y13, Y13
	VMOVDQU Y13, S8_STEP(DX)

	MOVQ msgs+8(FP), SI
	MOVQ tails+16(FP), DI
	START8(0, S8_P, S8_C, S8_T)

loop8:
	LOAD8(S8_P)
	TRANSPOSE16(S8_W)
	ADVANCE8(0, S8_P, S8_C, S8_T)

	VMOVDQU Y0, Y4
	VMOVDQU Y1, Y5
	VMOVDQU Y2, Y6
	VMOVDQU Y3, Y7

	STEPF(Y0, Y1, Y2, Y3, 0, 0, 7)
	STEPF(Y3, Y0, Y1, Y2, 1, 1, 12)
	STEPF(Y2, Y3, Y0, Y1, 2, 2, 17)
	STEPF(Y1, Y2, Y3, Y0, 3, 3, 22)
	STEPF(Y0, Y1, Y2, Y3, 4, 4, 7)
	STEPF(Y3, Y0, Y1, Y2, 5, 5, 12)
	STEPF(Y2, Y3, Y0, Y1, 6, 6, 17)
	STEPF(Y1, Y2, Y3, Y0, 7, 7, 22)
	STEPF(Y0, Y1, Y2, Y3, 8, 8, 7)
	STEPF(Y3, Y0, Y1, Y2, 9, 9, 12)
	STEPF(Y2, Y3, Y0, Y1, 10, 10, 17)
	STEPF(Y1, Y2, Y3, Y0, 11, 11, 22)
	STEPF(Y0, Y1, Y2, Y3, 12, 12, 7)
	STEPF(Y3, Y0, Y1, Y2, 13, 13, 12)
	STEPF(Y2, Y3, Y0, Y1, 14, 14, 17)
	STEPF(Y1, Y2, Y3, Y0, 15, 15, 22)

	STEPG(Y0, Y1, Y2, Y3, 16, 1, 5)
	STEPG(Y3, Y0, Y1, Y2, 17, 6, 9)
	STEPG(Y2, Y3, Y0, Y1, 18, 11, 14)
	STEPG(Y1, Y2, Y3, Y0, 19, 0, 20)
	STEPG(Y0, Y1, Y2, Y3, 20, 5, 5)
	STEPG(Y3, Y0, Y1, Y2, 21, 10, 9)
	STEPG(Y2, Y3, Y0, Y1, 22, 15, 14)
	STEPG(Y1, Y2, Y3, Y0, 23, 4, 20)
	STEPG(Y0, Y1, Y2, Y3, 24, 9, 5)
	STEPG(Y3, Y0, Y1, Y2, 25, 14, 9)
	STEPG(Y2, Y3, Y0, Y1, 26, 3, 14)
	STEPG(Y1, Y2, Y3, Y0, 27, 8, 20)
	STEPG(Y0, Y1, Y2, Y3, 28, 13, 5)
	STEPG(Y3, Y0, Y1, Y2, 29, 2, 9)
	STEPG(Y2, Y3, Y0, Y1, 30, 7, 14)
	STEPG(Y1, Y2, Y3, Y0, 31, 12, 20)

	STEPH(Y0, Y1, Y2, Y3, 32, 5, 4)
	STEPH(Y3, Y0, Y1, Y2, 33, 8, 11)
	STEPH16(Y2, Y3, Y0, Y1, 34, 11)
	STEPH(Y1, Y2, Y3, Y0, 35, 14, 23)
	STEPH(Y0, Y1, Y2, Y3, 36, 1, 4)
	STEPH(Y3, Y0, Y1, Y2, 37, 4, 11)
	STEPH16(Y2, Y3, Y0, Y1, 38, 7)
	STEPH(Y1, Y2, Y3, Y0, 39, 10, 23)
	STEPH(Y0, Y1, Y2, Y3, 40, 13, 4)
	STEPH(Y3, Y0, Y1, Y2, 41, 0, 11)
	STEPH16(Y2, Y3, Y0, Y1, 42, 3)
	STEPH(Y1, Y2, Y3, Y0, 43, 6, 23)
	STEPH(Y0, Y1, Y2, Y3, 44, 9, 4)
	STEPH(Y3, Y0, Y1, Y2, 45, 12, 11)
	STEPH16(Y2, Y3, Y0, Y1, 46, 15)
	STEPH(Y1, Y2, Y3, Y0, 47, 2, 23)

	STEPI(Y0, Y1, Y2, Y3, 48, 0, 6)
	STEPI(Y3, Y0, Y1, Y2, 49, 7, 10)
	STEPI(Y2, Y3, Y0, Y1, 50, 14, 15)
	STEPI(Y1, Y2, Y3, Y0, 51, 5, 21)
	STEPI(Y0, Y1, Y2, Y3, 52, 12, 6)
	STEPI(Y3, Y0, Y1, Y2, 53, 3, 10)
	STEPI(Y2, Y3, Y0, Y1, 54, 10, 15)
	STEPI(Y1, Y2, Y3, Y0, 55, 1, 21)
	STEPI(Y0, Y1, Y2, Y3, 56, 8, 6)
	STEPI(Y3, Y0, Y1, Y2, 57, 15, 10)
	STEPI(Y2, Y3, Y0, Y1, 58, 6, 15)
	STEPI(Y1, Y2, Y3, Y0, 59, 13, 21)
	STEPI(Y0, Y1, Y2, Y3, 60, 4, 6)
	STEPI(Y3, Y0, Y1, Y2, 61, 11, 10)
	STEPI(Y2, Y3, Y0, Y1, 62, 2, 15)
	STEPI(Y1, Y2, Y3, Y0, 63, 9, 21)

	// Lanes whose blocks are all done (step+1 > total) keep their state.
	VMOVDQU   S8_STEP(DX), Y13
	VPSUBD    Y10, Y13, Y13
	VMOVDQU   Y13, S8_STEP(DX)
	VPCMPGTD  LN_TOTAL(BX), Y13, Y13
	VPADDD    Y4, Y0, Y0
	VPADDD    Y5, Y1, Y1
	VPADDD    Y6, Y2, Y2
	VPADDD    Y7, Y3, Y3
	VPBLENDVB Y13, Y4, Y0, Y0
	VPBLENDVB Y13, Y5, Y1, Y1
	VPBLENDVB Y13, Y6, Y2, Y2
	VPBLENDVB Y13, Y7, Y3, Y3

	DECQ CX
	JNZ  loop8

	MOVQ st+0(FP), DI
	VMOVDQU Y0, 0(DI)
	VMOVDQU Y1, 32(DI)
	VMOVDQU Y2, 64(DI)
	VMOVDQU Y3, 96(DI)
	VZEROUPPER

done8:
	RET

// Two-group steps: the same step on group 0 (Y0-Y3, words at 0(DX)) and
// group 1 (Y4-Y7, words at 512(DX)), instruction by instruction.
#define STEPF2(a, b, c, d, a2, b2, c2, d2, k, g, s) \
	VPADDD (k*32)(AX), a, a; \
	VPADDD (k*32)(AX), a2, a2; \
	VPADDD (g*32)(DX), a, a; \
	VPADDD (512+g*32)(DX), a2, a2; \
	VPXOR  c, d, Y8; \
	VPXOR  c2, d2, Y11; \
	VPAND  b, Y8, Y8; \
	VPAND  b2, Y11, Y11; \
	VPXOR  d, Y8, Y8; \
	VPXOR  d2, Y11, Y11; \
	VPADDD Y8, a, a; \
	VPADDD Y11, a2, a2; \
	VPSLLD $s, a, Y9; \
	VPSLLD $s, a2, Y12; \
	VPSRLD $(32-s), a, a; \
	VPSRLD $(32-s), a2, a2; \
	VPOR   Y9, a, a; \
	VPOR   Y12, a2, a2; \
	VPADDD b, a, a; \
	VPADDD b2, a2, a2

#define STEPG2(a, b, c, d, a2, b2, c2, d2, k, g, s) \
	VPADDD (k*32)(AX), a, a; \
	VPADDD (k*32)(AX), a2, a2; \
	VPADDD (g*32)(DX), a, a; \
	VPADDD (512+g*32)(DX), a2, a2; \
	VPANDN c, d, Y8; \
	VPANDN c2, d2, Y11; \
	VPADDD Y8, a, a; \
	VPADDD Y11, a2, a2; \
	VPAND  b, d, Y9; \
	VPAND  b2, d2, Y12; \
	VPADDD Y9, a, a; \
	VPADDD Y12, a2, a2; \
	VPSLLD $s, a, Y9; \
	VPSLLD $s, a2, Y12; \
	VPSRLD $(32-s), a, a; \
	VPSRLD $(32-s), a2, a2; \
	VPOR   Y9, a, a; \
	VPOR   Y12, a2, a2; \
	VPADDD b, a, a; \
	VPADDD b2, a2, a2

#define STEPH2(a, b, c, d, a2, b2, c2, d2, k, g, s) \
	VPADDD (k*32)(AX), a, a; \
	VPADDD (k*32)(AX), a2, a2; \
	VPADDD (g*32)(DX), a, a; \
	VPADDD (512+g*32)(DX), a2, a2; \
	VPXOR  c, d, Y8; \
	VPXOR  c2, d2, Y11; \
	VPXOR  b, Y8, Y8; \
	VPXOR  b2, Y11, Y11; \
	VPADDD Y8, a, a; \
	VPADDD Y11, a2, a2; \
	VPSLLD $s, a, Y9; \
	VPSLLD $s, a2, Y12; \
	VPSRLD $(32-s), a, a; \
	VPSRLD $(32-s), a2, a2; \
	VPOR   Y9, a, a; \
	VPOR   Y12, a2, a2; \
	VPADDD b, a, a; \
	VPADDD b2, a2, a2

#define STEPH162(a, b, c, d, a2, b2, c2, d2, k, g) \
	VPADDD  (k*32)(AX), a, a; \
	VPADDD  (k*32)(AX), a2, a2; \
	VPADDD  (g*32)(DX), a, a; \
	VPADDD  (512+g*32)(DX), a2, a2; \
	VPXOR   c, d, Y8; \
	VPXOR   c2, d2, Y11; \
	VPXOR   b, Y8, Y8; \
	VPXOR   b2, Y11, Y11; \
	VPADDD  Y8, a, a; \
	VPADDD  Y11, a2, a2; \
	VPSHUFB Y15, a, a; \
	VPSHUFB Y15, a2, a2; \
	VPADDD  b, a, a; \
	VPADDD  b2, a2, a2

#define STEPI2(a, b, c, d, a2, b2, c2, d2, k, g, s) \
	VPADDD (k*32)(AX), a, a; \
	VPADDD (k*32)(AX), a2, a2; \
	VPADDD (g*32)(DX), a, a; \
	VPADDD (512+g*32)(DX), a2, a2; \
	VPXOR  Y10, d, Y8; \
	VPXOR  Y10, d2, Y11; \
	VPOR   b, Y8, Y8; \
	VPOR   b2, Y11, Y11; \
	VPXOR  c, Y8, Y8; \
	VPXOR  c2, Y11, Y11; \
	VPADDD Y8, a, a; \
	VPADDD Y11, a2, a2; \
	VPSLLD $s, a, Y9; \
	VPSLLD $s, a2, Y12; \
	VPSRLD $(32-s), a, a; \
	VPSRLD $(32-s), a2, a2; \
	VPOR   Y9, a, a; \
	VPOR   Y12, a2, a2; \
	VPADDD b, a, a; \
	VPADDD b2, a2, a2

// KEEP finishes a block for one state vector: v += saved, except in lanes
// of mask m (finished lanes), which keep saved.
#define KEEP(v, saved, m) \
	VPADDD    saved(DX), v, v; \
	VPBLENDVB m, saved(DX), v, v

// Scratch layout of block16, from DX: as for block8, with both groups'
// words (group 1 at +512) and the state at block start, which does not fit
// in registers next to two groups.
#define S16_W 0
#define S16_SAVED 1024
#define S16_STEP 1280
#define S16_P 1312
#define S16_C 1440
#define S16_T 1568
#define S16_SIZE 1696

// func block16(st *[2][4][8]uint32, msgs *[16][]byte, tails *[16]tailBuf, ln *lanes, steps int)
// 1728 = S16_SIZE+32.
TEXT ·block16(SB), 0, $1728-40
	MOVQ steps+32(FP), CX
	TESTQ CX, CX
	JZ   done16
	MOVQ ln+24(FP), BX
	MOVQ st+0(FP), DI
	LEAQ kvec<>(SB), AX
	LEAQ 31(SP), DX
	ANDQ $~31, DX

	VMOVDQU 0(DI), Y0
	VMOVDQU 32(DI), Y1
	VMOVDQU 64(DI), Y2
	VMOVDQU 96(DI), Y3
	VMOVDQU 128(DI), Y4
	VMOVDQU 160(DI), Y5
	VMOVDQU 192(DI), Y6
	VMOVDQU 224(DI), Y7
	VPCMPEQD Y10, Y10, Y10
	VMOVDQU rot16<>(SB), Y15
	VPXOR   Y13, Y13, Y13
	VMOVDQU Y13, S16_STEP(DX)

	MOVQ msgs+8(FP), SI
	MOVQ tails+16(FP), DI
	START8(0, S16_P, S16_C, S16_T)
	START8(8, S16_P, S16_C, S16_T)

loop16:
	LOAD8(S16_P)
	TRANSPOSE16(S16_W)
	ADVANCE8(0, S16_P, S16_C, S16_T)
	LOAD8((S16_P+64))
	TRANSPOSE16((S16_W+512))
	ADVANCE8(8, S16_P, S16_C, S16_T)

	VMOVDQU Y0, (S16_SAVED+0)(DX)
	VMOVDQU Y1, (S16_SAVED+32)(DX)
	VMOVDQU Y2, (S16_SAVED+64)(DX)
	VMOVDQU Y3, (S16_SAVED+96)(DX)
	VMOVDQU Y4, (S16_SAVED+128)(DX)
	VMOVDQU Y5, (S16_SAVED+160)(DX)
	VMOVDQU Y6, (S16_SAVED+192)(DX)
	VMOVDQU Y7, (S16_SAVED+224)(DX)

	STEPF2(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, 0, 0, 7)
	STEPF2(Y3, Y0, Y1, Y2, Y7, Y4, Y5, Y6, 1, 1, 12)
	STEPF2(Y2, Y3, Y0, Y1, Y6, Y7, Y4, Y5, 2, 2, 17)
	STEPF2(Y1, Y2, Y3, Y0, Y5, Y6, Y7, Y4, 3, 3, 22)
	STEPF2(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, 4, 4, 7)
	STEPF2(Y3, Y0, Y1, Y2, Y7, Y4, Y5, Y6, 5, 5, 12)
	STEPF2(Y2, Y3, Y0, Y1, Y6, Y7, Y4, Y5, 6, 6, 17)
	STEPF2(Y1, Y2, Y3, Y0, Y5, Y6, Y7, Y4, 7, 7, 22)
	STEPF2(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, 8, 8, 7)
	STEPF2(Y3, Y0, Y1, Y2, Y7, Y4, Y5, Y6, 9, 9, 12)
	STEPF2(Y2, Y3, Y0, Y1, Y6, Y7, Y4, Y5, 10, 10, 17)
	STEPF2(Y1, Y2, Y3, Y0, Y5, Y6, Y7, Y4, 11, 11, 22)
	STEPF2(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, 12, 12, 7)
	STEPF2(Y3, Y0, Y1, Y2, Y7, Y4, Y5, Y6, 13, 13, 12)
	STEPF2(Y2, Y3, Y0, Y1, Y6, Y7, Y4, Y5, 14, 14, 17)
	STEPF2(Y1, Y2, Y3, Y0, Y5, Y6, Y7, Y4, 15, 15, 22)

	STEPG2(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, 16, 1, 5)
	STEPG2(Y3, Y0, Y1, Y2, Y7, Y4, Y5, Y6, 17, 6, 9)
	STEPG2(Y2, Y3, Y0, Y1, Y6, Y7, Y4, Y5, 18, 11, 14)
	STEPG2(Y1, Y2, Y3, Y0, Y5, Y6, Y7, Y4, 19, 0, 20)
	STEPG2(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, 20, 5, 5)
	STEPG2(Y3, Y0, Y1, Y2, Y7, Y4, Y5, Y6, 21, 10, 9)
	STEPG2(Y2, Y3, Y0, Y1, Y6, Y7, Y4, Y5, 22, 15, 14)
	STEPG2(Y1, Y2, Y3, Y0, Y5, Y6, Y7, Y4, 23, 4, 20)
	STEPG2(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, 24, 9, 5)
	STEPG2(Y3, Y0, Y1, Y2, Y7, Y4, Y5, Y6, 25, 14, 9)
	STEPG2(Y2, Y3, Y0, Y1, Y6, Y7, Y4, Y5, 26, 3, 14)
	STEPG2(Y1, Y2, Y3, Y0, Y5, Y6, Y7, Y4, 27, 8, 20)
	STEPG2(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, 28, 13, 5)
	STEPG2(Y3, Y0, Y1, Y2, Y7, Y4, Y5, Y6, 29, 2, 9)
	STEPG2(Y2, Y3, Y0, Y1, Y6, Y7, Y4, Y5, 30, 7, 14)
	STEPG2(Y1, Y2, Y3, Y0, Y5, Y6, Y7, Y4, 31, 12, 20)

	STEPH2(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, 32, 5, 4)
	STEPH2(Y3, Y0, Y1, Y2, Y7, Y4, Y5, Y6, 33, 8, 11)
	STEPH162(Y2, Y3, Y0, Y1, Y6, Y7, Y4, Y5, 34, 11)
	STEPH2(Y1, Y2, Y3, Y0, Y5, Y6, Y7, Y4, 35, 14, 23)
	STEPH2(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, 36, 1, 4)
	STEPH2(Y3, Y0, Y1, Y2, Y7, Y4, Y5, Y6, 37, 4, 11)
	STEPH162(Y2, Y3, Y0, Y1, Y6, Y7, Y4, Y5, 38, 7)
	STEPH2(Y1, Y2, Y3, Y0, Y5, Y6, Y7, Y4, 39, 10, 23)
	STEPH2(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, 40, 13, 4)
	STEPH2(Y3, Y0, Y1, Y2, Y7, Y4, Y5, Y6, 41, 0, 11)
	STEPH162(Y2, Y3, Y0, Y1, Y6, Y7, Y4, Y5, 42, 3)
	STEPH2(Y1, Y2, Y3, Y0, Y5, Y6, Y7, Y4, 43, 6, 23)
	STEPH2(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, 44, 9, 4)
	STEPH2(Y3, Y0, Y1, Y2, Y7, Y4, Y5, Y6, 45, 12, 11)
	STEPH162(Y2, Y3, Y0, Y1, Y6, Y7, Y4, Y5, 46, 15)
	STEPH2(Y1, Y2, Y3, Y0, Y5, Y6, Y7, Y4, 47, 2, 23)

	STEPI2(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, 48, 0, 6)
	STEPI2(Y3, Y0, Y1, Y2, Y7, Y4, Y5, Y6, 49, 7, 10)
	STEPI2(Y2, Y3, Y0, Y1, Y6, Y7, Y4, Y5, 50, 14, 15)
	STEPI2(Y1, Y2, Y3, Y0, Y5, Y6, Y7, Y4, 51, 5, 21)
	STEPI2(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, 52, 12, 6)
	STEPI2(Y3, Y0, Y1, Y2, Y7, Y4, Y5, Y6, 53, 3, 10)
	STEPI2(Y2, Y3, Y0, Y1, Y6, Y7, Y4, Y5, 54, 10, 15)
	STEPI2(Y1, Y2, Y3, Y0, Y5, Y6, Y7, Y4, 55, 1, 21)
	STEPI2(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, 56, 8, 6)
	STEPI2(Y3, Y0, Y1, Y2, Y7, Y4, Y5, Y6, 57, 15, 10)
	STEPI2(Y2, Y3, Y0, Y1, Y6, Y7, Y4, Y5, 58, 6, 15)
	STEPI2(Y1, Y2, Y3, Y0, Y5, Y6, Y7, Y4, 59, 13, 21)
	STEPI2(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, 60, 4, 6)
	STEPI2(Y3, Y0, Y1, Y2, Y7, Y4, Y5, Y6, 61, 11, 10)
	STEPI2(Y2, Y3, Y0, Y1, Y6, Y7, Y4, Y5, 62, 2, 15)
	STEPI2(Y1, Y2, Y3, Y0, Y5, Y6, Y7, Y4, 63, 9, 21)

	VMOVDQU  S16_STEP(DX), Y13
	VPSUBD   Y10, Y13, Y13
	VMOVDQU  Y13, S16_STEP(DX)
	VPCMPGTD (LN_TOTAL+32)(BX), Y13, Y14
	VPCMPGTD LN_TOTAL(BX), Y13, Y13
	KEEP(Y0, (S16_SAVED+0), Y13)
	KEEP(Y1, (S16_SAVED+32), Y13)
	KEEP(Y2, (S16_SAVED+64), Y13)
	KEEP(Y3, (S16_SAVED+96), Y13)
	KEEP(Y4, (S16_SAVED+128), Y14)
	KEEP(Y5, (S16_SAVED+160), Y14)
	KEEP(Y6, (S16_SAVED+192), Y14)
	KEEP(Y7, (S16_SAVED+224), Y14)

	DECQ CX
	JNZ  loop16

	MOVQ st+0(FP), DI
	VMOVDQU Y0, 0(DI)
	VMOVDQU Y1, 32(DI)
	VMOVDQU Y2, 64(DI)
	VMOVDQU Y3, 96(DI)
	VMOVDQU Y4, 128(DI)
	VMOVDQU Y5, 160(DI)
	VMOVDQU Y6, 192(DI)
	VMOVDQU Y7, 224(DI)
	VZEROUPPER

done16:
	RET
