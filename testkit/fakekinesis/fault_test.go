package fakekinesis

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func statusOf(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func TestFaultsLookLikeSDKErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  error
		check  func(error) bool
		status int
	}{
		{name: "Throttled is a 400 ProvisionedThroughputExceededException", fault: Throttled(), check: isErr[*types.ProvisionedThroughputExceededException], status: http.StatusBadRequest},
		{name: "ExpiredIterator is a 400 ExpiredIteratorException", fault: ExpiredIterator(), check: isErr[*types.ExpiredIteratorException], status: http.StatusBadRequest},
		{name: "a bare typed error is dressed as a 400", fault: &types.LimitExceededException{}, check: isErr[*types.LimitExceededException], status: http.StatusBadRequest},
		{name: "InternalError is a 500 server fault", fault: InternalError(), status: http.StatusInternalServerError, check: func(err error) bool {
			var api smithy.APIError
			var re *awshttp.ResponseError
			return errors.As(err, &api) && api.ErrorCode() == "InternalFailure" && api.ErrorFault() == smithy.FaultServer && errors.As(err, &re)
		}},
		{name: "ConnectionReset is a send error caused by ECONNRESET", fault: ConnectionReset(), check: func(err error) bool {
			var send *smithyhttp.RequestSendError
			var op *net.OpError
			return errors.As(err, &send) && errors.As(err, &op) && errors.Is(err, syscall.ECONNRESET)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := New(WithStream("s", 1), WithFault(func(op string, in any) error {
				if op == "PutRecord" {
					return tc.fault
				}
				return nil
			}))
			_, err := f.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("d")})
			var oe *smithy.OperationError
			if !errors.As(err, &oe) || oe.Operation() != "PutRecord" || oe.Service() != "Kinesis" {
				t.Fatalf("error %v is not an OperationError of Kinesis PutRecord", err)
			}
			if !tc.check(err) {
				t.Fatalf("error %v does not classify as expected", err)
			}
			if got := statusOf(err); got != tc.status {
				t.Fatalf("HTTP status %d, want %d", got, tc.status)
			}
			if n := len(f.Records("s", "shardId-000000000000")); n != 0 {
				t.Fatalf("a failed PutRecord stored %d records", n)
			}
			st := f.Stats()
			if st.Calls["PutRecord"] != 1 || st.Errors["PutRecord"] != 1 {
				t.Fatalf("Stats = %+v", st)
			}
		})
	}
}

func TestFaultSeesEveryOperationAndItsInput(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]any{}
	f := New(WithStream("s", 1), WithFault(func(op string, in any) error {
		mu.Lock()
		defer mu.Unlock()
		seen[op] = in
		return nil
	}))
	ctx, name, sh := t.Context(), aws.String("s"), aws.String("shardId-000000000000")
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("t"), ShardCount: aws.Int32(1)}))
	must(f.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: name}))
	must(f.ListShards(ctx, &kinesis.ListShardsInput{StreamName: name}))
	must(f.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: name, PartitionKey: aws.String("k")}))
	must(f.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: name, Records: []types.PutRecordsRequestEntry{{PartitionKey: aws.String("k")}}}))
	it, err := f.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: name, ShardId: sh, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	must(it, err)
	must(f.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator}))
	must(f.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: name, ShardToSplit: sh, NewStartingHashKey: aws.String(half)}))
	must(f.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: name, ShardToMerge: aws.String("shardId-000000000001"), AdjacentShardToMerge: aws.String("shardId-000000000002")}))
	must(f.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: name, TargetShardCount: aws.Int32(2), ScalingType: types.ScalingTypeUniformScaling}))
	for op, check := range map[string]func(any) bool{
		"CreateStream":          func(in any) bool { _, ok := in.(*kinesis.CreateStreamInput); return ok },
		"DescribeStreamSummary": func(in any) bool { _, ok := in.(*kinesis.DescribeStreamSummaryInput); return ok },
		"ListShards":            func(in any) bool { _, ok := in.(*kinesis.ListShardsInput); return ok },
		"PutRecord":             func(in any) bool { _, ok := in.(*kinesis.PutRecordInput); return ok },
		"PutRecords":            func(in any) bool { _, ok := in.(*kinesis.PutRecordsInput); return ok },
		"GetShardIterator":      func(in any) bool { _, ok := in.(*kinesis.GetShardIteratorInput); return ok },
		"GetRecords":            func(in any) bool { _, ok := in.(*kinesis.GetRecordsInput); return ok },
		"SplitShard":            func(in any) bool { _, ok := in.(*kinesis.SplitShardInput); return ok },
		"MergeShards":           func(in any) bool { _, ok := in.(*kinesis.MergeShardsInput); return ok },
		"UpdateShardCount":      func(in any) bool { _, ok := in.(*kinesis.UpdateShardCountInput); return ok },
	} {
		if !check(seen[op]) {
			t.Errorf("fault hook saw %T for %s", seen[op], op)
		}
		if f.Stats().Calls[op] != 1 {
			t.Errorf("Stats().Calls[%s] = %d, want 1", op, f.Stats().Calls[op])
		}
	}
}

// A fault that fails the first reads, then lets them through: the pattern
// for testing retry and iterator-renewal paths.
func TestFaultThenRecover(t *testing.T) {
	var mu sync.Mutex
	failures := []error{Throttled(), ExpiredIterator()}
	f := New(WithStream("s", 1), WithFault(func(op string, _ any) error {
		mu.Lock()
		defer mu.Unlock()
		if op != "GetRecords" || len(failures) == 0 {
			return nil
		}
		err := failures[0]
		failures = failures[1:]
		return err
	}))
	f.Put("s", "k", []byte("d"))
	it, err := f.GetShardIterator(t.Context(), &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	in := &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator}
	if _, err := f.GetRecords(t.Context(), in); !isErr[*types.ProvisionedThroughputExceededException](err) {
		t.Fatalf("first call: %v", err)
	}
	if _, err := f.GetRecords(t.Context(), in); !isErr[*types.ExpiredIteratorException](err) {
		t.Fatalf("second call: %v", err)
	}
	out, err := f.GetRecords(t.Context(), in)
	if err != nil || len(out.Records) != 1 {
		t.Fatalf("third call: %v, %v", out, err)
	}
	if st := f.Stats(); st.Calls["GetRecords"] != 3 || st.Errors["GetRecords"] != 2 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestReadThrottlePerShard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := New(WithStream("s", 2), WithReadThrottle())
		iter := func(sh string) *string {
			it, err := f.GetShardIterator(t.Context(), &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String(sh), ShardIteratorType: types.ShardIteratorTypeLatest})
			if err != nil {
				t.Fatal(err)
			}
			return it.ShardIterator
		}
		a, b := iter("shardId-000000000000"), iter("shardId-000000000001")
		get := func(it *string) error {
			_, err := f.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: it})
			return err
		}
		for i := range ReadsPerSecond {
			if err := get(a); err != nil {
				t.Fatalf("call %d: %v", i+1, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err := get(a); !isErr[*types.ProvisionedThroughputExceededException](err) {
			t.Fatalf("sixth call within a second: %v", err)
		}
		if err := get(b); err != nil {
			t.Fatalf("another shard's first call: %v", err)
		}
		time.Sleep(600 * time.Millisecond) // the first call is now a second old
		if err := get(a); err != nil {
			t.Fatalf("after the window moved: %v", err)
		}
	})
}

func TestCanceledContext(t *testing.T) {
	f := New(WithStream("s", 1))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := f.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k")})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	if len(f.Records("s", "shardId-000000000000")) != 0 {
		t.Fatal("a canceled PutRecord stored a record")
	}
}
