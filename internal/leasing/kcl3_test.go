package leasing_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/internal/leasing"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/dynamolease"
	"github.com/kclgo/kcl/testkit/testenv"
)

// These tests run a kcl worker in a Java KCL 3.x fleet of the 3.0–3.4 table
// layout (lease table, <table>-CoordinatorState, <table>-WorkerMetricStats)
// at CLIENT_VERSION_3X, beside simulated Java 3.x workers (javaWorker3)
// that, like KCL 3.x's, take no lease by themselves: they renew and process
// what the leader assigns them and complete its graceful handoffs.

// kcl3Fleet creates the fleet's three tables, the Migration3.0 row of a
// finished 2.x -> 3.x migration, and n unowned leases.
func kcl3Fleet(t *testing.T, n int) (*dynamodb.Client, string, *dynamolease.Store) {
	t.Helper()
	client := testenv.DynamoDB(t)
	table := dynamoTable(t)
	store := dynamoStore(t, table)
	for name, key := range map[string]string{table + "-CoordinatorState": "key", table + "-WorkerMetricStats": "wid"} {
		createKeyTable(t, client, name, key)
	}
	put := func(tbl string, item map[string]types.AttributeValue) {
		t.Helper()
		if _, err := client.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(tbl), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	put(table+"-CoordinatorState", map[string]types.AttributeValue{
		"key": avS("Migration3.0"), "cv": avS("CLIENT_VERSION_3X"), "mb": avS("java-1"), "mts": avN(time.Now().UnixMilli()),
	})
	for i := range n {
		if err := store.Create(t.Context(), lease.Lease{Key: fmt.Sprintf("shardId-%012d", i), Checkpoint: checkpoint.TrimHorizon}); err != nil {
			t.Fatal(err)
		}
	}
	return client, table, store
}

func createKeyTable(t *testing.T, client *dynamodb.Client, name, key string) {
	t.Helper()
	_, err := client.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(key), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(key), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
}

// javaWorker3 plays a KCL 3.x worker that does not lead: it reports its
// WorkerMetricStats row, discovers the leases assigned to it (owner = its id,
// no handoff pending), and holds each with a javaHolder (renewing, and
// completing the leader's graceful handoffs). Every write of a holder that
// failed is kept: a lease taken from a live Java worker without a handoff
// shows there.
type javaWorker3 struct {
	j        java
	id       string
	every    time.Duration // renew and discovery interval
	shutdown time.Duration // a processor's shutdownRequested time

	mu       sync.Mutex
	held     map[string]*javaHolder
	failures []string
}

func newJavaWorker3(client *dynamodb.Client, table, id string, every time.Duration) *javaWorker3 {
	return &javaWorker3{j: java{client: client, table: table}, id: id, every: every, shutdown: every, held: map[string]*javaHolder{}}
}

// report writes the worker's row as a KCL 3.0–3.4 worker does.
func (w *javaWorker3) report(ctx context.Context) error {
	_, err := w.j.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(w.j.table + "-WorkerMetricStats"),
		Item: map[string]types.AttributeValue{
			"wid": avS(w.id), "lut": avN(time.Now().Unix()),
			"sts": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"C": &types.AttributeValueMemberL{Value: []types.AttributeValue{avN(20)}}}},
			"opr": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"C": &types.AttributeValueMemberL{Value: []types.AttributeValue{avN(100)}}}},
		},
	})
	return err
}

func (w *javaWorker3) run(ctx context.Context) {
	var holders sync.WaitGroup
	defer holders.Wait()
	tick := time.NewTicker(w.every)
	defer tick.Stop()
	for {
		_ = w.report(ctx)
		out, err := w.j.client.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(w.j.table), ConsistentRead: aws.Bool(true)})
		if err == nil {
			for _, item := range out.Items {
				l, err := dynamolease.UnmarshalItem(item)
				if err != nil || l.Owner != w.id || l.CheckpointOwner != "" {
					continue
				}
				w.mu.Lock()
				_, have := w.held[l.Key]
				if !have {
					h := &javaHolder{j: w.j, l: &javaLease{key: l.Key, owner: l.Owner, counter: l.Counter}, start: "0", end: "1"}
					w.held[l.Key] = h
					holders.Go(func() {
						h.run(ctx, w.every, w.shutdown)
						w.mu.Lock()
						delete(w.held, l.Key)
						w.failures = append(w.failures, h.failures...)
						w.mu.Unlock()
					})
				}
				w.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (w *javaWorker3) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.held)
}

func (w *javaWorker3) failed() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.failures...)
}

// kcl3Worker runs a kcl coordinator in per-lease mode and counts what it
// processes.
type kcl3Worker struct {
	coord  *leasing.Coordinator
	cancel context.CancelFunc
	done   chan struct{}
}

func startKCL3Worker(t *testing.T, store *dynamolease.Store, id string, d time.Duration) *kcl3Worker {
	t.Helper()
	c, err := leasing.NewCoordinator(store, id, leasing.WithLeaseDuration(d), leasing.WithTakeInterval(300*time.Millisecond),
		leasing.WithKCL3Lock(d, d/5, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &kcl3Worker{coord: c, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		_ = c.Run(ctx, drainAfter(ctx), func(h *leasing.Held) {
			go func() {
				<-h.Context().Done()
				bg := context.Background()
				_ = h.WriteCheckpoint(bg, h.Lease().Checkpoint, checkpoint.Position{}, nil)
				_ = h.Done(bg)
			}()
		})
	}()
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

func (w *kcl3Worker) stop() { w.cancel(); <-w.done }

// lockOwner returns the leader lock's owner, "" if none.
func lockOwner(t *testing.T, store *dynamolease.Store) string {
	t.Helper()
	l, err := store.KCL3Lock(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !l.Eligible {
		t.Fatalf("the fleet is not one kcl may lead: %s", l.Why)
	}
	return l.Owner
}

func TestKclLeadsAKCL3FleetOfJavaWorkers(t *testing.T) {
	// With no leader, the kcl worker takes the lock and assigns the six
	// leases evenly over itself and two Java workers, which take nothing by
	// themselves. A crashed Java worker's leases go to the live workers, and
	// not back to it. The kcl worker's graceful stop releases the lock and
	// hands its leases to the remaining Java worker.
	const d = 2 * time.Second
	client, table, store := kcl3Fleet(t, 6)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	j1, j2 := newJavaWorker3(client, table, "java-1", d/3), newJavaWorker3(client, table, "java-2", d/3)
	ctx2, crash2 := context.WithCancel(ctx)
	var javas sync.WaitGroup
	javas.Go(func() { j1.run(ctx) })
	javas.Go(func() { j2.run(ctx2) })
	defer javas.Wait()
	defer cancel()
	k := startKCL3Worker(t, store, "kcl-1", d)

	took := waitReal(t, 20*time.Second, func() bool {
		return len(k.coord.Holding()) == 2 && j1.count() == 2 && j2.count() == 2
	})
	if got := lockOwner(t, store); got != "kcl-1" {
		t.Fatalf("lock owner %q, want kcl-1", got)
	}
	t.Logf("fair split 2/2/2 %v after start", took.Round(10*time.Millisecond))

	crash2()
	took = waitReal(t, 20*time.Second, func() bool {
		return len(k.coord.Holding()) == 3 && j1.count() == 3
	})
	t.Logf("java-2's leases reassigned %v after its crash", took.Round(10*time.Millisecond))
	for _, l := range mustList(t, store) {
		if l.Owner == "java-2" {
			t.Errorf("lease %s assigned back to the crashed java-2", l.Key)
		}
	}

	k.stop()
	if got := lockOwner(t, store); got != "" {
		t.Errorf("after kcl-1's graceful stop the lock is held by %q; want it released", got)
	}
	took = waitReal(t, 10*time.Second, func() bool { return j1.count() == 6 })
	t.Logf("kcl-1's leases with java-1 %v after its stop", took.Round(10*time.Millisecond))
	if f := j1.failed(); len(f) > 0 {
		t.Errorf("java-1 lost leases it held: %v", f)
	}
}

func TestKclLeavesALiveJavaLeaderItsLockAndBalancingAndTakesOverADeadOnes(t *testing.T) {
	// A Java leader holds the lock, stating a 1.5 s lease and renewing it; a
	// Java worker holds all four leases. The kcl worker must neither take the
	// lock nor ask for leases (the leader balances). Once the Java leader
	// stops renewing, kcl takes the lock after its stated lease and, leading,
	// balances: two leases handed gracefully from the Java worker.
	const d = 2 * time.Second
	client, table, store := kcl3Fleet(t, 4)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for _, l := range mustList(t, store) {
		if _, err := store.Take(ctx, l, "java-1"); err != nil {
			t.Fatal(err)
		}
	}
	j1 := newJavaWorker3(client, table, "java-1", d/3)
	var javas sync.WaitGroup
	defer javas.Wait()
	defer cancel()
	javas.Go(func() { j1.run(ctx) })

	cs := aws.String(table + "-CoordinatorState")
	rvn := 0
	lockItem := func() map[string]types.AttributeValue {
		return map[string]types.AttributeValue{
			"key": avS("Leader"), "ownerName": avS("java-leader"), "leaseDuration": avS("1500"),
			"recordVersionNumber": avS("rvn-" + strconv.Itoa(rvn)), "entityType": avS("LEADER"),
		}
	}
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: cs, Item: lockItem()}); err != nil {
		t.Fatal(err)
	}
	leaderCtx, leaderCrash := context.WithCancel(ctx)
	javas.Go(func() {
		for {
			select {
			case <-leaderCtx.Done():
				return
			case <-time.After(300 * time.Millisecond):
			}
			rvn++
			_, _ = client.PutItem(ctx, &dynamodb.PutItemInput{TableName: cs, Item: lockItem()})
		}
	})
	waitReal(t, 10*time.Second, func() bool { return j1.count() == 4 })

	k := startKCL3Worker(t, store, "kcl-1", d)
	time.Sleep(3 * d)
	if got := lockOwner(t, store); got != "java-leader" {
		t.Fatalf("lock owner %q while the Java leader renews; want java-leader", got)
	}
	for _, l := range mustList(t, store) {
		if l.Owner != "java-1" || l.CheckpointOwner != "" {
			t.Fatalf("lease %s: owner %q, checkpointOwner %q while a Java leader leads; kcl must not ask for leases", l.Key, l.Owner, l.CheckpointOwner)
		}
	}

	leaderCrash()
	crashed := time.Now() // the last renewal was at most 300 ms before
	time.Sleep(1200 * time.Millisecond)
	if got := lockOwner(t, store); got != "java-leader" {
		t.Fatalf("lock owner %q 1.2 s after the Java leader's last renewal; its stated lease is 1.5 s", got)
	}
	waitReal(t, 10*time.Second, func() bool { return lockOwner(t, store) == "kcl-1" })
	t.Logf("kcl-1 took the dead Java leader's lock %v after its crash (stated lease 1.5 s, renewed every 300 ms)",
		time.Since(crashed).Round(10*time.Millisecond))
	waitReal(t, 20*time.Second, func() bool { return len(k.coord.Holding()) == 2 && j1.count() == 2 })
	if f := j1.failed(); len(f) > 0 {
		t.Errorf("java-1 lost leases instead of handing them over: %v", f)
	}
}

func mustList(t *testing.T, store *dynamolease.Store) []lease.Lease {
	t.Helper()
	ls, err := store.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return ls
}
