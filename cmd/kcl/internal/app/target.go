package app

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/deaggregate"
)

// Target is where kcl app reset moves checkpoints: a position written as it
// is (TRIM_HORIZON, LATEST, a sequence number), or a time resolved per shard.
type Target struct {
	// Position is the checkpoint to write; zero for a time.
	Position checkpoint.Position
	// Time is the arrival time to resume at; zero for a position.
	Time time.Time
}

func (t Target) String() string {
	if !t.Time.IsZero() {
		return t.Time.Format(time.RFC3339Nano)
	}
	return positionText(t.Position)
}

// ErrBadTarget is matched by the errors of ParseTarget.
var ErrBadTarget = errors.New("bad --to")

// ParseTarget reads --to: trim-horizon, latest, an RFC 3339 time, or a
// sequence number with an optional "/sub-sequence number".
func ParseTarget(s string) (Target, error) {
	switch strings.ToLower(s) {
	case "trim-horizon", "trim_horizon":
		return Target{Position: checkpoint.TrimHorizon}, nil
	case "latest":
		return Target{Position: checkpoint.Latest}, nil
	}
	if s != "" && s[0] >= '0' && s[0] <= '9' && strings.ContainsAny(s, "T:-") {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return Target{}, fmt.Errorf("%w %q: not an RFC 3339 time (2006-01-02T15:04:05Z): %v", ErrBadTarget, s, err)
		}
		return Target{Time: t}, nil
	}
	seq, sub, hasSub := strings.Cut(s, "/")
	var n uint64
	if hasSub {
		var err error
		if n, err = strconv.ParseUint(sub, 10, 64); err != nil {
			return Target{}, fmt.Errorf("%w %q: sub-sequence number %q is not a number", ErrBadTarget, s, sub)
		}
	}
	p, err := checkpoint.At(seq, n)
	if err != nil {
		return Target{}, fmt.Errorf("%w %q: want trim-horizon, latest, an RFC 3339 time or a sequence number", ErrBadTarget, s)
	}
	return Target{Position: p}, nil
}

// lookBack are the windows before a time in which ResolveTime looks for the
// last record before it, widening while a window holds none.
var lookBack = []time.Duration{time.Second, time.Minute, time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 365 * 24 * time.Hour}

// ResolveTime returns the checkpoint that makes a worker resume shard of
// stream at the first record that arrived at or after at. A checkpoint names
// the last record processed, so it is the last user record that arrived
// before at (the last sub-record of a KPL aggregate): found by reading from
// one second before at (an AT_TIMESTAMP iterator, then GetRecords until the
// first record at or after at, usually one call), widening the window to a
// minute, an hour, a day, a week and a year while it holds no record.
// TRIM_HORIZON when no record before at is left in the shard. A time in the
// future is refused (ErrBadTarget): no iterator starts there.
func ResolveTime(ctx context.Context, kc KinesisAPI, stream, shard string, at time.Time) (checkpoint.Position, error) {
	if at.After(time.Now()) {
		return checkpoint.Position{}, fmt.Errorf("%w %s: the time is in the future", ErrBadTarget, at.Format(time.RFC3339))
	}
	for _, w := range lookBack {
		last, err := lastBefore(ctx, kc, stream, shard, at.Add(-w), at)
		if err != nil {
			return checkpoint.Position{}, err
		}
		if last != nil {
			users := deaggregate.Records([]ktypes.Record{*last})
			if len(users) == 0 {
				return checkpoint.At(aws.ToString(last.SequenceNumber), 0)
			}
			u := users[len(users)-1]
			return checkpoint.At(u.SequenceNumber, u.SubSequenceNumber)
		}
	}
	return checkpoint.TrimHorizon, nil
}

// maxReads bounds the GetRecords calls of one look-back window.
const maxReads = 100

// lastBefore returns the last record of the shard that arrived in [from,
// at), reading from an AT_TIMESTAMP iterator at from; nil when there is
// none.
func lastBefore(ctx context.Context, kc KinesisAPI, stream, shard string, from, at time.Time) (*ktypes.Record, error) {
	it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(shard),
		ShardIteratorType: ktypes.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(from)})
	if err != nil {
		return nil, fmt.Errorf("shard %s: %s", shard, shortErr(err))
	}
	var last *ktypes.Record
	iter := it.ShardIterator
	for range maxReads {
		out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			return nil, fmt.Errorf("shard %s: %s", shard, shortErr(err))
		}
		for i := range out.Records {
			r := &out.Records[i]
			if !aws.ToTime(r.ApproximateArrivalTimestamp).Before(at) {
				return last, nil
			}
			last = r
		}
		if out.NextShardIterator == nil || (len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0) {
			return last, nil
		}
		iter = out.NextShardIterator
	}
	return nil, fmt.Errorf("shard %s: more than %d reads to find the last record before %s", shard, maxReads, at.Format(time.RFC3339))
}
