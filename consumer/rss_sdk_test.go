package consumer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"

	"github.com/kclgo/kcl/testkit/fakekinesis"
)

// sdkClient returns a *kinesis.Client whose HTTP client answers from f in
// memory, so that a measurement includes the SDK's own cost (middleware,
// signing, JSON) but no network. It handles the calls a Worker makes.
func sdkClient(f *fakekinesis.Fake) *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://kinesis.invalid"),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDKCLTEST", "kcl-test-secret", ""),
		HTTPClient:   fakeHTTP{f},
	})
}

// fakeHTTP serves Kinesis's JSON 1.1 protocol from a fake.
type fakeHTTP struct{ f *fakekinesis.Fake }

func (h fakeHTTP) Do(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	ctx := req.Context()
	var out any
	switch op := strings.TrimPrefix(req.Header.Get("X-Amz-Target"), "Kinesis_20131202."); op {
	case "DescribeStreamSummary":
		out, err = call(ctx, body, h.f.DescribeStreamSummary)
	case "ListShards":
		out, err = call(ctx, body, h.f.ListShards)
	case "GetShardIterator":
		out, err = call(ctx, body, h.f.GetShardIterator)
	case "GetRecords":
		out, err = call(ctx, body, h.f.GetRecords)
	default:
		err = &smithy.GenericAPIError{Code: "UnknownOperationException", Message: op}
	}
	status := http.StatusOK
	if err != nil {
		status = http.StatusBadRequest
		code := "InternalFailure"
		if api, ok := errors.AsType[smithy.APIError](err); ok {
			code = api.ErrorCode()
		}
		out = map[string]string{"__type": code, "message": err.Error()}
	}
	b, err := toWire(out)
	if err != nil {
		return nil, err
	}
	return &http.Response{
		StatusCode:    status,
		Header:        http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
		Body:          io.NopCloser(bytes.NewReader(b)),
		ContentLength: int64(len(b)),
		Request:       req,
	}, nil
}

func call[In, Out any](ctx context.Context, body []byte, op func(context.Context, *In, ...func(*kinesis.Options)) (*Out, error)) (any, error) {
	in := new(In)
	if err := json.Unmarshal(body, in); err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	return op(ctx, in)
}

// toWire encodes v as JSON with timestamps in epoch seconds, as the JSON 1.1
// protocol has them.
func toWire(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	return json.Marshal(epochTimes(doc))
}

func epochTimes(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && strings.HasSuffix(k, "Timestamp") {
				if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
					v[k] = float64(t.UnixNano()) / 1e9
					continue
				}
			}
			v[k] = epochTimes(x)
		}
	case []any:
		for i := range v {
			v[i] = epochTimes(v[i])
		}
	}
	return v
}
