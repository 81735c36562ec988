package fakekinesis

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

const testConsumer = "arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/app:1"

func subscribe(t *testing.T, ctx context.Context, f *Fake, pos types.StartingPosition) *kinesis.SubscribeToShardEventStream {
	t.Helper()
	out, err := f.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{
		ConsumerARN:      aws.String(testConsumer),
		ShardId:          aws.String("shardId-000000000000"),
		StartingPosition: &pos,
	})
	if err != nil {
		t.Fatalf("SubscribeToShard: %v", err)
	}
	return out.GetStream()
}

// nextEvent returns the next event, or nil when the stream ended.
func nextEvent(t *testing.T, es *kinesis.SubscribeToShardEventStream) *types.SubscribeToShardEvent {
	t.Helper()
	ev, ok := <-es.Events()
	if !ok {
		return nil
	}
	return &ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent).Value
}

func eventString(ev *types.SubscribeToShardEvent) string {
	if ev == nil {
		return "end"
	}
	s := ""
	for _, r := range ev.Records {
		s += string(r.Data) + " "
	}
	return fmt.Sprintf("[%scont=%v children=%d]", s, ev.ContinuationSequenceNumber != nil, len(ev.ChildShards))
}

func putN(f *Fake, from, to int) []string {
	var seqs []string
	for i := from; i < to; i++ {
		_, seq := f.Put("s", "k", fmt.Appendf(nil, "r%d", i))
		seqs = append(seqs, seq)
	}
	return seqs
}

func TestSubscribeToShardOutputHasStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := New(WithStream("s", 1))
		seqs := putN(f, 0, 2)
		es := subscribe(t, t.Context(), f, types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
		if es == nil {
			t.Fatal("GetStream returned nil")
		}
		ev := nextEvent(t, es)
		if len(ev.Records) != 2 || aws.ToString(ev.ContinuationSequenceNumber) != seqs[1] || ev.MillisBehindLatest == nil {
			t.Errorf("first event %+v, want both records and the continuation %s", ev, seqs[1])
		}
		if err := es.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		synctest.Wait()
		if started, open := f.Subscriptions(); started != 1 || open != 0 {
			t.Errorf("Subscriptions() = %d, %d after Close, want 1, 0", started, open)
		}
	})
}

func TestSubscribeToShardEventsToTheShardEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := New(WithStream("s", 1))
		putN(f, 0, 3)
		start := time.Now()
		es := subscribe(t, t.Context(), f, types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
		defer es.Close()
		var got []string
		got = append(got, eventString(nextEvent(t, es)))
		putN(f, 3, 5)
		got = append(got, eventString(nextEvent(t, es)))
		got = append(got, eventString(nextEvent(t, es)))
		if _, err := f.SplitShard(t.Context(), &kinesis.SplitShardInput{
			StreamName: aws.String("s"), ShardToSplit: aws.String("shardId-000000000000"),
			NewStartingHashKey: aws.String("170141183460469231731687303715884105728"),
		}); err != nil {
			t.Fatal(err)
		}
		got = append(got, eventString(nextEvent(t, es)), eventString(nextEvent(t, es)))
		want := "[[r0 r1 r2 cont=true children=0] [r3 r4 cont=true children=0] [cont=true children=0] [cont=false children=2] end]"
		if fmt.Sprint(got) != want {
			t.Errorf("events\n%v\nwant\n%v", got, want)
		}
		if d := time.Since(start); d != 3*EventInterval {
			t.Errorf("4 events took %v, want %v", d, 3*EventInterval)
		}
		if err := es.Err(); err != nil {
			t.Errorf("Err after the shard end: %v", err)
		}
	})
}

func TestSubscribeToShardStartingPositions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := New(WithStream("s", 1))
		seqs := putN(f, 0, 2)
		time.Sleep(time.Minute)
		mid := time.Now()
		seqs = append(seqs, putN(f, 2, 4)...)
		for _, tt := range []struct {
			pos  types.StartingPosition
			want string
		}{
			{types.StartingPosition{Type: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String(seqs[1])}, "[r1 r2 r3 cont=true children=0]"},
			{types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: aws.String(seqs[1])}, "[r2 r3 cont=true children=0]"},
			{types.StartingPosition{Type: types.ShardIteratorTypeAtTimestamp, Timestamp: &mid}, "[r2 r3 cont=true children=0]"},
			{types.StartingPosition{Type: types.ShardIteratorTypeLatest}, "[cont=true children=0]"},
		} {
			es := subscribe(t, t.Context(), f, tt.pos)
			ev := nextEvent(t, es)
			if got := eventString(ev); got != tt.want {
				t.Errorf("from %s: first event %s, want %s", tt.pos.Type, got, tt.want)
			}
			if tt.pos.Type == types.ShardIteratorTypeLatest && aws.ToString(ev.ContinuationSequenceNumber) != seqs[3] {
				t.Errorf("from LATEST: continuation %s, want the last record's %s", aws.ToString(ev.ContinuationSequenceNumber), seqs[3])
			}
			es.Close()
		}
	})
}

func TestSubscribeToShardPlans(t *testing.T) {
	boom := errors.New("boom")
	for _, tt := range []struct {
		name   string
		plan   SubscribePlan
		events int
		err    error
	}{
		{"an early end closes the channel with no error", SubscribePlan{Events: 2, Then: EndEarly}, 2, nil},
		{"a stream failure reports its error", SubscribePlan{Events: 1, Then: FailStream, Err: boom}, 1, boom},
		{"a normal subscription lasts five minutes", SubscribePlan{}, 301, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := New(WithStream("s", 1), WithSubscribePlan(func(int, *kinesis.SubscribeToShardInput) SubscribePlan { return tt.plan }))
				es := subscribe(t, t.Context(), f, types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
				n := 0
				for range es.Events() {
					n++
				}
				if n != tt.events || !errors.Is(es.Err(), tt.err) {
					t.Errorf("%d events then Err %v, want %d then %v", n, es.Err(), tt.events, tt.err)
				}
				es.Close()
			})
		})
	}
	t.Run("a silent subscription sends nothing until closed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := New(WithStream("s", 1), WithSubscribePlan(func(int, *kinesis.SubscribeToShardInput) SubscribePlan {
				return SubscribePlan{Events: 1, Then: GoSilent}
			}))
			es := subscribe(t, t.Context(), f, types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
			nextEvent(t, es)
			time.Sleep(time.Hour)
			select {
			case ev := <-es.Events():
				t.Fatalf("a silent subscription sent %v", ev)
			default:
			}
			es.Close()
			if ev := nextEvent(t, es); ev != nil {
				t.Errorf("event %v after Close", ev)
			}
		})
	})
	t.Run("cancelling the request context ends the stream with its error", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := New(WithStream("s", 1))
			ctx, cancel := context.WithCancel(t.Context())
			es := subscribe(t, ctx, f, types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
			nextEvent(t, es)
			cancel()
			for range es.Events() {
			}
			if !errors.Is(es.Err(), context.Canceled) {
				t.Errorf("Err %v, want context.Canceled", es.Err())
			}
			es.Close()
		})
	})
}

func TestSubscribeToShardEndlessClosedShards(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := New(WithStream("s", 1), WithEndlessClosedShards())
		seqs := putN(f, 0, 2)
		if _, err := f.SplitShard(t.Context(), &kinesis.SplitShardInput{
			StreamName: aws.String("s"), ShardToSplit: aws.String("shardId-000000000000"),
			NewStartingHashKey: aws.String("170141183460469231731687303715884105728"),
		}); err != nil {
			t.Fatal(err)
		}
		es := subscribe(t, t.Context(), f, types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
		defer es.Close()
		for i := range 30 {
			ev := nextEvent(t, es)
			if ev == nil || len(ev.ChildShards) != 0 || aws.ToString(ev.ContinuationSequenceNumber) != seqs[1] || (i > 0 && len(ev.Records) != 0) {
				t.Fatalf("event %d: %s, want an empty event continuing at the last record", i, eventString(ev))
			}
		}
		_, out := readShard(t, f, "s", "shardId-000000000000")
		if out.NextShardIterator != nil || len(out.ChildShards) != 2 {
			t.Error("GetRecords does not report the shard end")
		}
	})
}

func TestSubscribeToShardRejects(t *testing.T) {
	f := New(WithStream("s", 1), WithFault(func(op string, in any) error {
		if in, ok := in.(*kinesis.SubscribeToShardInput); ok && aws.ToString(in.ShardId) == "shardId-000000000000" && in.StartingPosition.Type == types.ShardIteratorTypeLatest {
			return &types.ResourceInUseException{}
		}
		return nil
	}))
	for _, tt := range []struct {
		name  string
		arn   string
		shard string
		pos   types.StartingPosition
		check func(error) bool
	}{
		{"an injected fault", testConsumer, "shardId-000000000000", types.StartingPosition{Type: types.ShardIteratorTypeLatest}, isErr[*types.ResourceInUseException]},
		{"a malformed consumer ARN", "arn:nope", "shardId-000000000000", types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}, isErr[*types.InvalidArgumentException]},
		{"a consumer of a missing stream", "arn:aws:kinesis:us-east-1:123456789012:stream/gone/consumer/app:1", "shardId-000000000000", types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}, isErr[*types.ResourceNotFoundException]},
		{"a missing shard", testConsumer, "shardId-000000000009", types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}, isErr[*types.ResourceNotFoundException]},
		{"a foreign sequence number", testConsumer, "shardId-000000000000", types.StartingPosition{Type: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String("1")}, isErr[*types.InvalidArgumentException]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.SubscribeToShard(t.Context(), &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(tt.arn), ShardId: aws.String(tt.shard), StartingPosition: &tt.pos})
			var oe *smithy.OperationError
			if !tt.check(err) || !errors.As(err, &oe) || oe.Operation() != "SubscribeToShard" {
				t.Errorf("SubscribeToShard returned %v", err)
			}
		})
	}
	if started, _ := f.Subscriptions(); started != 0 {
		t.Errorf("%d subscriptions started by failed calls", started)
	}
}
