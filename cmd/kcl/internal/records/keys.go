package records

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// KeyFunc returns the partition key of the n-th input line (n from 0).
type KeyFunc func(n uint64, line []byte) (string, error)

// ErrNoKey is wrapped by the error a JSON-field KeyFunc returns for a line
// that is not a JSON object or lacks the field.
var ErrNoKey = errors.New("records: no partition key")

// TemplateKey returns a KeyFunc that expands tmpl: {n} becomes the line's
// number (from 0) and {uuid} a random version 4 UUID; any other text is kept.
// A template without placeholders is a fixed key. It fails on an empty
// template or an unknown {placeholder}.
func TemplateKey(tmpl string) (KeyFunc, error) {
	if tmpl == "" {
		return nil, errors.New("partition key template is empty")
	}
	var parts []string // literal, placeholder, literal, ...
	rest := tmpl
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			parts = append(parts, rest)
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			parts = append(parts, rest)
			break
		}
		ph := rest[i : i+j+1]
		if ph != "{n}" && ph != "{uuid}" {
			return nil, fmt.Errorf("partition key template %q: unknown placeholder %s (use {n} or {uuid})", tmpl, ph)
		}
		parts = append(parts, rest[:i], ph)
		rest = rest[i+j+1:]
	}
	if len(parts) == 1 {
		return func(uint64, []byte) (string, error) { return tmpl, nil }, nil
	}
	return func(n uint64, _ []byte) (string, error) {
		var b strings.Builder
		for i, p := range parts {
			switch {
			case i%2 == 0:
				b.WriteString(p)
			case p == "{n}":
				b.WriteString(strconv.FormatUint(n, 10))
			default:
				b.WriteString(newUUID())
			}
		}
		return b.String(), nil
	}, nil
}

// FieldKey returns a KeyFunc that takes the partition key from the
// top-level field of each line, a JSON object: a string as it is, a number
// or boolean as written in the line.
func FieldKey(field string) KeyFunc {
	return func(n uint64, line []byte) (string, error) {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(line, &obj); err != nil {
			return "", fmt.Errorf("%w: line %d is not a JSON object", ErrNoKey, n+1)
		}
		raw, ok := obj[field]
		if !ok || string(raw) == "null" {
			return "", fmt.Errorf("%w: line %d has no field %q", ErrNoKey, n+1, field)
		}
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			if s == "" {
				return "", fmt.Errorf("%w: line %d has an empty %q", ErrNoKey, n+1, field)
			}
			return s, nil
		}
		if raw[0] == '{' || raw[0] == '[' {
			return "", fmt.Errorf("%w: line %d: field %q is not a string, number or boolean", ErrNoKey, n+1, field)
		}
		return string(raw), nil
	}
}

func newUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	const hex = "0123456789abcdef"
	var b [36]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hex[c>>4], hex[c&0xf]
		j += 2
	}
	return string(b[:])
}
