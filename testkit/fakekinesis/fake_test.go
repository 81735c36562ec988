package fakekinesis

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/hashkey"
)

// The narrow interfaces code under test declares, with the SDK's exact
// signatures: both the real client and the fake must satisfy them.
type (
	reader interface {
		GetRecords(context.Context, *kinesis.GetRecordsInput, ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
		GetShardIterator(context.Context, *kinesis.GetShardIteratorInput, ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
		ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	}
	writer interface {
		PutRecord(context.Context, *kinesis.PutRecordInput, ...func(*kinesis.Options)) (*kinesis.PutRecordOutput, error)
		PutRecords(context.Context, *kinesis.PutRecordsInput, ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
	}
	admin interface {
		CreateStream(context.Context, *kinesis.CreateStreamInput, ...func(*kinesis.Options)) (*kinesis.CreateStreamOutput, error)
		DescribeStreamSummary(context.Context, *kinesis.DescribeStreamSummaryInput, ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
		SplitShard(context.Context, *kinesis.SplitShardInput, ...func(*kinesis.Options)) (*kinesis.SplitShardOutput, error)
		MergeShards(context.Context, *kinesis.MergeShardsInput, ...func(*kinesis.Options)) (*kinesis.MergeShardsOutput, error)
		UpdateShardCount(context.Context, *kinesis.UpdateShardCountInput, ...func(*kinesis.Options)) (*kinesis.UpdateShardCountOutput, error)
	}
)

var (
	_ reader = (*Fake)(nil)
	_ writer = (*Fake)(nil)
	_ admin  = (*Fake)(nil)
	_ reader = (*kinesis.Client)(nil)
	_ writer = (*kinesis.Client)(nil)
	_ admin  = (*kinesis.Client)(nil)
)

const half = "170141183460469231731687303715884105728" // 2^127

// isErr reports whether err wraps an error of type *T.
func isErr[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

// readShard reads a shard from TRIM_HORIZON to its end (or, for an open
// shard, until caught up), returning the records and the final response.
func readShard(t *testing.T, f *Fake, streamName, shardID string) ([]types.Record, *kinesis.GetRecordsOutput) {
	t.Helper()
	it, err := f.GetShardIterator(t.Context(), &kinesis.GetShardIteratorInput{
		StreamName: aws.String(streamName), ShardId: aws.String(shardID), ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		t.Fatalf("GetShardIterator(%s): %v", shardID, err)
	}
	var recs []types.Record
	iter := it.ShardIterator
	for range 1000 {
		out, err := f.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(7)})
		if err != nil {
			t.Fatalf("GetRecords(%s): %v", shardID, err)
		}
		if (out.NextShardIterator == nil) == (out.ChildShards == nil) {
			t.Fatalf("GetRecords(%s): want exactly one of NextShardIterator and ChildShards, got %v and %v", shardID, out.NextShardIterator, out.ChildShards)
		}
		recs = append(recs, out.Records...)
		if out.NextShardIterator == nil || (len(out.Records) == 0 && *out.MillisBehindLatest == 0) {
			return recs, out
		}
		iter = out.NextShardIterator
	}
	t.Fatalf("GetRecords(%s) did not finish", shardID)
	return nil, nil
}

func bigSeq(t *testing.T, s string) *big.Int {
	t.Helper()
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || len(s) != 56 {
		t.Fatalf("sequence number %q is not a 56-digit decimal", s)
	}
	return v
}

func TestCreateStream(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      kinesis.CreateStreamInput
		wantErr func(error) bool
		shards  int
	}{
		{name: "a provisioned stream gets ShardCount shards", in: kinesis.CreateStreamInput{StreamName: aws.String("new"), ShardCount: aws.Int32(3)}, shards: 3},
		{name: "an on-demand stream defaults to four shards", in: kinesis.CreateStreamInput{StreamName: aws.String("new"), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}}, shards: 4},
		{name: "an existing name is in use", in: kinesis.CreateStreamInput{StreamName: aws.String("existing"), ShardCount: aws.Int32(1)}, wantErr: isErr[*types.ResourceInUseException]},
		{name: "a provisioned stream needs ShardCount", in: kinesis.CreateStreamInput{StreamName: aws.String("new")}, wantErr: isErr[*types.InvalidArgumentException]},
		{name: "zero shards is invalid", in: kinesis.CreateStreamInput{StreamName: aws.String("new"), ShardCount: aws.Int32(0)}, wantErr: isErr[*types.InvalidArgumentException]},
		{name: "a name with a slash is invalid", in: kinesis.CreateStreamInput{StreamName: aws.String("a/b"), ShardCount: aws.Int32(1)}, wantErr: isErr[*types.InvalidArgumentException]},
		{name: "the account shard limit applies", in: kinesis.CreateStreamInput{StreamName: aws.String("new"), ShardCount: aws.Int32(9)}, wantErr: isErr[*types.LimitExceededException]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := New(WithShardLimit(10), WithStream("existing", 2))
			_, err := f.CreateStream(t.Context(), &tc.in)
			if tc.wantErr != nil {
				if !tc.wantErr(err) {
					t.Fatalf("CreateStream error = %v, want a different type", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("CreateStream: %v", err)
			}
			out, err := f.DescribeStreamSummary(t.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: tc.in.StreamName})
			if err != nil {
				t.Fatalf("DescribeStreamSummary: %v", err)
			}
			d := out.StreamDescriptionSummary
			if d.StreamStatus != types.StreamStatusActive || int(*d.OpenShardCount) != tc.shards {
				t.Fatalf("status %s with %d open shards, want ACTIVE with %d", d.StreamStatus, *d.OpenShardCount, tc.shards)
			}
			if got := len(f.Shards(*tc.in.StreamName)); got != tc.shards {
				t.Fatalf("Shards: %d, want %d", got, tc.shards)
			}
		})
	}
}

func TestDescribeStreamSummaryAddressing(t *testing.T) {
	f := New(WithStream("s", 1))
	arn := "arn:aws:kinesis:us-east-1:123456789012:stream/s"
	for _, tc := range []struct {
		name      string
		in        kinesis.DescribeStreamSummaryInput
		wantErr   func(error) bool
		wantFound bool
	}{
		{name: "by name", in: kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")}},
		{name: "by ARN", in: kinesis.DescribeStreamSummaryInput{StreamARN: aws.String(arn)}},
		{name: "by matching name and ARN", in: kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s"), StreamARN: aws.String(arn)}},
		{name: "a name that contradicts the ARN is invalid", in: kinesis.DescribeStreamSummaryInput{StreamName: aws.String("t"), StreamARN: aws.String(arn)}, wantErr: isErr[*types.InvalidArgumentException]},
		{name: "neither name nor ARN is invalid", wantErr: isErr[*types.InvalidArgumentException]},
		{name: "an unknown stream is not found", in: kinesis.DescribeStreamSummaryInput{StreamName: aws.String("t")}, wantErr: isErr[*types.ResourceNotFoundException]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := f.DescribeStreamSummary(t.Context(), &tc.in)
			if tc.wantErr != nil {
				if !tc.wantErr(err) {
					t.Fatalf("error = %v, want a different type", err)
				}
				return
			}
			if err != nil || *out.StreamDescriptionSummary.StreamARN != arn {
				t.Fatalf("DescribeStreamSummary = %v, %v", out, err)
			}
		})
	}
}

func TestInitialHashRangesAreUniformAsOnAWS(t *testing.T) {
	for _, tc := range []struct {
		shards int
		starts []string
	}{
		{1, []string{"0"}},
		{2, []string{"0", half}},
		{3, []string{"0", "113427455640312821154458202477256070485", "226854911280625642308916404954512140970"}},
	} {
		t.Run(fmt.Sprint(tc.shards), func(t *testing.T) {
			f := New(WithStream("s", tc.shards))
			shards := f.Shards("s")
			for i, sh := range shards {
				if got := *sh.HashKeyRange.StartingHashKey; got != tc.starts[i] {
					t.Errorf("shard %d starts at %s, want %s", i, got, tc.starts[i])
				}
				if want := fmt.Sprintf("shardId-%012d", i); *sh.ShardId != want {
					t.Errorf("shard id %s, want %s", *sh.ShardId, want)
				}
			}
			if got := *shards[len(shards)-1].HashKeyRange.EndingHashKey; got != hashkey.Max.String() {
				t.Errorf("last shard ends at %s", got)
			}
		})
	}
}

func TestPutRoutesByHashKeyAndNumbersInPutOrder(t *testing.T) {
	f := New(WithStream("s", 3))
	shards := f.Shards("s")
	var entries []types.PutRecordsRequestEntry
	for i := range 100 {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint("pk-", i)), Data: []byte{byte(i)}})
	}
	// Explicit hash keys on the boundaries of the shards win over the key.
	for _, sh := range shards {
		for _, k := range []*string{sh.HashKeyRange.StartingHashKey, sh.HashKeyRange.EndingHashKey} {
			entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String("x"), ExplicitHashKey: k, Data: []byte("e")})
		}
	}
	out, err := f.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: entries})
	if err != nil || *out.FailedRecordCount != 0 {
		t.Fatalf("PutRecords = %v, %v", out, err)
	}
	prev := big.NewInt(0)
	for i, r := range out.Records {
		key, _ := hashkey.Effective(*entries[i].PartitionKey, aws.ToString(entries[i].ExplicitHashKey))
		var want string
		for _, sh := range shards {
			rng, _ := hashkey.ParseRange(*sh.HashKeyRange.StartingHashKey, *sh.HashKeyRange.EndingHashKey)
			if rng.Contains(key) {
				want = *sh.ShardId
			}
		}
		if *r.ShardId != want {
			t.Errorf("entry %d went to %s, want %s", i, *r.ShardId, want)
		}
		seq := bigSeq(t, *r.SequenceNumber)
		if seq.Cmp(prev) <= 0 {
			t.Errorf("entry %d has sequence number %s, not above %s", i, seq, prev)
		}
		prev = seq
	}
	total := 0
	for _, sh := range shards {
		recs := f.Records("s", *sh.ShardId)
		total += len(recs)
		if bigSeq(t, *sh.SequenceNumberRange.StartingSequenceNumber).Cmp(bigSeq(t, *recs[0].SequenceNumber)) >= 0 {
			t.Errorf("shard %s starts at %s, not below its first record", *sh.ShardId, *sh.SequenceNumberRange.StartingSequenceNumber)
		}
	}
	if total != len(entries) {
		t.Fatalf("stored %d records, want %d", total, len(entries))
	}
	id, seq := f.Put("s", "pk-0", []byte("y"))
	if id != *out.Records[0].ShardId || bigSeq(t, seq).Cmp(prev) <= 0 {
		t.Fatalf("Put = %s, %s", id, seq)
	}
}

func TestPutValidation(t *testing.T) {
	many := make([]types.PutRecordsRequestEntry, 501)
	for i := range many {
		many[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: []byte("d")}
	}
	for _, tc := range []struct {
		name    string
		entries []types.PutRecordsRequestEntry
		ok      bool
	}{
		{name: "500 entries are accepted", entries: many[:500], ok: true},
		{name: "501 entries are rejected", entries: many},
		{name: "no entries are rejected", entries: nil},
		{name: "a 256-character partition key is accepted", entries: []types.PutRecordsRequestEntry{{PartitionKey: aws.String(strings.Repeat("é", 256))}}, ok: true},
		{name: "a 257-character partition key is rejected", entries: []types.PutRecordsRequestEntry{{PartitionKey: aws.String(strings.Repeat("k", 257))}}},
		{name: "an empty partition key is rejected", entries: []types.PutRecordsRequestEntry{{PartitionKey: aws.String("")}}},
		{name: "a missing partition key is rejected", entries: []types.PutRecordsRequestEntry{{Data: []byte("d")}}},
		{name: "an explicit hash key of 2^128 is rejected", entries: []types.PutRecordsRequestEntry{{PartitionKey: aws.String("k"), ExplicitHashKey: aws.String("340282366920938463463374607431768211456")}}},
		{name: "more than 1 MiB of data is rejected", entries: []types.PutRecordsRequestEntry{{PartitionKey: aws.String("k"), Data: make([]byte, 1<<20)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := New(WithStream("s", 2))
			_, err := f.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: tc.entries})
			if tc.ok != (err == nil) || (err != nil && !isErr[*types.InvalidArgumentException](err)) {
				t.Fatalf("PutRecords error = %v, want ok=%v or InvalidArgumentException", err, tc.ok)
			}
			if !tc.ok && len(f.Records("s", "shardId-000000000000"))+len(f.Records("s", "shardId-000000000001")) != 0 {
				t.Fatal("a rejected call stored records")
			}
			if len(tc.entries) == 1 {
				e := tc.entries[0]
				_, err := f.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: e.PartitionKey, ExplicitHashKey: e.ExplicitHashKey, Data: e.Data})
				if tc.ok != (err == nil) {
					t.Fatalf("PutRecord error = %v, want ok=%v", err, tc.ok)
				}
			}
		})
	}
}

func TestGetShardIterator(t *testing.T) {
	type input = kinesis.GetShardIteratorInput
	for _, tc := range []struct {
		name string
		// in builds the input from the five records' sequence numbers and
		// the time the first was put (they are a second apart).
		in      func(seqs []string, start time.Time) input
		first   int // index of the first record read; 5 = none
		wantErr func(error) bool
	}{
		{name: "TRIM_HORIZON starts at the oldest record", first: 0, in: func([]string, time.Time) input {
			return input{ShardIteratorType: types.ShardIteratorTypeTrimHorizon}
		}},
		{name: "LATEST starts after the newest record", first: 5, in: func([]string, time.Time) input {
			return input{ShardIteratorType: types.ShardIteratorTypeLatest}
		}},
		{name: "AT_SEQUENCE_NUMBER starts at that record", first: 2, in: func(seqs []string, _ time.Time) input {
			return input{ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: &seqs[2]}
		}},
		{name: "AFTER_SEQUENCE_NUMBER starts after that record", first: 3, in: func(seqs []string, _ time.Time) input {
			return input{ShardIteratorType: types.ShardIteratorTypeAfterSequenceNumber, StartingSequenceNumber: &seqs[2]}
		}},
		{name: "AFTER_SEQUENCE_NUMBER of the newest record reads nothing", first: 5, in: func(seqs []string, _ time.Time) input {
			return input{ShardIteratorType: types.ShardIteratorTypeAfterSequenceNumber, StartingSequenceNumber: &seqs[4]}
		}},
		{name: "AT_TIMESTAMP starts at the first record at or after it", first: 2, in: func(_ []string, start time.Time) input {
			return input{ShardIteratorType: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(start.Add(1500 * time.Millisecond))}
		}},
		{name: "AT_TIMESTAMP needs a timestamp", wantErr: isErr[*types.InvalidArgumentException], in: func([]string, time.Time) input {
			return input{ShardIteratorType: types.ShardIteratorTypeAtTimestamp}
		}},
		{name: "a sequence number must parse", wantErr: isErr[*types.InvalidArgumentException], in: func([]string, time.Time) input {
			return input{ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String("12x")}
		}},
		{name: "a sequence number from before the shard is invalid", wantErr: isErr[*types.InvalidArgumentException], in: func([]string, time.Time) input {
			return input{ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String("1")}
		}},
		{name: "an unknown type is invalid", wantErr: isErr[*types.InvalidArgumentException], in: func([]string, time.Time) input {
			return input{ShardIteratorType: "SOMEWHERE"}
		}},
		{name: "an unknown shard is not found", wantErr: isErr[*types.ResourceNotFoundException], in: func([]string, time.Time) input {
			return input{ShardId: aws.String("shardId-000000000009"), ShardIteratorType: types.ShardIteratorTypeLatest}
		}},
		{name: "an unknown stream is not found", wantErr: isErr[*types.ResourceNotFoundException], in: func([]string, time.Time) input {
			return input{StreamName: aws.String("t"), ShardIteratorType: types.ShardIteratorTypeLatest}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := New(WithStream("s", 1))
				var seqs []string
				start := time.Now()
				for i := range 5 {
					_, seq := f.Put("s", "k", []byte{byte(i)})
					seqs = append(seqs, seq)
					time.Sleep(time.Second)
				}
				in := tc.in(seqs, start)
				if in.StreamName == nil {
					in.StreamName = aws.String("s")
				}
				if in.ShardId == nil {
					in.ShardId = aws.String("shardId-000000000000")
				}
				it, err := f.GetShardIterator(t.Context(), &in)
				if tc.wantErr != nil {
					if !tc.wantErr(err) {
						t.Fatalf("error = %v, want a different type", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("GetShardIterator: %v", err)
				}
				out, err := f.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
				if err != nil {
					t.Fatalf("GetRecords: %v", err)
				}
				if len(out.Records) != 5-tc.first || (len(out.Records) > 0 && *out.Records[0].SequenceNumber != seqs[tc.first]) {
					t.Fatalf("read %d records, want %d from %d", len(out.Records), 5-tc.first, tc.first)
				}
			})
		})
	}
}

func TestGetRecordsPagesAndReportsLag(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := New(WithStream("s", 1))
		for i := range 10 {
			f.Put("s", "k", []byte{byte(i)})
		}
		time.Sleep(3 * time.Second)
		it, err := f.GetShardIterator(t.Context(), &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		first, err := f.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(4)})
		if err != nil || len(first.Records) != 4 || *first.MillisBehindLatest != 3000 || first.NextShardIterator == nil {
			t.Fatalf("first page = %d records, %v behind, %v", len(first.Records), first.MillisBehindLatest, err)
		}
		rest, err := f.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: first.NextShardIterator})
		if err != nil || len(rest.Records) != 6 || *rest.MillisBehindLatest != 0 || rest.Records[0].Data[0] != 4 {
			t.Fatalf("second page = %d records, %v behind, %v", len(rest.Records), rest.MillisBehindLatest, err)
		}
		// An iterator can be reused until it expires.
		again, err := f.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: first.NextShardIterator})
		if err != nil || len(again.Records) != 6 {
			t.Fatalf("reused iterator = %d records, %v", len(again.Records), err)
		}
		// Records handed out are copies.
		again.Records[0].Data[0] = 99
		if f.Records("s", "shardId-000000000000")[4].Data[0] != 4 {
			t.Fatal("GetRecords returned the fake's own buffer")
		}
	})
}

func TestGetRecordsRejects(t *testing.T) {
	f := New(WithStream("s", 1))
	it, err := f.GetShardIterator(t.Context(), &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		in      kinesis.GetRecordsInput
		wantErr func(error) bool
	}{
		{name: "Limit 0 is invalid", in: kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(0)}, wantErr: isErr[*types.InvalidArgumentException]},
		{name: "Limit 10001 is invalid", in: kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(10001)}, wantErr: isErr[*types.InvalidArgumentException]},
		{name: "a garbled iterator is invalid", in: kinesis.GetRecordsInput{ShardIterator: aws.String(*it.ShardIterator + "x")}, wantErr: isErr[*types.InvalidArgumentException]},
		{name: "another fake's iterator is invalid", in: kinesis.GetRecordsInput{ShardIterator: aws.String(New().iterator(&stream{name: "s"}, &shard{id: "shardId-000000000000"}, 0, time.Now()))}, wantErr: isErr[*types.InvalidArgumentException]},
		{name: "a missing iterator is invalid", wantErr: isErr[*types.InvalidArgumentException]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.GetRecords(t.Context(), &tc.in); !tc.wantErr(err) {
				t.Fatalf("error = %v, want a different type", err)
			}
		})
	}
}

func TestIteratorsExpireAfterFiveMinutes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := New(WithStream("s", 1))
		it, err := f.GetShardIterator(t.Context(), &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeLatest})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(IteratorTTL)
		out, err := f.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
		if err != nil {
			t.Fatalf("at exactly 5 min: %v", err)
		}
		time.Sleep(time.Millisecond)
		if _, err := f.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator}); !isErr[*types.ExpiredIteratorException](err) {
			t.Fatalf("after 5 min: error = %v, want ExpiredIteratorException", err)
		}
		// The next iterator was issued by the later call and is still fresh.
		if _, err := f.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: out.NextShardIterator}); err != nil {
			t.Fatalf("next iterator: %v", err)
		}
	})
}

func TestConcurrentPutsAndGets(t *testing.T) {
	f := New(WithStream("s", 4))
	const writers, perWriter = 4, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if _, err := f.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String(fmt.Sprint(w, "-", i)), Data: []byte("d")}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for _, sh := range f.Shards("s") {
		wg.Go(func() {
			it, err := f.GetShardIterator(t.Context(), &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
			if err != nil {
				t.Error(err)
				return
			}
			iter := it.ShardIterator
			for range 100 {
				out, err := f.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: iter})
				if err != nil {
					t.Error(err)
					return
				}
				iter = out.NextShardIterator
			}
		})
	}
	wg.Wait()
	total := 0
	for _, sh := range f.Shards("s") {
		recs := f.Records("s", *sh.ShardId)
		for i := 1; i < len(recs); i++ {
			if bigSeq(t, *recs[i].SequenceNumber).Cmp(bigSeq(t, *recs[i-1].SequenceNumber)) <= 0 {
				t.Fatalf("shard %s: sequence numbers out of order at %d", *sh.ShardId, i)
			}
		}
		total += len(recs)
	}
	if total != writers*perWriter {
		t.Fatalf("stored %d records, want %d", total, writers*perWriter)
	}
	if got := f.Stats().Calls["PutRecord"]; got != writers*perWriter {
		t.Fatalf("Stats PutRecord = %d", got)
	}
}

func TestStreamConsumers(t *testing.T) {
	ctx := t.Context()
	f := New(WithStream("s", 1))
	arn := streamARN("s")
	out, err := f.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String("app")})
	if err != nil {
		t.Fatal(err)
	}
	c := out.Consumer
	if c.ConsumerStatus != types.ConsumerStatusActive || !strings.HasPrefix(aws.ToString(c.ConsumerARN), arn+"/consumer/app:") {
		t.Fatalf("registered %+v, want an ACTIVE consumer with an ARN under the stream's", c)
	}
	var inUse *types.ResourceInUseException
	if _, err := f.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String("app")}); !errors.As(err, &inUse) {
		t.Fatalf("registering the name again: %v, want ResourceInUse", err)
	}
	byName, err := f.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String("app")})
	if err != nil || aws.ToString(byName.ConsumerDescription.ConsumerARN) != aws.ToString(c.ConsumerARN) {
		t.Fatalf("describe by name: %v, %v", byName, err)
	}
	byARN, err := f.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: c.ConsumerARN})
	if err != nil || aws.ToString(byARN.ConsumerDescription.ConsumerName) != "app" {
		t.Fatalf("describe by ARN: %v, %v", byARN, err)
	}
	var nf *types.ResourceNotFoundException
	if _, err := f.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String("other")}); !errors.As(err, &nf) {
		t.Fatalf("describe a missing consumer: %v, want ResourceNotFound", err)
	}
}
