package proxy

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// draws returns a draw func that yields vals in order and fails the test
// when called more often than expected.
func draws(t *testing.T, vals ...float64) func() float64 {
	t.Helper()
	return func() float64 {
		if len(vals) == 0 {
			t.Fatalf("decide drew more numbers than the test planned")
		}
		v := vals[0]
		vals = vals[1:]
		return v
	}
}

func TestDecide(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name   string
		rules  []Rule
		op     string
		target string
		draws  []float64
		want   plan
	}{
		{
			name: "no rules forward the request untouched",
			op:   "GetRecords", target: "Kinesis_20131202.GetRecords",
		},
		{
			name:  "a rule for another operation draws nothing",
			rules: []Rule{{Op: "PutRecords", Kind: Throttle, Probability: 1}},
			op:    "GetRecords", target: "Kinesis_20131202.GetRecords",
		},
		{
			name:  "a rule fires when the draw is below its probability",
			rules: []Rule{{Op: "GetRecords", Kind: Throttle, Probability: 0.5}},
			op:    "GetRecords", target: "Kinesis_20131202.GetRecords",
			draws: []float64{0.49},
			want:  plan{terminal: Throttle, fired: []FaultKind{Throttle}},
		},
		{
			name:  "a rule does not fire when the draw equals its probability",
			rules: []Rule{{Kind: Error500, Probability: 0.5}},
			op:    "GetRecords", target: "Kinesis_20131202.GetRecords",
			draws: []float64{0.5},
		},
		{
			name:  "a rule matches the whole target header too",
			rules: []Rule{{Op: "DynamoDB_20120810.UpdateItem", Kind: Reset, Probability: 1}},
			op:    "UpdateItem", target: "DynamoDB_20120810.UpdateItem",
			draws: []float64{0},
			want:  plan{terminal: Reset, fired: []FaultKind{Reset}},
		},
		{
			name: "latencies add up and precede the terminal fault",
			rules: []Rule{
				{Kind: Latency, Probability: 1, Latency: 10 * ms},
				{Op: "GetRecords", Kind: Latency, Probability: 1, Latency: 5 * ms},
				{Kind: Error500, Probability: 1},
			},
			op: "GetRecords", target: "Kinesis_20131202.GetRecords",
			draws: []float64{0, 0, 0},
			want:  plan{delay: 15 * ms, terminal: Error500, fired: []FaultKind{Latency, Latency, Error500}},
		},
		{
			name: "the first terminal fault stops the evaluation",
			rules: []Rule{
				{Kind: Reset, Probability: 1},
				{Kind: Error500, Probability: 1},
			},
			op: "ListShards", target: "Kinesis_20131202.ListShards",
			draws: []float64{0},
			want:  plan{terminal: Reset, fired: []FaultKind{Reset}},
		},
		{
			name:  "expired iterator rules skip operations other than GetRecords",
			rules: []Rule{{Kind: ExpiredIterator, Probability: 1}},
			op:    "ListShards", target: "Kinesis_20131202.ListShards",
		},
		{
			name:  "a blackhole takes its hold from the rule's latency",
			rules: []Rule{{Kind: Blackhole, Probability: 1, Latency: time.Second}},
			op:    "UpdateItem", target: "DynamoDB_20120810.UpdateItem",
			draws: []float64{0},
			want:  plan{terminal: Blackhole, hold: time.Second, fired: []FaultKind{Blackhole}},
		},
		{
			name: "the first slow body rule sets the pace",
			rules: []Rule{
				{Kind: SlowBody, Probability: 1, Latency: 7 * ms},
				{Kind: SlowBody, Probability: 1, Latency: 9 * ms},
			},
			op: "GetRecords", target: "Kinesis_20131202.GetRecords",
			draws: []float64{0, 0},
			want:  plan{trickle: 7 * ms, fired: []FaultKind{SlowBody}},
		},
		{
			name: "a slow body is dropped when nothing is forwarded",
			rules: []Rule{
				{Kind: SlowBody, Probability: 1, Latency: 7 * ms},
				{Kind: Throttle, Probability: 1},
			},
			op: "GetRecords", target: "Kinesis_20131202.GetRecords",
			draws: []float64{0, 0},
			want:  plan{terminal: Throttle, fired: []FaultKind{Throttle}},
		},
		{
			name: "a slow body is kept with a dropped response",
			rules: []Rule{
				{Kind: SlowBody, Probability: 1, Latency: 7 * ms},
				{Kind: DropResponse, Probability: 1},
			},
			op: "PutRecords", target: "Kinesis_20131202.PutRecords",
			draws: []float64{0, 0},
			want:  plan{trickle: 7 * ms, terminal: DropResponse, fired: []FaultKind{SlowBody, DropResponse}},
		},
		{
			name: "the first cut stream rule sets the time and keeps the slow body",
			rules: []Rule{
				{Op: "SubscribeToShard", Kind: CutStream, Probability: 1, Latency: 3 * time.Second},
				{Kind: CutStream, Probability: 1, Latency: time.Second},
				{Kind: SlowBody, Probability: 1, Latency: 7 * ms},
			},
			op: "SubscribeToShard", target: "Kinesis_20131202.SubscribeToShard",
			draws: []float64{0, 0, 0},
			want:  plan{cut: 3 * time.Second, trickle: 7 * ms, fired: []FaultKind{CutStream, SlowBody}},
		},
		{
			name: "a cut stream is dropped when nothing is forwarded",
			rules: []Rule{
				{Kind: CutStream, Probability: 1, Latency: time.Second},
				{Kind: Reset, Probability: 1},
			},
			op: "SubscribeToShard", target: "Kinesis_20131202.SubscribeToShard",
			draws: []float64{0, 0},
			want:  plan{terminal: Reset, fired: []FaultKind{Reset}},
		},
		{
			name:  "requests without a target match only rules for any operation",
			rules: []Rule{{Op: "GetRecords", Kind: Reset, Probability: 1}, {Kind: Error500, Probability: 1}},
			draws: []float64{0},
			want:  plan{terminal: Error500, fired: []FaultKind{Error500}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decide(tt.rules, tt.op, tt.target, draws(t, tt.draws...))
			if len(got.fired) == 0 {
				got.fired = nil
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSetRulesValidates(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
		want string // substring of the error; empty for valid
	}{
		{name: "a throttle with a probability is valid", rule: Rule{Kind: Throttle, Probability: 0.3}},
		{name: "a zero probability is valid and never fires", rule: Rule{Kind: Reset}},
		{name: "an unset kind is rejected", rule: Rule{Probability: 1}, want: "kind"},
		{name: "an unknown kind is rejected", rule: Rule{Kind: Isolated + 1, Probability: 1}, want: "kind"},
		{name: "isolated is no rule kind", rule: Rule{Kind: Isolated, Probability: 1}, want: "kind"},
		{name: "a cut stream without a time is rejected", rule: Rule{Kind: CutStream, Probability: 1}, want: "positive Latency"},
		{name: "a probability above one is rejected", rule: Rule{Kind: Reset, Probability: 1.5}, want: "probability 1.5"},
		{name: "a negative probability is rejected", rule: Rule{Kind: Reset, Probability: -0.1}, want: "probability"},
		{name: "latency without a duration is rejected", rule: Rule{Kind: Latency, Probability: 1}, want: "positive Latency"},
		{name: "slow body without a pause is rejected", rule: Rule{Kind: SlowBody, Probability: 1}, want: "positive Latency"},
		{name: "a negative latency is rejected", rule: Rule{Kind: Blackhole, Probability: 1, Latency: -1}, want: "negative"},
	}
	p, err := New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.SetRules([]Rule{{Kind: Reset}, tt.rule})
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("SetRules: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "rule 1")):
				t.Fatalf("SetRules error = %v, want one naming rule 1 and containing %q", err, tt.want)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name   string
		target string
		opts   []Option
	}{
		{name: "a target without a scheme is rejected", target: "127.0.0.1:4567"},
		{name: "an https target is rejected", target: "https://127.0.0.1:4567"},
		{name: "a zero slow body chunk is rejected", target: "http://127.0.0.1:4567", opts: []Option{WithSlowBodyChunk(0)}},
		{name: "a nil logger is rejected", target: "http://127.0.0.1:4567", opts: []Option{WithLogger(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.target, tt.opts...); err == nil || !strings.HasPrefix(err.Error(), "proxy: ") {
				t.Fatalf("New error = %v, want a proxy: error", err)
			}
		})
	}
}

func TestFaultKindString(t *testing.T) {
	for k := Latency; k <= Isolated; k++ {
		if s := k.String(); s == "" || strings.HasPrefix(s, "FaultKind(") {
			t.Errorf("kind %d has no name", k)
		}
	}
	if got := FaultKind(0).String(); got != "FaultKind(0)" {
		t.Errorf("FaultKind(0).String() = %q", got)
	}
}

func TestOpName(t *testing.T) {
	for target, want := range map[string]string{
		"Kinesis_20131202.GetRecords":  "GetRecords",
		"DynamoDB_20120810.UpdateItem": "UpdateItem",
		"":                             "",
		"NoDot":                        "NoDot",
		strings.Repeat("x", 100):       strings.Repeat("x", 64),
	} {
		if got := opName(target); got != want {
			t.Errorf("opName(%q) = %q, want %q", target, got, want)
		}
	}
}
