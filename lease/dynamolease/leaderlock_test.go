package dynamolease

import (
	"context"
	"errors"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/testkit/testenv"
)

// The conditions below are the fixtures' rules for the leader lock
// (testdata/kcl3-items.json), spelled with the lock client's placeholders.

func TestLeaderLockRequestsAreTheLockClients(t *testing.T) {
	for _, tbl := range []kcl3Table{coordinatorStateTable("app"), leaseTableRows("app")} {
		t.Run(tbl.hashKey, func(t *testing.T) {
			held := leaderLock{key: leaderLockKey, owner: "w-a", leaseDuration: 120 * time.Second, recordVersionNumber: "rvn-1", entityType: entityTypeLeader}
			wantItem := map[string]types.AttributeValue{
				tbl.hashKey: sAV("Leader"), attrOwnerName: sAV("w-a"), attrLockLeaseDuration: sAV("120000"),
				attrRecordVersionNumber: sAV("rvn-1"), attrEntityType: sAV("LEADER"),
			}
			key := map[string]types.AttributeValue{tbl.hashKey: sAV("Leader")}

			free := acquireFreeLockInput(tbl, held)
			checkRequest(t, "acquire free", free.TableName, free.ConditionExpression, nil, free.ExpressionAttributeNames, free.ExpressionAttributeValues,
				tbl.name, "attribute_not_exists(#pk)", "", map[string]string{"#pk": tbl.hashKey}, nil)
			if d := diffItems(free.Item, wantItem); len(d) > 0 {
				t.Errorf("acquire free: item differs: %v", d)
			}

			exp := acquireExpiredLockInput(tbl, held, "rvn-0")
			checkRequest(t, "acquire expired", exp.TableName, exp.ConditionExpression, nil, exp.ExpressionAttributeNames, exp.ExpressionAttributeValues,
				tbl.name, "attribute_exists(#pk) AND #rvn = :rvn", "",
				map[string]string{"#pk": tbl.hashKey, "#rvn": "recordVersionNumber"},
				map[string]types.AttributeValue{":rvn": sAV("rvn-0")})
			if d := diffItems(exp.Item, wantItem); len(d) > 0 {
				t.Errorf("acquire expired: item differs: %v", d)
			}

			rel := acquireReleasedLockInput(tbl, held)
			checkRequest(t, "acquire released", rel.TableName, rel.ConditionExpression, nil, rel.ExpressionAttributeNames, rel.ExpressionAttributeValues,
				tbl.name, "attribute_exists(#pk) AND #ir = :ir", "",
				map[string]string{"#pk": tbl.hashKey, "#ir": "isReleased"},
				map[string]types.AttributeValue{":ir": sAV("1")})

			hb := heartbeatLockInput(tbl, held, "rvn-2")
			checkRequest(t, "heartbeat", hb.TableName, hb.ConditionExpression, hb.UpdateExpression, hb.ExpressionAttributeNames, hb.ExpressionAttributeValues,
				tbl.name, "attribute_exists(#pk) AND #rvn = :rvn AND #on = :on", "SET #ld = :ld, #rvn = :newRvn",
				map[string]string{"#pk": tbl.hashKey, "#rvn": "recordVersionNumber", "#on": "ownerName", "#ld": "leaseDuration"},
				map[string]types.AttributeValue{":rvn": sAV("rvn-1"), ":on": sAV("w-a"), ":ld": sAV("120000"), ":newRvn": sAV("rvn-2")})
			if !reflect.DeepEqual(hb.Key, key) {
				t.Errorf("heartbeat key %v", hb.Key)
			}

			del := releaseLockInput(tbl, held)
			checkRequest(t, "release", del.TableName, del.ConditionExpression, nil, del.ExpressionAttributeNames, del.ExpressionAttributeValues,
				tbl.name, "attribute_exists(#pk) AND #rvn = :rvn AND #on = :on", "",
				map[string]string{"#pk": tbl.hashKey, "#rvn": "recordVersionNumber", "#on": "ownerName"},
				map[string]types.AttributeValue{":rvn": sAV("rvn-1"), ":on": sAV("w-a")})
			if !reflect.DeepEqual(del.Key, key) {
				t.Errorf("release key %v", del.Key)
			}
		})
	}
}

// checkRequest compares one request's table, expressions, names and values.
func checkRequest(t *testing.T, op string, table, cond, update *string, names map[string]string, values map[string]types.AttributeValue,
	wantTable, wantCond, wantUpdate string, wantNames map[string]string, wantValues map[string]types.AttributeValue) {
	t.Helper()
	if got := aws.ToString(table); got != wantTable {
		t.Errorf("%s: table %q, want %q", op, got, wantTable)
	}
	if got := aws.ToString(cond); got != wantCond {
		t.Errorf("%s: condition %q, want %q", op, got, wantCond)
	}
	if got := aws.ToString(update); got != wantUpdate {
		t.Errorf("%s: update %q, want %q", op, got, wantUpdate)
	}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("%s: names %v, want %v", op, names, wantNames)
	}
	if !reflect.DeepEqual(values, wantValues) {
		t.Errorf("%s: values %v, want %v", op, values, wantValues)
	}
}

func TestNewLeaderLockIsShapedAsKCL35WritesIt(t *testing.T) {
	a, b := newLeaderLock("w-a", kclLeaderLockDuration), newLeaderLock("w-a", kclLeaderLockDuration)
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if !uuid.MatchString(a.recordVersionNumber) {
		t.Errorf("recordVersionNumber %q is not a version 4 UUID", a.recordVersionNumber)
	}
	if a.recordVersionNumber == b.recordVersionNumber {
		t.Error("two locks share a recordVersionNumber")
	}
	if a.key != "Leader" || a.entityType != "LEADER" || a.owner != "w-a" || a.leaseDuration != 120*time.Second {
		t.Errorf("got %+v", a)
	}
}

// lockRead is a read of the lock showing version rvn, at an offset on the
// observer's clock.
type lockRead struct {
	rvn string
	at  time.Duration
}

func TestLockObservationExpiresOnlyAfterAnUnchangedLeaseDuration(t *testing.T) {
	t0 := time.Unix(1000, 0)
	lock := func(rvn string) leaderLock {
		return leaderLock{recordVersionNumber: rvn, leaseDuration: 10 * time.Second}
	}
	tests := []struct {
		name    string
		reads   []lockRead // what the observer read, and when
		at      time.Duration
		expired bool
	}{
		{name: "a lock never observed is not expired", at: time.Hour},
		{name: "a lock seen once is not expired at exactly its lease duration",
			reads: []lockRead{{"a", 0}}, at: 10 * time.Second},
		{name: "a lock seen once is expired just after its lease duration",
			reads: []lockRead{{"a", 0}}, at: 10*time.Second + time.Millisecond, expired: true},
		{name: "re-reading the same version does not restart the clock",
			reads: []lockRead{{"a", 0}, {"a", 9 * time.Second}}, at: 11 * time.Second, expired: true},
		{name: "a heartbeat seen restarts the clock",
			reads: []lockRead{{"a", 0}, {"b", 9 * time.Second}}, at: 11 * time.Second},
		{name: "the new version expires a lease duration after it was first seen",
			reads: []lockRead{{"a", 0}, {"b", 9 * time.Second}}, at: 19*time.Second + time.Millisecond, expired: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o lockObservation
			for _, r := range tt.reads {
				o = o.observe(lock(r.rvn), t0.Add(r.at))
			}
			if got := o.expired(t0.Add(tt.at)); got != tt.expired {
				t.Errorf("expired = %v, want %v (observation %+v)", got, tt.expired, o)
			}
		})
	}
}

// lockAPI is what the emulator test calls.
type lockAPI interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
}

// TestLeaderLockConditionsHoldOnDynamoDB runs the lock's life on DynamoDB
// Local, in both placements: A acquires, B fails to, A heartbeats, B's
// takeover with a version it saw before the heartbeat fails, B sees the
// version unchanged for longer than the lease (on a clock the test moves)
// and takes over, A's heartbeat and release then fail, B releases, and the
// lock is free again.
func TestLeaderLockConditionsHoldOnDynamoDB(t *testing.T) {
	client := testenv.DynamoDB(t)
	t.Run("CoordinatorState table", func(t *testing.T) {
		app := testenv.UniqueName(t, "app")
		tbl := coordinatorStateTable(app)
		createCoordinatorStateTable(t, client, tbl.name)
		runLockSequence(t, client, tbl)
	})
	t.Run("lease table", func(t *testing.T) {
		name := testenv.UniqueName(t, "lease")
		testenv.CreateTable(t, client, name)
		tbl := leaseTableRows(name)
		runLockSequence(t, client, tbl)
	})
}

func createCoordinatorStateTable(t *testing.T, client *dynamodb.Client, name string) {
	t.Helper()
	_, err := client.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("key"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("key"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
	deleteTableOnCleanup(t, client, name)
	testenv.Eventually(t, time.Minute, 100*time.Millisecond, func() bool {
		out, err := client.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		return err == nil && out.Table.TableStatus == types.TableStatusActive
	}, "table %s not ACTIVE", name)
}

func runLockSequence(t *testing.T, client lockAPI, tbl kcl3Table) {
	ctx := t.Context()
	const leaseDuration = 10 * time.Second
	mustFailCondition := func(op string, err error) {
		t.Helper()
		var ccf *types.ConditionalCheckFailedException
		if !errors.As(err, &ccf) {
			t.Fatalf("%s: want a failed condition, got %v", op, err)
		}
		if !errors.Is(classify(err, lease.ErrConflict), lease.ErrConflict) {
			t.Fatalf("%s: classify does not see a conflict in %v", op, err)
		}
	}
	must := func(op string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
	read := func() (leaderLock, bool) {
		t.Helper()
		out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(tbl.name), Key: tbl.key(leaderLockKey), ConsistentRead: aws.Bool(true)})
		must("get", err)
		if len(out.Item) == 0 {
			return leaderLock{}, false
		}
		l, err := decodeLeaderLock(tbl, out.Item)
		must("decode", err)
		return l, true
	}

	// A acquires the free lock; B cannot.
	a := newLeaderLock("worker-a", leaseDuration)
	_, err := client.PutItem(ctx, acquireFreeLockInput(tbl, a))
	must("A acquires", err)
	if got, ok := read(); !ok || !reflect.DeepEqual(got, a) {
		t.Fatalf("stored lock %+v, want %+v", got, a)
	}
	b := newLeaderLock("worker-b", leaseDuration)
	_, err = client.PutItem(ctx, acquireFreeLockInput(tbl, b))
	mustFailCondition("B acquires a held lock", err)

	// B starts observing; A heartbeats, which B's stale takeover then misses.
	now := time.Unix(1_000_000, 0) // B's clock, moved by the test
	seen, _ := read()
	var obs lockObservation
	obs = obs.observe(seen, now)
	newRVN := newRecordVersionNumber()
	_, err = client.UpdateItem(ctx, heartbeatLockInput(tbl, a, newRVN))
	must("A heartbeats", err)
	stale := a
	a.recordVersionNumber = newRVN
	_, err = client.UpdateItem(ctx, heartbeatLockInput(tbl, stale, newRecordVersionNumber()))
	mustFailCondition("a heartbeat with the replaced version", err)
	got, _ := read()
	if got.recordVersionNumber != newRVN || got.owner != "worker-a" || got.entityType != entityTypeLeader {
		t.Fatalf("after heartbeat: %+v", got)
	}
	_, err = client.PutItem(ctx, acquireExpiredLockInput(tbl, b, seen.recordVersionNumber))
	mustFailCondition("B takes over with a version A has replaced", err)

	// B sees the new version, and sees it again after the lease duration: A
	// is presumed dead, and B takes over.
	now = now.Add(time.Second)
	got, _ = read()
	obs = obs.observe(got, now)
	if obs.expired(now.Add(leaseDuration)) {
		t.Fatal("expired at exactly the lease duration after the heartbeat was seen")
	}
	now = now.Add(leaseDuration + time.Millisecond)
	got, _ = read()
	obs = obs.observe(got, now)
	if !obs.expired(now) {
		t.Fatalf("not expired after %s unchanged", leaseDuration+time.Millisecond)
	}
	_, err = client.PutItem(ctx, acquireExpiredLockInput(tbl, b, obs.recordVersionNumber))
	must("B takes over", err)
	if got, _ := read(); !reflect.DeepEqual(got, b) {
		t.Fatalf("stored lock %+v, want B's %+v", got, b)
	}

	// A, unaware, can neither heartbeat nor release; a second takeover with
	// the version B replaced fails too.
	_, err = client.UpdateItem(ctx, heartbeatLockInput(tbl, a, newRecordVersionNumber()))
	mustFailCondition("A heartbeats a lock taken over", err)
	_, err = client.DeleteItem(ctx, releaseLockInput(tbl, a))
	mustFailCondition("A releases a lock taken over", err)
	_, err = client.PutItem(ctx, acquireExpiredLockInput(tbl, newLeaderLock("worker-c", leaseDuration), obs.recordVersionNumber))
	mustFailCondition("C takes over with the version B replaced", err)
	impostor := b
	impostor.owner = "worker-a"
	_, err = client.DeleteItem(ctx, releaseLockInput(tbl, impostor))
	mustFailCondition("a release with the right version but another owner", err)

	// B releases by deleting the item; the lock is free for A again.
	_, err = client.DeleteItem(ctx, releaseLockInput(tbl, b))
	must("B releases", err)
	if got, ok := read(); ok {
		t.Fatalf("lock still stored after release: %+v", got)
	}
	_, err = client.PutItem(ctx, acquireReleasedLockInput(tbl, newLeaderLock("worker-a", leaseDuration)))
	mustFailCondition("acquire-released on a deleted lock", err)
	a2 := newLeaderLock("worker-a", leaseDuration)
	_, err = client.PutItem(ctx, acquireFreeLockInput(tbl, a2))
	must("A acquires again", err)

	// A lock marked released (as lock-client users other than KCL leave it)
	// is taken with the released condition, and the marker goes away.
	a2.released = true
	_, err = client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(tbl.name), Item: encodeLeaderLock(tbl, a2)})
	must("mark released", err)
	c := newLeaderLock("worker-c", leaseDuration)
	_, err = client.PutItem(ctx, acquireFreeLockInput(tbl, c))
	mustFailCondition("acquire-free on a released lock", err)
	_, err = client.PutItem(ctx, acquireReleasedLockInput(tbl, c))
	must("C acquires the released lock", err)
	if got, _ := read(); !reflect.DeepEqual(got, c) {
		t.Fatalf("stored lock %+v, want C's %+v", got, c)
	}
	_, err = client.PutItem(ctx, acquireReleasedLockInput(tbl, newLeaderLock("worker-d", leaseDuration)))
	mustFailCondition("acquire-released on a held lock", err)
}
