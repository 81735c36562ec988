package awsconf

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// fakeProvider returns creds or err and counts its calls.
type fakeProvider struct {
	creds aws.Credentials
	err   error
	calls int
}

func (f *fakeProvider) Retrieve(context.Context) (aws.Credentials, error) {
	f.calls++
	return f.creds, f.err
}

func keys(id string) aws.Credentials {
	return aws.Credentials{AccessKeyID: id, SecretAccessKey: "secret-" + id, Source: id}
}

func TestChainReturnsTheFirstProviderThatYieldsCredentials(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name      string
		links     []*fakeProvider
		wantID    string
		wantCalls []int
	}{
		{
			name:      "the first provider wins and the later ones are not asked",
			links:     []*fakeProvider{{creds: keys("one")}, {creds: keys("two")}},
			wantID:    "one",
			wantCalls: []int{1, 0},
		},
		{
			name:      "a failing provider is skipped",
			links:     []*fakeProvider{{err: errBoom}, {creds: keys("two")}, {creds: keys("three")}},
			wantID:    "two",
			wantCalls: []int{1, 1, 0},
		},
		{
			name:      "a provider without keys is skipped",
			links:     []*fakeProvider{{creds: aws.Credentials{Source: "empty"}}, {creds: keys("two")}},
			wantID:    "two",
			wantCalls: []int{1, 1},
		},
		{
			name:      "an unavailable provider is skipped",
			links:     []*fakeProvider{{err: errSystemProperty}, {err: errBoom}, {creds: keys("three")}},
			wantID:    "three",
			wantCalls: []int{1, 1, 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c chain
			for i, f := range tt.links {
				c = append(c, link{name: string(rune('A' + i)), provider: f})
			}
			got, err := c.Retrieve(t.Context())
			if err != nil {
				t.Fatalf("Retrieve: %v", err)
			}
			if got.AccessKeyID != tt.wantID {
				t.Errorf("AccessKeyID = %q, want %q", got.AccessKeyID, tt.wantID)
			}
			for i, f := range tt.links {
				if f.calls != tt.wantCalls[i] {
					t.Errorf("provider %d called %d times, want %d", i, f.calls, tt.wantCalls[i])
				}
			}
		})
	}
}

func TestChainErrorNamesEveryProviderInOrder(t *testing.T) {
	errA, errB := errors.New("no file"), errors.New("no network")
	c := chain{
		{name: "ProfileCredentialsProvider", provider: &fakeProvider{err: errA}},
		{name: "InstanceProfileCredentialsProvider", provider: &fakeProvider{err: errB}},
	}
	_, err := c.Retrieve(t.Context())
	if err == nil {
		t.Fatal("Retrieve succeeded with no provider giving credentials")
	}
	if !errors.Is(err, errA) || !errors.Is(err, errB) {
		t.Errorf("error %v does not wrap both providers' errors", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	want := "awsconf: no provider of the chain gave credentials: ProfileCredentialsProvider: no file; InstanceProfileCredentialsProvider: no network"
	if msg != want {
		t.Errorf("error = %q\nwant    %q", msg, want)
	}
}

func TestChainStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	first := &fakeProvider{err: context.Canceled}
	second := &fakeProvider{creds: keys("two")}
	cancel()
	_, err := chain{{name: "A", provider: first}, {name: "B", provider: second}}.Retrieve(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Retrieve = %v, want context.Canceled", err)
	}
	if second.calls != 0 {
		t.Errorf("second provider called %d times after the context ended", second.calls)
	}
}
