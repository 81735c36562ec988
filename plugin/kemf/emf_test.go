package kemf_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// validUnits are CloudWatch's units, the only values EMF allows for Unit.
var validUnits = map[string]bool{
	"Seconds": true, "Microseconds": true, "Milliseconds": true,
	"Bytes": true, "Kilobytes": true, "Megabytes": true, "Gigabytes": true, "Terabytes": true,
	"Bits": true, "Kilobits": true, "Megabits": true, "Gigabits": true, "Terabits": true,
	"Percent": true, "Count": true,
	"Bytes/Second": true, "Kilobytes/Second": true, "Megabytes/Second": true, "Gigabytes/Second": true, "Terabytes/Second": true,
	"Bits/Second": true, "Kilobits/Second": true, "Megabits/Second": true, "Gigabits/Second": true, "Terabits/Second": true,
	"Count/Second": true, "None": true,
}

// emfLine is one parsed, valid EMF line: its dimension values and metric
// values by name, its namespace, timestamp and dimension sets.
type emfLine struct {
	namespace string
	timestamp time.Time
	dimSets   [][]string
	dims      map[string]string
	metrics   map[string][]float64
	units     map[string]string
}

// parseEMF validates every line of out against the structure the EMF
// specification requires and returns them parsed. It fails the test at the
// first violation, naming the line.
func parseEMF(t testing.TB, out []byte) []emfLine {
	t.Helper()
	if len(out) > 0 && out[len(out)-1] != '\n' {
		t.Fatalf("output does not end with a newline: %q", out[max(0, len(out)-80):])
	}
	var lines []emfLine
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		l, err := validateEMF(sc.Bytes())
		if err != nil {
			t.Fatalf("line %d is not valid EMF: %v\n%s", n, err, sc.Bytes())
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// validateEMF checks one line against the specification: a JSON object
// whose _aws member holds Timestamp (milliseconds since the epoch) and a
// CloudWatchMetrics array of directives, each with a Namespace, Dimensions
// (an array of dimension sets of at most 30 names, each name a string member
// of the root) and Metrics (at most 100 definitions with a Name and a valid
// Unit, each name a member of the root whose value is a number or an array
// of at most 100 numbers); directives and definitions hold no other members.
func validateEMF(b []byte) (emfLine, error) {
	var root map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&root); err != nil {
		return emfLine{}, fmt.Errorf("not a JSON object: %w", err)
	}
	if dec.More() {
		return emfLine{}, fmt.Errorf("data after the JSON object")
	}
	rawAWS, ok := root["_aws"]
	if !ok {
		return emfLine{}, fmt.Errorf("no _aws member")
	}
	var aws map[string]json.RawMessage
	if err := json.Unmarshal(rawAWS, &aws); err != nil {
		return emfLine{}, fmt.Errorf("_aws is not an object: %w", err)
	}
	var ts json.Number
	if err := strictNumber(aws["Timestamp"], &ts); err != nil {
		return emfLine{}, fmt.Errorf("_aws.Timestamp: %w", err)
	}
	ms, err := ts.Int64()
	if err != nil {
		return emfLine{}, fmt.Errorf("_aws.Timestamp %s is not an integer of milliseconds", ts)
	}
	at := time.UnixMilli(ms)
	if d := time.Since(at); d < -time.Hour || d > time.Hour {
		return emfLine{}, fmt.Errorf("_aws.Timestamp %s is %v from now: not milliseconds since the epoch", ts, d)
	}
	var directives []json.RawMessage
	if err := json.Unmarshal(aws["CloudWatchMetrics"], &directives); err != nil || len(directives) == 0 {
		return emfLine{}, fmt.Errorf("_aws.CloudWatchMetrics is not a non-empty array (%v)", err)
	}
	l := emfLine{timestamp: at, dims: map[string]string{}, metrics: map[string][]float64{}, units: map[string]string{}}
	for i, raw := range directives {
		var d map[string]json.RawMessage
		if err := json.Unmarshal(raw, &d); err != nil {
			return l, fmt.Errorf("directive %d is not an object", i)
		}
		for k := range d {
			if k != "Namespace" && k != "Dimensions" && k != "Metrics" {
				return l, fmt.Errorf("directive %d has a member %q the specification does not define", i, k)
			}
		}
		var ns string
		if err := json.Unmarshal(d["Namespace"], &ns); err != nil || ns == "" || len(ns) > 255 {
			return l, fmt.Errorf("directive %d: Namespace is not a string of 1 to 255 characters", i)
		}
		l.namespace = ns
		var sets [][]string
		if err := json.Unmarshal(d["Dimensions"], &sets); err != nil || sets == nil {
			return l, fmt.Errorf("directive %d: Dimensions is not an array of arrays of strings (%v)", i, err)
		}
		for _, set := range sets {
			if len(set) > 30 {
				return l, fmt.Errorf("directive %d: a dimension set of %d names, more than 30", i, len(set))
			}
			for _, name := range set {
				var v string
				if err := json.Unmarshal(root[name], &v); err != nil {
					return l, fmt.Errorf("dimension %q is not a string member of the root", name)
				}
				if v == "" || len(v) > 1024 {
					return l, fmt.Errorf("dimension %q has a value of %d characters", name, len(v))
				}
				l.dims[name] = v
			}
		}
		l.dimSets = append(l.dimSets, sets...)
		var defs []map[string]json.RawMessage
		if err := json.Unmarshal(d["Metrics"], &defs); err != nil {
			return l, fmt.Errorf("directive %d: Metrics is not an array of objects", i)
		}
		if len(defs) > 100 {
			return l, fmt.Errorf("directive %d has %d metrics, more than 100", i, len(defs))
		}
		for _, def := range defs {
			for k := range def {
				if k != "Name" && k != "Unit" && k != "StorageResolution" {
					return l, fmt.Errorf("a metric definition has a member %q the specification does not define", k)
				}
			}
			var name, unit string
			if err := json.Unmarshal(def["Name"], &name); err != nil || name == "" || len(name) > 255 {
				return l, fmt.Errorf("a metric definition has no Name of 1 to 255 characters")
			}
			if raw, ok := def["Unit"]; ok {
				if err := json.Unmarshal(raw, &unit); err != nil || !validUnits[unit] {
					return l, fmt.Errorf("metric %s: Unit %s is not a CloudWatch unit", name, raw)
				}
			}
			if _, dup := l.metrics[name]; dup {
				return l, fmt.Errorf("metric %s defined twice", name)
			}
			vals, err := metricValues(root[name])
			if err != nil {
				return l, fmt.Errorf("metric %s: %w", name, err)
			}
			l.metrics[name], l.units[name] = vals, unit
		}
	}
	return l, nil
}

// strictNumber decodes a JSON number, refusing strings and the rest.
func strictNumber(raw json.RawMessage, n *json.Number) error {
	if len(raw) == 0 {
		return fmt.Errorf("missing")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return err
	}
	num, ok := v.(json.Number)
	if !ok {
		return fmt.Errorf("%s is not a number", raw)
	}
	*n = num
	return nil
}

// metricValues decodes a metric member: a number, or an array of 1 to 100
// numbers.
func metricValues(raw json.RawMessage) ([]float64, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("no member of the root holds its value")
	}
	var n json.Number
	if strictNumber(raw, &n) == nil {
		f, err := n.Float64()
		return []float64{f}, err
	}
	var arr []json.RawMessage
	if err := json.Unmarshal(raw, &arr); err != nil {
		return nil, fmt.Errorf("value %s is neither a number nor an array", raw)
	}
	if len(arr) == 0 || len(arr) > 100 {
		return nil, fmt.Errorf("an array of %d values (1 to 100 allowed)", len(arr))
	}
	out := make([]float64, len(arr))
	for i, e := range arr {
		if err := strictNumber(e, &n); err != nil {
			return nil, fmt.Errorf("value %d: %w", i, err)
		}
		f, err := n.Float64()
		if err != nil {
			return nil, err
		}
		out[i] = f
	}
	return out, nil
}

// find returns the lines whose dimension values include every pair of kv
// (name, value, name, value...).
func find(lines []emfLine, kv ...string) []emfLine {
	var out []emfLine
	for _, l := range lines {
		ok := true
		for i := 0; i < len(kv); i += 2 {
			if l.dims[kv[i]] != kv[i+1] {
				ok = false
			}
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// total sums a metric's values over lines.
func total(lines []emfLine, metric string) float64 {
	v := 0.0
	for _, l := range lines {
		for _, x := range l.metrics[metric] {
			v += x
		}
	}
	return v
}

// values gathers a metric's values over lines.
func values(lines []emfLine, metric string) []float64 {
	var out []float64
	for _, l := range lines {
		out = append(out, l.metrics[metric]...)
	}
	return out
}

func maxOf(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	return slices.Max(vs)
}

// syncBuffer is a bytes.Buffer safe for the exporter's writer goroutine and
// the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func TestValidatorRejectsWhatTheSpecificationForbids(t *testing.T) {
	const ok = `{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"ns","Dimensions":[["Operation"]],"Metrics":[{"Name":"M","Unit":"Count"}]}]},"Operation":"op","M":1}`
	now := time.Now().UnixMilli()
	if _, err := validateEMF(fmt.Appendf(nil, ok, now)); err != nil {
		t.Fatalf("a valid line is refused: %v", err)
	}
	for _, tc := range []struct{ name, line string }{
		{"no _aws", `{"M":1}`},
		{"a timestamp in seconds", fmt.Sprintf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"ns","Dimensions":[[]],"Metrics":[{"Name":"M"}]}]},"M":1}`, now/1000)},
		{"a string timestamp", `{"_aws":{"Timestamp":"1","CloudWatchMetrics":[]},"M":1}`},
		{"no directive", fmt.Sprintf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[]},"M":1}`, now)},
		{"a dimension missing from the root", fmt.Sprintf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"ns","Dimensions":[["Operation"]],"Metrics":[{"Name":"M"}]}]},"M":1}`, now)},
		{"a metric missing from the root", fmt.Sprintf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"ns","Dimensions":[[]],"Metrics":[{"Name":"M"}]}]}}`, now)},
		{"a string metric value", fmt.Sprintf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"ns","Dimensions":[[]],"Metrics":[{"Name":"M"}]}]},"M":"1"}`, now)},
		{"an invalid unit", fmt.Sprintf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"ns","Dimensions":[[]],"Metrics":[{"Name":"M","Unit":"ms"}]}]},"M":1}`, now)},
		{"Dimensions not an array of arrays", fmt.Sprintf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"ns","Dimensions":["Operation"],"Metrics":[{"Name":"M"}]}]},"Operation":"op","M":1}`, now)},
		{"101 values", fmt.Sprintf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"ns","Dimensions":[[]],"Metrics":[{"Name":"M"}]}]},"M":[%s1]}`, now, bytes.Repeat([]byte("1,"), 100))},
		{"an extra directive member", fmt.Sprintf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"ns","Dimensions":[[]],"Metrics":[{"Name":"M"}],"X":1}]},"M":1}`, now)},
		{"text after the object", fmt.Sprintf(ok+` x`, now)},
		{"31 dimensions", func() string {
			var names, members []string
			for i := range 31 {
				names = append(names, fmt.Sprintf("%q", fmt.Sprint("D", i)))
				members = append(members, fmt.Sprintf(`"D%d":"v"`, i))
			}
			return fmt.Sprintf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"ns","Dimensions":[[%s]],"Metrics":[{"Name":"M"}]}]},%s,"M":1}`,
				now, strings.Join(names, ","), strings.Join(members, ","))
		}()},
		{"101 metrics", func() string {
			var defs, members []string
			for i := range 101 {
				defs = append(defs, fmt.Sprintf(`{"Name":"M%d","Unit":"Count"}`, i))
				members = append(members, fmt.Sprintf(`"M%d":1`, i))
			}
			return fmt.Sprintf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"ns","Dimensions":[[]],"Metrics":[%s]}]},%s}`,
				now, strings.Join(defs, ","), strings.Join(members, ","))
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := validateEMF([]byte(tc.line)); err == nil {
				t.Errorf("accepted: %s", tc.line)
			}
		})
	}
}
