package history

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// decode parses b, one line, into p.w. It reads the subset of JSON the log
// lines use — one object of known fields whose values are strings, integers
// and booleans — and rejects everything else, including unknown fields and
// null; what it accepts, encoding/json decodes the same way (FuzzDecode
// checks this). It exists because encoding/json took 5µs a line: a run's
// million lines took too long to read.
func (p *parser) decode(b []byte) error {
	d := decoder{b: b}
	w := &p.w
	d.space()
	if !d.consume('{') {
		return d.errorf("want an object")
	}
	d.space()
	if d.consume('}') {
		return d.end()
	}
	for {
		d.space()
		key, esc, err := d.str()
		if err != nil {
			return err
		}
		name := ""
		if esc {
			if name, err = unescape(key); err != nil {
				return err
			}
			key = []byte(name)
		}
		d.space()
		if !d.consume(':') {
			return d.errorf("want ':'")
		}
		d.space()
		switch string(key) {
		case "type":
			w.Type, err = p.text(&d, true)
		case "t":
			w.T, err = p.time(&d)
		case "start":
			w.Start, err = p.time(&d)
		case "w":
			w.Worker, err = p.text(&d, true)
		case "shard":
			w.Shard, err = p.text(&d, true)
		case "key":
			w.Key, err = p.text(&d, true)
		case "seq":
			w.Seq, err = p.text(&d, false)
		case "kind":
			w.Kind, err = p.text(&d, true)
		case "pos":
			w.Position, err = p.text(&d, false)
		case "err":
			w.Err, err = p.text(&d, false)
		case "n":
			var v int64
			v, err = d.int()
			w.N = int(v)
		case "sub":
			w.Sub, err = d.uint()
		case "agg":
			w.Agg, err = d.bool()
		case "leader":
			w.Leader, err = d.bool()
		default:
			return fmt.Errorf("unknown field %q", key)
		}
		if err != nil {
			return fmt.Errorf("field %q: %w", key, err)
		}
		d.space()
		if d.consume('}') {
			return d.end()
		}
		if !d.consume(',') {
			return d.errorf("want ',' or '}'")
		}
	}
}

// text reads a string value, interned if it is a name that repeats.
func (p *parser) text(d *decoder, intern bool) (string, error) {
	raw, esc, err := d.str()
	if err != nil {
		return "", err
	}
	if esc {
		s, err := unescape(raw)
		if err != nil || !intern {
			return s, err
		}
		return p.intern(s), nil
	}
	if !intern {
		return string(raw), nil
	}
	if s, ok := p.strings[string(raw)]; ok { // no allocation
		return s, nil
	}
	return p.intern(string(raw)), nil
}

// time reads an RFC 3339 time, as time.Time's UnmarshalJSON does.
func (p *parser) time(d *decoder) (time.Time, error) {
	raw, esc, err := d.str()
	if err != nil {
		return time.Time{}, err
	}
	if esc { // time.Time's UnmarshalJSON does not unescape either
		return time.Time{}, errors.New("escapes or invalid UTF-8 in a time")
	}
	var t time.Time
	if err := t.UnmarshalText(raw); err != nil {
		return time.Time{}, err
	}
	return t, nil
}

// decoder reads JSON tokens from b.
type decoder struct {
	b []byte
	i int
}

var errSyntax = errors.New("invalid JSON")

func (d *decoder) errorf(what string) error {
	if d.i >= len(d.b) {
		return fmt.Errorf("%w: %s at the end of the line", errSyntax, what)
	}
	return fmt.Errorf("%w: %s at offset %d", errSyntax, what, d.i)
}

func (d *decoder) end() error {
	d.space()
	if d.i != len(d.b) {
		return d.errorf("trailing data")
	}
	return nil
}

func (d *decoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\r', '\n':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) consume(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// str reads a string token and returns its raw content; esc reports that
// the content has escapes or invalid UTF-8, for unescape to resolve.
func (d *decoder) str() (raw []byte, esc bool, err error) {
	if !d.consume('"') {
		return nil, false, d.errorf("want a string")
	}
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			raw = d.b[start:d.i]
			d.i++
			return raw, esc || !utf8.Valid(raw), nil
		case c == '\\':
			esc = true
			d.i += 2
		case c < 0x20:
			return nil, false, d.errorf("control character in a string")
		default:
			d.i++
		}
	}
	return nil, false, d.errorf("unterminated string")
}

// unescape resolves a string's escapes (and replaces invalid UTF-8) as
// encoding/json does, by asking it.
func unescape(raw []byte) (string, error) {
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return "", fmt.Errorf("%w: %v", errSyntax, err)
	}
	return s, nil
}

// number returns an integer token: -?(0|[1-9][0-9]*). Fractions and
// exponents are refused, as encoding/json refuses them for integers.
func (d *decoder) number() ([]byte, error) {
	start := d.i
	d.consume('-')
	digits := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	switch {
	case d.i == digits:
		return nil, d.errorf("want a number")
	case d.b[digits] == '0' && d.i-digits > 1:
		return nil, d.errorf("leading zero")
	case d.i < len(d.b) && (d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E'):
		return nil, d.errorf("want an integer")
	}
	return d.b[start:d.i], nil
}

func (d *decoder) int() (int64, error) {
	tok, err := d.number()
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(tok), 10, strconv.IntSize)
}

func (d *decoder) uint() (uint64, error) {
	tok, err := d.number()
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(string(tok), 10, 64)
}

func (d *decoder) bool() (bool, error) {
	switch {
	case len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "true":
		d.i += 4
		return true, nil
	case len(d.b)-d.i >= 5 && string(d.b[d.i:d.i+5]) == "false":
		d.i += 5
		return false, nil
	}
	return false, d.errorf("want true or false")
}
