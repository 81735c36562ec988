package dynamolease

import (
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kclgo/kcl/lease"
)

// This file holds what the KCL 3.x coordination rows (leader lock,
// WorkerMetricStats, client-version and table-migration state) share: where
// they live and how a malformed one is reported. KCL-compatible mode (issue
// 12, item 5) reads and writes them; nothing here is exported yet.

// Hash key names and entityType values of KCL 3.x coordination rows.
const (
	attrCoordinatorKey = "key" // S, hash key of the <app>-CoordinatorState table
	attrWorkerID       = "wid" // S, hash key of the <app>-WorkerMetricStats table

	entityTypeLeader         = "LEADER"
	entityTypeWorkerMetrics  = "WORKER_METRIC_STATS"
	entityTypeClientVersion  = "CLIENT_VERSION_MIGRATION"
	entityTypeTableMigration = "TABLE_MIGRATION"
)

// kcl3Table is a table that holds KCL 3.x coordination rows, with the name of
// its hash key. KCL 3.0–3.4 keep the leader lock and migration state in
// <app>-CoordinatorState (hash key "key") and worker metrics in
// <app>-WorkerMetricStats (hash key "wid"); KCL 3.5's single table format
// keeps all of them in the lease table (hash key "leaseKey"), next to the
// leases, told apart by entityType.
type kcl3Table struct {
	name    string
	hashKey string
	// shared is set for the lease table: its rows have several entity types,
	// so readers filter on entityType.
	shared bool
}

// leaseTableRows returns the lease table as the home of coordination rows
// (KCL 3.5's single table format).
func leaseTableRows(name string) kcl3Table {
	return kcl3Table{name: name, hashKey: attrLeaseKey, shared: true}
}

// coordinatorStateTable returns KCL 3.0–3.4's CoordinatorState table of
// application app. KCL 3.5 uses it while it exists and its table migration is
// not COMPLETE, but never creates it.
func coordinatorStateTable(app string) kcl3Table {
	return kcl3Table{name: app + "-CoordinatorState", hashKey: attrCoordinatorKey}
}

// workerMetricStatsTable returns KCL 3.0–3.4's WorkerMetricStats table of
// application app. KCL 3.5 uses it while it exists and its table migration is
// INIT or DEPLOYED, but never creates it.
func workerMetricStatsTable(app string) kcl3Table {
	return kcl3Table{name: app + "-WorkerMetricStats", hashKey: attrWorkerID}
}

func (t kcl3Table) key(value string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{t.hashKey: &types.AttributeValueMemberS{Value: value}}
}

// coordinationItemError reports a KCL 3.x coordination row that cannot be
// read: a missing or mistyped attribute, or a value KCL would not write. It
// names the kind of row, and wraps a *lease.ItemError naming the key and the
// attribute, so it matches lease.ErrMalformed and errors.As finds the
// *lease.ItemError.
type coordinationItemError struct {
	kind string // "leader lock", "WorkerMetricStats", ...
	item *lease.ItemError
}

func (e *coordinationItemError) Error() string {
	msg := fmt.Sprintf("dynamolease: malformed KCL 3.x %s item %q: attribute %s: %s",
		e.kind, e.item.Key, e.item.Attribute, e.item.Reason)
	if e.item.Err != nil {
		msg += ": " + e.item.Err.Error()
	}
	return msg
}

func (e *coordinationItemError) Unwrap() error { return e.item }

// coordinationDecoder reads the attributes of one coordination row, keeping
// the first error, like decoder does for leases.
type coordinationDecoder struct {
	decoder
	kind string
}

func newCoordinationDecoder(kind string, item map[string]types.AttributeValue) *coordinationDecoder {
	return &coordinationDecoder{decoder: decoder{item: item}, kind: kind}
}

// result returns the decoder's error as a *coordinationItemError, or nil.
func (d *coordinationDecoder) result() error {
	if d.err == nil {
		return nil
	}
	return &coordinationItemError{kind: d.kind, item: d.err}
}

// hashKey reads the item's hash key (a non-empty S) and names the item by it
// in later errors.
func (d *coordinationDecoder) hashKey(attr string) string {
	k, ok := d.str(attr)
	if !ok && d.err == nil {
		d.fail(attr, "missing", nil)
	}
	d.key = k
	return k
}

// requiredStr reads a non-empty S attribute that must be present.
func (d *coordinationDecoder) requiredStr(attr string) string {
	s, ok := d.str(attr)
	if !ok && d.err == nil {
		d.fail(attr, "missing", nil)
	}
	return s
}

// entityType reads the optional entityType, which must be want when present
// (KCL 3.5 writes it; earlier versions do not).
func (d *coordinationDecoder) entityType(want string) string {
	et, ok := d.str(attrEntityType)
	if ok && et != want {
		d.fail(attrEntityType, fmt.Sprintf("%q, want %q", truncate(et), want), nil)
		return ""
	}
	return et
}

// integer reads an N attribute holding an integer; ok is false when it is
// absent (or bad, in which case the decoder has failed).
func (d *coordinationDecoder) integer(attr string, required bool) (n int64, ok bool) {
	s, present := d.number(attr)
	if !present {
		if required && d.err == nil {
			d.fail(attr, "missing", nil)
		}
		return 0, false
	}
	return d.parseInt(attr, s)
}

func (d *coordinationDecoder) parseInt(attr, s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		d.fail(attr, fmt.Sprintf("not an integer: %q", truncate(s)), nil)
		return 0, false
	}
	return n, true
}

// maxEpochSeconds bounds the epoch seconds a row may hold (the end of year
// 9999), so that time.Unix never overflows.
const maxEpochSeconds = 253402300799

// epochSeconds reads an N attribute holding epoch seconds; ok is false when
// it is absent (or bad, in which case the decoder has failed).
func (d *coordinationDecoder) epochSeconds(attr string, required bool) (t time.Time, ok bool) {
	secs, ok := d.integer(attr, required)
	if !ok {
		return time.Time{}, false
	}
	if secs < 0 || secs > maxEpochSeconds {
		d.fail(attr, fmt.Sprintf("out of range for epoch seconds: %d", secs), nil)
		return time.Time{}, false
	}
	return time.Unix(secs, 0), true
}
