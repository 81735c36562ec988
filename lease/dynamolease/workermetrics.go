package dynamolease

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// KCL 3.x workers report their load every 30 s in a WorkerMetricStats row
// (worker/metricstats/WorkerMetricStats); the leader reads them all to assign
// leases. This file reads and writes those rows in both places KCL keeps them.

// Attribute names of a WorkerMetricStats row (@DynamoDbAttribute names).
const (
	attrMetricsUpdated   = "lut" // N, lastUpdateTime, epoch seconds
	attrMetricStats      = "sts" // M of L of N: metric -> averages, oldest first
	attrOperatingRange   = "opr" // M of L of N: metric -> [max utilization]
	attrSupportCode      = "sup" // N, KCL 3.5: feature bits
	attrSupportUpdated   = "slu" // N, KCL 3.5: when sup was written, epoch seconds
	metricNoSample       = -1.0  // an sts entry for an interval without a sample
	supportSingleTable   = 1     // sup bit: Features.SINGLE_TABLE_MIGRATION
	kclMetricsReportFreq = 30 * time.Second
)

// workerMetricStats is one worker's WorkerMetricStats row.
//
// Metric names are KCL's short names: C (CPU), M (memory), NI and NO
// (network in and out), T (throughput); on EC2, ECS and EKS KCL reports C
// only. A nil map is an absent attribute; an empty one is written as an empty
// map (what KCL writes for a worker on a platform it does not detect).
type workerMetricStats struct {
	workerID string
	// entityType is "WORKER_METRIC_STATS" as KCL 3.5 writes it (in both
	// tables), "" on rows of KCL 3.0–3.4.
	entityType string
	updated    time.Time // lut, whole seconds
	// stats holds, per metric, up to 10 interval averages, oldest first,
	// each rounded to 6 decimals; metricNoSample marks a missed interval.
	stats map[string][]float64
	// operatingRange holds, per metric, the worker's maximum utilization
	// (one value).
	operatingRange map[string][]int64
	// support is nil on rows of KCL 3.0–3.4.
	support *workerSupport
}

// workerSupport is what a KCL 3.5 worker says it supports, and when it last
// said so. KCL 3.5's leader treats a missing or stale support code as "does
// not support the single table migration".
type workerSupport struct {
	code    int64     // sup, bits such as supportSingleTable
	updated time.Time // slu, whole seconds
}

// decodeWorkerMetricStats reads a WorkerMetricStats row of table t (hash key
// wid in the separate table, leaseKey in the lease table).
//
// Required: the hash key and lut (epoch seconds, 0 to the end of year 9999). Optional, as KCL 3.0–3.4 rows
// lack some: entityType (S "WORKER_METRIC_STATS"), sts and opr (maps of
// lists of numbers: finite decimals in sts, integers in opr), and sup (an
// integer) and slu (epoch seconds), both or neither. Other attributes (KCL's unused
// "properties") are ignored. A malformed row yields a *coordinationItemError
// (matching lease.ErrMalformed).
func decodeWorkerMetricStats(t kcl3Table, item map[string]types.AttributeValue) (workerMetricStats, error) {
	d := newCoordinationDecoder("WorkerMetricStats", item)
	var w workerMetricStats
	w.workerID = d.hashKey(t.hashKey)
	w.entityType = d.entityType(entityTypeWorkerMetrics)
	w.updated, _ = d.epochSeconds(attrMetricsUpdated, true)
	w.stats = numberLists(d, attrMetricStats, d.parseMetric)
	w.operatingRange = numberLists(d, attrOperatingRange, d.parseInt)
	sup, hasSup := d.integer(attrSupportCode, false)
	slu, hasSlu := d.epochSeconds(attrSupportUpdated, false)
	switch {
	case d.err != nil:
	case hasSup && hasSlu:
		w.support = &workerSupport{code: sup, updated: slu}
	case hasSup:
		d.fail(attrSupportUpdated, "missing while sup is present", nil)
	case hasSlu:
		d.fail(attrSupportCode, "missing while slu is present", nil)
	}
	if err := d.result(); err != nil {
		return workerMetricStats{}, err
	}
	return w, nil
}

// parseMetric parses one sts value: a finite decimal number.
func (d *coordinationDecoder) parseMetric(attr, s string) (float64, bool) {
	if !isDecimal(s) {
		d.fail(attr, fmt.Sprintf("not a decimal number: %q", truncate(s)), nil)
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		d.fail(attr, fmt.Sprintf("out of range: %q", truncate(s)), nil)
		return 0, false
	}
	return f, true
}

// numberLists reads an M attribute whose values are L of N, parsing each
// number with parse. It returns nil when the attribute is absent and a
// non-nil map when it is present.
func numberLists[T any](d *coordinationDecoder, attr string, parse func(attr, s string) (T, bool)) map[string][]T {
	m, ok := member[types.AttributeValueMemberM](&d.decoder, attr, "M")
	if !ok {
		return nil
	}
	out := make(map[string][]T, len(m.Value))
	for _, name := range slices.Sorted(maps.Keys(m.Value)) {
		path := attr + "." + name
		l, ok := m.Value[name].(*types.AttributeValueMemberL)
		if !ok || l == nil {
			d.fail(path, fmt.Sprintf("want type L, have %s", typeName(m.Value[name])), nil)
			return nil
		}
		values := make([]T, 0, len(l.Value))
		for i, av := range l.Value {
			elem := fmt.Sprintf("%s[%d]", path, i)
			n, ok := av.(*types.AttributeValueMemberN)
			if !ok || n == nil {
				d.fail(elem, fmt.Sprintf("want type N, have %s", typeName(av)), nil)
				return nil
			}
			v, ok := parse(elem, n.Value)
			if !ok {
				return nil
			}
			values = append(values, v)
		}
		out[name] = values
	}
	return out
}

// encodeWorkerMetricStats returns w as a row of table t.
func encodeWorkerMetricStats(t kcl3Table, w workerMetricStats) map[string]types.AttributeValue {
	item := workerMetricsAttributes(w)
	item[t.hashKey] = &types.AttributeValueMemberS{Value: w.workerID}
	return item
}

// workerMetricsAttributes returns w's attributes but its key, leaving out
// those that are nil (KCL's Enhanced Client writes with ignoreNulls).
func workerMetricsAttributes(w workerMetricStats) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{
		attrMetricsUpdated: numberInt(w.updated.Unix()),
	}
	if w.entityType != "" {
		item[attrEntityType] = &types.AttributeValueMemberS{Value: w.entityType}
	}
	if w.stats != nil {
		item[attrMetricStats] = numberListsValue(w.stats, numberFloat)
	}
	if w.operatingRange != nil {
		item[attrOperatingRange] = numberListsValue(w.operatingRange, numberInt)
	}
	if w.support != nil {
		item[attrSupportCode] = numberInt(w.support.code)
		item[attrSupportUpdated] = numberInt(w.support.updated.Unix())
	}
	return item
}

func numberListsValue[T any](m map[string][]T, number func(T) *types.AttributeValueMemberN) types.AttributeValue {
	out := make(map[string]types.AttributeValue, len(m))
	for name, values := range m {
		l := make([]types.AttributeValue, len(values))
		for i, v := range values {
			l[i] = number(v)
		}
		out[name] = &types.AttributeValueMemberL{Value: l}
	}
	return &types.AttributeValueMemberM{Value: out}
}

// errStaleMetricsReport is matched by the error checkWorkerMetricsReport
// returns for a report KCL would refuse to write.
var errStaleMetricsReport = errors.New("dynamolease: WorkerMetricStats report not writable")

// checkWorkerMetricsReport applies the check KCL makes before each report
// (WorkerMetricStatsDAO.validateWorkerMetrics): the report must have been
// taken less than 2 × interval before now, and every metric must have at
// least one value.
func checkWorkerMetricsReport(w workerMetricStats, now time.Time, interval time.Duration) error {
	if w.workerID == "" {
		return fmt.Errorf("%w: no worker id", errStaleMetricsReport)
	}
	if age := now.Sub(w.updated); age >= 2*interval {
		return fmt.Errorf("%w: lut %s is %s old, want less than %s", errStaleMetricsReport,
			w.updated.UTC().Format(time.RFC3339), age, 2*interval)
	}
	for _, name := range slices.Sorted(maps.Keys(w.stats)) {
		if len(w.stats[name]) == 0 {
			return fmt.Errorf("%w: metric %q has no values", errStaleMetricsReport, name)
		}
	}
	return nil
}

// reportWorkerMetricsInput is the UpdateItem a worker makes every reporting
// interval (30 s in KCL), as KCL's Enhanced Client upsert does: SET every
// attribute w has (entityType, lut, sts, opr, sup, slu), REMOVE nothing. The
// row is created if missing; attributes w lacks keep their stored values.
// KCL writes with no condition; in the lease table, where worker ids share
// the key space with leases, kcl conditions the write on the key holding no
// item or a WorkerMetricStats row, so that it never overwrites a lease.
func reportWorkerMetricsInput(t kcl3Table, w workerMetricStats) *dynamodb.UpdateItemInput {
	e := newExpr()
	attrs := workerMetricsAttributes(w)
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		e.setAV(name, attrs[name])
	}
	if t.shared {
		e.isOrNew(entityTypeWorkerMetrics)
	}
	return &dynamodb.UpdateItemInput{
		TableName:                 aws.String(t.name),
		Key:                       t.key(w.workerID),
		UpdateExpression:          e.update(),
		ConditionExpression:       e.condition(),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.attributeValues(),
	}
}

// deleteStaleWorkerMetricsInput is the DeleteItem by which KCL's leader
// removes the row of a worker whose lut is older than a day
// (WorkerMetricStatsDAO.deleteMetrics): conditioned on the row still holding
// the lut the leader read, so a worker that reported since keeps its row.
func deleteStaleWorkerMetricsInput(t kcl3Table, w workerMetricStats) *dynamodb.DeleteItemInput {
	e := newExpr()
	e.cond = append(e.cond,
		e.n(attrMetricsUpdated)+" = "+e.v(numberInt(w.updated.Unix())),
		"attribute_exists("+e.n(t.hashKey)+")")
	return &dynamodb.DeleteItemInput{
		TableName:                 aws.String(t.name),
		Key:                       t.key(w.workerID),
		ConditionExpression:       e.condition(),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.attributeValues(),
	}
}

// scanAPI is the DynamoDB method readWorkerMetricStats needs.
type scanAPI interface {
	Scan(ctx context.Context, params *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// readWorkerMetricStats returns every WorkerMetricStats row of table t, as
// KCL's leader reads them: a paginated, eventually consistent Scan, filtered
// on entityType = WORKER_METRIC_STATS in the lease table (where the whole
// table is still read and paid for) and unfiltered in the separate table
// (whose KCL 3.0–3.4 rows have no entityType).
//
// Rows that cannot be decoded are left out and reported together in an error
// matching lease.ErrMalformed, returned with the rows that could be read.
// DynamoDB errors are returned as classify maps them, with no rows.
func readWorkerMetricStats(ctx context.Context, client scanAPI, t kcl3Table) ([]workerMetricStats, error) {
	in := &dynamodb.ScanInput{TableName: aws.String(t.name)}
	if t.shared {
		e := newExpr()
		e.cond = append(e.cond, e.n(attrEntityType)+" = "+e.v(&types.AttributeValueMemberS{Value: entityTypeWorkerMetrics}))
		in.FilterExpression = e.condition()
		in.ExpressionAttributeNames = e.names
		in.ExpressionAttributeValues = e.attributeValues()
	}
	var (
		rows      []workerMetricStats
		malformed []error
	)
	for {
		out, err := client.Scan(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("scan WorkerMetricStats in %s: %w", t.name, classify(err, nil))
		}
		for _, item := range out.Items {
			w, err := decodeWorkerMetricStats(t, item)
			if err != nil {
				malformed = append(malformed, err)
				continue
			}
			rows = append(rows, w)
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	return rows, errors.Join(malformed...)
}
