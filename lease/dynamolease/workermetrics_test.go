package dynamolease

import (
	"context"
	"errors"
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

func sampleWorkerMetrics(id string, lut int64) workerMetricStats {
	return workerMetricStats{
		workerID:       id,
		entityType:     entityTypeWorkerMetrics,
		updated:        time.Unix(lut, 0),
		stats:          map[string][]float64{"C": {12.3, metricNoSample, 14.216667}},
		operatingRange: map[string][]int64{"C": {100}},
		support:        &workerSupport{code: supportSingleTable, updated: time.Unix(lut, 0)},
	}
}

func TestReportWorkerMetricsIsAnUpsertOfEverySetAttributeThatSparesLeases(t *testing.T) {
	for _, tbl := range []kcl3Table{workerMetricStatsTable("app"), leaseTableRows("app")} {
		t.Run(tbl.hashKey, func(t *testing.T) {
			w := sampleWorkerMetrics("w-a", 1787736612)
			in := reportWorkerMetricsInput(tbl, w)
			switch got := aws.ToString(in.ConditionExpression); {
			case !tbl.shared && in.ConditionExpression != nil:
				t.Errorf("condition %q in the separate table, want none (as KCL)", got)
			case tbl.shared && got != "(attribute_not_exists(#leaseKey) OR #entityType = :v6)":
				t.Errorf("condition %q in the lease table, want one that spares leases", got)
			case tbl.shared && !reflect.DeepEqual(in.ExpressionAttributeValues[":v6"], sAV(entityTypeWorkerMetrics)):
				t.Errorf("condition value %v", in.ExpressionAttributeValues[":v6"])
			}
			if got, want := aws.ToString(in.TableName), tbl.name; got != want {
				t.Errorf("table %q, want %q", got, want)
			}
			if !reflect.DeepEqual(in.Key, map[string]types.AttributeValue{tbl.hashKey: sAV("w-a")}) {
				t.Errorf("key %v", in.Key)
			}
			const wantUpdate = "SET #entityType = :v0, #lut = :v1, #opr = :v2, #slu = :v3, #sts = :v4, #sup = :v5"
			if got := aws.ToString(in.UpdateExpression); got != wantUpdate {
				t.Errorf("update %q, want %q", got, wantUpdate)
			}
			// Applying the SETs to an empty item gives the encoded row.
			applied := map[string]types.AttributeValue{tbl.hashKey: sAV("w-a")}
			for _, clause := range strings.Split(strings.TrimPrefix(wantUpdate, "SET "), ", ") {
				name, value, _ := strings.Cut(clause, " = ")
				applied[in.ExpressionAttributeNames[name]] = in.ExpressionAttributeValues[value]
			}
			if d := diffItems(applied, encodeWorkerMetricStats(tbl, w)); len(d) > 0 {
				t.Errorf("the update writes another row: %v", d)
			}

			// A KCL 3.0–3.4 shaped report sets only what it has.
			old := w
			old.entityType, old.support, old.operatingRange = "", nil, nil
			if got := aws.ToString(reportWorkerMetricsInput(tbl, old).UpdateExpression); got != "SET #lut = :v0, #sts = :v1" {
				t.Errorf("3.4-shaped update %q", got)
			}
		})
	}
}

func TestDeleteStaleWorkerMetricsIsConditionedOnTheLutRead(t *testing.T) {
	for _, tbl := range []kcl3Table{workerMetricStatsTable("app"), leaseTableRows("app")} {
		in := deleteStaleWorkerMetricsInput(tbl, sampleWorkerMetrics("w-a", 1787736612))
		if got, want := aws.ToString(in.ConditionExpression), "#lut = :v0 AND attribute_exists(#"+tbl.hashKey+")"; got != want {
			t.Errorf("%s: condition %q, want %q", tbl.hashKey, got, want)
		}
		wantNames := map[string]string{"#lut": "lut", "#" + tbl.hashKey: tbl.hashKey}
		if !reflect.DeepEqual(in.ExpressionAttributeNames, wantNames) {
			t.Errorf("%s: names %v", tbl.hashKey, in.ExpressionAttributeNames)
		}
		if !reflect.DeepEqual(in.ExpressionAttributeValues, map[string]types.AttributeValue{":v0": nAV("1787736612")}) {
			t.Errorf("%s: values %v", tbl.hashKey, in.ExpressionAttributeValues)
		}
	}
}

func TestCheckWorkerMetricsReportRefusesWhatKCLRefuses(t *testing.T) {
	now := time.Unix(2000, 0)
	fresh := sampleWorkerMetrics("w-a", now.Unix()-59)
	tests := []struct {
		name   string
		change func(*workerMetricStats)
		ok     bool
	}{
		{"a report taken just under two intervals ago is written", func(*workerMetricStats) {}, true},
		{"a report of a worker with no metric is written", func(w *workerMetricStats) { w.stats = map[string][]float64{} }, true},
		{"a report two intervals old is refused", func(w *workerMetricStats) { w.updated = now.Add(-60 * time.Second) }, false},
		{"a metric without values is refused", func(w *workerMetricStats) { w.stats = map[string][]float64{"C": {}} }, false},
		{"a report without worker id is refused", func(w *workerMetricStats) { w.workerID = "" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := fresh
			tt.change(&w)
			err := checkWorkerMetricsReport(w, now, kclMetricsReportFreq)
			if ok := err == nil; ok != tt.ok {
				t.Fatalf("error %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, errStaleMetricsReport) {
				t.Errorf("%v does not match errStaleMetricsReport", err)
			}
		})
	}
}

// pagedScan is a fake Scan that serves its pages in order and records the
// requests.
type pagedScan struct {
	pages [][]map[string]types.AttributeValue
	err   error
	calls []*dynamodb.ScanInput
}

func (p *pagedScan) Scan(_ context.Context, in *dynamodb.ScanInput, _ ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	p.calls = append(p.calls, in)
	if p.err != nil {
		return nil, p.err
	}
	i := len(p.calls) - 1
	out := &dynamodb.ScanOutput{Items: p.pages[i]}
	if i+1 < len(p.pages) {
		out.LastEvaluatedKey = map[string]types.AttributeValue{"page": nAV("1")}
	}
	return out, nil
}

func TestReadWorkerMetricStatsReadsEveryPageAndReportsMalformedRows(t *testing.T) {
	tbl := leaseTableRows("app")
	bad := encodeWorkerMetricStats(tbl, sampleWorkerMetrics("w-bad", 1))
	delete(bad, attrMetricsUpdated)
	scan := &pagedScan{pages: [][]map[string]types.AttributeValue{
		{encodeWorkerMetricStats(tbl, sampleWorkerMetrics("w-a", 1)), bad},
		{},
		{encodeWorkerMetricStats(tbl, sampleWorkerMetrics("w-b", 2))},
	}}
	rows, err := readWorkerMetricStats(t.Context(), scan, tbl)
	if !errors.Is(err, lease.ErrMalformed) || !strings.Contains(err.Error(), "w-bad") {
		t.Errorf("error %v, want one naming the malformed row w-bad", err)
	}
	if got := workerIDs(rows); !slices.Equal(got, []string{"w-a", "w-b"}) {
		t.Errorf("rows %v", got)
	}
	if len(scan.calls) != 3 || scan.calls[1].ExclusiveStartKey == nil {
		t.Fatalf("scanned %d pages, want 3 continuing from LastEvaluatedKey", len(scan.calls))
	}
	in := scan.calls[0]
	if got := aws.ToString(in.FilterExpression); got != "#entityType = :v0" {
		t.Errorf("filter %q", got)
	}
	if !reflect.DeepEqual(in.ExpressionAttributeValues, map[string]types.AttributeValue{":v0": sAV("WORKER_METRIC_STATS")}) {
		t.Errorf("filter values %v", in.ExpressionAttributeValues)
	}
	if aws.ToBool(in.ConsistentRead) {
		t.Error("consistent scan; KCL reads these eventually consistent")
	}

	// The separate table is read whole: KCL 3.0–3.4 rows have no entityType.
	scan = &pagedScan{pages: [][]map[string]types.AttributeValue{nil}}
	if _, err := readWorkerMetricStats(t.Context(), scan, workerMetricStatsTable("app")); err != nil {
		t.Fatal(err)
	}
	if scan.calls[0].FilterExpression != nil {
		t.Errorf("filter %q on the separate table", *scan.calls[0].FilterExpression)
	}

	scan = &pagedScan{err: &types.ResourceNotFoundException{Message: aws.String("no table")}}
	if _, err := readWorkerMetricStats(t.Context(), scan, tbl); !errors.Is(err, ErrTableNotFound) {
		t.Errorf("error %v, want ErrTableNotFound", err)
	}
}

func workerIDs(rows []workerMetricStats) []string {
	var ids []string
	for _, w := range rows {
		ids = append(ids, w.workerID)
	}
	slices.Sort(ids)
	return ids
}

// TestWorkerMetricStatsOnDynamoDB writes reports into a lease table that
// also holds a lease and the leader lock, reads them back with the leader's
// reader (while Store.List still sees only the lease), and removes a stale
// row with the leader's conditional delete.
func TestWorkerMetricStatsOnDynamoDB(t *testing.T) {
	client := testenv.DynamoDB(t)
	ctx := t.Context()
	name := testenv.UniqueName(t, "lease")
	testenv.CreateTable(t, client, name)
	tbl := leaseTableRows(name)

	_, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(name), Item: MarshalItem(lease.Lease{Key: "shardId-000000000000", Checkpoint: checkpoint.TrimHorizon})})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutItem(ctx, acquireFreeLockInput(tbl, newLeaderLock("w-a", kclLeaderLockDuration))); err != nil {
		t.Fatal(err)
	}
	a, b := sampleWorkerMetrics("w-a", 1787736612), sampleWorkerMetrics("w-b", 1787736600)
	for _, w := range []workerMetricStats{a, b} {
		if _, err := client.UpdateItem(ctx, reportWorkerMetricsInput(tbl, w)); err != nil {
			t.Fatal(err)
		}
	}
	// A report without sup/slu (as KCL 3.4 after a rollback) keeps them.
	a34 := a
	a34.updated, a34.entityType, a34.support = a.updated.Add(30*time.Second), "", nil
	if _, err := client.UpdateItem(ctx, reportWorkerMetricsInput(tbl, a34)); err != nil {
		t.Fatal(err)
	}
	a.updated = a34.updated

	var rows []workerMetricStats
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, func() bool {
		rows, err = readWorkerMetricStats(ctx, client, tbl)
		return err == nil && len(rows) == 2 // the scan is eventually consistent
	}, "read %d rows, error %v", len(rows), err)
	slices.SortFunc(rows, func(x, y workerMetricStats) int { return strings.Compare(x.workerID, y.workerID) })
	if !reflect.DeepEqual(rows, []workerMetricStats{a, b}) {
		t.Fatalf("rows:\n%+v\nwant\n%+v", rows, []workerMetricStats{a, b})
	}

	// The lease store sees only the lease among these rows.
	store, err := New(client, name)
	if err != nil {
		t.Fatal(err)
	}
	leases, err := store.List(ctx)
	if err != nil || len(leases) != 1 || leases[0].Key != "shardId-000000000000" {
		t.Fatalf("List = %+v, %v; want the one lease", leases, err)
	}

	// The leader's cleanup of b fails when b reported since, and works
	// with the lut it read.
	seen := b
	seen.updated = b.updated.Add(-30 * time.Second)
	_, err = client.DeleteItem(ctx, deleteStaleWorkerMetricsInput(tbl, seen))
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		t.Fatalf("delete with an old lut: %v, want a failed condition", err)
	}
	if _, err := client.DeleteItem(ctx, deleteStaleWorkerMetricsInput(tbl, b)); err != nil {
		t.Fatal(err)
	}
	_, err = client.DeleteItem(ctx, deleteStaleWorkerMetricsInput(tbl, b))
	if !errors.As(err, &ccf) {
		t.Fatalf("delete of a deleted row: %v, want a failed condition", err)
	}
}
