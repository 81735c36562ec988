package kotel

import "go.opentelemetry.io/otel/attribute"

// Option configures Metrics.
type Option func(*options)

type options struct {
	workerID string
	noShard  bool
	attrs    []attribute.KeyValue
}

// WithWorkerID sets the kcl.worker.id attribute on every measurement: give
// the id passed to consumer.WithWorkerID (or the Worker's ID()). The
// default sets no worker attribute, which suits one Worker per process
// when the resource already names the process.
func WithWorkerID(id string) Option {
	return func(o *options) { o.workerID = id }
}

// WithoutShardAttributes drops kcl.shard.id from every measurement, and
// the per-shard gauge kcl.shard.lag with it, for fleets with many shards:
// each instrument then has one series per worker (times the operations and
// error types where it has those) instead of one per shard. kcl.shard.lag.max
// still reports the most behind shard.
func WithoutShardAttributes() Option {
	return func(o *options) { o.noShard = true }
}

// WithAttributes adds constant attributes to every measurement, such as the
// application's name.
func WithAttributes(kv ...attribute.KeyValue) Option {
	return func(o *options) { o.attrs = append(o.attrs, kv...) }
}
