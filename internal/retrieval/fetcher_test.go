package retrieval

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/deaggregate"
	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/testkit/fakekinesis"
)

func TestResumeInsideAggregate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1))
		put(fk, 2)
		seq := putAggregate(t, fk, "agg", 10)
		later := putAggregate(t, fk, "later", 3)
		_, plain := fk.Put(testStream, "pk", []byte("plain"))

		cp, err := checkpoint.At(seq, 3)
		if err != nil {
			t.Fatal(err)
		}
		cfg := config(nil)
		cfg.Start = cp
		cfg.HashRange = &hashkey.Range{Start: hashkey.Key{}, End: hashkey.Max}
		r := start(t, mustNew(t, fk, cfg))
		recs, _ := r.receive(t, 10)

		var got []string
		for _, rec := range recs {
			got = append(got, fmt.Sprintf("%s/%d=%s", rec.SequenceNumber, rec.SubSequenceNumber, rec.Data))
		}
		var want []string
		for i := 4; i < 10; i++ {
			want = append(want, fmt.Sprintf("%s/%d=agg-%d", seq, i, i))
		}
		for i := range 3 {
			want = append(want, fmt.Sprintf("%s/%d=later-%d", later, i, i))
		}
		want = append(want, plain+"/0=plain")
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("delivered\n%v\nwant\n%v", got, want)
		}
		if err := r.stop(); !errors.Is(err, errTestDone) {
			t.Errorf("Run returned %v, want the context's cause", err)
		}
	})
}

func TestResumeAtPlainRecordSkipsIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1))
		seqs := put(fk, 5)
		cfg := config(nil)
		cfg.Start, _ = checkpoint.At(seqs[1], 0)
		r := start(t, mustNew(t, fk, cfg))
		recs, _ := r.receive(t, 3)
		if len(recs) != 3 || string(recs[0].Data) != "r2" || string(recs[2].Data) != "r4" {
			t.Errorf("got %d records starting %q, want r2..r4", len(recs), recs[0].Data)
		}
	})
}

func TestIdleTimeBetweenCalls(t *testing.T) {
	for _, full := range []bool{false, true} {
		t.Run(fmt.Sprintf("full pages %v", full), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1))
				if full {
					put(fk, 100)
				}
				var c calls
				cfg := config(&c)
				cfg.IdleTime = 300 * time.Millisecond
				cfg.MaxRecords = 1
				cfg.MaxBatches = 1000
				r := start(t, mustNew(t, fk, cfg))
				drained := make(chan struct{})
				go func() {
					defer close(drained)
					for range r.out {
					}
				}()
				time.Sleep(4*cfg.IdleTime + cfg.IdleTime/2)
				n, at := c.count("GetRecords")
				if n != 5 {
					t.Fatalf("%d GetRecords calls in 4.5 idle times, want 5", n)
				}
				if d := at[4].Sub(at[0]); d < 4*cfg.IdleTime {
					t.Errorf("5 calls took %v, want >= %v", d, 4*cfg.IdleTime)
				}
				for i := 1; i < n; i++ {
					if d := at[i].Sub(at[i-1]); d < cfg.IdleTime {
						t.Errorf("call %d came %v after the previous one", i, d)
					}
				}
				_ = r.stop()
				close(r.out)
				<-drained
			})
		})
	}
}

func TestNeverMoreThanFiveCallsPerSecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1), fakekinesis.WithReadThrottle())
		put(fk, 50)
		cfg := config(nil)
		cfg.MaxRecords = 1
		r := start(t, mustNew(t, fk, cfg))
		recs, _ := r.receive(t, 50)
		checkPlain(t, recs, 50)
		if errs := fk.Stats().Errors["GetRecords"]; errs != 0 {
			t.Errorf("%d GetRecords calls throttled at IdleTime 200ms", errs)
		}
	})
}

func TestPrefetchIsBounded(t *testing.T) {
	tests := []struct {
		name       string
		maxBatches int
		maxBytes   int
		data       int
	}{
		{"by batches", 3, 0, 10},
		{"by bytes", 100, 2500, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1))
				for i := range 20 {
					data := make([]byte, tt.data)
					copy(data, fmt.Sprintf("r%d", i))
					fk.Put(testStream, "k", data)
				}
				var c calls
				cfg := config(&c)
				cfg.MaxRecords = 1
				cfg.MaxBatches, cfg.MaxBytes = tt.maxBatches, tt.maxBytes
				r := start(t, mustNew(t, fk, cfg))
				time.Sleep(time.Minute) // a consumer that takes nothing
				if n, _ := c.count("GetRecords"); n != 3 {
					t.Fatalf("%d GetRecords calls with a stalled consumer, want 3", n)
				}
				<-r.out
				time.Sleep(time.Minute)
				if n, _ := c.count("GetRecords"); n != 4 {
					t.Fatalf("%d GetRecords calls after one batch was taken, want 4", n)
				}
				recs, _ := r.receive(t, 19)
				for i, rec := range recs {
					if want := fmt.Sprintf("r%d", i+1); string(rec.Data[:len(want)]) != want {
						t.Fatalf("record %d is %q, want %q", i, rec.Data[:len(want)], want)
					}
				}
			})
		})
	}
}

// faultEvery returns a fault hook failing every n-th GetRecords call with
// the errors from mk in turn.
func faultEvery(n int, mk ...func() error) func(string, any) error {
	var mu sync.Mutex
	calls := 0
	return func(op string, _ any) error {
		if op != "GetRecords" {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls%n != 0 {
			return nil
		}
		return mk[(calls/n)%len(mk)]()
	}
}

// faultIterators expires every third iterator and throttles or fails every
// other GetShardIterator call.
func faultIterators() func(string, any) error {
	var mu sync.Mutex
	n := map[string]int{}
	return func(op string, _ any) error {
		mu.Lock()
		defer mu.Unlock()
		n[op]++
		switch {
		case op == "GetRecords" && n[op]%3 == 0:
			return fakekinesis.ExpiredIterator()
		case op == "GetShardIterator" && n[op]%4 == 2:
			return fakekinesis.Throttled()
		case op == "GetShardIterator" && n[op]%4 == 3:
			return fakekinesis.ConnectionReset()
		}
		return nil
	}
}

func TestRetriesKeepThePosition(t *testing.T) {
	tests := []struct {
		name  string
		fault func(string, any) error
	}{
		{"throttling", faultEvery(2, fakekinesis.Throttled)},
		{"connection resets and server errors", faultEvery(2, fakekinesis.ConnectionReset, fakekinesis.InternalError)},
		{"expired iterators", faultEvery(3, fakekinesis.ExpiredIterator)},
		{"GetShardIterator throttled after expiries", faultIterators()},
		{"everything at once", faultEvery(1, fakekinesis.Throttled, fakekinesis.ExpiredIterator, fakekinesis.InternalError, func() error { return nil })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1), fakekinesis.WithFault(tt.fault))
				put(fk, 30)
				var c calls
				cfg := config(&c)
				cfg.MaxRecords = 4
				r := start(t, mustNew(t, fk, cfg))
				recs, _ := r.receive(t, 30)
				checkPlain(t, recs, 30)
				if fk.Stats().Errors["GetRecords"] == 0 {
					t.Error("no fault was injected")
				}
			})
		})
	}
}

func TestThrottlingBacksOffExponentially(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1), fakekinesis.WithFault(func(op string, _ any) error {
			if op == "GetRecords" {
				return fakekinesis.Throttled()
			}
			return nil
		}))
		var c calls
		cfg := config(&c)
		cfg.BackoffBase, cfg.BackoffMax = time.Second, 8*time.Second
		r := start(t, mustNew(t, fk, cfg))
		time.Sleep(time.Minute)
		n, at := c.count("GetRecords")
		// Delays are within [d/2, d] for d = 1, 2, 4, 8, 8, ... seconds.
		if n < 8 || n > 17 {
			t.Errorf("%d throttled calls in a minute, want 8..17 with backoff 1s..8s", n)
		}
		for i := 1; i < min(n, 5); i++ {
			nominal := time.Second << (i - 1)
			if d := at[i].Sub(at[i-1]); d < nominal/2 || d > nominal {
				t.Errorf("retry %d after %v, want [%v, %v]", i, d, nominal/2, nominal)
			}
		}
		for _, info := range c.snapshot() {
			if info.Op == "GetRecords" && info.Kind.String() != "throttled" {
				t.Errorf("hook saw kind %v", info.Kind)
			}
		}
		_ = r.stop()
	})
}

func TestIteratorExpiresWhileConsumerIsSlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1))
		put(fk, 12)
		var c calls
		cfg := config(&c)
		cfg.MaxRecords = 2
		cfg.MaxBatches = 1
		r := start(t, mustNew(t, fk, cfg))
		var recs []deaggregate.Record
		for len(recs) < 12 {
			b := <-r.out
			recs = append(recs, b.Records...)
			time.Sleep(6 * time.Minute) // longer than an iterator lives
		}
		checkPlain(t, recs, 12)
		if n, _ := c.count("GetShardIterator"); n < 5 {
			t.Errorf("%d GetShardIterator calls, want one per expiry", n)
		}
		expired := 0
		for _, info := range c.snapshot() {
			if info.Kind.String() == "expired iterator" {
				expired++
			}
		}
		if expired == 0 {
			t.Error("no iterator expired")
		}
	})
}

func TestExpiryBeforeAnyRecordRestartsAtTheStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		first := true
		var mu sync.Mutex
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1), fakekinesis.WithFault(func(op string, _ any) error {
			mu.Lock()
			defer mu.Unlock()
			if op == "GetRecords" && first {
				first = false
				return fakekinesis.ExpiredIterator()
			}
			return nil
		}))
		seqs := put(fk, 6)
		cfg := config(nil)
		cfg.Start, _ = checkpoint.At(seqs[2], 0)
		r := start(t, mustNew(t, fk, cfg))
		recs, _ := r.receive(t, 3)
		if len(recs) != 3 || string(recs[0].Data) != "r3" {
			t.Errorf("got %d records from %q, want r3..r5", len(recs), recs[0].Data)
		}
	})
}

func TestRepeatedIteratorExpiryBacksOffExponentially(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1), fakekinesis.WithFault(func(op string, _ any) error {
			if op == "GetRecords" {
				return fakekinesis.ExpiredIterator()
			}
			return nil
		}))
		var c calls
		cfg := config(&c)
		cfg.BackoffBase, cfg.BackoffMax = time.Second, 8*time.Second
		r := start(t, mustNew(t, fk, cfg))
		time.Sleep(time.Minute)
		n, at := c.count("GetRecords")
		// The first expiry is retried at once (after IdleTime); the next
		// ones after delays within [d/2, d] for d = 1, 2, 4, 8, 8, ...
		// seconds. The GetShardIterator call between each expired call
		// and the next does not reset the count.
		// Calls at 0, 0.2 s, then 0.5–1, 1–2, 2–4, 4–8 s apart, then 4–8 s.
		if n < 11 || n > 19 {
			t.Errorf("%d expired calls in a minute, want 11..19 with backoff 1s..8s", n)
		}
		if n > 1 {
			if d := at[1].Sub(at[0]); d != cfg.IdleTime {
				t.Errorf("first retry after %v, want IdleTime %v", d, cfg.IdleTime)
			}
		}
		for i := 2; i < min(n, 6); i++ {
			nominal := time.Second << (i - 2)
			if d := at[i].Sub(at[i-1]); d < nominal/2 || d > nominal {
				t.Errorf("retry %d after %v, want [%v, %v]", i, d, nominal/2, nominal)
			}
		}
		_ = r.stop()
	})
}

// A fault that recurs at the polling period, such as every third call of a
// process whose three shards poll at the same IdleTime, must not starve a
// shard whose calls fall on it: the backoff's jitter moves the retries off
// the period. (Without backoff, every retry waits exactly IdleTime after the
// expired call and meets the fault again, for ever.)
func TestIteratorExpiringAtEveryPollPeriodDoesNotStarveTheShard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idle := MinIdleTime
		start0 := time.Now()
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1), fakekinesis.WithFault(func(op string, _ any) error {
			if op == "GetRecords" && time.Since(start0)%idle == 0 {
				return fakekinesis.ExpiredIterator()
			}
			return nil
		}))
		put(fk, 10)
		var c calls
		cfg := config(&c)
		cfg.IdleTime = idle
		cfg.MaxRecords = 5
		r := start(t, mustNew(t, fk, cfg))
		recs, _ := r.receive(t, 10)
		checkPlain(t, recs, 10)
		if fk.Stats().Errors["GetRecords"] == 0 {
			t.Error("no fault was injected")
		}
		_ = r.stop()
	})
}

func TestShardEnd(t *testing.T) {
	for _, empty := range []bool{false, true} {
		t.Run(fmt.Sprintf("empty final result %v", empty), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				opts := []fakekinesis.Option{fakekinesis.WithStream(testStream, 1)}
				if empty {
					opts = append(opts, fakekinesis.WithEmptyShardEnd())
				}
				fk := fakekinesis.New(opts...)
				put(fk, 25)
				split(t, fk)
				cfg := config(nil)
				cfg.MaxRecords = 10
				r := start(t, mustNew(t, fk, cfg))
				recs, last := r.receive(t, 1000)
				checkPlain(t, recs, 25)
				if !last.ShardEnd || len(last.ChildShards) != 2 {
					t.Fatalf("final batch %+v, want ShardEnd with 2 children", last)
				}
				if got := aws.ToString(last.ChildShards[0].ShardId); got != "shardId-000000000001" {
					t.Errorf("first child %s", got)
				}
				if err := r.wait(t); err != nil {
					t.Errorf("Run returned %v at shard end, want nil", err)
				}
			})
		})
	}
}

func TestMissingShardIsItsEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1))
		cfg := config(nil)
		cfg.ShardID = "shardId-000000000099"
		r := start(t, mustNew(t, fk, cfg))
		_, last := r.receive(t, 1000)
		if !last.ShardEnd || last.ChildShards != nil {
			t.Errorf("final batch %+v, want ShardEnd without children", last)
		}
		if err := r.wait(t); err != nil {
			t.Errorf("Run returned %v", err)
		}
	})
}

func TestShardVanishingMidReadIsItsEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		n := 0
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1), fakekinesis.WithFault(func(op string, _ any) error {
			mu.Lock()
			defer mu.Unlock()
			if op == "GetRecords" {
				if n++; n > 2 {
					return &types.ResourceNotFoundException{Message: aws.String("Shard does not exist")}
				}
			}
			return nil
		}))
		put(fk, 10)
		cfg := config(nil)
		cfg.MaxRecords = 3
		r := start(t, mustNew(t, fk, cfg))
		recs, last := r.receive(t, 1000)
		checkPlain(t, recs, 6)
		if !last.ShardEnd {
			t.Error("no shard end")
		}
	})
}

// noDescribe hides the fake's DescribeStreamSummary.
type noDescribe struct{ API }

func TestMissingStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1))
		cfg := config(nil)
		cfg.StreamName = "gone"
		r := start(t, mustNew(t, fk, cfg))
		if err := r.wait(t); !errors.Is(err, ErrStreamNotFound) {
			t.Errorf("Run returned %v, want ErrStreamNotFound", err)
		}

		// Without DescribeStreamSummary it cannot tell, and does what KCL does.
		r = start(t, mustNew(t, noDescribe{fk}, cfg))
		if _, last := r.receive(t, 1000); !last.ShardEnd {
			t.Error("no shard end without DescribeStreamSummary")
		}
	})
}

func TestNonRetryableErrorsEndRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1), fakekinesis.WithFault(func(op string, _ any) error {
			if op == "GetRecords" {
				return &types.AccessDeniedException{Message: aws.String("no")}
			}
			return nil
		}))
		r := start(t, mustNew(t, fk, config(nil)))
		var denied *types.AccessDeniedException
		if err := r.wait(t); !errors.As(err, &denied) {
			t.Errorf("Run returned %v, want access denied", err)
		}

		// A sequence number from another shard is an invalid request.
		fk2 := fakekinesis.New(fakekinesis.WithStream(testStream, 2))
		cfg := config(nil)
		cfg.Start, _ = checkpoint.At("4959"+fmt.Sprintf("%052d", 0), 0)
		cfg.ShardID = "shardId-000000000001"
		r = start(t, mustNew(t, fk2, cfg))
		var invalid *types.InvalidArgumentException
		if err := r.wait(t); !errors.As(err, &invalid) {
			t.Errorf("Run returned %v, want invalid argument", err)
		}
	})
}

func TestInvalidResultsAreRetriedFromTheLastRecord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1))
		put(fk, 20)
		var mu sync.Mutex
		n := 0
		api := tamper{API: fk, edit: func(out *kinesis.GetRecordsOutput) {
			mu.Lock()
			defer mu.Unlock()
			if n++; n%3 == 0 {
				out.NextShardIterator = nil // neither iterator nor children
			}
		}}
		cfg := config(nil)
		cfg.MaxRecords = 3
		r := start(t, mustNew(t, api, cfg))
		recs, _ := r.receive(t, 20)
		checkPlain(t, recs, 20)
	})
}

func TestPersistentlyInvalidResultsEndRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1))
		api := tamper{API: fk, edit: func(out *kinesis.GetRecordsOutput) {
			out.ChildShards = []types.ChildShard{{ShardId: aws.String("x")}} // both
		}}
		r := start(t, mustNew(t, api, config(nil)))
		if err := r.wait(t); !errors.Is(err, ErrInvalidResult) {
			t.Errorf("Run returned %v, want ErrInvalidResult", err)
		}
	})
}

func TestHashRangeFilter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1))
		aggSeq := putAggregate(t, fk, "agg", 10)
		put(fk, 1)
		var mu sync.Mutex
		var reported []*deaggregate.RecordError
		cfg := config(nil)
		// A range holding no user record of the aggregate (only key 0).
		hr, _ := hashkey.ParseRange("0", "1")
		cfg.HashRange = &hr
		cfg.OnError = func(e *deaggregate.RecordError) {
			mu.Lock()
			defer mu.Unlock()
			reported = append(reported, e)
		}
		r := start(t, mustNew(t, fk, cfg))
		recs, _ := r.receive(t, 1)
		if len(recs) != 1 || string(recs[0].Data) != "r0" {
			t.Errorf("got %d records, want only the plain one", len(recs))
		}
		_ = r.stop()
		if len(reported) != 1 || reported[0].SequenceNumber != aggSeq || !errors.Is(reported[0], deaggregate.ErrOutOfRange) {
			t.Errorf("reported %v, want the aggregate out of range", reported)
		}
	})
}

func TestCancelReturnsCauseAndLeavesNothingRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1), fakekinesis.WithFault(faultEvery(2, fakekinesis.Throttled)))
		put(fk, 100)
		cfg := config(nil)
		cfg.MaxRecords = 1
		for _, after := range []time.Duration{0, time.Millisecond, 250 * time.Millisecond, 3 * time.Second} {
			r := start(t, mustNew(t, fk, cfg))
			time.Sleep(after)
			if _, ok := fetcherRunning(); !ok && after > 0 {
				t.Fatal("the leak check does not see a running Fetcher")
			}
			if err := r.stop(); !errors.Is(err, errTestDone) {
				t.Errorf("after %v Run returned %v, want the cause", after, err)
			}
			synctest.Wait()
		}
	})
}

func TestStartPositions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1))
		fk.Put(testStream, "k", []byte("old"))
		time.Sleep(time.Minute)
		mid := time.Now()
		time.Sleep(time.Minute)
		fk.Put(testStream, "k", []byte("r0"))

		// AT_TIMESTAMP, with the stream named by its ARN.
		cfg := config(nil)
		cfg.StreamName, cfg.StreamARN = "", "arn:aws:kinesis:us-east-1:123456789012:stream/"+testStream
		cfg.Start, cfg.Timestamp = checkpoint.AtTimestamp, mid
		r := start(t, mustNew(t, fk, cfg))
		recs, _ := r.receive(t, 1)
		checkPlain(t, recs, 1)
		_ = r.stop()

		// LATEST sees only what is put after it started.
		cfg = config(nil)
		cfg.Start = checkpoint.Latest
		r = start(t, mustNew(t, fk, cfg))
		time.Sleep(time.Second)
		fk.Put(testStream, "k", []byte("r0"))
		fk.Put(testStream, "k", []byte("r1"))
		recs, _ = r.receive(t, 2)
		checkPlain(t, recs, 2)
	})
}
