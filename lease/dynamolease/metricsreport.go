package dynamolease

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kclgo/kcl/lease"
)

var _ lease.MetricsReporter = (*Store)(nil)

// What a KCL 3.x worker reports (WorkerMetricStatsReporter,
// WorkerMetricStatsManager, LeaseManagementConfig defaults).
const (
	metricCPU          = "C" // WorkerMetricType.CPU's short name
	kclMetricsHistory  = 10  // noOfPersistedMetricsPerWorkerMetrics
	kclMetricsDecimals = 6   // averages are rounded HALF_UP to 6 decimals
)

// ReportWorkerMetrics implements lease.MetricsReporter: it writes m's worker's
// WorkerMetricStats row as a Java KCL 3.5 worker does every 30 s
// (WorkerMetricStatsReporter), where the Java fleet's leader reads it.
//
// The row holds, under metric "C", the worker's last ten CPU averages
// (oldest first, rounded to 6 decimals, -1 for an interval without sample)
// and its operating range [MaxCPU]; with MaxCPU 0, empty sts and opr maps
// (KCL's report from an undetected platform). It also holds lut and slu (now,
// epoch seconds), sup 1 (the worker supports KCL 3.5's single table
// migration: it follows the migration as below) and entityType
// WORKER_METRIC_STATS. The history lives in the Store, per worker id, as
// KCL's lives in the worker: a restarted worker starts a new one.
//
// Where: each report first reads where the Java fleet keeps the rows
// (chooseMetricsPlace): the table-migration item "TableMigration3.5" of the
// CoordinatorState table (WithKCL3Tables, by default <table>-CoordinatorState)
// and, when that table is absent, the lease table's client-version item
// "Migration3.0". With a migration DEPLOYED, PENDING or COMPLETE, or no
// CoordinatorState table and a Migration3.0 item in the lease table (KCL 3.5's
// single table format), the row goes to the lease table, keyed by leaseKey,
// conditioned on that key holding no lease. Otherwise, with a
// CoordinatorState table, it goes to the WorkerMetricStats table (WithKCL3Tables,
// by default <table>-WorkerMetricStats; hash key wid), where KCL 3.0–3.4
// write and every KCL 3.x leader reads; a missing WorkerMetricStats table is
// then an error matching ErrTableNotFound. Otherwise no KCL 3.x worker has run
// on the table (a Java 2.x fleet, whose workers would read a row in the lease
// table as a lease, or kcl alone), and nothing is written. Like KCL, the
// write is an upsert with no other condition, and the row is never deleted
// (a KCL leader deletes rows a day stale).
//
// Cost: one or two eventually consistent GetItems (half a read unit each)
// and, when a place is found, one UpdateItem of about 300 bytes (one write
// unit) per report. A history entry is recorded even when the write fails,
// as KCL's queue keeps the average it computed.
func (s *Store) ReportWorkerMetrics(ctx context.Context, m lease.WorkerMetrics) error {
	if err := checkMetrics(m); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dynamolease: report WorkerMetricStats of %q: %w", m.WorkerID, err)
	}
	row := s.metrics.next(m, time.Now())
	t, ok, err := s.metricsTable(ctx)
	if err != nil {
		return fmt.Errorf("dynamolease: report WorkerMetricStats of %q: %w", m.WorkerID, err)
	}
	if !ok {
		return nil
	}
	if err := checkWorkerMetricsReport(row, time.Now(), kclMetricsReportFreq); err != nil {
		return err
	}
	in := reportWorkerMetricsInput(t, row)
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := s.client.UpdateItem(ctx, in)
	err = s.noted(opUpdateItem, consumed(out, err), err, nil)
	if err != nil {
		return fmt.Errorf("dynamolease: report WorkerMetricStats of %q to %s: %w", m.WorkerID, t.name, err)
	}
	return nil
}

// checkMetrics refuses the reports lease.MetricsReporter calls invalid.
func checkMetrics(m lease.WorkerMetrics) error {
	switch {
	case m.WorkerID == "":
		return errors.New("dynamolease: report WorkerMetricStats: empty worker id")
	case m.MaxCPU < 0 || m.MaxCPU > 100:
		return fmt.Errorf("dynamolease: report WorkerMetricStats of %q: MaxCPU %d, want 0 to 100", m.WorkerID, m.MaxCPU)
	case m.MaxCPU > 0 && (math.IsNaN(m.CPU) || m.CPU > 100):
		return fmt.Errorf("dynamolease: report WorkerMetricStats of %q: CPU %v, want at most 100", m.WorkerID, m.CPU)
	}
	return nil
}

// metricsHistory keeps, per worker id, the CPU averages reported so far, as
// KCL's WorkerMetricStatsManager keeps them in an EvictingQueue.
type metricsHistory struct {
	mu  sync.Mutex // guards cpu
	cpu map[string][]float64
}

// next adds m to its worker's history and returns the row to write at now.
func (h *metricsHistory) next(m lease.WorkerMetrics, now time.Time) workerMetricStats {
	w := workerMetricStats{
		workerID:       m.WorkerID,
		entityType:     entityTypeWorkerMetrics,
		updated:        time.Unix(now.Unix(), 0),
		stats:          map[string][]float64{},
		operatingRange: map[string][]int64{},
		support:        &workerSupport{code: supportSingleTable, updated: time.Unix(now.Unix(), 0)},
	}
	if m.MaxCPU == 0 {
		return w
	}
	v := metricNoSample
	if m.CPU >= 0 {
		v = roundHalfUp(m.CPU, kclMetricsDecimals)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cpu == nil {
		h.cpu = make(map[string][]float64)
	}
	hist := append(h.cpu[m.WorkerID], v)
	if len(hist) > kclMetricsHistory {
		hist = append([]float64(nil), hist[len(hist)-kclMetricsHistory:]...)
	}
	h.cpu[m.WorkerID] = hist
	w.stats[metricCPU] = append([]float64(nil), hist...)
	w.operatingRange[metricCPU] = []int64{m.MaxCPU}
	return w
}

// roundHalfUp rounds v >= 0 to n decimals as KCL does
// (BigDecimal.valueOf(v).setScale(n, HALF_UP)): on the shortest decimal
// that reads back as v, so 4.1234565 rounds up although the float below it is
// nearer 4.123456.
func roundHalfUp(v float64, n int) float64 {
	r, ok := new(big.Rat).SetString(strconv.FormatFloat(v, 'f', -1, 64))
	if !ok {
		return v
	}
	scale := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil))
	r.Mul(r, scale).Add(r, big.NewRat(1, 2))
	q := new(big.Int).Quo(r.Num(), r.Denom()) // floor, r being positive
	out, _ := new(big.Rat).SetFrac(q, scale.Num()).Float64()
	return out
}

// metricsPlace is where a worker's WorkerMetricStats row goes.
type metricsPlace int

const (
	metricsNowhere    metricsPlace = iota + 1 // no KCL 3.x worker has run on the table
	metricsSeparate                           // the WorkerMetricStats table
	metricsLeaseTable                         // the lease table (KCL 3.5 single table format)
)

// coordinatorStateSeen is what a read of the CoordinatorState table found.
type coordinatorStateSeen struct {
	exists bool
	// migration is the status of its TableMigration3.5 item; 0 when there
	// is none (or the table is absent).
	migration tableMigrationStatus
}

// chooseMetricsPlace decides where a worker writes its WorkerMetricStats row,
// from what the CoordinatorState table holds and whether the lease table
// holds KCL 3.5's Migration3.0 item.
//
// It follows KCL 3.5 (WorkerMetricStatsDAO.getWriteDelegate,
// TableMigrationStateMachineImpl.determineStatusForInitialization): the lease
// table once the table migration is PENDING or COMPLETE, or when there is no
// CoordinatorState table; the separate table while it is INIT or DEPLOYED or
// has not begun. Two differences, both so that a kcl worker never holds the
// fleet back nor writes where no Java reader looks:
//   - at DEPLOYED kcl writes to the lease table, as a KCL 3.5 worker
//     deployed with migrateAllEntitiesToLeaseTable does; its leader reads
//     both tables until COMPLETE, and moves to PENDING only once every worker
//     writes to the lease table;
//   - with no CoordinatorState table, kcl writes to the lease table only when
//     a KCL 3.5 worker has created Migration3.0 there. Without it the table
//     is a Java 2.x fleet's (which reads the lease table's rows as leases) or
//     kcl's alone, and nothing is written.
func chooseMetricsPlace(cs coordinatorStateSeen, leaseTableMigrated bool) metricsPlace {
	switch {
	case cs.migration == tableMigrationDeployed, cs.migration == tableMigrationPending, cs.migration == tableMigrationComplete:
		return metricsLeaseTable
	case cs.exists:
		return metricsSeparate
	case leaseTableMigrated:
		return metricsLeaseTable
	default:
		return metricsNowhere
	}
}

// metricsTable reads what chooseMetricsPlace needs and returns the table to
// write to; ok is false when there is none. A table WithKCL3Tables named ""
// counts as absent.
func (s *Store) metricsTable(ctx context.Context) (t kcl3Table, ok bool, err error) {
	wmsName, csName := s.opts.workerMetricsTable, s.opts.coordStateTable
	if !s.opts.kcl3Tables {
		wmsName, csName = workerMetricStatsTable(s.table).name, coordinatorStateTable(s.table).name
	}
	var cs coordinatorStateSeen
	if csName != "" && checkTableName(csName) == "" {
		item, found, err := s.getCoordinationItem(ctx, kcl3Table{name: csName, hashKey: attrCoordinatorKey}, tableMigrationKey)
		if err != nil {
			return kcl3Table{}, false, err
		}
		cs.exists = found
		if item != nil {
			// An unknown status (of a newer KCL) counts as not begun.
			if tm, ok := stringAttr(item, attrTableMigration); ok {
				cs.migration = tableMigrationNames[tm]
			}
		}
	}
	migrated := false
	if !cs.exists {
		item, _, err := s.getCoordinationItem(ctx, leaseTableRows(s.table), clientVersionKey)
		if err != nil {
			return kcl3Table{}, false, err
		}
		_, migrated = stringAttr(item, attrClientVersion)
	}
	switch chooseMetricsPlace(cs, migrated) {
	case metricsLeaseTable:
		return leaseTableRows(s.table), true, nil
	case metricsSeparate:
		if wmsName == "" || checkTableName(wmsName) != "" {
			return kcl3Table{}, false, nil
		}
		return kcl3Table{name: wmsName, hashKey: attrWorkerID}, true, nil
	default:
		return kcl3Table{}, false, nil
	}
}

// getCoordinationItem reads the item with hash key value key of table t,
// eventually consistent. tableFound is false when DynamoDB says the table does
// not exist; item is nil when it or the item does not.
func (s *Store) getCoordinationItem(ctx context.Context, t kcl3Table, key string) (item map[string]types.AttributeValue, tableFound bool, err error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:              aws.String(t.name),
		Key:                    t.key(key),
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	err = s.noted(opGetItem, consumed(out, err), err, nil)
	switch {
	case isTableNotFound(err):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("read %s of %s: %w", key, t.name, err)
	}
	return out.Item, true, nil
}
