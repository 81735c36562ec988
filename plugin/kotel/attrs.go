package kotel

import (
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Attribute keys. They are the label names of kcl's Prometheus plugin, so
// that queries and dashboards carry over whichever way the metrics reach a
// backend.
const (
	// StreamKey is the stream, as given to consumer.New. On every
	// measurement.
	StreamKey = attribute.Key("stream")
	// WorkerKey is the Worker's id. On every measurement.
	WorkerKey = attribute.Key("worker")
	// ShardKey is the shard id, on the per-shard instruments unless
	// WithoutShardAttributes is given.
	ShardKey = attribute.Key("shard")
	// OpKey is the Kinesis operation, one of consumer's Op constants.
	OpKey = attribute.Key("op")
	// KindKey is the class of a failed Kinesis call, a consumer.ErrorKind's
	// String: throttled, expired_iterator, transient, ...
	KindKey = attribute.Key("kind")
	// MethodKey is the processor method, one of consumer's Method
	// constants.
	MethodKey = attribute.Key("method")
	// ReasonKey is why a lease was lost (expired, taken) or released
	// (stopping, handoff, shard_stopped, error): consumer.LeaseEvent.Reason.
	ReasonKey = attribute.Key("reason")
	// TableKey and OperationKey name the lease table and the DynamoDB
	// operation of WithLeaseStore's instruments.
	TableKey     = attribute.Key("table")
	OperationKey = attribute.Key("operation")
)

// attrKey identifies one attribute set. Fields left "" are not set.
type attrKey struct {
	stream, worker, shard, op, kind, method, reason string
}

// attrs holds one attribute set as the option slices the instruments take,
// built once so that a measurement allocates nothing.
type attrs struct {
	measure metric.MeasurementOption
	add     []metric.AddOption
	record  []metric.RecordOption
}

// attrCache builds attribute sets on first use and keeps them. It holds a
// set per shard a worker has held (the same bound as the series an
// exporter keeps for cumulative counters) and a few per worker for the
// operations, kinds, methods and reasons seen.
type attrCache struct {
	extra     []attribute.KeyValue // WithAttributes
	withShard bool
	sets      sync.Map // attrKey → *attrs
}

// get returns the attribute set of k: stream, worker, WithAttributes', and
// those of k's other fields that are set (the shard unless WithoutShardAttributes).
func (c *attrCache) get(k attrKey) *attrs {
	if !c.withShard {
		k.shard = ""
	}
	if a, ok := c.sets.Load(k); ok {
		return a.(*attrs)
	}
	kvs := append([]attribute.KeyValue{StreamKey.String(k.stream), WorkerKey.String(k.worker)}, c.extra...)
	for _, kv := range []struct {
		key attribute.Key
		v   string
	}{{ShardKey, k.shard}, {OpKey, k.op}, {KindKey, k.kind}, {MethodKey, k.method}, {ReasonKey, k.reason}} {
		if kv.v != "" {
			kvs = append(kvs, kv.key.String(kv.v))
		}
	}
	o := metric.WithAttributeSet(attribute.NewSet(kvs...))
	a, _ := c.sets.LoadOrStore(k, &attrs{measure: o, add: []metric.AddOption{o}, record: []metric.RecordOption{o}})
	return a.(*attrs)
}

func (c *attrCache) worker(stream, worker string) *attrs {
	return c.get(attrKey{stream: stream, worker: worker})
}

func (c *attrCache) shard(stream, worker, shard string) *attrs {
	return c.get(attrKey{stream: stream, worker: worker, shard: shard})
}
