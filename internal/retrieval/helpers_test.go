package retrieval

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kclgo/kcl/aggregate"
	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/deaggregate"
	"github.com/kclgo/kcl/testkit/fakekinesis"
)

const (
	testStream = "orders"
	shard0     = "shardId-000000000000"
)

var errTestDone = errors.New("test done")

// calls records the CallInfo of every call, safe for concurrent use.
type calls struct {
	mu    sync.Mutex
	infos []CallInfo
	at    []time.Time
}

func (c *calls) hook(info CallInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.infos = append(c.infos, info)
	c.at = append(c.at, time.Now())
}

// count returns how many calls of op were made, and their times.
func (c *calls) count(op string) (int, []time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var at []time.Time
	for i, info := range c.infos {
		if info.Op == op {
			at = append(at, c.at[i])
		}
	}
	return len(at), at
}

// snapshot returns a copy of the infos.
func (c *calls) snapshot() []CallInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]CallInfo(nil), c.infos...)
}

// pollConfig is a Polling Config as the tests write it: the Config and its
// mode's fields side by side (no names clash), joined by newFetcher.
type pollConfig struct {
	Config
	Polling
}

// newFetcher builds the Fetcher of cfg with NewReader.
func newFetcher(api API, cfg pollConfig) (*Fetcher, error) {
	cfg.Mode = cfg.Polling
	r, err := NewReader(api, cfg.Config)
	if err != nil {
		return nil, err
	}
	return r.(*Fetcher), nil
}

// config returns a Config reading shard0 of testStream from TRIM_HORIZON at
// the fastest pace, with c hooked.
func config(c *calls) pollConfig {
	cfg := pollConfig{
		Config:  Config{Shard: Shard{StreamName: testStream, ShardID: shard0, Start: checkpoint.TrimHorizon}},
		Polling: Polling{IdleTime: MinIdleTime},
	}
	if c != nil {
		cfg.Hooks.Call = c.hook
	}
	return cfg
}

func mustNew(t *testing.T, api API, cfg pollConfig) *Fetcher {
	t.Helper()
	f, err := newFetcher(api, cfg)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	return f
}

// running is a Run in progress.
type running struct {
	out    chan Batch
	cancel context.CancelCauseFunc
	errc   chan error
}

// start runs f in a goroutine and checks, when the test ends, that Run left
// no goroutine behind.
func start(t *testing.T, f *Fetcher) *running {
	t.Helper()
	ctx, cancel := context.WithCancelCause(t.Context())
	r := &running{out: make(chan Batch), cancel: cancel, errc: make(chan error, 1)}
	go func() {
		err := f.Run(ctx, r.out)
		// Checked at once: Run must not return before the fetch goroutine
		// it started last has exited. (runtime.NumGoroutine is
		// process-wide and counts the runtime's finalizer goroutine while it
		// runs user code, so the stacks are searched instead. Goroutines of
		// the bubble left blocked would also make synctest.Test fail.)
		if stacks, ok := fetcherRunning(); ok {
			t.Errorf("a fetch goroutine is still there after Run returned:\n%s", stacks)
		}
		r.errc <- err
	}()
	t.Cleanup(func() {
		cancel(errTestDone)
		<-r.errc
		r.errc <- nil // for a later stop
	})
	return r
}

// fetcherRunning reports whether any goroutine is in a Fetcher's Run or in
// one of its fetch goroutines (which exist only while a fetch is under way),
// and returns all stacks.
func fetcherRunning() (string, bool) {
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	return stacks, strings.Contains(stacks, "retrieval.(*Fetcher).Run") || strings.Contains(stacks, "retrieval.(*fetchState).")
}

// stop cancels Run and returns its error.
func (r *running) stop() error {
	r.cancel(errTestDone)
	err := <-r.errc
	r.errc <- err
	return err
}

// wait returns Run's error once it has returned by itself.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.errc:
		r.errc <- err
		return err
	case <-time.After(time.Hour):
		t.Fatal("Run did not return")
		return nil
	}
}

// receive takes batches until it has n user records or a ShardEnd batch,
// and returns the records and the final batch (zero if none).
func (r *running) receive(t *testing.T, n int) ([]deaggregate.Record, Batch) {
	t.Helper()
	var recs []deaggregate.Record
	timeout := time.After(time.Hour)
	for len(recs) < n {
		select {
		case b := <-r.out:
			recs = append(recs, b.Records...)
			if b.ShardEnd {
				return recs, b
			}
		case err := <-r.errc:
			r.errc <- err
			t.Fatalf("Run returned %v after %d of %d records", err, len(recs), n)
		case <-timeout:
			t.Fatalf("got %d of %d records in an hour", len(recs), n)
		}
	}
	return recs, Batch{}
}

// put writes n plain records "r0".."r<n-1>" and returns their sequence
// numbers.
func put(fk *fakekinesis.Fake, n int) []string {
	seqs := make([]string, n)
	for i := range n {
		_, seqs[i] = fk.Put(testStream, fmt.Sprintf("pk-%d", i), fmt.Appendf(nil, "r%d", i))
	}
	return seqs
}

// checkPlain checks that recs are exactly the plain records "r0".."r<n-1>".
func checkPlain(t *testing.T, recs []deaggregate.Record, n int) {
	t.Helper()
	if len(recs) != n {
		t.Errorf("got %d records, want %d", len(recs), n)
	}
	for i, r := range recs {
		if want := fmt.Sprintf("r%d", i); string(r.Data) != want {
			t.Fatalf("record %d is %q, want %q (lost or duplicated)", i, r.Data, want)
		}
	}
}

// putAggregate writes one KPL aggregate of n user records with data
// "<prefix>-0".. and returns its sequence number.
func putAggregate(t *testing.T, fk *fakekinesis.Fake, prefix string, n int) string {
	t.Helper()
	urs := make([]aggregate.UserRecord, n)
	for i := range urs {
		urs[i] = aggregate.UserRecord{PartitionKey: fmt.Sprintf("%s-%d", prefix, i), Data: fmt.Appendf(nil, "%s-%d", prefix, i)}
	}
	data, err := aggregate.Marshal(urs)
	if err != nil {
		t.Fatal(err)
	}
	_, seq := fk.Put(testStream, prefix, data)
	return seq
}

// tamper wraps an API and lets a test rewrite GetRecords results.
type tamper struct {
	API
	edit func(out *kinesis.GetRecordsOutput)
}

func (a tamper) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	out, err := a.API.GetRecords(ctx, in, optFns...)
	if err == nil {
		a.edit(out)
	}
	return out, err
}

func split(t *testing.T, fk *fakekinesis.Fake) {
	t.Helper()
	_, err := fk.SplitShard(t.Context(), &kinesis.SplitShardInput{
		StreamName:         aws.String(testStream),
		ShardToSplit:       aws.String(shard0),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728"),
	})
	if err != nil {
		t.Fatal(err)
	}
}

var _ API = (*fakekinesis.Fake)(nil)
