package proxy

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"go.uber.org/zap"
)

// ErrClosed is returned by Start after Close.
var ErrClosed = errors.New("proxy: closed")

// Option configures a Proxy.
type Option func(*options)

type options struct {
	seed      int64
	seeded    bool
	onFault   func(Event)
	logger    *zap.Logger
	listen    string
	chunk     int
	maxDrain  int64
	idleConns int
}

func defaultOptions() options {
	return options{
		logger:    zap.NewNop(),
		listen:    "127.0.0.1:0",
		chunk:     1024,
		maxDrain:  16 << 20,
		idleConns: 64,
	}
}

// WithSeed seeds the random source that decides every fault, so a run can be
// replayed. Default: a seed from the clock, reported by Seed.
func WithSeed(seed int64) Option {
	return func(o *options) { o.seed, o.seeded = seed, true }
}

// WithOnFault sets a hook called once per injected fault, synchronously on
// the request's goroutine and without locks held. It must be fast and must
// not block; it may be called concurrently. Default: none.
func WithOnFault(f func(Event)) Option {
	return func(o *options) { o.onFault = f }
}

// WithLogger sets the logger for upstream failures and the HTTP server's
// own messages (at Debug). Default: zap.NewNop().
func WithLogger(l *zap.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithListenAddr sets the TCP address Start listens on. Default
// "127.0.0.1:0" (a free port on loopback).
func WithListenAddr(addr string) Option {
	return func(o *options) { o.listen = addr }
}

// WithSlowBodyChunk sets how many bytes SlowBody lets through after each
// pause. Default 1024.
func WithSlowBodyChunk(n int) Option {
	return func(o *options) { o.chunk = n }
}

// Proxy is a fault-injecting reverse proxy for one AWS JSON-protocol
// service. Its methods are safe for concurrent use.
type Proxy struct {
	target *url.URL
	opts   options
	seed   int64

	h1, h2 *http.Transport // upstream, by the protocol the request came in on
	rp     *httputil.ReverseProxy
	srv    *http.Server

	// done is closed by Close; every wait in a handler selects on it.
	done      chan struct{}
	closeOnce sync.Once
	handlers  sync.WaitGroup // ServeHTTP calls in flight
	serving   sync.WaitGroup // the Serve goroutine

	// mu guards the fields below it.
	mu      sync.Mutex
	rng     *rand.Rand
	rules   []Rule
	window  chan struct{} // closed when rules are replaced, releasing blackholes
	stats   Stats
	seq     uint64
	started bool
	closed  bool
	// clients names the client of each listener StartClient opened, by
	// its address; isolated holds, for each isolated client, the channel
	// Heal closes.
	clients  map[string]string
	isolated map[string]chan struct{}
}

// New returns a proxy that forwards to target, an http:// base URL such as
// "http://127.0.0.1:4567". It injects no faults until SetRules is called
// and listens only once Start is called.
func New(target string, opts ...Option) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("proxy: target %q: %w", target, err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("proxy: target %q: want http://host:port", target)
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case o.chunk <= 0:
		return nil, fmt.Errorf("proxy: WithSlowBodyChunk(%d): want > 0", o.chunk)
	case o.logger == nil:
		return nil, errors.New("proxy: WithLogger(nil)")
	case o.listen == "":
		return nil, errors.New(`proxy: WithListenAddr(""): want host:port`)
	}
	seed := o.seed
	if !o.seeded {
		seed = time.Now().UnixNano()
	}
	p := &Proxy{
		target:   u,
		opts:     o,
		seed:     seed,
		done:     make(chan struct{}),
		rng:      rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15)),
		window:   make(chan struct{}),
		clients:  make(map[string]string),
		isolated: make(map[string]chan struct{}),
		stats: Stats{
			Requests:       make(map[string]int),
			Forwarded:      make(map[string]int),
			Injected:       make(map[Key]int),
			UpstreamErrors: make(map[string]int),
		},
	}
	p.h1 = p.newTransport(func(pr *http.Protocols) { pr.SetHTTP1(true) })
	p.h2 = p.newTransport(func(pr *http.Protocols) { pr.SetUnencryptedHTTP2(true) })
	p.rp = &httputil.ReverseProxy{
		Rewrite:        func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		Transport:      roundTripperFunc(p.roundTrip),
		FlushInterval:  -1, // event streams: pass bytes on as they arrive
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.upstreamError,
		ErrorLog:       zap.NewStdLog(o.logger.WithOptions(zap.IncreaseLevel(zap.DebugLevel))),
	}
	return p, nil
}

func (p *Proxy) newTransport(set func(*http.Protocols)) *http.Transport {
	var pr http.Protocols
	set(&pr)
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        p.opts.idleConns,
		MaxIdleConnsPerHost: p.opts.idleConns,
		IdleConnTimeout:     90 * time.Second,
		// The client's own Accept-Encoding passes through untouched; a
		// transparent gunzip here would break DynamoDB's X-Amz-Crc32 check.
		DisableCompression: true,
		Protocols:          &pr,
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// roundTrip sends HTTP/2 requests (SubscribeToShard) upstream as h2c and
// the rest as HTTP/1.1, as they came in.
func (p *Proxy) roundTrip(r *http.Request) (*http.Response, error) {
	if r.ProtoMajor == 2 {
		return p.h2.RoundTrip(r)
	}
	return p.h1.RoundTrip(r)
}

// Seed returns the seed of the fault decisions, to print for a replay.
func (p *Proxy) Seed() int64 { return p.seed }

// SetRules replaces the fault rules; nil or empty turns faults off. Rules
// are evaluated in order for each request (see FaultKind for each kind).
// Requests held by a Blackhole rule of the previous set are released (as
// Reset). It returns an error naming the first invalid rule and changes
// nothing then.
func (p *Proxy) SetRules(rules []Rule) error {
	for i, r := range rules {
		if err := r.validate(); err != nil {
			return fmt.Errorf("proxy: rule %d (%v %q): %w", i, r.Kind, r.Op, err)
		}
	}
	rules = append([]Rule(nil), rules...)
	p.mu.Lock()
	p.rules = rules
	old := p.window
	p.window = make(chan struct{})
	p.mu.Unlock()
	close(old)
	return nil
}

// Stats returns a copy of the counts so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats.clone()
}

// Start listens on the address from WithListenAddr and serves in a
// goroutine until Close. It returns the proxy's base URL, e.g.
// "http://127.0.0.1:41234", to use as an SDK BaseEndpoint. The listener
// accepts HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on the same port.
func (p *Proxy) Start() (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return "", ErrClosed
	case p.started:
		return "", errors.New("proxy: already started")
	}
	ln, err := net.Listen("tcp", p.opts.listen)
	if err != nil {
		return "", fmt.Errorf("proxy: listen: %w", err)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	p.srv = &http.Server{
		Handler:           p,
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          zap.NewStdLog(p.opts.logger.WithOptions(zap.IncreaseLevel(zap.DebugLevel))),
		ConnContext:       p.connContext,
	}
	p.started = true
	p.serveLocked(ln)
	return "http://" + ln.Addr().String(), nil
}

// serveLocked serves ln in a goroutine until Close; p.mu is held.
func (p *Proxy) serveLocked(ln net.Listener) {
	p.serving.Add(1)
	go func() {
		defer p.serving.Done()
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.opts.logger.Error("proxy: serve", zap.Error(err))
		}
	}()
}

// StartClient opens another listener, on a free port of the host of
// WithListenAddr, for the client called name, and returns its base URL.
// Requests that come in through it are the client's: they get the same
// rules as any other, and Isolate cuts them alone. Start must have been
// called; a name can be started once.
func (p *Proxy) StartClient(name string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return "", ErrClosed
	case !p.started:
		return "", errors.New("proxy: StartClient before Start")
	case name == "":
		return "", errors.New("proxy: StartClient: empty client name")
	}
	for _, n := range p.clients {
		if n == name {
			return "", fmt.Errorf("proxy: client %q already started", name)
		}
	}
	host, _, err := net.SplitHostPort(p.opts.listen)
	if err != nil {
		return "", fmt.Errorf("proxy: listen address %q: %w", p.opts.listen, err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("proxy: listen: %w", err)
	}
	p.clients[ln.Addr().String()] = name
	p.serveLocked(ln)
	return "http://" + ln.Addr().String(), nil
}

// clientKey carries a connection's client name in its requests' contexts.
type clientKey struct{}

// connContext is the server's ConnContext: it names the client of a
// connection accepted by a StartClient listener.
func (p *Proxy) connContext(ctx context.Context, c net.Conn) context.Context {
	p.mu.Lock()
	name := p.clients[c.LocalAddr().String()]
	p.mu.Unlock()
	if name == "" {
		return ctx
	}
	return context.WithValue(ctx, clientKey{}, name)
}

func clientOf(r *http.Request) string {
	name, _ := r.Context().Value(clientKey{}).(string)
	return name
}

// Isolate cuts the client called name (StartClient) off the target, as a
// network partition would, until Heal: its new requests are held
// unanswered, without reaching the target, until the client gives up or
// Heal releases them (then they end as Reset ends a request); the answer
// to a request it sent earlier that arrives meanwhile is dropped (the
// target may have applied it; the client sees a connection error). Every
// such request counts as an Isolated fault. Other clients are untouched.
func (p *Proxy) Isolate(name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.knownLocked(name) {
		return fmt.Errorf("proxy: Isolate: no client %q", name)
	}
	if p.isolated[name] == nil {
		p.isolated[name] = make(chan struct{})
	}
	return nil
}

// Heal ends the isolation of the client called name and releases its held
// requests. It does nothing if the client is not isolated.
func (p *Proxy) Heal(name string) {
	p.mu.Lock()
	release := p.isolated[name]
	delete(p.isolated, name)
	p.mu.Unlock()
	if release != nil {
		close(release)
	}
}

func (p *Proxy) knownLocked(name string) bool {
	for _, n := range p.clients {
		if n == name {
			return true
		}
	}
	return false
}

// isolation returns the channel that Heal closes if the client called name
// is isolated now, else nil.
func (p *Proxy) isolation(name string) <-chan struct{} {
	if name == "" {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.isolated[name]
}

// cutOff records a request of an isolated client as an Isolated fault.
func (p *Proxy) cutOff(op string) {
	now := time.Now()
	p.mu.Lock()
	p.seq++
	seq := p.seq
	p.stats.Injected[Key{Op: op, Kind: Isolated}]++
	p.mu.Unlock()
	if p.opts.onFault != nil {
		p.opts.onFault(Event{Time: now, Op: op, Kind: Isolated, Seq: seq})
	}
}

// Close stops listening, ends every request in flight (held blackholes and
// open streams included), waits for their handlers to return and closes
// upstream connections. It is safe to call more than once.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		srv := p.srv
		p.mu.Unlock()
		close(p.done)
		if srv != nil {
			_ = srv.Close() // closes the listener and every connection
		}
		p.serving.Wait()
		p.handlers.Wait()
		p.h1.CloseIdleConnections()
		p.h2.CloseIdleConnections()
	})
	return nil
}

// planKey carries a request's *plan from ServeHTTP to modifyResponse.
type planKey struct{}

// ServeHTTP decides the request's faults and applies them. The Proxy
// serves itself from Start; ServeHTTP is exported for that only.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.abort(w, r)
		return
	}
	p.handlers.Add(1) // under mu, so never concurrent with Close's Wait at zero
	p.mu.Unlock()
	defer p.handlers.Done()

	target := r.Header.Get("X-Amz-Target")
	op := opName(target)
	client := clientOf(r)
	if release := p.isolation(client); release != nil {
		p.count(func(s *Stats) { s.Requests[op]++ })
		p.cutOff(op)
		p.drain(r)
		p.sleep(r.Context(), 0, release)
		p.abort(w, r)
		return
	}
	pl, seq, window := p.plan(op, target)

	if pl.delay > 0 && !p.sleep(r.Context(), pl.delay, nil) {
		p.abort(w, r)
		return
	}
	switch pl.terminal {
	case Reset:
		p.drain(r)
		p.abort(w, r)
	case Blackhole:
		p.drain(r)
		p.sleep(r.Context(), pl.hold, window)
		p.abort(w, r)
	case Error500:
		p.drain(r)
		writeAWSError(w, r, seq, http.StatusInternalServerError, "InternalFailure",
			"chaos: injected internal failure")
	case Throttle:
		p.drain(r)
		writeAWSError(w, r, seq, http.StatusBadRequest, "ProvisionedThroughputExceededException",
			"chaos: injected rate exceeded")
	case ExpiredIterator:
		p.drain(r)
		writeAWSError(w, r, seq, http.StatusBadRequest, "ExpiredIteratorException",
			"chaos: injected iterator expired")
	default: // forward; DropResponse, SlowBody and CutStream act in modifyResponse
		p.count(func(s *Stats) { s.Forwarded[op]++ })
		ctx, cancel := context.WithCancelCause(r.Context())
		defer cancel(nil)
		rp := &requestPlan{plan: pl, cancel: cancel, client: client, op: op}
		defer rp.stop()
		p.rp.ServeHTTP(w, r.WithContext(context.WithValue(ctx, planKey{}, rp)))
	}
}

// requestPlan is a forwarded request's plan as modifyResponse sees it.
type requestPlan struct {
	plan
	// cancel ends the upstream request; CutStream calls it.
	cancel context.CancelCauseFunc
	// client is the request's client ("" for Start's listener), op its
	// operation: its answer is dropped if the client is isolated by then.
	client, op string
	// cutTimer is CutStream's timer, stopped when the request ends. Set in
	// modifyResponse and read in stop, both on the handler's goroutine.
	cutTimer *time.Timer
}

func (rp *requestPlan) stop() {
	if rp.cutTimer != nil {
		rp.cutTimer.Stop()
	}
}

// errCutStream is the cause of an upstream request ended by CutStream.
var errCutStream = errors.New("proxy: stream cut")

// plan draws the faults for one request under the lock, records them and
// reports them to the hook outside it.
func (p *Proxy) plan(op, target string) (plan, uint64, <-chan struct{}) {
	now := time.Now()
	p.mu.Lock()
	p.seq++
	seq := p.seq
	pl := decide(p.rules, op, target, p.rng.Float64)
	p.stats.Requests[op]++
	for _, k := range pl.fired {
		p.stats.Injected[Key{Op: op, Kind: k}]++
	}
	window := p.window
	p.mu.Unlock()
	if p.opts.onFault != nil {
		for _, k := range pl.fired {
			p.opts.onFault(Event{Time: now, Op: op, Kind: k, Seq: seq})
		}
	}
	return pl, seq, window
}

func (p *Proxy) count(f func(*Stats)) {
	p.mu.Lock()
	f(&p.stats)
	p.mu.Unlock()
}

// modifyResponse applies DropResponse, CutStream and SlowBody to a
// forwarded request, on the handler goroutine, once the headers arrived.
func (p *Proxy) modifyResponse(resp *http.Response) error {
	rp, _ := resp.Request.Context().Value(planKey{}).(*requestPlan)
	if rp == nil {
		return nil
	}
	if rp.terminal == DropResponse {
		_ = resp.Body.Close()
		return errDropResponse
	}
	if p.isolation(rp.client) != nil {
		p.cutOff(rp.op)
		_ = resp.Body.Close()
		return errDropResponse
	}
	if rp.cut > 0 {
		// Cancelling the upstream request fails the body copy, and
		// ReverseProxy then aborts the client's response mid-body.
		rp.cutTimer = time.AfterFunc(rp.cut, func() { rp.cancel(errCutStream) })
	}
	if rp.trickle > 0 {
		resp.Body = &slowBody{
			rc: resp.Body, ctx: resp.Request.Context(), done: p.done,
			chunk: p.opts.chunk, pause: rp.trickle,
		}
	}
	return nil
}

var errDropResponse = errors.New("proxy: response dropped")

// upstreamError ends a forwarded request that did not produce a response:
// a DropResponse fault, the client going away, or the target failing.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errDropResponse) {
		p.abort(w, r)
		return
	}
	if r.Context().Err() != nil {
		return // the client is gone or the proxy is closing
	}
	op := opName(r.Header.Get("X-Amz-Target"))
	p.count(func(s *Stats) { s.UpstreamErrors[op]++ })
	p.opts.logger.Warn("proxy: upstream failed", zap.String("op", op), zap.Error(err))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusBadGateway)
	_, _ = w.Write([]byte("chaos proxy: upstream failed\n"))
}
