package properties

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// An Entry is one key and value of a properties file, unescaped, with the
// 1-based line its logical line starts on.
type Entry struct {
	Key   string
	Value string
	Line  int
}

// A SyntaxError reports a line Java's Properties.load would reject; the only
// such case is a malformed \uXXXX escape.
type SyntaxError struct {
	Line   int
	Reason string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("properties: line %d: %s", e.Line, e.Reason)
}

// Parse reads a file in the syntax of Java's Properties.load and returns its
// entries in file order; a key given twice appears twice (the last one wins
// in [Load], as in Java).
//
// The syntax: lines end with \n, \r or \r\n; leading spaces, tabs and form
// feeds are skipped; a line whose first other character is # or ! is a
// comment; a line ending in an odd number of backslashes continues on the
// next line, whose leading whitespace is dropped; the key ends at the first
// unescaped '=', ':' or whitespace, and the value starts after that
// separator and the whitespace around it; in keys and values \t, \n, \r, \f
// and \uXXXX are escapes and a backslash before any other character stands
// for that character.
//
// Unlike Java, which reads bytes as ISO-8859-1, Parse reads UTF-8 (what every
// editor writes today) and skips a leading byte order mark; a file that is not
// valid UTF-8 is read as ISO-8859-1, as Java would. Every malformed escape in
// the file is reported, joined, as a [*SyntaxError]; the other entries are
// still returned.
func Parse(r io.Reader) ([]Entry, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("properties: read: %w", err)
	}
	return parse(decode(data))
}

func decode(data []byte) string {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if utf8.Valid(data) {
		return string(data)
	}
	runes := make([]rune, len(data))
	for i, b := range data {
		runes[i] = rune(b)
	}
	return string(runes)
}

// naturalLines splits s on \n, \r and \r\n.
func naturalLines(s string) []string {
	var lines []string
	for len(s) > 0 {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			lines = append(lines, s)
			break
		}
		lines = append(lines, s[:i])
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		s = s[i+1:]
	}
	return lines
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\f' }

func trimLeftSpace(s string) string {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return s[i:]
}

// continues reports whether line ends in an odd number of backslashes.
func continues(line string) bool {
	n := 0
	for i := len(line) - 1; i >= 0 && line[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

func parse(s string) ([]Entry, error) {
	lines := naturalLines(s)
	var (
		entries []Entry
		errs    []error
	)
	for i := 0; i < len(lines); i++ {
		start := i + 1
		line := trimLeftSpace(lines[i])
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		var logical strings.Builder
		for continues(line) {
			logical.WriteString(line[:len(line)-1])
			if i+1 >= len(lines) {
				line = ""
				break
			}
			i++
			line = trimLeftSpace(lines[i])
		}
		logical.WriteString(line)
		key, value := splitKeyValue(logical.String())
		k, kerr := unescape(key)
		v, verr := unescape(value)
		if err := errors.Join(kerr, verr); err != nil {
			errs = append(errs, &SyntaxError{Line: start, Reason: err.Error()})
			continue
		}
		entries = append(entries, Entry{Key: k, Value: v, Line: start})
	}
	return entries, errors.Join(errs...)
}

// splitKeyValue splits a logical line into its still-escaped key and value.
func splitKeyValue(line string) (key, value string) {
	end := len(line)
	valueStart := len(line)
	hasSep := false
	backslash := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		if !backslash && (c == '=' || c == ':') {
			end, valueStart, hasSep = i, i+1, true
			break
		}
		if !backslash && isSpace(c) {
			end, valueStart = i, i+1
			break
		}
		backslash = c == '\\' && !backslash
	}
	for valueStart < len(line) {
		c := line[valueStart]
		if !isSpace(c) {
			if hasSep || (c != '=' && c != ':') {
				break
			}
			hasSep = true
		}
		valueStart++
	}
	return line[:end], line[valueStart:]
}

// unescape resolves the escapes of a key or value.
func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			break // a lone trailing backslash is dropped, as in Java
		}
		switch c = s[i]; c {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			r, ok := hex4(s[i+1:])
			if !ok {
				return "", errors.New(`malformed \uXXXX escape`)
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if low, ok := hex4(strings.TrimPrefix(s[i+1:], `\u`)); ok && strings.HasPrefix(s[i+1:], `\u`) {
					if pair := utf16.DecodeRune(r, low); pair != utf8.RuneError {
						r = pair
						i += 6
					}
				}
			}
			b.WriteRune(r) // a lone surrogate becomes U+FFFD
		default:
			_, size := utf8.DecodeRuneInString(s[i:])
			b.WriteString(s[i : i+size])
			i += size - 1
		}
	}
	return b.String(), nil
}

func hex4(s string) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[:4]) {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}
