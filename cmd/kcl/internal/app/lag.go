package app

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/kclgo/kcl/checkpoint"
)

// MeasureLag measures how far the checkpoint cp of shard is behind the
// stream with one GetShardIterator and one GetRecords of at most one record:
// for a sequence number, AT_SEQUENCE_NUMBER, so that the record returned is
// the checkpoint's own (its ApproximateArrivalTimestamp gives Age) and
// MillisBehindLatest is measured just after it; for TRIM_HORIZON and LATEST,
// those iterators. It costs one of the shard's five reads a second, shared
// with the application's own reads.
func MeasureLag(ctx context.Context, kc KinesisAPI, stream, shard string, cp checkpoint.Position, now time.Time) Lag {
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(shard)}
	switch cp.Kind() {
	case checkpoint.KindSequence:
		in.ShardIteratorType = ktypes.ShardIteratorTypeAtSequenceNumber
		in.StartingSequenceNumber = aws.String(cp.SequenceNumber())
	case checkpoint.KindTrimHorizon:
		in.ShardIteratorType = ktypes.ShardIteratorTypeTrimHorizon
	case checkpoint.KindLatest:
		return Lag{Known: true}
	default:
		return Lag{Err: "checkpoint " + cp.String() + " has no position in the stream"}
	}
	it, err := kc.GetShardIterator(ctx, in)
	if err != nil {
		return Lag{Err: shortErr(err)}
	}
	out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(1)})
	if err != nil {
		return Lag{Err: shortErr(err)}
	}
	lag := Lag{Known: out.MillisBehindLatest != nil}
	if lag.Known {
		lag.Behind = time.Duration(*out.MillisBehindLatest) * time.Millisecond
	}
	if cp.Kind() == checkpoint.KindSequence && len(out.Records) > 0 && aws.ToString(out.Records[0].SequenceNumber) == cp.SequenceNumber() {
		if at := out.Records[0].ApproximateArrivalTimestamp; at != nil {
			lag.Age, lag.HasAge = max(now.Sub(*at), 0), true
		}
	}
	return lag
}

// shortErr is an AWS error's code and message, or the error's text.
func shortErr(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		if m := api.ErrorMessage(); m != "" {
			return api.ErrorCode() + ": " + m
		}
		return api.ErrorCode()
	}
	return err.Error()
}
