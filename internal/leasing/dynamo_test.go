package leasing_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/internal/leasing"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/dynamolease"
	"github.com/kclgo/kcl/testkit/testenv"
)

// These tests run the coordinator against DynamoDB Local in real time, with
// the default timings. Exact timing targets are checked in fake time (the
// synctest tests and TestSimulation); here the times are measured and logged,
// and asserted only with margins a loaded machine cannot break, which still
// tell the mechanisms apart (a release is not an expiry).

// dynamoTable names a fresh lease table and deletes it after the test.
func dynamoTable(t *testing.T) string {
	t.Helper()
	client := testenv.DynamoDB(t)
	table := testenv.UniqueName(t, "kcl-leases")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	return table
}

// dynamoStore opens table with a client of its own, as a separate worker
// process would, and makes sure the table exists.
func dynamoStore(t *testing.T, table string) *dynamolease.Store {
	t.Helper()
	s, err := dynamolease.New(testenv.DynamoDB(t), table)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureTable(t.Context()); err != nil {
		t.Fatalf("EnsureTable: %v", err)
	}
	return s
}

// waitReal polls cond in real time until it holds, and returns how long that
// took; it fails the test after limit.
func waitReal(t *testing.T, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("condition not met within %v", limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func TestTenWorkersStartTogetherOnAFreshApplication(t *testing.T) {
	table := dynamoTable(t)
	const workers, shards = 10, 8

	// Every worker, at the same instant, creates the table and the leases
	// (as shard sync will): the creation races must be absorbed.
	stores := make([]*dynamolease.Store, workers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		client := testenv.DynamoDB(t)
		wg.Go(func() {
			<-start
			s, err := dynamolease.New(client, table)
			if err == nil {
				err = s.EnsureTable(t.Context())
			}
			for j := 0; err == nil && j < shards; j++ {
				l := lease.Lease{Key: fmt.Sprintf("shardId-%012d", j), Checkpoint: checkpoint.TrimHorizon}
				if err = s.Create(t.Context(), l); errors.Is(err, lease.ErrAlreadyExists) {
					err = nil
				}
			}
			if err != nil {
				errs <- fmt.Errorf("worker %d: %w", i, err)
				return
			}
			stores[i] = s
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	f := newFleetOn(t, stores[0], 0)
	var ws []*worker
	for i, s := range stores {
		ws = append(ws, f.startOn(s, fmt.Sprintf("worker-%02d", i)))
	}
	took := waitReal(t, 30*time.Second, func() bool {
		total := 0
		for _, w := range ws {
			n := f.holding(w.id)
			if n > 1 {
				return false // fair share is ceil(8/10) = 1
			}
			total += n
		}
		return total == shards
	})
	t.Logf("%d workers started together on a fresh application: all %d shards processed, one per worker, after %v", workers, shards, took.Round(time.Millisecond))
	f.checkNoOverlap()
	var stop sync.WaitGroup
	for _, w := range ws {
		stop.Go(w.stop)
	}
	stop.Wait()
}

func TestFailoverTimingsOnDynamoDBLocal(t *testing.T) {
	table := dynamoTable(t)
	const shards = 8
	f := newFleetOn(t, dynamoStore(t, table), shards)
	d := leasing.DefaultLeaseDuration

	a := f.startOn(dynamoStore(t, table), "a")
	waitReal(t, 10*time.Second, func() bool { return f.holding("a") == shards })

	b := f.startOn(dynamoStore(t, table), "b")
	join := waitReal(t, 3*d, func() bool { return f.holding("a") == shards/2 && f.holding("b") == shards/2 })
	t.Logf("join: b reaches its fair share %v after starting", join.Round(time.Millisecond))
	if s := b.coord.Stats(); s.ForcedTakes != 0 {
		t.Errorf("join: %d forced takes; the holder should have handed over", s.ForcedTakes)
	}

	stopAt := time.Now()
	go a.stop()
	graceful := waitReal(t, 3*d, func() bool { return f.holding("b") == shards })
	t.Logf("graceful stop: b processes all leases %v after a's stop began (a's Run returned after %v, lingering for late assignments)",
		graceful.Round(time.Millisecond), a.stoppedIn(stopAt).Round(time.Millisecond))
	if graceful >= d {
		t.Errorf("graceful stop: b took over after %v, not before the lease duration %v: the leases expired instead of being handed over", graceful, d)
	}

	c := f.startOn(dynamoStore(t, table), "c")
	waitReal(t, 3*d, func() bool { return f.holding("b") == shards/2 && f.holding("c") == shards/2 })

	b.crash()
	lastRenew := time.Unix(0, b.store.lastRenew.Load())
	waitReal(t, 3*d, func() bool { return f.holding("c") == shards })
	failover := time.Since(lastRenew)
	t.Logf("crash: c processes all of b's leases %v after b's last renewal (lease duration %v)", failover.Round(time.Millisecond), d)
	if failover < d {
		t.Errorf("crash: c took over %v after b's last renewal, before the lease duration %v", failover, d)
	}
	if failover > d+2*leasing.DefaultTakeInterval+3*time.Second {
		t.Errorf("crash: failover took %v, want about %v", failover, d+leasing.DefaultTakeInterval)
	}
	f.checkNoOverlap()
	if n := f.holding("b"); n != 0 {
		t.Errorf("the crashed worker still processes %d leases", n)
	}
	c.stop()
	b.end()
}
