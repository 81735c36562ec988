package dynamolease

import (
	"errors"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/testkit/testenv"
)

// kcl3Row returns the fixture whose _case starts with prefix, with the
// given attributes replaced.
func kcl3Row(t *testing.T, prefix string, set map[string]types.AttributeValue) map[string]types.AttributeValue {
	t.Helper()
	for _, f := range loadKCL3Fixtures(t) {
		if strings.HasPrefix(f.name, prefix) {
			item := maps.Clone(f.item)
			maps.Copy(item, set)
			return item
		}
	}
	t.Fatalf("no kcl3-items.json case starts with %q", prefix)
	return nil
}

func putItems(t *testing.T, client *dynamodb.Client, table string, items ...map[string]types.AttributeValue) {
	t.Helper()
	for _, item := range items {
		if _, err := client.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
}

const (
	fixtureCVSeparate = "client-version migration state (2.x -> 3.x migration finished) in the separate table"
	fixtureCVLease    = "client-version migration state of a fresh 3.5.1 application"
	fixtureTMDeployed = "table-migration state (3.4 -> 3.5 single-table migration), Phase 1 finished: DEPLOYED"
	fixtureTMComplete = "table-migration state after the migration: COMPLETE, in the lease table"
)

func cv(v string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrClientVersion: &types.AttributeValueMemberS{Value: v}}
}

// TestKCL3LockFollowsTheFleetsState checks where the lock is looked for and
// when kcl may take it, for each state a KCL 3.x fleet's table can be in,
// and that the lock written, renewed and released there follows the lock
// client's conditions.
func TestKCL3LockFollowsTheFleetsState(t *testing.T) {
	client := testenv.DynamoDB(t)
	type setup struct {
		cs          bool // a CoordinatorState table
		csItems     []map[string]types.AttributeValue
		leaseItems  []map[string]types.AttributeValue
		wantPlace   string // "cs", "lease" or ""
		wantEligble bool
		wantWhy     string
	}
	cases := map[string]func(t *testing.T) setup{
		"kcl or Java 2.x table": func(t *testing.T) setup { return setup{} },
		"KCL 3.0-3.4 fleet at CLIENT_VERSION_3X": func(t *testing.T) setup {
			return setup{cs: true, csItems: []map[string]types.AttributeValue{kcl3Row(t, fixtureCVSeparate, nil)}, wantPlace: "cs", wantEligble: true}
		},
		"KCL 3.x fleet migrating from 2.x": func(t *testing.T) setup {
			return setup{cs: true, csItems: []map[string]types.AttributeValue{kcl3Row(t, fixtureCVSeparate, cv("CLIENT_VERSION_UPGRADE_FROM_2X"))},
				wantPlace: "cs", wantWhy: "CLIENT_VERSION_UPGRADE_FROM_2X"}
		},
		"KCL 3.x fleet in rollback-able 3.x": func(t *testing.T) setup {
			return setup{cs: true, csItems: []map[string]types.AttributeValue{kcl3Row(t, fixtureCVSeparate, cv("CLIENT_VERSION_3X_WITH_ROLLBACK"))},
				wantPlace: "cs", wantWhy: "CLIENT_VERSION_3X_WITH_ROLLBACK"}
		},
		"KCL 3.5 fleet with its table migration DEPLOYED": func(t *testing.T) setup {
			return setup{cs: true, csItems: []map[string]types.AttributeValue{kcl3Row(t, fixtureCVSeparate, nil), kcl3Row(t, fixtureTMDeployed, nil)},
				wantPlace: "cs", wantWhy: "TABLE_MIGRATION_STATUS_DEPLOYED"}
		},
		"KCL 3.5 fleet whose table migration is COMPLETE": func(t *testing.T) setup {
			complete := kcl3Row(t, fixtureTMComplete, nil)
			csComplete := maps.Clone(complete)
			delete(csComplete, attrLeaseKey)
			csComplete[attrCoordinatorKey] = &types.AttributeValueMemberS{Value: tableMigrationKey}
			return setup{cs: true, csItems: []map[string]types.AttributeValue{csComplete},
				leaseItems: []map[string]types.AttributeValue{kcl3Row(t, fixtureCVLease, nil), complete}, wantPlace: "lease", wantEligble: true}
		},
		"fresh KCL 3.5 single-table fleet": func(t *testing.T) setup {
			return setup{leaseItems: []map[string]types.AttributeValue{kcl3Row(t, fixtureCVLease, nil), kcl3Row(t, fixtureTMComplete, nil)}, wantPlace: "lease", wantEligble: true}
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			su := mk(t)
			table := testenv.UniqueName(t, "lease")
			testenv.CreateTable(t, client, table)
			cs, wms := table+"-CoordinatorState", table+"-WorkerMetricStats"
			if su.cs {
				createHashKeyTable(t, client, cs, attrCoordinatorKey)
				createHashKeyTable(t, client, wms, attrWorkerID)
				putItems(t, client, cs, su.csItems...)
			}
			putItems(t, client, table, su.leaseItems...)
			s, err := New(client, table)
			if err != nil {
				t.Fatal(err)
			}
			l, err := s.KCL3Lock(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			wantPlace := map[string]string{"cs": placeCoordinatorState + cs, "lease": placeLeaseTable + table}[su.wantPlace]
			if l.Place != wantPlace || l.Eligible != su.wantEligble || l.Found || !strings.Contains(l.Why, su.wantWhy) {
				t.Fatalf("KCL3Lock = %+v; want place %q, eligible %v, why containing %q, no lock", l, wantPlace, su.wantEligble, su.wantWhy)
			}
			if !su.wantEligble {
				if _, err := s.AcquireKCL3Lock(t.Context(), "kcl-1", 20*time.Second, l); !errors.Is(err, lease.ErrConflict) {
					t.Fatalf("AcquireKCL3Lock where kcl may not lead: %v, want ErrConflict", err)
				}
				if got, err := s.KCL3Lock(t.Context()); err != nil || got.Found {
					t.Fatalf("after the refused acquisition the lock is %+v, %v; want none", got, err)
				}
				return
			}
			checkLockLifecycle(t, client, s, l)
		})
	}
}

// checkLockLifecycle runs a kcl worker's lock through acquisition, a
// competitor's refused acquisition, renewal, a stale renewal, a takeover
// and release, checking the item against the Java lock's shape.
func checkLockLifecycle(t *testing.T, client *dynamodb.Client, s *Store, free lease.KCL3Lock) {
	t.Helper()
	ctx := t.Context()
	held, err := s.AcquireKCL3Lock(ctx, "kcl-1", 20*time.Second, free)
	if err != nil {
		t.Fatal(err)
	}
	read, err := s.KCL3Lock(ctx)
	if err != nil || !read.Found || read.Owner != "kcl-1" || read.Duration != 20*time.Second || read.Version != held.Version {
		t.Fatalf("after acquisition the lock reads %+v, %v; want kcl-1's, 20 s, version %s", read, err, held.Version)
	}
	tbl, _ := s.placeTable(held.Place)
	out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(tbl.name), Key: tbl.key(leaderLockKey), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	javaLock := kcl3FixturesWith(t, attrRecordVersionNumber, 2)
	want := javaLock[0].item
	if tbl.shared {
		want = javaLock[1].item
	}
	if got, w := itemShape(out.Item), itemShape(want); !reflect.DeepEqual(got, w) {
		t.Errorf("lock item shape %v, want the Java lock's %v", got, w)
	}

	// A second contender that read the lock free loses.
	if _, err := s.AcquireKCL3Lock(ctx, "java-2", 120*time.Second, free); !errors.Is(err, lease.ErrConflict) {
		t.Fatalf("a second acquisition of a free lock: %v, want ErrConflict", err)
	}
	renewed, err := s.RenewKCL3Lock(ctx, held)
	if err != nil || renewed.Version == held.Version {
		t.Fatalf("renewal: %+v, %v; want a new version", renewed, err)
	}
	if _, err := s.RenewKCL3Lock(ctx, held); !errors.Is(err, lease.ErrConflict) {
		t.Fatalf("renewal at a stale version: %v, want ErrConflict", err)
	}
	// A contender that watched the version stand still takes it over; the
	// former holder's renewal then fails.
	seen, err := s.KCL3Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	taken, err := s.AcquireKCL3Lock(ctx, "java-2", 120*time.Second, seen)
	if err != nil || taken.Owner != "java-2" {
		t.Fatalf("takeover at the version seen: %+v, %v", taken, err)
	}
	if _, err := s.RenewKCL3Lock(ctx, renewed); !errors.Is(err, lease.ErrConflict) {
		t.Fatalf("the former holder's renewal after a takeover: %v, want ErrConflict", err)
	}
	if err := s.ReleaseKCL3Lock(ctx, renewed); !errors.Is(err, lease.ErrConflict) {
		t.Fatalf("the former holder's release after a takeover: %v, want ErrConflict", err)
	}
	if err := s.ReleaseKCL3Lock(ctx, taken); err != nil {
		t.Fatal(err)
	}
	if got, err := s.KCL3Lock(ctx); err != nil || got.Found {
		t.Fatalf("after release the lock reads %+v, %v; want none", got, err)
	}
	if st := s.Stats().Calls; st.PutItem < 3 || st.UpdateItem < 2 || st.DeleteItem < 2 {
		t.Errorf("calls %+v: the lock's requests are not all counted", st)
	}
}

// TestKCL3WorkersReadsTheFleetsRows checks that the leader reads every
// worker's row with its update time and KCL's validity, and deletes a row
// only at the update time it read.
func TestKCL3WorkersReadsTheFleetsRows(t *testing.T) {
	client := testenv.DynamoDB(t)
	table := testenv.UniqueName(t, "lease")
	testenv.CreateTable(t, client, table)
	cs, wms := table+"-CoordinatorState", table+"-WorkerMetricStats"
	createHashKeyTable(t, client, cs, attrCoordinatorKey)
	createHashKeyTable(t, client, wms, attrWorkerID)
	putItems(t, client, cs, kcl3Row(t, fixtureCVSeparate, nil))
	now := time.Now().Unix()
	lut := func(sec int64) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{attrMetricsUpdated: numberInt(sec)}
	}
	zeroRange := lut(now)
	zeroRange["opr"] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
		"C": &types.AttributeValueMemberL{Value: []types.AttributeValue{numberInt(0)}}}}
	zeroRange[attrWorkerID] = &types.AttributeValueMemberS{Value: "w-zero-range"}
	putItems(t, client, wms,
		kcl3Row(t, "WorkerMetricStats written by 3.5.1 to the separate table", lut(now)),
		kcl3Row(t, "WorkerMetricStats as written by KCL 3.0-3.4", lut(now-2*86400)),
		kcl3Row(t, "WorkerMetricStats written by 3.5.1 to the separate table", zeroRange))
	s, err := New(client, table)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.KCL3Workers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]lease.KCL3Worker{}
	for _, w := range got {
		byID[w.WorkerID] = w
	}
	fresh, old, bad := byID["w-0b1c4e7a-3f29-4d85-9c1e-6a2b8d0f5e13"], byID["w-3a8e5d12-c047-49f1-8b6e-e2d5f90a4c71"], byID["w-zero-range"]
	if len(got) != 3 || !fresh.Valid || fresh.Updated.Unix() != now || !old.Valid || old.Updated.Unix() != now-2*86400 || bad.Valid {
		t.Fatalf("KCL3Workers = %+v; want the fresh and the 2-day-old rows valid, the zero-range row invalid", got)
	}
	stale := old
	stale.Updated = stale.Updated.Add(-time.Second)
	if err := s.DeleteKCL3Worker(t.Context(), stale); !errors.Is(err, lease.ErrConflict) {
		t.Fatalf("delete at another update time: %v, want ErrConflict", err)
	}
	if err := s.DeleteKCL3Worker(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	if got, err := s.KCL3Workers(t.Context()); err != nil || len(got) != 2 {
		t.Fatalf("after the deletion: %+v, %v; want 2 rows", got, err)
	}
}
