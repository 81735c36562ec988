package dynamolease

import (
	"errors"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kclgo/kcl/lease"
)

// kcl3Fixture is one item of testdata/kcl3-items.json (KCL 3.5.1's
// coordination rows) with the table placement its hash key implies.
type kcl3Fixture struct {
	name  string
	table kcl3Table
	item  map[string]types.AttributeValue
}

// loadKCL3Fixtures reads testdata/kcl3-items.json, leaving out the
// '_'-prefixed metadata keys.
func loadKCL3Fixtures(t testing.TB) []kcl3Fixture {
	t.Helper()
	var out []kcl3Fixture
	for _, fx := range loadItemFile(t, "kcl3-items.json") {
		f := kcl3Fixture{name: fx.name, item: fx.item}
		switch {
		case fx.item[attrCoordinatorKey] != nil:
			f.table = coordinatorStateTable("app")
		case fx.item[attrWorkerID] != nil:
			f.table = workerMetricStatsTable("app")
		default:
			f.table = leaseTableRows("app")
		}
		out = append(out, f)
	}
	return out
}

// kcl3FixturesWith returns the fixtures that have attribute attr.
func kcl3FixturesWith(t testing.TB, attr string, want int) []kcl3Fixture {
	t.Helper()
	var out []kcl3Fixture
	for _, f := range loadKCL3Fixtures(t) {
		if f.item[attr] != nil {
			out = append(out, f)
		}
	}
	if len(out) != want {
		t.Fatalf("kcl3-items.json has %d items with %s, want %d", len(out), attr, want)
	}
	return out
}

func TestLeaderLockFixturesDecodeAndEncodeBack(t *testing.T) {
	fixtures := kcl3FixturesWith(t, attrRecordVersionNumber, 2)
	wantTables := []string{attrCoordinatorKey, attrLeaseKey}
	for i, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			if f.table.hashKey != wantTables[i] {
				t.Fatalf("placement: hash key %s, want %s", f.table.hashKey, wantTables[i])
			}
			l, err := decodeLeaderLock(f.table, f.item)
			if err != nil {
				t.Fatal(err)
			}
			if l.key != leaderLockKey || l.leaseDuration != kclLeaderLockDuration || l.entityType != entityTypeLeader || l.released || l.data != nil {
				t.Errorf("decoded %+v", l)
			}
			if d := diffItems(encodeLeaderLock(f.table, l), f.item); len(d) > 0 {
				t.Errorf("encode(decode(item)) differs:\n%v", d)
			}
		})
	}
}

func TestLeaderLockOfKCL34RoundTripsWithoutEntityType(t *testing.T) {
	item := kcl3FixturesWith(t, attrRecordVersionNumber, 2)[0].item
	delete(item, attrEntityType)
	tbl := coordinatorStateTable("app")
	l, err := decodeLeaderLock(tbl, item)
	if err != nil {
		t.Fatal(err)
	}
	if l.entityType != "" {
		t.Errorf("entityType %q, want none", l.entityType)
	}
	if d := diffItems(encodeLeaderLock(tbl, l), item); len(d) > 0 {
		t.Errorf("round trip differs: %v", d)
	}
}

func TestLeaderLockOptionalAttributesRoundTrip(t *testing.T) {
	tbl := leaseTableRows("app")
	l := newLeaderLock("worker-a", 10*time.Second)
	l.data = []byte("payload")
	l.released = true
	item := encodeLeaderLock(tbl, l)
	if got := item[attrIsReleased].(*types.AttributeValueMemberS).Value; got != "1" {
		t.Errorf("isReleased = %q, want \"1\"", got)
	}
	back, err := decodeLeaderLock(tbl, item)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, l) {
		t.Errorf("got %+v, want %+v", back, l)
	}
}

func TestWorkerMetricStatsFixturesDecodeAndEncodeBack(t *testing.T) {
	fixtures := kcl3FixturesWith(t, attrMetricsUpdated, 3)
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			w, err := decodeWorkerMetricStats(f.table, f.item)
			if err != nil {
				t.Fatal(err)
			}
			if d := diffItems(encodeWorkerMetricStats(f.table, w), f.item); len(d) > 0 {
				t.Errorf("encode(decode(item)) differs:\n%v", d)
			}
		})
	}
}

func TestWorkerMetricStatsFixturesDecodeToTheirValues(t *testing.T) {
	fixtures := kcl3FixturesWith(t, attrMetricsUpdated, 3)
	lease35, err := decodeWorkerMetricStats(fixtures[1].table, fixtures[1].item)
	if err != nil {
		t.Fatal(err)
	}
	want := workerMetricStats{
		workerID:       "w-7d2f91c0-58ab-4e36-b0d4-1c9e3a7f6b25",
		entityType:     entityTypeWorkerMetrics,
		updated:        time.Unix(1787736612, 0),
		stats:          map[string][]float64{"C": {12.3, metricNoSample, 14.216667}},
		operatingRange: map[string][]int64{"C": {100}},
		support:        &workerSupport{code: supportSingleTable, updated: time.Unix(1787736612, 0)},
	}
	if !reflect.DeepEqual(lease35, want) {
		t.Errorf("3.5 lease-table row: got %+v, want %+v", lease35, want)
	}
	old, err := decodeWorkerMetricStats(fixtures[2].table, fixtures[2].item)
	if err != nil {
		t.Fatal(err)
	}
	if old.entityType != "" || old.support != nil || len(old.stats["C"]) != 10 {
		t.Errorf("3.4 row: got %+v", old)
	}
}

func TestWorkerMetricStatsEmptyMapsSurviveARoundTrip(t *testing.T) {
	tbl := leaseTableRows("app")
	w := workerMetricStats{workerID: "w", updated: time.Unix(5, 0), stats: map[string][]float64{}, operatingRange: map[string][]int64{}}
	item := encodeWorkerMetricStats(tbl, w)
	if m, ok := item[attrMetricStats].(*types.AttributeValueMemberM); !ok || len(m.Value) != 0 {
		t.Fatalf("sts = %#v, want an empty map", item[attrMetricStats])
	}
	back, err := decodeWorkerMetricStats(tbl, item)
	if err != nil {
		t.Fatal(err)
	}
	if back.stats == nil || back.operatingRange == nil || len(back.stats) != 0 {
		t.Errorf("got %+v, want empty non-nil maps", back)
	}
}

func TestMigrationFixturesDecodeToTheirValues(t *testing.T) {
	cv := kcl3FixturesWith(t, attrClientVersion, 2)
	w0, w7 := "w-0b1c4e7a-3f29-4d85-9c1e-6a2b8d0f5e13", "w-7d2f91c0-58ab-4e36-b0d4-1c9e3a7f6b25"
	type cvChange = migrationChange[clientVersion]
	wantCV := []clientVersionState{
		{
			migrationChange: cvChange{clientVersion3x, w0, time.UnixMilli(1784541329417)},
			history: []cvChange{
				{clientVersion3xWithRollback, w7, time.UnixMilli(1784119692968)},
				{clientVersionUpgradeFrom2x, w7, time.UnixMilli(1782828326819)},
				{clientVersionInit, w7, time.UnixMilli(1782828312417)},
			},
		},
		{
			entityType:      entityTypeClientVersion,
			migrationChange: cvChange{clientVersion3x, w0, time.UnixMilli(1787736543525)},
			history:         []cvChange{{clientVersionInit, w0, time.UnixMilli(1787736541208)}},
		},
	}
	for i, f := range cv {
		got, err := decodeClientVersionState(f.table, f.item)
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		if !reflect.DeepEqual(got, wantCV[i]) {
			t.Errorf("%s:\ngot  %+v\nwant %+v", f.name, got, wantCV[i])
		}
	}

	tm := kcl3FixturesWith(t, attrTableMigration, 2)
	type tmChange = migrationChange[tableMigrationStatus]
	initA := tmChange{tableMigrationInit, w0, time.UnixMilli(1784541600116)}
	initB := tmChange{tableMigrationInit, w0, time.UnixMilli(1784541600113)}
	wantTM := []tableMigrationState{
		{
			entityType:      entityTypeTableMigration,
			migrationChange: tmChange{tableMigrationDeployed, w0, time.UnixMilli(1784545200525)},
			history:         []tmChange{initA, initB},
		},
		{
			entityType:      entityTypeTableMigration,
			migrationChange: tmChange{tableMigrationComplete, w7, time.UnixMilli(1787330589541)},
			history: []tmChange{
				{tableMigrationPending, w7, time.UnixMilli(1787244127664)},
				{tableMigrationDeployed, w0, time.UnixMilli(1784545200525)},
				initA, initB,
			},
		},
	}
	for i, f := range tm {
		got, err := decodeTableMigrationState(f.table, f.item)
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		if !reflect.DeepEqual(got, wantTM[i]) {
			t.Errorf("%s:\ngot  %+v\nwant %+v", f.name, got, wantTM[i])
		}
	}
	if got := clientVersion3xWithRollback.String(); got != "CLIENT_VERSION_3X_WITH_ROLLBACK" {
		t.Errorf("String() = %q", got)
	}
	if got := tableMigrationPending.String(); got != "TABLE_MIGRATION_STATUS_PENDING" {
		t.Errorf("String() = %q", got)
	}
}

// malformedCase changes a copy of a well-formed item and names the attribute
// the error must blame.
type malformedCase struct {
	name   string
	change func(item map[string]types.AttributeValue)
	attr   string
}

func sAV(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func nAV(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }

func set(attr string, av types.AttributeValue) func(map[string]types.AttributeValue) {
	return func(item map[string]types.AttributeValue) { item[attr] = av }
}

func drop(attr string) func(map[string]types.AttributeValue) {
	return func(item map[string]types.AttributeValue) { delete(item, attr) }
}

// checkMalformed runs each case through decode and checks the error is a
// *coordinationItemError blaming the right attribute.
func checkMalformed(t *testing.T, base map[string]types.AttributeValue, cases []malformedCase, decode func(map[string]types.AttributeValue) error) {
	t.Helper()
	if err := decode(maps.Clone(base)); err != nil {
		t.Fatalf("base item: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			item := maps.Clone(base)
			c.change(item)
			err := decode(item)
			var ce *coordinationItemError
			var ie *lease.ItemError
			switch {
			case err == nil:
				t.Fatal("no error")
			case !errors.Is(err, lease.ErrMalformed):
				t.Errorf("%v does not match lease.ErrMalformed", err)
			case !errors.As(err, &ce) || !errors.As(err, &ie):
				t.Errorf("%T is not a *coordinationItemError wrapping a *lease.ItemError", err)
			case ie.Attribute != c.attr:
				t.Errorf("blames %q, want %q: %v", ie.Attribute, c.attr, err)
			}
		})
	}
}

func TestDecodeLeaderLockRejectsMalformedItems(t *testing.T) {
	tbl := coordinatorStateTable("app")
	base := kcl3FixturesWith(t, attrRecordVersionNumber, 2)[0].item
	checkMalformed(t, base, []malformedCase{
		{"an item without its hash key", drop(attrCoordinatorKey), attrCoordinatorKey},
		{"a hash key of type N", set(attrCoordinatorKey, nAV("1")), attrCoordinatorKey},
		{"no ownerName", drop(attrOwnerName), attrOwnerName},
		{"an empty ownerName", set(attrOwnerName, sAV("")), attrOwnerName},
		{"no leaseDuration", drop(attrLockLeaseDuration), attrLockLeaseDuration},
		{"a leaseDuration of type N", set(attrLockLeaseDuration, nAV("120000")), attrLockLeaseDuration},
		{"a leaseDuration that is not a number", set(attrLockLeaseDuration, sAV("2m")), attrLockLeaseDuration},
		{"a negative leaseDuration", set(attrLockLeaseDuration, sAV("-1")), attrLockLeaseDuration},
		{"a leaseDuration beyond time.Duration", set(attrLockLeaseDuration, sAV("9223372036854775807")), attrLockLeaseDuration},
		{"no recordVersionNumber", drop(attrRecordVersionNumber), attrRecordVersionNumber},
		{"a recordVersionNumber of type B", set(attrRecordVersionNumber, &types.AttributeValueMemberB{Value: []byte("x")}), attrRecordVersionNumber},
		{"data of type S", set(attrLockData, sAV("x")), attrLockData},
		{"isReleased other than \"1\"", set(attrIsReleased, sAV("true")), attrIsReleased},
		{"isReleased of type BOOL", set(attrIsReleased, &types.AttributeValueMemberBOOL{Value: true}), attrIsReleased},
		{"an entityType other than LEADER", set(attrEntityType, sAV("LEASE")), attrEntityType},
		{"a nil attribute value", set(attrOwnerName, nil), attrOwnerName},
	}, func(item map[string]types.AttributeValue) error {
		_, err := decodeLeaderLock(tbl, item)
		return err
	})
}

func TestDecodeWorkerMetricStatsRejectsMalformedItems(t *testing.T) {
	f := kcl3FixturesWith(t, attrMetricsUpdated, 3)[0]
	list := func(avs ...types.AttributeValue) types.AttributeValue {
		return &types.AttributeValueMemberL{Value: avs}
	}
	metric := func(av types.AttributeValue) types.AttributeValue {
		return &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"C": av}}
	}
	checkMalformed(t, f.item, []malformedCase{
		{"no wid", drop(attrWorkerID), attrWorkerID},
		{"an empty wid", set(attrWorkerID, sAV("")), attrWorkerID},
		{"no lut", drop(attrMetricsUpdated), attrMetricsUpdated},
		{"a lut of type S", set(attrMetricsUpdated, sAV("1787736600")), attrMetricsUpdated},
		{"a fractional lut", set(attrMetricsUpdated, nAV("1787736600.5")), attrMetricsUpdated},
		{"a lut beyond int64", set(attrMetricsUpdated, nAV("9223372036854775808")), attrMetricsUpdated},
		{"a lut beyond year 9999", set(attrMetricsUpdated, nAV("9223372036854775807")), attrMetricsUpdated},
		{"a negative lut", set(attrMetricsUpdated, nAV("-1")), attrMetricsUpdated},
		{"an slu beyond year 9999", set(attrSupportUpdated, nAV("253402300800")), attrSupportUpdated},
		{"sts of type L", set(attrMetricStats, list()), attrMetricStats},
		{"a metric that is not a list", set(attrMetricStats, metric(nAV("1"))), "sts.C"},
		{"a metric value of type S", set(attrMetricStats, metric(list(nAV("1"), sAV("2")))), "sts.C[1]"},
		{"a metric value that is NaN", set(attrMetricStats, metric(list(nAV("NaN")))), "sts.C[0]"},
		{"a metric value beyond float64", set(attrMetricStats, metric(list(nAV("1e400")))), "sts.C[0]"},
		{"a fractional operating range", set(attrOperatingRange, metric(list(nAV("100.5")))), "opr.C[0]"},
		{"sup without slu", drop(attrSupportUpdated), attrSupportUpdated},
		{"slu without sup", drop(attrSupportCode), attrSupportCode},
		{"a sup of type S", set(attrSupportCode, sAV("1")), attrSupportCode},
		{"an entityType other than WORKER_METRIC_STATS", set(attrEntityType, sAV("LEADER")), attrEntityType},
	}, func(item map[string]types.AttributeValue) error {
		_, err := decodeWorkerMetricStats(f.table, item)
		return err
	})
}

func TestDecodeMigrationStatesRejectMalformedItems(t *testing.T) {
	cv := kcl3FixturesWith(t, attrClientVersion, 2)[0]
	histEntry := func(m map[string]types.AttributeValue) types.AttributeValue {
		return &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberM{Value: m}}}
	}
	checkMalformed(t, cv.item, []malformedCase{
		{"no hash key", drop(attrCoordinatorKey), attrCoordinatorKey},
		{"another row's key", set(attrCoordinatorKey, sAV(tableMigrationKey)), attrCoordinatorKey},
		{"an unknown client version", set(attrClientVersion, sAV("CLIENT_VERSION_4X")), attrClientVersion},
		{"no cv", drop(attrClientVersion), attrClientVersion},
		{"no mb", drop(attrModifiedBy), attrModifiedBy},
		{"an mts of type S", set(attrModifiedAt, sAV("1")), attrModifiedAt},
		{"an mts that is not a number", set(attrModifiedAt, nAV("soon")), attrModifiedAt},
		{"a history of type M", set(attrMigrationHistory, &types.AttributeValueMemberM{}), attrMigrationHistory},
		{"a history entry that is not a map", set(attrMigrationHistory, &types.AttributeValueMemberL{Value: []types.AttributeValue{sAV("x")}}), "h[0]"},
		{"a history entry without mts", set(attrMigrationHistory, histEntry(map[string]types.AttributeValue{
			attrClientVersion: sAV("CLIENT_VERSION_INIT"), attrModifiedBy: sAV("w"),
		})), "h[0].mts"},
		{"a history entry with an unknown version", set(attrMigrationHistory, histEntry(map[string]types.AttributeValue{
			attrClientVersion: sAV("CLIENT_VERSION_1X"), attrModifiedBy: sAV("w"), attrModifiedAt: nAV("1"),
		})), "h[0].cv"},
		{"an entityType of another row", set(attrEntityType, sAV(entityTypeTableMigration)), attrEntityType},
	}, func(item map[string]types.AttributeValue) error {
		_, err := decodeClientVersionState(cv.table, item)
		return err
	})

	tm := kcl3FixturesWith(t, attrTableMigration, 2)[1]
	checkMalformed(t, tm.item, []malformedCase{
		{"the local-only UNKNOWN status", set(attrTableMigration, sAV("TABLE_MIGRATION_STATUS_UNKNOWN")), attrTableMigration},
		{"a status of type N", set(attrTableMigration, nAV("3")), attrTableMigration},
		{"another row's key", set(attrLeaseKey, sAV(clientVersionKey)), attrLeaseKey},
		{"an entityType of a lease", set(attrEntityType, sAV(entityTypeLease)), attrEntityType},
	}, func(item map[string]types.AttributeValue) error {
		_, err := decodeTableMigrationState(tm.table, item)
		return err
	})
}
