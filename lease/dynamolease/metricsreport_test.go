package dynamolease

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/testkit/testenv"
)

func TestChooseMetricsPlaceFollowsTheJavaFleet(t *testing.T) {
	tests := []struct {
		name     string
		cs       coordinatorStateSeen
		migrated bool
		want     metricsPlace
	}{
		{"a KCL 3.0-3.4 fleet (CoordinatorState table, no table migration) reads the separate table",
			coordinatorStateSeen{exists: true}, false, metricsSeparate},
		{"a KCL 3.5 fleet in phase 1 (INIT) reads the separate table",
			coordinatorStateSeen{exists: true, migration: tableMigrationInit}, false, metricsSeparate},
		{"at DEPLOYED kcl writes to the lease table, as a phase 2 worker",
			coordinatorStateSeen{exists: true, migration: tableMigrationDeployed}, false, metricsLeaseTable},
		{"at PENDING the lease table", coordinatorStateSeen{exists: true, migration: tableMigrationPending}, false, metricsLeaseTable},
		{"at COMPLETE the lease table", coordinatorStateSeen{exists: true, migration: tableMigrationComplete}, true, metricsLeaseTable},
		{"a KCL 3.5 application in the single table format (Migration3.0 in the lease table) reads the lease table",
			coordinatorStateSeen{}, true, metricsLeaseTable},
		{"a table without KCL 3.x items (Java 2.x or kcl alone) gets no row",
			coordinatorStateSeen{}, false, metricsNowhere},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := chooseMetricsPlace(tt.cs, tt.migrated); got != tt.want {
				t.Errorf("chooseMetricsPlace = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestMetricsHistoryKeepsTheLastTenRoundedAverages(t *testing.T) {
	var h metricsHistory
	now := time.Unix(1787736612, 900e6)
	var w workerMetricStats
	for i := range 12 {
		cpu := float64(i) + 0.1234565
		if i == 10 {
			cpu = -1 // a failed reading
		}
		w = h.next(lease.WorkerMetrics{WorkerID: "w-a", CPU: cpu, MaxCPU: 80}, now)
	}
	want := []float64{2.123457, 3.123457, 4.123457, 5.123457, 6.123457, 7.123457, 8.123457, 9.123457, metricNoSample, 11.123457}
	if !reflect.DeepEqual(w.stats, map[string][]float64{"C": want}) {
		t.Errorf("sts %v, want C: %v", w.stats, want)
	}
	if !reflect.DeepEqual(w.operatingRange, map[string][]int64{"C": {80}}) {
		t.Errorf("opr %v", w.operatingRange)
	}
	if w.updated != time.Unix(1787736612, 0) || w.support == nil || w.support.updated != w.updated || w.support.code != supportSingleTable {
		t.Errorf("lut %v, support %+v: want whole seconds, sup 1, slu = lut", w.updated, w.support)
	}
	if w.entityType != entityTypeWorkerMetrics {
		t.Errorf("entityType %q", w.entityType)
	}

	// Another worker of the same store has its own history.
	if got := h.next(lease.WorkerMetrics{WorkerID: "w-b", CPU: 5, MaxCPU: 100}, now).stats["C"]; !slices.Equal(got, []float64{5}) {
		t.Errorf("w-b history %v", got)
	}
	// A worker that measures no CPU reports empty maps, as KCL on an
	// undetected platform.
	none := h.next(lease.WorkerMetrics{WorkerID: "w-c", CPU: 5}, now)
	if none.stats == nil || len(none.stats) != 0 || none.operatingRange == nil || len(none.operatingRange) != 0 {
		t.Errorf("no-metric report: sts %v opr %v, want empty maps", none.stats, none.operatingRange)
	}
}

func TestReportWorkerMetricsRefusesInvalidReports(t *testing.T) {
	s, err := New(&noCallsAPI{}, "app")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []lease.WorkerMetrics{
		{CPU: 1, MaxCPU: 100},
		{WorkerID: "w", CPU: 101, MaxCPU: 100},
		{WorkerID: "w", CPU: math.NaN(), MaxCPU: 100},
		{WorkerID: "w", CPU: 1, MaxCPU: 101},
		{WorkerID: "w", CPU: 1, MaxCPU: -1},
	} {
		err := s.ReportWorkerMetrics(t.Context(), m)
		if err == nil || errors.Is(err, lease.ErrConflict) || errors.Is(err, ErrTableNotFound) {
			t.Errorf("%+v: error %v, want a usage error", m, err)
		}
	}
	if calls := s.Stats().Calls; calls != (Calls{}) {
		t.Errorf("invalid reports made calls: %+v", calls)
	}
}

// noCallsAPI is an API that panics if called:
// for checks made before any call.
type noCallsAPI struct{ API }

// avShape describes the types of an attribute value, recursively: the shape
// a Java reader's Enhanced Client maps.
func avShape(av types.AttributeValue) string {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return "S"
	case *types.AttributeValueMemberN:
		return "N"
	case *types.AttributeValueMemberM:
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(v.Value)) {
			parts = append(parts, k+":"+avShape(v.Value[k]))
		}
		return "M{" + strings.Join(parts, ",") + "}"
	case *types.AttributeValueMemberL:
		var parts []string
		for _, e := range v.Value {
			parts = append(parts, avShape(e))
		}
		slices.Sort(parts)
		return "L[" + strings.Join(slices.Compact(parts), ",") + "]"
	default:
		return fmt.Sprintf("%T", av)
	}
}

func itemShape(item map[string]types.AttributeValue) map[string]string {
	out := map[string]string{}
	for k, v := range item {
		out[k] = avShape(v)
	}
	return out
}

// TestReportWorkerMetricsOnDynamoDB reports like a kcl worker beside Java
// KCL 3.x workers in both places KCL keeps the rows, and checks the rows
// read back as the fixture's Java-written rows do: same attributes, same
// types, ten averages, lut in seconds.
func TestReportWorkerMetricsOnDynamoDB(t *testing.T) {
	client := testenv.DynamoDB(t)
	fixtures := kcl3FixturesWith(t, attrMetricsUpdated, 3)
	separateFixture, leaseFixture := fixtures[0], fixtures[1]

	report := func(t *testing.T, s *Store, n int) (before, after time.Time) {
		t.Helper()
		before = time.Now()
		for i := range n {
			if err := s.ReportWorkerMetrics(t.Context(), lease.WorkerMetrics{WorkerID: "w-kcl", CPU: 10 + float64(i)/3, MaxCPU: 100}); err != nil {
				t.Fatal(err)
			}
		}
		return before, time.Now()
	}
	check := func(t *testing.T, tbl kcl3Table, fixture kcl3Fixture, before, after time.Time) {
		t.Helper()
		out, err := client.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(tbl.name), Key: tbl.key("w-kcl"), ConsistentRead: aws.Bool(true)})
		if err != nil || out.Item == nil {
			t.Fatalf("no row in %s: %v", tbl.name, err)
		}
		if got, want := itemShape(out.Item), itemShape(fixture.item); !reflect.DeepEqual(got, want) {
			t.Errorf("row shape %v, want the Java row's %v", got, want)
		}
		w, err := decodeWorkerMetricStats(tbl, out.Item)
		if err != nil {
			t.Fatal(err)
		}
		if w.updated.Unix() < before.Unix() || w.updated.Unix() > after.Unix() {
			t.Errorf("lut %d, want between %d and %d (epoch seconds)", w.updated.Unix(), before.Unix(), after.Unix())
		}
		want := []float64{10.666667, 11, 11.333333, 11.666667, 12, 12.333333, 12.666667, 13, 13.333333, 13.666667}
		if !slices.Equal(w.stats["C"], want) {
			t.Errorf("sts.C %v, want the last ten, rounded: %v", w.stats["C"], want)
		}
		if w.support == nil || w.support.code != supportSingleTable || w.support.updated != w.updated {
			t.Errorf("support %+v, want sup 1 and slu = lut", w.support)
		}
		// The Java leader's reader finds it.
		rows, err := readWorkerMetricStats(t.Context(), client, tbl)
		if err != nil || !slices.Contains(workerIDs(rows), "w-kcl") {
			t.Errorf("leader's scan of %s read %v, %v", tbl.name, workerIDs(rows), err)
		}
	}

	t.Run("separate table of a KCL 3.0-3.4 fleet", func(t *testing.T) {
		name := testenv.UniqueName(t, "lease")
		testenv.CreateTable(t, client, name)
		createHashKeyTable(t, client, name+"-CoordinatorState", attrCoordinatorKey)
		createHashKeyTable(t, client, name+"-WorkerMetricStats", attrWorkerID)
		s, err := New(client, name)
		if err != nil {
			t.Fatal(err)
		}
		before, after := report(t, s, 12)
		check(t, workerMetricStatsTable(name), separateFixture, before, after)
		if st := s.Stats().Calls; st.UpdateItem != 12 || st.GetItem != 12 {
			t.Errorf("calls %+v, want 12 UpdateItem and 12 GetItem (the CoordinatorState read only)", st)
		}
	})

	t.Run("lease table of a KCL 3.5 single-table fleet", func(t *testing.T) {
		name := testenv.UniqueName(t, "lease")
		testenv.CreateTable(t, client, name)
		migration := kcl3FixturesWith(t, attrClientVersion, 2)[1]
		if migration.table.hashKey != attrLeaseKey {
			t.Fatalf("fixture %s is not the lease table's Migration3.0", migration.name)
		}
		for _, item := range []map[string]types.AttributeValue{migration.item, MarshalItem(lease.Lease{Key: "shardId-000000000000", Checkpoint: checkpoint.TrimHorizon})} {
			if _, err := client.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(name), Item: item}); err != nil {
				t.Fatal(err)
			}
		}
		s, err := New(client, name)
		if err != nil {
			t.Fatal(err)
		}
		before, after := report(t, s, 12)
		check(t, leaseTableRows(name), leaseFixture, before, after)
		leases, err := s.List(t.Context())
		if err != nil || len(leases) != 1 {
			t.Errorf("List = %v, %v; want the one lease", leases, err)
		}
	})

	t.Run("lease table once the table migration is DEPLOYED", func(t *testing.T) {
		name := testenv.UniqueName(t, "lease")
		testenv.CreateTable(t, client, name)
		createHashKeyTable(t, client, "cs-"+name, attrCoordinatorKey)
		createHashKeyTable(t, client, "wms-"+name, attrWorkerID)
		tm := kcl3FixturesWith(t, attrTableMigration, 2)[0]
		if tm.table.hashKey != attrCoordinatorKey || tm.item[attrTableMigration].(*types.AttributeValueMemberS).Value != "TABLE_MIGRATION_STATUS_DEPLOYED" {
			t.Fatalf("fixture %s is not the CoordinatorState table's DEPLOYED table migration", tm.name)
		}
		if _, err := client.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String("cs-" + name), Item: tm.item}); err != nil {
			t.Fatal(err)
		}
		s, err := New(client, name, WithKCL3Tables("wms-"+name, "cs-"+name))
		if err != nil {
			t.Fatal(err)
		}
		before, after := report(t, s, 12)
		check(t, leaseTableRows(name), leaseFixture, before, after)
		if out, err := client.Scan(t.Context(), &dynamodb.ScanInput{TableName: aws.String("wms-" + name)}); err != nil || out.Count != 0 {
			t.Errorf("separate table holds %v rows (%v), want none", out, err)
		}
	})

	t.Run("nowhere on a table without KCL 3.x items", func(t *testing.T) {
		name := testenv.UniqueName(t, "lease")
		testenv.CreateTable(t, client, name)
		s, err := New(client, name)
		if err != nil {
			t.Fatal(err)
		}
		report(t, s, 1)
		if st := s.Stats().Calls; st.UpdateItem != 0 || st.GetItem != 2 {
			t.Errorf("calls %+v, want two reads and no write", st)
		}
		out, err := client.Scan(t.Context(), &dynamodb.ScanInput{TableName: aws.String(name)})
		if err != nil || out.Count != 0 {
			t.Errorf("lease table holds %d items (%v), want none", out.Count, err)
		}
	})

	t.Run("a lease under the worker's id is never overwritten", func(t *testing.T) {
		name := testenv.UniqueName(t, "lease")
		testenv.CreateTable(t, client, name)
		migration := kcl3FixturesWith(t, attrClientVersion, 2)[1]
		l := lease.Lease{Key: "w-kcl", Owner: "w-java", Counter: 3, Checkpoint: checkpoint.TrimHorizon}
		for _, item := range []map[string]types.AttributeValue{migration.item, MarshalItem(l)} {
			if _, err := client.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(name), Item: item}); err != nil {
				t.Fatal(err)
			}
		}
		s, err := New(client, name)
		if err != nil {
			t.Fatal(err)
		}
		err = s.ReportWorkerMetrics(t.Context(), lease.WorkerMetrics{WorkerID: "w-kcl", CPU: 1, MaxCPU: 100})
		if !errors.Is(err, lease.ErrConflict) {
			t.Errorf("report over a lease: %v, want a conflict", err)
		}
		got, err := s.Get(t.Context(), "w-kcl")
		if err != nil || got.Owner != "w-java" || got.Counter != 3 {
			t.Errorf("lease after the report: %+v, %v", got, err)
		}
	})

	t.Run("a missing WorkerMetricStats table beside a CoordinatorState table is an error", func(t *testing.T) {
		name := testenv.UniqueName(t, "lease")
		testenv.CreateTable(t, client, name)
		createHashKeyTable(t, client, name+"-CoordinatorState", attrCoordinatorKey)
		s, err := New(client, name)
		if err != nil {
			t.Fatal(err)
		}
		err = s.ReportWorkerMetrics(t.Context(), lease.WorkerMetrics{WorkerID: "w-kcl", CPU: 1, MaxCPU: 100})
		if !errors.Is(err, ErrTableNotFound) {
			t.Errorf("error %v, want ErrTableNotFound", err)
		}
	})
}
