package dynamolease

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Option configures a Store. Options are applied in order by New, which
// validates the result once.
type Option func(*options)

type options struct {
	billing            types.BillingMode
	readCapacity       int64 // provisioned RCU, only with BillingModeProvisioned
	writeCapacity      int64 // provisioned WCU, only with BillingModeProvisioned
	tags               []types.Tag
	deletionProtection bool
	ownerIndex         bool
	pageSize           int32
	tableWait          time.Duration
	// kcl3Tables is set by WithKCL3Tables; without it, Survey derives the
	// names from the lease table's.
	kcl3Tables                          bool
	workerMetricsTable, coordStateTable string

	err error // the first invalid option, reported by New
}

// Defaults, documented on the options that change them.
const (
	defaultTableWait = 5 * time.Minute
	maxTags          = 50 // DynamoDB's limit of tags per table
)

func defaultOptions() options {
	return options{
		billing:    types.BillingModePayPerRequest,
		ownerIndex: true,
		pageSize:   0, // no Limit: DynamoDB's 1 MB pages
		tableWait:  defaultTableWait,
	}
}

func (o *options) fail(format string, args ...any) {
	if o.err == nil {
		o.err = fmt.Errorf("dynamolease: "+format, args...)
	}
}

// WithProvisioned makes EnsureTable create the table (and its owner index)
// with provisioned capacity: rcu read and wcu write capacity units, each at
// least 1. The default is on-demand billing (PAY_PER_REQUEST), as KCL's.
// It has no effect on an existing table.
func WithProvisioned(rcu, wcu int64) Option {
	return func(o *options) {
		if rcu < 1 || wcu < 1 {
			o.fail("WithProvisioned(%d, %d): capacity units must be at least 1", rcu, wcu)
			return
		}
		o.billing = types.BillingModeProvisioned
		o.readCapacity, o.writeCapacity = rcu, wcu
	}
}

// WithTags makes EnsureTable tag the table it creates (at most 50 tags, keys
// non-empty). The default is no tags. It has no effect on an existing table.
func WithTags(tags map[string]string) Option {
	return func(o *options) {
		if len(tags) > maxTags {
			o.fail("WithTags: %d tags, DynamoDB allows at most %d", len(tags), maxTags)
			return
		}
		o.tags = o.tags[:0]
		for _, k := range slices.Sorted(maps.Keys(tags)) {
			if k == "" {
				o.fail("WithTags: empty tag key")
				return
			}
			o.tags = append(o.tags, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
		}
	}
}

// WithDeletionProtection makes EnsureTable create the table with deletion
// protection on or off. The default is off. It has no effect on an existing
// table.
func WithDeletionProtection(on bool) Option {
	return func(o *options) { o.deletionProtection = on }
}

// WithOwnerIndex says whether EnsureTable creates KCL 3.x's global secondary
// index LeaseOwnerToLeaseKeyIndex (hash key leaseOwner, range key leaseKey,
// keys only) with a new table. The default is true. With false, ListOwned
// still works on tables that already have the index. Each write that changes
// leaseOwner also writes the index, which DynamoDB bills.
func WithOwnerIndex(on bool) Option {
	return func(o *options) { o.ownerIndex = on }
}

// WithPageSize sets the Limit of each Scan page List reads, n items (at
// least 1). The default is no Limit: pages of up to 1 MB, the cheapest way to
// read the whole table. Smaller pages only spread the read over more calls.
func WithPageSize(n int) Option {
	return func(o *options) {
		if n < 1 || n > 1<<31-1 {
			o.fail("WithPageSize(%d): page size must be between 1 and 2147483647", n)
			return
		}
		o.pageSize = int32(n)
	}
}

// WithTableWait bounds how long EnsureTable waits for the table (and its owner
// index) to become ACTIVE. The default is 5 minutes.
func WithTableWait(timeout time.Duration) Option {
	return func(o *options) {
		if timeout <= 0 {
			o.fail("WithTableWait(%v): timeout must be positive", timeout)
			return
		}
		o.tableWait = timeout
	}
}

// WithKCL3Tables names the tables KCL 3.0–3.4 keep beside the lease table,
// which Survey looks for: workerMetricStats (KCL's WorkerMetricStats table)
// and coordinatorState (its CoordinatorState table). KCL names them after the
// application, <application>-WorkerMetricStats and
// <application>-CoordinatorState, and names the lease table after the
// application too; so by default Survey looks for <table>-WorkerMetricStats
// and <table>-CoordinatorState. Set them when the Java application's lease
// table has a name of its own. An empty name makes Survey skip that table,
// for credentials not allowed to describe it.
func WithKCL3Tables(workerMetricStats, coordinatorState string) Option {
	return func(o *options) {
		for _, name := range []string{workerMetricStats, coordinatorState} {
			if reason := checkTableName(name); name != "" && reason != "" {
				o.fail("WithKCL3Tables(%q, %q): table name %q: %s",
					truncate(workerMetricStats), truncate(coordinatorState), truncate(name), reason)
				return
			}
		}
		o.kcl3Tables = true
		o.workerMetricsTable, o.coordStateTable = workerMetricStats, coordinatorState
	}
}
