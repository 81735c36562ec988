package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// post sends a POST with X-Amz-Target to the proxy at addr.
func post(ctx context.Context, c *http.Client, addr, target string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, addr, strings.NewReader(`{}`))
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	return c.Do(req)
}

// TestStreamsWithoutBuffering reads the first part of a response that the
// upstream has not finished, as SubscribeToShard's event stream needs, and
// checks the request reaches the upstream on the protocol it came in on.
func TestStreamsWithoutBuffering(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		name, wantProto := "HTTP/1.1", "HTTP/1.1"
		if h2 {
			name, wantProto = "h2c", "HTTP/2.0"
		}
		t.Run(name, func(t *testing.T) {
			up := newUpstream(t)
			_, addr := startProxy(t, up)
			resp, err := post(t.Context(), httpClient(t, h2), addr, "Test.Stream")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if got := resp.Header.Get("X-Upstream-Proto"); got != wantProto || resp.Proto != wantProto {
				t.Errorf("upstream proto %q, client proto %q, want %q", got, resp.Proto, wantProto)
			}
			br := bufio.NewReader(resp.Body)
			line, err := br.ReadString('\n')
			if err != nil || line != "first\n" {
				t.Fatalf("first line = %q, %v; want it before the upstream finishes", line, err)
			}
			close(up.release)
			rest, err := io.ReadAll(br)
			if err != nil || string(rest) != "second\n" {
				t.Fatalf("rest = %q, %v", rest, err)
			}
		})
	}
}

// TestCutStreamAbortsMidBody cuts a response the upstream is still
// streaming, and leaves one that ends before the cut alone.
func TestCutStreamAbortsMidBody(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "h2c"}[h2], func(t *testing.T) {
			up := newUpstream(t)
			p, addr := startProxy(t, up)
			if err := p.SetRules([]Rule{{Kind: CutStream, Probability: 1, Latency: 50 * time.Millisecond}}); err != nil {
				t.Fatal(err)
			}
			c := httpClient(t, h2)
			resp, err := post(t.Context(), c, addr, "Kinesis_20131202.ListShards")
			if err != nil {
				t.Fatal(err)
			}
			if body, err := io.ReadAll(resp.Body); err != nil || string(body) != "{}" {
				t.Errorf("short response = %q, %v; want it whole", body, err)
			}
			resp.Body.Close()

			resp, err = post(t.Context(), c, addr, "Test.Stream")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			if line, err := br.ReadString('\n'); err != nil || line != "first\n" {
				t.Fatalf("first line = %q, %v", line, err)
			}
			start := time.Now()
			rest, err := io.ReadAll(br)
			if err == nil || len(rest) != 0 {
				t.Fatalf("rest = %q, %v; want the stream aborted", rest, err)
			}
			t.Logf("cut after %v: %v", time.Since(start), err)
			if st := p.Stats(); st.ByKind()[CutStream] != 2 || st.Forwarded["Stream"] != 1 {
				t.Errorf("stats = %+v, want 2 cut-stream faults and the stream forwarded", st)
			}
		})
	}
}

// TestSetRulesReleasesBlackholes ends a fault window while a request is
// held: the client sees a connection error at once.
func TestSetRulesReleasesBlackholes(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "h2c"}[h2], func(t *testing.T) {
			up := newUpstream(t)
			p, addr := startProxy(t, up)
			if err := p.SetRules([]Rule{{Kind: Blackhole, Probability: 1}}); err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() {
				resp, err := post(t.Context(), httpClient(t, h2), addr, "Kinesis_20131202.GetRecords")
				if err == nil {
					resp.Body.Close()
				}
				errc <- err
			}()
			eventually(t, func() bool { return p.Stats().ByKind()[Blackhole] == 1 }, "the request is held")
			if err := p.SetRules(nil); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-errc:
				if err == nil {
					t.Fatal("released blackhole answered, want a connection error")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("request still held after SetRules(nil)")
			}
			if up.count("GetRecords") != 0 {
				t.Error("a blackholed request reached the upstream")
			}
		})
	}
}

// TestSeedReplaysFaults runs the same request sequence through two proxies
// with the same seed and expects the same faults.
func TestSeedReplaysFaults(t *testing.T) {
	rules := []Rule{
		{Op: "GetRecords", Kind: Throttle, Probability: 0.3},
		{Kind: Error500, Probability: 0.2},
		{Kind: Latency, Probability: 0.2, Latency: time.Microsecond},
	}
	run := func(seed int64) []Event {
		up := newUpstream(t)
		var (
			mu     sync.Mutex
			events []Event
		)
		p, addr := startProxy(t, up, WithSeed(seed), WithOnFault(func(e Event) {
			mu.Lock()
			defer mu.Unlock()
			e.Time = time.Time{}
			events = append(events, e)
		}))
		if err := p.SetRules(rules); err != nil {
			t.Fatal(err)
		}
		c := httpClient(t, false)
		for i := range 60 {
			target := "Kinesis_20131202.GetRecords"
			if i%3 == 0 {
				target = "Kinesis_20131202.ListShards"
			}
			resp, err := post(t.Context(), c, addr, target)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if got := p.Seed(); got != seed {
			t.Errorf("Seed() = %d, want %d", got, seed)
		}
		st := p.Stats()
		n := 0
		for _, c := range st.Requests {
			n += c
		}
		if n != 60 {
			t.Errorf("stats count %d requests, want 60", n)
		}
		mu.Lock()
		defer mu.Unlock()
		return events
	}
	a, b := run(42), run(42)
	if len(a) == 0 {
		t.Fatal("no faults injected")
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("same seed, different faults:\n%v\n%v", a, b)
	}
	if c := run(43); reflect.DeepEqual(a, c) {
		t.Errorf("seeds 42 and 43 gave the same faults")
	}
}

// TestCloseEndsEverything closes the proxy with a blackholed request and an
// open stream on each protocol and expects every goroutine gone.
func TestCloseEndsEverything(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		up := newUpstream(t)
		defer up.Close()
		p, err := New(up.URL, WithSeed(7))
		if err != nil {
			t.Fatal(err)
		}
		addr, err := p.Start()
		if err != nil {
			t.Fatal(err)
		}
		if err := p.SetRules([]Rule{{Op: "GetRecords", Kind: Blackhole, Probability: 1}}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for _, h2 := range []bool{false, true} {
			c := httpClient(t, h2)
			defer c.CloseIdleConnections()
			wg.Go(func() {
				resp, err := post(context.Background(), c, addr, "Kinesis_20131202.GetRecords")
				if err == nil {
					resp.Body.Close()
					t.Error("blackholed request answered")
				}
			})
			resp, err := post(t.Context(), c, addr, "Test.Stream")
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				defer resp.Body.Close()
				io.Copy(io.Discard, resp.Body)
			})
		}
		eventually(t, func() bool { return p.Stats().ByKind()[Blackhole] == 2 }, "both requests held")
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait() // both clients' requests ended by Close alone
		if _, err := p.Start(); !errors.Is(err, ErrClosed) {
			t.Errorf("Start after Close = %v, want ErrClosed", err)
		}
		if err := p.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	}()
	checkNoLeaks(t, base)
}

func TestCloseWithoutStart(t *testing.T) {
	p, err := New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestIsolateCutsOneClientOff isolates one of two clients: its new request
// is held without reaching the target and its earlier request's answer is
// dropped, while the other client and the shared listener are served; Heal
// releases the held request and serves the client again.
func TestIsolateCutsOneClientOff(t *testing.T) {
	up := newUpstream(t)
	p, shared := startProxy(t, up)
	a, err := p.StartClient("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.StartClient("b")
	if err != nil {
		t.Fatal(err)
	}
	c := httpClient(t, false)
	call := func(ctx context.Context, addr, target string) error {
		resp, err := post(ctx, c, addr, target)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	inFlight := make(chan error, 1)
	go func() { inFlight <- call(t.Context(), a, "Test.Hold") }()
	eventually(t, func() bool { return up.count("Hold") == 1 }, "a's first request reaches the target")

	if err := p.Isolate("a"); err != nil {
		t.Fatal(err)
	}
	close(up.hold) // the target answers a's first request: the answer is dropped
	select {
	case err := <-inFlight:
		if err == nil {
			t.Fatal("an isolated client got the answer to its earlier request")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the answer to an isolated client's earlier request never ended")
	}
	held := make(chan error, 1)
	go func() { held <- call(t.Context(), a, "DynamoDB_20120810.UpdateItem") }()
	eventually(t, func() bool { return p.Stats().ByKind()[Isolated] == 2 }, "a's new request is held")
	for _, addr := range []string{b, shared} {
		if err := call(t.Context(), addr, "DynamoDB_20120810.GetItem"); err != nil {
			t.Fatalf("a client that is not isolated: %v", err)
		}
	}
	select {
	case err := <-held:
		t.Fatalf("an isolated client's request ended before Heal: %v", err)
	case <-time.After(100 * time.Millisecond):
	}

	p.Heal("a")
	select {
	case err := <-held:
		if err == nil {
			t.Fatal("a held request was answered after Heal, want a connection error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Heal did not release the held request")
	}
	if n := up.count("UpdateItem"); n != 0 {
		t.Errorf("the target saw %d requests sent while the client was isolated", n)
	}
	if err := call(t.Context(), a, "DynamoDB_20120810.UpdateItem"); err != nil {
		t.Fatalf("after Heal: %v", err)
	}
	p.Heal("a") // not isolated: nothing happens
}

func TestStartClientAndIsolateValidate(t *testing.T) {
	up := newUpstream(t)
	p, err := New(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.StartClient("a"); err == nil {
		t.Error("StartClient before Start: no error")
	}
	if _, err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.StartClient("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.StartClient("a"); err == nil {
		t.Error("StartClient twice with one name: no error")
	}
	if _, err := p.StartClient(""); err == nil {
		t.Error("StartClient with no name: no error")
	}
	if err := p.Isolate("b"); err == nil {
		t.Error("Isolate of an unknown client: no error")
	}
	p.Close()
	if _, err := p.StartClient("c"); !errors.Is(err, ErrClosed) {
		t.Errorf("StartClient after Close = %v, want ErrClosed", err)
	}
}
