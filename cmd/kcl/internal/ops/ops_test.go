package ops

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

func TestExplainShortensAWSErrors(t *testing.T) {
	notFound := &smithy.OperationError{ServiceID: "Kinesis", OperationName: "DescribeStreamSummary",
		Err: &types.ResourceNotFoundException{Message: new("Stream s under account 1 not found.")}}
	throttled := &smithy.OperationError{ServiceID: "Kinesis", OperationName: "ListShards",
		Err: &types.LimitExceededException{Message: new("Rate exceeded")}}
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"an API error keeps its operation, code and message", notFound,
			"DescribeStreamSummary: ResourceNotFoundException: Stream s under account 1 not found."},
		{"context around it stays", Failf("describe s: %w", notFound),
			"describe s: DescribeStreamSummary: ResourceNotFoundException: Stream s under account 1 not found."},
		{"throttling is said as such", throttled,
			"throttled by AWS, try again later (ListShards: LimitExceededException: Rate exceeded)"},
		{"a plain error stays on one line", errors.New("a\nb"), "a; b"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Explain(c.err); got != c.want {
				t.Errorf("Explain = %q, want %q", got, c.want)
			}
		})
	}
}

func TestFailKeepsUsageErrors(t *testing.T) {
	var u *UsageError
	if err := Fail(Usagef("bad")); !errors.As(err, &u) {
		t.Errorf("Fail(usage error) = %T, want it kept as a usage error", err)
	}
	var f *Failure
	if err := Fail(errors.New("x")); !errors.As(err, &f) {
		t.Errorf("Fail(error) = %T, want *Failure", err)
	}
	if Fail(nil) != nil {
		t.Error("Fail(nil) != nil")
	}
}

func TestOutputIsTableOrJSON(t *testing.T) {
	for name, want := range map[string]Output{"": Table, "table": Table, "json": JSON} {
		if got, err := (&Env{OutputName: name}).Output(); err != nil || got != want {
			t.Errorf("Output(%q) = %v, %v, want %v", name, got, err, want)
		}
	}
	var u *UsageError
	if _, err := (&Env{OutputName: "yaml"}).Output(); !errors.As(err, &u) {
		t.Errorf("Output(yaml) = %v, want a usage error", err)
	}
}

func TestPrintWritesTableOrJSON(t *testing.T) {
	v := struct {
		Name string `json:"name"`
	}{"s"}
	fill := func(t *Tab) { t.Row("NAME", "X"); t.Row("stream", 1) }
	var b bytes.Buffer
	if err := (&Env{Stdout: &b}).Print(v, fill); err != nil {
		t.Fatal(err)
	}
	if want := "NAME    X\nstream  1\n"; b.String() != want {
		t.Errorf("table = %q, want %q", b.String(), want)
	}
	b.Reset()
	if err := (&Env{Stdout: &b, OutputName: "json"}).Print(v, fill); err != nil {
		t.Fatal(err)
	}
	if want := "{\n  \"name\": \"s\"\n}\n"; b.String() != want {
		t.Errorf("json = %q, want %q", b.String(), want)
	}
}

func TestConfirm(t *testing.T) {
	for in, want := range map[string]bool{"y\n": true, "YES\n": true, "n\n": false, "": false, "sure\n": false} {
		var errb bytes.Buffer
		got, err := (&Env{Stdin: strings.NewReader(in), Stderr: &errb}).Confirm("delete?", false)
		if err != nil || got != want {
			t.Errorf("Confirm with %q = %v, %v, want %v", in, got, err, want)
		}
		if errb.String() != "delete? [y/N] " {
			t.Errorf("prompt = %q", errb.String())
		}
	}
	if ok, _ := (&Env{}).Confirm("delete?", true); !ok {
		t.Error("Confirm with yes = false")
	}
}
