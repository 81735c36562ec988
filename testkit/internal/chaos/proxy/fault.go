package proxy

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// FaultKind is one way the proxy misbehaves for a request.
type FaultKind uint8

const (
	// Latency delays the request by Rule.Latency before it is forwarded (or
	// before another fault drawn for the same request is applied). Several
	// firing Latency rules add up.
	Latency FaultKind = iota + 1
	// Reset drops the connection without a response; the target never sees
	// the request. HTTP/1.1: the TCP connection is closed with RST. h2c: the
	// stream is reset (RST_STREAM), the connection and its other streams
	// survive.
	Reset
	// Blackhole accepts the request and never answers; the target never sees
	// it. The request is held until the client gives up, Rule.Latency (when
	// non-zero) has passed, SetRules replaces the rule set, or the proxy
	// closes; then it is ended as Reset ends it.
	Blackhole
	// Error500 answers HTTP 500 InternalFailure without forwarding.
	Error500
	// Throttle answers HTTP 400 ProvisionedThroughputExceededException
	// without forwarding (Kinesis and DynamoDB share the error code).
	Throttle
	// ExpiredIterator answers HTTP 400 ExpiredIteratorException without
	// forwarding. Rules of this kind apply to GetRecords only; other
	// operations skip them without drawing.
	ExpiredIterator
	// SlowBody forwards the request and trickles the response body: at most
	// WithSlowBodyChunk bytes at a time, each after a pause of Rule.Latency.
	SlowBody
	// DropResponse forwards the request, so the target applies it, then
	// discards the response and ends the client's request as Reset does.
	// It is the fault that tests idempotency: the write happened, the
	// caller sees a connection error.
	DropResponse
	// CutStream forwards the request and aborts the response Rule.Latency
	// after its headers arrived, mid-body: an enhanced fan-out subscription
	// ends abruptly, as on a network blip. HTTP/1.1: the connection closes;
	// h2c: the stream is reset. A response that ends sooner is untouched
	// (the fault still counts as injected: it was drawn).
	CutStream
	// Isolated is not a Rule kind: it counts the requests of a client cut
	// off by Proxy.Isolate, held or with their answer dropped.
	Isolated
)

var kindNames = [...]string{
	Latency: "latency", Reset: "reset", Blackhole: "blackhole", Error500: "error500", Throttle: "throttle",
	ExpiredIterator: "expired-iterator", SlowBody: "slow-body", DropResponse: "drop-response", CutStream: "cut-stream",
	Isolated: "isolated",
}

// String returns a short lowercase name, e.g. "throttle".
func (k FaultKind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("FaultKind(%d)", uint8(k))
}

// terminal reports whether the fault answers the request itself, so the
// request is not forwarded (DropResponse forwards, but still ends it).
func (k FaultKind) terminal() bool {
	switch k {
	case Reset, Blackhole, Error500, Throttle, ExpiredIterator, DropResponse:
		return true
	}
	return false
}

// Rule injects one kind of fault into a share of the requests for an
// operation.
type Rule struct {
	// Op is the operation the rule applies to: the part of the X-Amz-Target
	// header after the dot ("GetRecords", "UpdateItem") or the whole header
	// ("Kinesis_20131202.GetRecords"). Empty matches every request.
	Op string
	// Kind is the fault to inject.
	Kind FaultKind
	// Probability is the chance, in [0, 1], that a matching request gets the
	// fault.
	Probability float64
	// Latency is the delay for Latency (required), the pause before each
	// chunk for SlowBody (required), the time from the response headers to
	// the cut for CutStream (required), and the longest hold for Blackhole
	// (zero: until released). Other kinds ignore it.
	Latency time.Duration
}

func (r Rule) validate() error {
	switch {
	case r.Kind < Latency || r.Kind > CutStream:
		return fmt.Errorf("kind %v unknown", r.Kind)
	case math.IsNaN(r.Probability) || r.Probability < 0 || r.Probability > 1:
		return fmt.Errorf("probability %v outside [0, 1]", r.Probability)
	case r.Latency < 0:
		return fmt.Errorf("latency %v negative", r.Latency)
	case (r.Kind == Latency || r.Kind == SlowBody || r.Kind == CutStream) && r.Latency == 0:
		return fmt.Errorf("%v needs a positive Latency", r.Kind)
	}
	return nil
}

// matches reports whether the rule applies to a request for op (short name)
// with the full target header.
func (r Rule) matches(op, target string) bool {
	if r.Kind == ExpiredIterator && op != "GetRecords" {
		return false
	}
	return r.Op == "" || r.Op == op || r.Op == target
}

// plan is what the proxy does with one request.
type plan struct {
	// delay is slept before anything else.
	delay time.Duration
	// terminal is the fault that ends the request; 0 forwards it.
	terminal FaultKind
	// hold bounds a Blackhole; zero holds until released.
	hold time.Duration
	// trickle is the pause before each response chunk; zero streams freely.
	trickle time.Duration
	// cut is how long after its headers the response is aborted; zero never.
	cut time.Duration
	// fired lists every fault drawn, in rule order, for stats and events.
	fired []FaultKind
}

// decide evaluates rules in order for one request. draw returns a uniform
// number in [0, 1) and is called once per matching rule until a terminal
// fault fires, so the sequence of draws, and with it a seeded run, depends
// only on the sequence of requests.
func decide(rules []Rule, op, target string, draw func() float64) plan {
	var p plan
	for _, r := range rules {
		if !r.matches(op, target) {
			continue
		}
		if draw() >= r.Probability {
			continue
		}
		switch {
		case r.Kind == Latency:
			p.delay += r.Latency
		case r.Kind == SlowBody:
			if p.trickle != 0 {
				continue // the first firing SlowBody rule sets the pace
			}
			p.trickle = r.Latency
		case r.Kind == CutStream:
			if p.cut != 0 {
				continue // the first firing CutStream rule sets the time
			}
			p.cut = r.Latency
		case r.Kind.terminal():
			p.terminal = r.Kind
			if r.Kind == Blackhole {
				p.hold = r.Latency
			}
		}
		p.fired = append(p.fired, r.Kind)
		if p.terminal != 0 {
			break
		}
	}
	if p.terminal != 0 && p.terminal != DropResponse {
		p.trickle, p.cut = 0, 0 // nothing is forwarded, so nothing trickles or is cut
		p.fired = dropKind(dropKind(p.fired, SlowBody), CutStream)
	}
	return p
}

func dropKind(kinds []FaultKind, k FaultKind) []FaultKind {
	out := kinds[:0]
	for _, x := range kinds {
		if x != k {
			out = append(out, x)
		}
	}
	return out
}

// opName returns the operation of an X-Amz-Target header: the part after
// the last dot, bounded in length so a stray client cannot grow the stats.
func opName(target string) string {
	op := target
	if i := strings.LastIndexByte(op, '.'); i >= 0 {
		op = op[i+1:]
	}
	if len(op) > 64 {
		op = op[:64]
	}
	return op
}

// Event records one injected fault, for the harness's history.
type Event struct {
	// Time is when the fault was decided.
	Time time.Time
	// Op is the operation, e.g. "GetRecords"; empty without X-Amz-Target.
	Op string
	// Kind is the fault.
	Kind FaultKind
	// Seq numbers requests through this proxy from 1, in arrival order.
	Seq uint64
}

// Key names a count in Stats.
type Key struct {
	// Op is the operation, as in Event.
	Op string
	// Kind is the fault.
	Kind FaultKind
}

// Stats counts what the proxy did since it was created.
type Stats struct {
	// Requests counts requests received, by operation.
	Requests map[string]int
	// Forwarded counts requests passed to the target, by operation.
	Forwarded map[string]int
	// Injected counts injected faults by operation and kind. A request can
	// get several (Latency and a terminal fault).
	Injected map[Key]int
	// UpstreamErrors counts forwarded requests that failed to reach the
	// target or to read its answer (answered 502), by operation.
	UpstreamErrors map[string]int
}

// ByKind sums Injected over operations.
func (s Stats) ByKind() map[FaultKind]int {
	out := make(map[FaultKind]int)
	for k, n := range s.Injected {
		out[k.Kind] += n
	}
	return out
}

func (s Stats) clone() Stats {
	c := Stats{
		Requests:       make(map[string]int, len(s.Requests)),
		Forwarded:      make(map[string]int, len(s.Forwarded)),
		Injected:       make(map[Key]int, len(s.Injected)),
		UpstreamErrors: make(map[string]int, len(s.UpstreamErrors)),
	}
	for k, v := range s.Requests {
		c.Requests[k] = v
	}
	for k, v := range s.Forwarded {
		c.Forwarded[k] = v
	}
	for k, v := range s.Injected {
		c.Injected[k] = v
	}
	for k, v := range s.UpstreamErrors {
		c.UpstreamErrors[k] = v
	}
	return c
}
