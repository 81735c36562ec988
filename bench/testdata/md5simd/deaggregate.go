// This file is not part of kcl. bench/run.sh adds it to package deaggregate
// with go test's -overlay flag (see overlay.json), only for the md5simd
// benchmarks, so that kcl's Append and a copy of it whose digests come from
// github.com/minio/md5-simd run on the same pages in the same process. Only
// Append's loop is copied; everything else is kcl's own code.

package deaggregate

import (
	"crypto/md5"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	md5simd "github.com/minio/md5-simd"
)

// MD5SIMD computes aggregate digests with one md5-simd Server, which runs a
// goroutine until Close, and a free list of its Hashers. Hashers are reused
// (Reset) rather than created per message: a closed Hasher stays registered
// with its Server (v1.1.2's process loop deletes the wrong key when a client
// channel closes), so creating one per message would grow the Server without
// bound.
type MD5SIMD struct {
	srv  md5simd.Server
	free chan md5simd.Hasher
}

// NewMD5SIMD returns digests computed by srv.
func NewMD5SIMD(srv md5simd.Server) *MD5SIMD {
	return &MD5SIMD{srv: srv, free: make(chan md5simd.Hasher, 4*batch)}
}

// Close closes the pooled Hashers and the Server.
func (m *MD5SIMD) Close() {
	for {
		select {
		case h := <-m.free:
			h.Close()
		default:
			m.srv.Close()
			return
		}
	}
}

func (m *MD5SIMD) get() md5simd.Hasher {
	select {
	case h := <-m.free:
		return h
	default:
		return m.srv.NewHash()
	}
}

func (m *MD5SIMD) put(h md5simd.Hasher) {
	h.Reset()
	select {
	case m.free <- h:
	default:
		h.Close()
	}
}

// sum16 is md5x.Sum16 done with md5-simd: every message is written to its
// own Hasher first, so that the Server can hash their full blocks in
// parallel lanes, then the digests are collected. Sum blocks until the
// Server goroutine has answered.
func (m *MD5SIMD) sum16(out *[batch][md5.Size]byte, msgs *[batch][]byte, n int) {
	var hs [batch]md5simd.Hasher
	for i := range n {
		hs[i] = m.get()
		hs[i].Write(msgs[i]) // never fails on an open Hasher
	}
	for i := range n {
		hs[i].Sum(out[i][:0])
		m.put(hs[i])
	}
}

// AppendMD5SIMD is Append with its digests computed by m instead of md5x.
func (d *Deaggregator) AppendMD5SIMD(m *MD5SIMD, dst []Record, in []types.Record) []Record {
	var aggregates, malformed, filtered uint64
	first := len(dst)
	var (
		msgs  [batch][]byte
		sums  [batch][md5.Size]byte
		which [batch]int
		n, k  int
		next  int
	)
	for i := range in {
		r := &in[i]
		if !hasMagic(r.Data) {
			dst = appendPlain(dst, r)
			continue
		}
		if k == n && next <= i && checksummed(r.Data) {
			n, k = 0, 0
			for next = i; next < len(in) && n < batch; next++ {
				if data := in[next].Data; hasMagic(data) && checksummed(data) {
					msgs[n], _ = body(data)
					which[n] = next
					n++
				}
			}
			m.sum16(&sums, &msgs, n)
			clear(msgs[:n])
		}
		var sum *[md5.Size]byte
		if k < n && which[k] == i {
			sum = &sums[k]
			k++
		}
		var f fault
		dst, f = d.appendAggregate(dst, r, sum, in[i+1:])
		switch f.kind {
		case faultNone:
			aggregates++
			continue
		case faultOutOfRange:
			aggregates++
			filtered++
		default:
			malformed++
			dst = appendPlain(dst, r)
		}
		if d.onError != nil {
			d.onError(&RecordError{SequenceNumber: aws.ToString(r.SequenceNumber), Err: &faultError{f: f}})
		}
	}
	d.records.Add(uint64(len(in)))
	d.aggregates.Add(aggregates)
	d.userRecords.Add(uint64(len(dst) - first))
	d.malformed.Add(malformed)
	d.filtered.Add(filtered)
	return dst
}
