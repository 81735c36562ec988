package consumer

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/kclgo/kcl/lease"
)

// judge decides retry's course by the error's type and the resource the
// call addressed, never by a message or an operation name: a NotFound means
// the stream is gone only when Kinesis said it.
func TestJudgeClassifiesByResourceAndErrorType(t *testing.T) {
	kinesisNotFound := &types.ResourceNotFoundException{Message: aws.String("Stream orders not found")}
	tableNotFound := &ddbtypes.ResourceNotFoundException{Message: aws.String("Requested resource not found")}
	genericNotFound := &smithy.GenericAPIError{Code: "ResourceNotFoundException", Message: "not found"}
	tests := []struct {
		name    string
		res     resource
		err     error
		ctxDone bool
		want    verdict
	}{
		{"a stream Kinesis cannot find is gone", kinesisStream, kinesisNotFound, false, streamGone},
		{"a wrapped Kinesis NotFound is still the stream gone", kinesisStream, fmt.Errorf("op: %w", kinesisNotFound), false, streamGone},
		{"a generic ResourceNotFoundException from Kinesis is the stream gone", kinesisStream, genericNotFound, false, streamGone},
		{"a missing lease table is not the stream gone", leaseTable, tableNotFound, false, giveUp},
		{"a generic ResourceNotFoundException from the store is not the stream gone", leaseTable, genericNotFound, false, giveUp},
		{"a Kinesis-typed NotFound from the store is not the stream gone", leaseTable, kinesisNotFound, false, giveUp},
		{"a lease that does not exist is the store's to report", leaseTable, lease.ErrNotFound, false, giveUp},
		{"a throttled lease table is retried", leaseTable, fmt.Errorf("list: %w", lease.ErrThrottled), false, retryIt},
		{"a throttled Kinesis call is retried", kinesisStream, &types.LimitExceededException{}, false, retryIt},
		{"a transient store failure is retried", leaseTable, &smithy.GenericAPIError{Code: "InternalFailure"}, false, retryIt},
		{"a cancelled call stops", kinesisStream, context.Canceled, false, stopped},
		{"any failure once the context ended stops", leaseTable, errors.New("boom"), true, stopped},
		{"an unknown store error is given up on", leaseTable, errors.New("boom"), false, giveUp},
		{"denied access to Kinesis is given up on", kinesisStream, &types.AccessDeniedException{}, false, giveUp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := judge(tt.res, tt.err, tt.ctxDone); got != tt.want {
				t.Errorf("judge(%d, %v, %v) = %d, want %d", tt.res, tt.err, tt.ctxDone, got, tt.want)
			}
		})
	}
}
