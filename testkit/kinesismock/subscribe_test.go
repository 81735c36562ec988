package kinesismock

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// fakeHTTP answers every request with a fresh response from respond.
type fakeHTTP struct {
	respond func(req *http.Request) *http.Response
	calls   int
}

func (f *fakeHTTP) Do(req *http.Request) (*http.Response, error) {
	f.calls++
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	return f.respond(req), nil
}

func encodeMessages(t *testing.T, msgs ...eventstream.Message) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := eventstream.NewEncoder()
	for _, m := range msgs {
		if err := enc.Encode(&buf, m); err != nil {
			t.Fatalf("encode: %v", err)
		}
	}
	return buf.Bytes()
}

func message(headers map[string]string, payload string) eventstream.Message {
	var m eventstream.Message
	for _, name := range []string{":message-type", ":event-type", ":exception-type", ":content-type"} {
		if v, ok := headers[name]; ok {
			m.Headers.Set(name, eventstream.StringValue(v))
		}
	}
	m.Payload = []byte(payload)
	return m
}

func streamResponse(body []byte) func(*http.Request) *http.Response {
	return func(req *http.Request) *http.Response {
		return &http.Response{
			Status:        "200 OK",
			StatusCode:    http.StatusOK,
			Proto:         "HTTP/2.0",
			ProtoMajor:    2,
			Header:        http.Header{"Content-Type": {"application/vnd.amazon.eventstream"}},
			Body:          io.NopCloser(bytes.NewReader(body)),
			ContentLength: -1,
			Request:       req,
		}
	}
}

func fakeKinesis(fake *fakeHTTP) *kinesis.Client {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:  SubscribeToShardAdapter(fake),
	}
	return kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String("http://kinesis.invalid")
		o.RetryMaxAttempts = 1
	})
}

var subscribeInput = &kinesis.SubscribeToShardInput{
	ConsumerARN:      aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c:1"),
	ShardId:          aws.String("shardId-000000000000"),
	StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon},
}

func TestSubscribeToShardAdapterTurnsInStreamExceptionIntoTypedError(t *testing.T) {
	tests := []struct {
		name      string
		exception string
		payload   string
		check     func(error) bool
	}{
		{
			name:      "resource in use becomes *types.ResourceInUseException",
			exception: "ResourceInUseException",
			payload:   `{"message":"consumer is already subscribed"}`,
			check:     func(err error) bool { var e *types.ResourceInUseException; return errors.As(err, &e) },
		},
		{
			name:      "resource not found with an empty payload becomes *types.ResourceNotFoundException",
			exception: "ResourceNotFoundException",
			payload:   "",
			check:     func(err error) bool { var e *types.ResourceNotFoundException; return errors.As(err, &e) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := encodeMessages(t, message(map[string]string{
				":message-type":   "exception",
				":exception-type": tt.exception,
				":content-type":   "application/json",
			}, tt.payload))
			fake := &fakeHTTP{respond: streamResponse(body)}

			_, err := fakeKinesis(fake).SubscribeToShard(t.Context(), subscribeInput)
			if !tt.check(err) {
				t.Fatalf("SubscribeToShard error = %v (%T), want %s", err, err, tt.exception)
			}
			if tt.payload != "" && !strings.Contains(err.Error(), "already subscribed") {
				t.Errorf("error %q lost the exception message", err)
			}
		})
	}
}

func TestSubscribeToShardAdapterPrependsInitialResponse(t *testing.T) {
	event := `{"ContinuationSequenceNumber":"49000000000000000000000000000000000000000000000000000002",` +
		`"MillisBehindLatest":0,"Records":[{"Data":"aGVsbG8=","PartitionKey":"pk",` +
		`"SequenceNumber":"49000000000000000000000000000000000000000000000000000001",` +
		`"ApproximateArrivalTimestamp":1700000000.5}]}`
	headers := map[string]string{":message-type": "event", ":event-type": "SubscribeToShardEvent", ":content-type": "application/json"}
	body := encodeMessages(t, message(headers, event), message(headers, event))
	fake := &fakeHTTP{respond: streamResponse(body)}

	out, err := fakeKinesis(fake).SubscribeToShard(t.Context(), subscribeInput)
	if err != nil {
		t.Fatalf("SubscribeToShard: %v", err)
	}
	stream := out.GetStream()
	defer stream.Close()

	var got []string
	for ev := range stream.Events() {
		e, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
		if !ok {
			t.Fatalf("event %T, want SubscribeToShardEvent", ev)
		}
		for _, r := range e.Value.Records {
			got = append(got, string(r.Data))
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream error: %v", err)
	}
	if len(got) != 2 || got[0] != "hello" || got[1] != "hello" {
		t.Fatalf("records = %q, want two \"hello\" (both events, the first replayed)", got)
	}
}

func TestSubscribeToShardAdapterPassesOtherResponsesThrough(t *testing.T) {
	tests := []struct {
		name   string
		target string
		status int
	}{
		{name: "another operation is not touched", target: "Kinesis_20131202.ListShards", status: http.StatusOK},
		{name: "a SubscribeToShard HTTP error is not touched", target: "Kinesis_20131202.SubscribeToShard", status: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const body = "not an event stream"
			fake := &fakeHTTP{respond: func(req *http.Request) *http.Response {
				return &http.Response{StatusCode: tt.status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)), Request: req}
			}}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://kinesis.invalid/", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Amz-Target", tt.target)

			resp, err := SubscribeToShardAdapter(fake).Do(req)
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || string(got) != body {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, got, tt.status, body)
			}
		})
	}
}
