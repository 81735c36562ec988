package fakekinesis

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/hashkey"
)

// PutRecord appends one record to the open shard whose hash key range
// contains ExplicitHashKey, or else MD5(PartitionKey). SequenceNumberForOrdering
// is accepted and ignored: the fake's sequence numbers already increase in
// put order.
func (f *Fake) PutRecord(ctx context.Context, in *kinesis.PutRecordInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordOutput, error) {
	return run(ctx, f, "PutRecord", in, func(in *kinesis.PutRecordInput) (*kinesis.PutRecordOutput, error) {
		s, err := f.lookup(in.StreamName, in.StreamARN)
		if err != nil {
			return nil, err
		}
		if err := validateEntry("", in.PartitionKey, in.ExplicitHashKey, in.Data); err != nil {
			return nil, err
		}
		id, seq, err := f.put(s, *in.PartitionKey, aws.ToString(in.ExplicitHashKey), in.Data, time.Now())
		if err != nil {
			return nil, err
		}
		return &kinesis.PutRecordOutput{ShardId: aws.String(id), SequenceNumber: aws.String(seq), EncryptionType: types.EncryptionTypeNone}, nil
	})
}

// PutRecords appends 1..500 records in order, each routed as PutRecord
// routes. The whole call fails with InvalidArgumentException when any entry
// is invalid (partition key of 1..256 characters, explicit hash key a
// decimal below 2^128, data plus key at most 1 MiB); otherwise every entry
// succeeds and FailedRecordCount is 0.
func (f *Fake) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	return run(ctx, f, "PutRecords", in, func(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		s, err := f.lookup(in.StreamName, in.StreamARN)
		if err != nil {
			return nil, err
		}
		if n := len(in.Records); n < 1 || n > MaxPutRecordsEntries {
			return nil, invalidArg("Records has %d entries; it must have 1 to %d", n, MaxPutRecordsEntries)
		}
		for i, e := range in.Records {
			if err := validateEntry("Records."+strconv.Itoa(i+1)+".", e.PartitionKey, e.ExplicitHashKey, e.Data); err != nil {
				return nil, err
			}
		}
		now := time.Now()
		out := &kinesis.PutRecordsOutput{
			Records:           make([]types.PutRecordsResultEntry, len(in.Records)),
			FailedRecordCount: aws.Int32(0),
			EncryptionType:    types.EncryptionTypeNone,
		}
		for i, e := range in.Records {
			id, seq, err := f.put(s, *e.PartitionKey, aws.ToString(e.ExplicitHashKey), e.Data, now)
			if err != nil {
				return nil, err
			}
			out.Records[i] = types.PutRecordsResultEntry{ShardId: aws.String(id), SequenceNumber: aws.String(seq)}
		}
		return out, nil
	})
}

func validateEntry(field string, pk, ehk *string, data []byte) error {
	if pk == nil {
		return invalidArg("%sPartitionKey is required", field)
	}
	if n := utf8.RuneCountInString(*pk); n < 1 || n > 256 {
		return invalidArg("%sPartitionKey has %d characters; it must have 1 to 256", field, n)
	}
	if ehk != nil {
		if _, err := hashkey.Parse(*ehk); err != nil {
			return invalidArg("%sExplicitHashKey: %v", field, err)
		}
	}
	if len(data)+len(*pk) > MaxRecordBytes {
		return invalidArg("%sData and PartitionKey total %d bytes; the limit is %d", field, len(data)+len(*pk), MaxRecordBytes)
	}
	return nil
}

// put appends a validated record. f.mu is held.
func (f *Fake) put(s *stream, pk, ehk string, data []byte, now time.Time) (shardID, seq string, err error) {
	if n := utf8.RuneCountInString(pk); n < 1 || n > 256 {
		return "", "", invalidArg("PartitionKey has %d characters; it must have 1 to 256", n)
	}
	key, err := hashkey.Effective(pk, ehk)
	if err != nil {
		return "", "", invalidArg("ExplicitHashKey: %v", err)
	}
	for _, sh := range s.shards {
		if !sh.isOpen() || !sh.rng.Contains(key) {
			continue
		}
		n := f.nextSeq()
		seq = formatSeq(n)
		sh.records = append(sh.records, record{seq: n, rec: types.Record{
			Data:                        append([]byte{}, data...),
			PartitionKey:                aws.String(pk),
			SequenceNumber:              aws.String(seq),
			ApproximateArrivalTimestamp: aws.Time(now),
			EncryptionType:              types.EncryptionTypeNone,
		}})
		return sh.id, seq, nil
	}
	// Unreachable while open shards cover the whole hash key space.
	return "", "", fmt.Errorf("fakekinesis: no open shard contains hash key %s", key)
}

// GetShardIterator returns an iterator valid for [IteratorTTL]. The
// sequence-number types need a StartingSequenceNumber that lies within the
// shard's SequenceNumberRange; AT_TIMESTAMP needs Timestamp and positions at
// the first record that arrived at or after it.
func (f *Fake) GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	return run(ctx, f, "GetShardIterator", in, func(in *kinesis.GetShardIteratorInput) (*kinesis.GetShardIteratorOutput, error) {
		s, err := f.lookup(in.StreamName, in.StreamARN)
		if err != nil {
			return nil, err
		}
		if in.ShardId == nil {
			return nil, invalidArg("ShardId is required")
		}
		sh, err := s.shard(*in.ShardId)
		if err != nil {
			return nil, err
		}
		var pos int
		switch in.ShardIteratorType {
		case types.ShardIteratorTypeTrimHorizon:
			pos = 0
		case types.ShardIteratorTypeLatest:
			pos = len(sh.records)
		case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
			str := aws.ToString(in.StartingSequenceNumber)
			n, ok := parseSeq(str)
			if !ok {
				return nil, invalidArg("StartingSequenceNumber %q is not a sequence number", str)
			}
			if n < sh.startSeq || (!sh.isOpen() && n > sh.endSeq) {
				return nil, invalidArg("StartingSequenceNumber %s used in GetShardIterator on shard %s in stream %s under account %s is invalid because it did not come from this shard.", str, sh.id, s.name, account)
			}
			after := in.ShardIteratorType == types.ShardIteratorTypeAfterSequenceNumber
			pos = sort.Search(len(sh.records), func(i int) bool {
				if after {
					return sh.records[i].seq > n
				}
				return sh.records[i].seq >= n
			})
		case types.ShardIteratorTypeAtTimestamp:
			if in.Timestamp == nil {
				return nil, invalidArg("Timestamp is required for AT_TIMESTAMP")
			}
			ts := *in.Timestamp
			pos = sort.Search(len(sh.records), func(i int) bool {
				return !sh.records[i].rec.ApproximateArrivalTimestamp.Before(ts)
			})
		default:
			return nil, invalidArg("ShardIteratorType %q is not valid", in.ShardIteratorType)
		}
		it := f.iterator(s, sh, pos, time.Now())
		return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String(it)}, nil
	})
}

func (f *Fake) iterator(s *stream, sh *shard, pos int, now time.Time) string {
	return f.seal("iter", s.name, sh.id, strconv.Itoa(pos), strconv.FormatInt(now.UnixNano(), 10))
}

// GetRecords returns up to Limit (1..10000, default 10000) records, at most
// 10 MiB, from the iterator's position. MillisBehindLatest is the age of the
// first record not yet returned, or 0 when the reader is caught up. At the
// end of a closed shard NextShardIterator is nil and ChildShards lists the
// children, in the response with the shard's last records unless
// [WithEmptyShardEnd] is set. An iterator older than [IteratorTTL] gives
// ExpiredIteratorException; a garbled one InvalidArgumentException; a
// shard's sixth call within a second, with [WithReadThrottle],
// ProvisionedThroughputExceededException.
func (f *Fake) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	return run(ctx, f, "GetRecords", in, f.getRecords)
}

func (f *Fake) getRecords(in *kinesis.GetRecordsInput) (*kinesis.GetRecordsOutput, error) {
	limit := MaxGetRecordsLimit
	if in.Limit != nil {
		limit = int(*in.Limit)
		if limit < 1 || limit > MaxGetRecordsLimit {
			return nil, invalidArg("Limit %d must be in [1, %d]", limit, MaxGetRecordsLimit)
		}
	}
	tok := aws.ToString(in.ShardIterator)
	p, ok := f.open(tok, "iter", 4)
	if !ok {
		return nil, invalidArg("Invalid ShardIterator.")
	}
	pos, err1 := strconv.Atoi(p[2])
	issued, err2 := strconv.ParseInt(p[3], 10, 64)
	if err1 != nil || err2 != nil {
		return nil, invalidArg("Invalid ShardIterator.")
	}
	now := time.Now()
	if now.Sub(time.Unix(0, issued)) > IteratorTTL {
		return nil, &types.ExpiredIteratorException{Message: aws.String("Iterator expired. The iterator was created at time " + time.Unix(0, issued).UTC().Format(time.RFC3339Nano) + " while right now it is " + now.UTC().Format(time.RFC3339Nano) + " which is further in the future than the tolerated delay of 300000 milliseconds.")}
	}
	s, ok := f.streams[p[0]]
	if !ok {
		return nil, notFound("Stream %s under account %s not found.", p[0], account)
	}
	sh, err := s.shard(p[1])
	if err != nil {
		return nil, err
	}
	if f.opts.readThrottle {
		recent := sh.recentRead[:0]
		for _, t := range sh.recentRead {
			if now.Sub(t) < time.Second {
				recent = append(recent, t)
			}
		}
		sh.recentRead = recent
		if len(recent) >= ReadsPerSecond {
			return nil, Throttled()
		}
		sh.recentRead = append(sh.recentRead, now)
	}

	out := &kinesis.GetRecordsOutput{Records: []types.Record{}}
	end, size := pos, 0
	for end < len(sh.records) && end-pos < limit {
		r := sh.records[end].rec
		size += len(r.Data) + len(aws.ToString(r.PartitionKey))
		if size > MaxGetRecordsBytes && end > pos {
			break
		}
		out.Records = append(out.Records, copyRecord(r))
		end++
	}
	behind := int64(0)
	if end < len(sh.records) {
		behind = now.Sub(*sh.records[end].rec.ApproximateArrivalTimestamp).Milliseconds()
	}
	out.MillisBehindLatest = aws.Int64(max(behind, 0))
	if end == len(sh.records) && !sh.isOpen() && !(f.opts.emptyEnd && end > pos) {
		out.ChildShards = f.childShards(s, sh)
		return out, nil
	}
	out.NextShardIterator = aws.String(f.iterator(s, sh, end, now))
	return out, nil
}

// childShards describes sh's children as GetRecords reports them.
func (f *Fake) childShards(s *stream, sh *shard) []types.ChildShard {
	out := make([]types.ChildShard, 0, len(sh.children))
	for _, id := range sh.children {
		c, _ := s.shard(id)
		parents := []string{c.parent}
		if c.adjParent != "" {
			parents = append(parents, c.adjParent)
		}
		out = append(out, types.ChildShard{
			ShardId:      aws.String(c.id),
			ParentShards: parents,
			HashKeyRange: &types.HashKeyRange{
				StartingHashKey: aws.String(c.rng.Start.String()),
				EndingHashKey:   aws.String(c.rng.End.String()),
			},
		})
	}
	return out
}
