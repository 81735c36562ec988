package kotel

import (
	"go.opentelemetry.io/otel/attribute"

	"github.com/kclgo/kcl/lease/dynamolease"
)

// Option configures Metrics.
type Option func(*options)

type options struct {
	noShard bool
	attrs   []attribute.KeyValue
	stores  []LeaseStore
}

// LeaseStore is what WithLeaseStore reads: *dynamolease.Store has it.
type LeaseStore interface {
	Table() string
	Stats() dynamolease.Stats
}

var _ LeaseStore = (*dynamolease.Store)(nil)

// WithoutShardAttributes drops the shard attribute, for fleets where
// workers × shards series are too many: the per-shard counters then count
// once per worker, and kcl.behind_latest is not reported (its maximum,
// kcl.max_behind_latest, still is).
func WithoutShardAttributes() Option {
	return func(o *options) { o.noShard = true }
}

// WithAttributes adds constant attributes to every measurement, such as
// the application's name. Attributes that describe the process (host,
// service) belong on the MeterProvider's resource instead.
func WithAttributes(kv ...attribute.KeyValue) Option {
	return func(o *options) { o.attrs = append(o.attrs, kv...) }
}

// WithLeaseStore reports the DynamoDB calls and the capacity the lease
// store s consumed, by operation, read from s.Stats at each collection, as
// kcl.dynamodb.calls and kcl.dynamodb.consumed_capacity with the attributes
// table and operation. May be given several times.
func WithLeaseStore(s LeaseStore) Option {
	return func(o *options) { o.stores = append(o.stores, s) }
}
