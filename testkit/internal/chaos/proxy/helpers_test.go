package proxy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap/zaptest"
)

// upstream is a tiny in-test AWS endpoint: canned answers by X-Amz-Target,
// HTTP/1.1 and h2c on one port, and a count of requests by operation.
type upstream struct {
	*httptest.Server
	// release ends the "Test.Stream" responses; hold is closed to let the
	// "Test.Hold" requests be answered.
	release, hold chan struct{}

	mu   sync.Mutex
	hits map[string]int
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{release: make(chan struct{}), hold: make(chan struct{}), hits: make(map[string]int)}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(u.serve))
	var pr http.Protocols
	pr.SetHTTP1(true)
	pr.SetUnencryptedHTTP2(true)
	u.Config.Protocols = &pr
	u.Start()
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) count(op string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits[op]
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	op := opName(r.Header.Get("X-Amz-Target"))
	u.mu.Lock()
	u.hits[op]++
	u.mu.Unlock()
	w.Header().Set("X-Upstream-Proto", r.Proto)
	switch op {
	case "GetRecords":
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		fmt.Fprint(w, `{"Records":[{"Data":"aGVsbG8=","PartitionKey":"pk","SequenceNumber":"1"}],"NextShardIterator":"next-iterator","MillisBehindLatest":0}`)
	case "GetItem":
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		fmt.Fprint(w, `{"Item":{"k":{"S":"v"}}}`)
	case "SubscribeToShard":
		// An AWS-shaped event stream: initial-response, then an event
		// every 10 ms until the client or the test goes away.
		w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
		w.WriteHeader(http.StatusOK)
		enc := eventstream.NewEncoder()
		send := func(eventType, payload string) error {
			var msg eventstream.Message
			msg.Headers.Set(":message-type", eventstream.StringValue("event"))
			msg.Headers.Set(":event-type", eventstream.StringValue(eventType))
			msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
			msg.Payload = []byte(payload)
			if err := enc.Encode(w, msg); err != nil {
				return err
			}
			return http.NewResponseController(w).Flush()
		}
		if send("initial-response", "{}") != nil {
			return
		}
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if send("SubscribeToShardEvent", `{"Records":[],"ContinuationSequenceNumber":"1","MillisBehindLatest":0}`) != nil {
				return
			}
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			}
		}
	case "Hold":
		select {
		case <-u.hold:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		fmt.Fprint(w, `{}`)
	case "Stream":
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "first\n")
		http.NewResponseController(w).Flush()
		select {
		case <-u.release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "second\n")
	default:
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		fmt.Fprint(w, `{}`)
	}
}

// startProxy starts a proxy in front of u and closes it at cleanup.
func startProxy(t *testing.T, u *upstream, opts ...Option) (*Proxy, string) {
	t.Helper()
	opts = append([]Option{WithLogger(zaptest.NewLogger(t)), WithSeed(1)}, opts...)
	p, err := New(u.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := p.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, addr
}

// httpClient returns a client speaking HTTP/1.1, or h2c with prior
// knowledge when h2 is set, whose idle connections close at cleanup.
func httpClient(t *testing.T, h2 bool) *http.Client {
	var pr http.Protocols
	if h2 {
		pr.SetUnencryptedHTTP2(true)
	} else {
		pr.SetHTTP1(true)
	}
	tr := &http.Transport{Protocols: &pr, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// awsConfig is a literal config (no environment, no ~/.aws) making
// attempts tries per call with negligible backoff.
func awsConfig(t *testing.T, h2 bool, attempts int) aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDCHAOS", "chaos-secret", ""),
		HTTPClient:  httpClient(t, h2),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				o.MaxBackoff = 5 * time.Millisecond
				o.RateLimiter = ratelimit.None
			})
		},
	}
}

func kinesisClient(t *testing.T, endpoint string, h2 bool, attempts int) *kinesis.Client {
	return kinesis.NewFromConfig(awsConfig(t, h2, attempts), func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
}

func dynamoClient(t *testing.T, endpoint string, h2 bool, attempts int) *dynamodb.Client {
	return dynamodb.NewFromConfig(awsConfig(t, h2, attempts), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
}

// eventually polls cond every 5 ms for up to 5 s.
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not true after 5s: %s", msg)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("test ended while waiting: %s", msg)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// checkNoLeaks fails the test if goroutines other than those running before
// it (base) remain, listing their stacks.
func checkNoLeaks(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, strings.TrimSpace(string(buf)))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
