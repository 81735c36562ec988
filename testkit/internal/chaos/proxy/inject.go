package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// writeAWSError answers in the AWS JSON protocol's error shape. The SDK
// takes the code from X-Amzn-ErrorType (falling back to the body's __type)
// and maps it to the service's modelled type, e.g.
// *types.ProvisionedThroughputExceededException.
func writeAWSError(w http.ResponseWriter, r *http.Request, seq uint64, status int, code, msg string) {
	body, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{code, msg})
	ct := r.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/x-amz-json") {
		ct = "application/x-amz-json-1.1"
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Amzn-ErrorType", code)
	h.Set("X-Amzn-RequestId", fmt.Sprintf("chaos-%016x", seq))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// abort ends the request without a response. HTTP/1.1: hijack the
// connection and close it with RST (SO_LINGER 0), so the client reads
// "connection reset by peer". HTTP/2: panic with http.ErrAbortHandler,
// which makes the server reset the stream; the connection stays up.
func (p *Proxy) abort(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// drain reads and discards the request body, up to a bound, before a fault
// that does not forward: the client finishes sending, and an HTTP/1.1
// server notices the client hanging up only once the body is consumed.
func (p *Proxy) drain(r *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, p.opts.maxDrain))
}

// sleep waits for d (forever when d is 0) and reports whether it elapsed.
// It returns early when ctx ends, release is closed or the proxy closes.
func (p *Proxy) sleep(ctx context.Context, d time.Duration, release <-chan struct{}) bool {
	var expired <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-expired:
		return true
	case <-ctx.Done():
	case <-release:
	case <-p.done:
	}
	return false
}

// slowBody trickles a response body: each Read waits pause, then returns
// at most chunk bytes. ReverseProxy flushes after every write.
type slowBody struct {
	rc    io.ReadCloser
	ctx   context.Context
	done  <-chan struct{}
	chunk int
	pause time.Duration
	timer *time.Timer
}

func (b *slowBody) Read(buf []byte) (int, error) {
	if b.timer == nil {
		b.timer = time.NewTimer(b.pause)
	} else {
		b.timer.Reset(b.pause)
	}
	select {
	case <-b.timer.C:
	case <-b.ctx.Done():
		return 0, b.ctx.Err()
	case <-b.done:
		return 0, ErrClosed
	}
	if len(buf) > b.chunk {
		buf = buf[:b.chunk]
	}
	return b.rc.Read(buf)
}

func (b *slowBody) Close() error {
	if b.timer != nil {
		b.timer.Stop()
	}
	return b.rc.Close()
}
