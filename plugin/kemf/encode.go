package kemf

import (
	"encoding/json"
	"slices"
	"time"
)

// maxMetricsPerDirective is EMF's limit on the metrics of one directive.
const maxMetricsPerDirective = 100

// CloudWatch units used by the metrics.
const (
	unitCount        = "Count"
	unitBytes        = "Bytes"
	unitMilliseconds = "Milliseconds"
)

// Dimension names kcl sets, as the Java KCL names them.
const (
	dimOperation = "Operation"
	dimShardID   = "ShardId"
	dimWorkerID  = "WorkerIdentifier"
	dimStream    = "StreamName" // WithStreamDimension
	dimTable     = "TableName"  // WithLeaseStore
)

// Operations: the values of the Operation dimension, as in the Java KCL.
const (
	opProcessTask        = "ProcessTask"        // per shard: records, bytes, lag, reads, checkpoints
	opApplicationTracker = "ApplicationTracker" // MillisBehindLatest over every shard
	opRenewAllLeases     = "RenewAllLeases"     // leases held and lost
	opTakeLeases         = "TakeLeases"         // leases taken
	opShardSyncTask      = "ShardSyncTask"      // shard sync passes
	opLeaseTable         = "LeaseTable"         // kcl only: DynamoDB calls and capacity (WithLeaseStore)
)

// fetchPrefix is the metric name prefix of a Kinesis operation: KCL's for
// the polling calls, the operation's name for the others.
func fetchPrefix(op string) string {
	switch op {
	case "GetRecords":
		return "KinesisDataFetcher.getRecords"
	case "GetShardIterator":
		return "KinesisDataFetcher.getShardIterator"
	}
	return op
}

// line is one EMF document: one directive over the members it holds.
type line struct {
	dims    [][]string
	members map[string]any
	metrics []metricDef
}

type metricDef struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

func newLine(dims [][]string, values map[string]string) *line {
	l := &line{dims: dims, members: make(map[string]any, len(values)+16)}
	for k, v := range values {
		l.members[k] = v
	}
	return l
}

// count adds a metric whose value is a count or a byte total for the
// interval.
func (l *line) count(name, unit string, v int64) {
	l.members[name] = v
	l.metrics = append(l.metrics, metricDef{name, unit})
}

// countNonZero adds a count only if it is not 0.
func (l *line) countNonZero(name string, v int64) {
	if v != 0 {
		l.count(name, unitCount, v)
	}
}

// value adds a metric with one value.
func (l *line) value(name, unit string, v float64) {
	l.members[name] = v
	l.metrics = append(l.metrics, metricDef{name, unit})
}

// dist adds a distribution, if it has values.
func (l *line) dist(name, unit string, d *dist) {
	if d.n == 0 {
		return
	}
	vs := d.values()
	if len(vs) == 1 {
		l.members[name] = vs[0]
	} else {
		l.members[name] = vs
	}
	l.metrics = append(l.metrics, metricDef{name, unit})
}

// document is the root of an EMF line.
type document struct {
	Timestamp         int64       `json:"Timestamp"`
	CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
}

type directive struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []metricDef `json:"Metrics"`
}

// encode appends the line, newline-terminated, to buf; a line without
// metrics appends nothing.
func (l *line) encode(buf []byte, namespace string, at time.Time) ([]byte, error) {
	if len(l.metrics) == 0 {
		return buf, nil
	}
	doc := document{Timestamp: at.UnixMilli()}
	for ms := range slices.Chunk(l.metrics, maxMetricsPerDirective) {
		doc.CloudWatchMetrics = append(doc.CloudWatchMetrics, directive{Namespace: namespace, Dimensions: l.dims, Metrics: ms})
	}
	l.members["_aws"] = doc
	b, err := json.Marshal(l.members)
	if err != nil {
		return buf, err
	}
	return append(append(buf, b...), '\n'), nil
}
