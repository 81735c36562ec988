// Package kinesismock makes aws-sdk-go-v2 work with kinesis-mock, the local
// Kinesis emulator, where the emulator departs from AWS in ways the SDK
// cannot accept. Tests, the examples and the demo use it when they run
// against the emulator; code that talks to AWS never needs it.
package kinesismock

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// SubscribeToShardAdapter wraps an HTTP client so that SubscribeToShard
// responses from kinesis-mock look like those of AWS to aws-sdk-go-v2. It is
// for the emulator only: AWS needs no adapter.
//
// kinesis-mock differs from AWS in two ways the SDK cannot accept:
//
//   - AWS starts the event stream with an "initial-response" event, which the
//     SDK requires; kinesis-mock starts directly with SubscribeToShardEvent.
//     The adapter prepends an empty initial-response event.
//   - AWS rejects a subscription (ResourceInUseException,
//     ResourceNotFoundException, ...) with an HTTP error; kinesis-mock answers
//     200 and sends the rejection as the stream's first message, of
//     :message-type exception. The adapter turns such a response into HTTP 400
//     with X-Amzn-ErrorType set to the exception type and the exception
//     payload as body, so the SDK returns the typed error as it does on AWS.
//
// To see the first message, Do reads it before returning, so it blocks until
// kinesis-mock sends its first event (about a second). The rest of the stream
// is not buffered: the first message's bytes are replayed, then the original
// body is read as the SDK consumes it. Responses to other operations, and
// non-200 responses, pass through untouched.
func SubscribeToShardAdapter(next aws.HTTPClient) aws.HTTPClient {
	return &subscribeToShardAdapter{next: next}
}

type subscribeToShardAdapter struct {
	next aws.HTTPClient
}

// encodeInitialResponse encodes an empty initial-response event, as AWS sends
// it first on every SubscribeToShard stream.
func encodeInitialResponse() ([]byte, error) {
	var msg eventstream.Message
	msg.Headers.Set(":message-type", eventstream.StringValue("event"))
	msg.Headers.Set(":event-type", eventstream.StringValue("initial-response"))
	msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
	msg.Payload = []byte("{}")
	var buf bytes.Buffer
	if err := eventstream.NewEncoder().Encode(&buf, msg); err != nil {
		return nil, fmt.Errorf("testenv: encode initial-response: %w", err)
	}
	return buf.Bytes(), nil
}

func (a *subscribeToShardAdapter) Do(req *http.Request) (*http.Response, error) {
	resp, err := a.next.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK || !strings.HasSuffix(req.Header.Get("X-Amz-Target"), ".SubscribeToShard") {
		return resp, err
	}

	// Decode the first message, keeping its bytes to replay them.
	var first bytes.Buffer
	msg, err := eventstream.NewDecoder().Decode(io.TeeReader(resp.Body, &first), nil)
	switch {
	case err == nil:
	case first.Len() == 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
		// The stream ended without any event: let the SDK see an empty stream.
	default:
		resp.Body.Close()
		return nil, fmt.Errorf("testenv: decode first SubscribeToShard message: %w", err)
	}

	if err == nil && headerString(msg.Headers, ":message-type") == "exception" {
		resp.Body.Close()
		return exceptionResponse(req, resp, msg), nil
	}

	initial, err := encodeInitialResponse()
	if err != nil {
		resp.Body.Close()
		return nil, err
	}
	resp.Body = &replayBody{
		Reader: io.MultiReader(bytes.NewReader(initial), &first, resp.Body),
		Closer: resp.Body,
	}
	resp.ContentLength = -1
	resp.Header.Del("Content-Length")
	return resp, nil
}

// exceptionResponse converts an in-stream exception into the HTTP error AWS sends.
func exceptionResponse(req *http.Request, resp *http.Response, msg eventstream.Message) *http.Response {
	payload := msg.Payload
	if len(bytes.TrimSpace(payload)) == 0 {
		payload = []byte("{}")
	}
	header := resp.Header.Clone()
	header.Set("Content-Type", "application/x-amz-json-1.1")
	header.Set("Content-Length", strconv.Itoa(len(payload)))
	header.Set("X-Amzn-ErrorType", headerString(msg.Headers, ":exception-type"))
	return &http.Response{
		Status:        "400 Bad Request",
		StatusCode:    http.StatusBadRequest,
		Proto:         resp.Proto,
		ProtoMajor:    resp.ProtoMajor,
		ProtoMinor:    resp.ProtoMinor,
		Header:        header,
		Body:          io.NopCloser(bytes.NewReader(payload)),
		ContentLength: int64(len(payload)),
		Request:       req,
		TLS:           resp.TLS,
	}
}

func headerString(h eventstream.Headers, name string) string {
	if v := h.Get(name); v != nil {
		return v.String()
	}
	return ""
}

// replayBody reads the replayed prefix then the live stream, and closes the live stream.
type replayBody struct {
	io.Reader
	io.Closer
}
