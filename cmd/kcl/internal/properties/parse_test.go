package properties

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Entry
	}{
		{"an equals sign separates key and value", "a=b", []Entry{{"a", "b", 1}}},
		{"a colon separates key and value", "a:b", []Entry{{"a", "b", 1}}},
		{"whitespace alone separates key and value", "a b", []Entry{{"a", "b", 1}}},
		{"whitespace around the separator is dropped", "a \t = \f b", []Entry{{"a", "b", 1}}},
		{"only the first separator counts", "a = = b:c", []Entry{{"a", "= b:c", 1}}},
		{"a space then a colon is one separator", "a :b", []Entry{{"a", "b", 1}}},
		{"trailing whitespace stays in the value", "a=b  ", []Entry{{"a", "b  ", 1}}},
		{"a key alone has an empty value", "a", []Entry{{"a", "", 1}}},
		{"a key with a separator and nothing else has an empty value", "a=", []Entry{{"a", "", 1}}},
		{"a line may start with the separator (empty key)", "=b", []Entry{{"", "b", 1}}},
		{"leading whitespace is skipped", "  \t a=b", []Entry{{"a", "b", 1}}},
		{"hash and bang lines are comments", "# a=b\n! c=d\n  # e=f\ng=h", []Entry{{"g", "h", 4}}},
		{"a hash after a key is part of the value", "a=b # c", []Entry{{"a", "b # c", 1}}},
		{"blank lines are skipped and lines still counted", "\n\n  \na=b", []Entry{{"a", "b", 4}}},
		{"a trailing backslash continues the line without the next line's indent",
			"a=one \\\n    two \\\n  three\nb=c", []Entry{{"a", "one two three", 1}, {"b", "c", 4}}},
		{"an even number of trailing backslashes does not continue", "a=b\\\\\nc=d", []Entry{{"a", `b\`, 1}, {"c", "d", 2}}},
		{"a comment line does not continue", "# a \\\nb=c", []Entry{{"b", "c", 2}}},
		{"a continued line starting with a hash is not a comment", "a=b\\\n#c", []Entry{{"a", "b#c", 1}}},
		{"a continuation into an empty line ends the value", "a=b\\\n\nc=d", []Entry{{"a", "b", 1}, {"c", "d", 3}}},
		{"a continuation at the end of the file is dropped", "a=b\\", []Entry{{"a", "b", 1}}},
		{"a continuation may split the key", "ke\\\n  y=v", []Entry{{"key", "v", 1}}},
		{"CRLF line endings", "a=b\r\nc=d\r\n", []Entry{{"a", "b", 1}, {"c", "d", 2}}},
		{"CR line endings", "a=b\rc=d", []Entry{{"a", "b", 1}, {"c", "d", 2}}},
		{"CRLF continuation", "a=b\\\r\n  c", []Entry{{"a", "bc", 1}}},
		{"a byte order mark is skipped", "\ufeffa=b", []Entry{{"a", "b", 1}}},
		{"escapes for tab, newline, return and form feed", `a=\t\n\r\f`, []Entry{{"a", "\t\n\r\f", 1}}},
		{"a unicode escape", `a=caf\u00e9`, []Entry{{"a", "café", 1}}},
		{"an upper-case unicode escape", `a=\u00C9`, []Entry{{"a", "É", 1}}},
		{"a surrogate pair of unicode escapes is one rune", `a=\ud83d\ude00`, []Entry{{"a", "😀", 1}}},
		{"a lone surrogate becomes the replacement character", `a=\ud83dx`, []Entry{{"a", "\ufffdx", 1}}},
		{"a backslash before another character is that character", `a=\b\\\q\é`, []Entry{{"a", `b\qé`, 1}}},
		{"escaped separators belong to the key", `a\=b\:c\ d=e`, []Entry{{"a=b:c d", "e", 1}}},
		{"an escaped separator in the value", `a=b\=c`, []Entry{{"a", "b=c", 1}}},
		{"duplicate keys are all returned in order", "a=1\na=2", []Entry{{"a", "1", 1}, {"a", "2", 2}}},
		{"UTF-8 text is read as UTF-8", "a=naïve", []Entry{{"a", "naïve", 1}}},
		{"bytes that are not UTF-8 are read as ISO-8859-1", "a=na\xefve", []Entry{{"a", "naïve", 1}}},
		{"an empty file has no entries", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseMalformedUnicodeEscapes(t *testing.T) {
	in := "a=\\u12\nb=ok\nc=\\uXYZW\n\\u1=v"
	got, err := Parse(strings.NewReader(in))
	if want := []Entry{{"b", "ok", 2}}; !reflect.DeepEqual(got, want) {
		t.Errorf("entries: got %+v, want %+v", got, want)
	}
	var lines []int
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var se *SyntaxError
		if !errors.As(e, &se) {
			t.Fatalf("error %v is not a *SyntaxError", e)
		}
		lines = append(lines, se.Line)
	}
	if want := []int{1, 3, 4}; !reflect.DeepEqual(lines, want) {
		t.Errorf("error lines: got %v, want %v", lines, want)
	}
	if want := `properties: line 1: malformed \uXXXX escape`; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error: got %q, want prefix %q", err, want)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestParseReadError(t *testing.T) {
	_, err := Parse(failingReader{})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("got %v, want the read error", err)
	}
	if _, _, err := Load(failingReader{}); err == nil {
		t.Fatal("Load: got nil error")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("a=b\\\n  c\r\n# x\n! y\nk:v\n\\u0041=\\ud83d\\ude00")
	f.Add("executableName=python3 app.py\napplicationName=a\nstreamArn=arn:aws:kinesis:us-east-1:123456789012:stream/s\nAwsCredentialsProvider=ProfileCredentialsProvider|p,StsAssumeRoleCredentialsProvider|r|s|externalId=x")
	f.Add("\ufeffmaxRecords=\\u00")
	f.Fuzz(func(t *testing.T, in string) {
		entries, _ := Parse(strings.NewReader(in))
		lines := len(naturalLines(in)) + 1
		for _, e := range entries {
			if e.Line < 1 || e.Line > lines {
				t.Fatalf("entry %q: line %d outside 1..%d", e.Key, e.Line, lines)
			}
		}
		c, _, err := Load(strings.NewReader(in))
		if (c == nil) == (err == nil) {
			t.Fatalf("Load: config %v with error %v", c, err)
		}
	})
}
