package kotel

import (
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// attrKey identifies one attribute set: a shard ("" when shard attributes
// are dropped), and for calls an operation and an error type.
type attrKey struct {
	shard, op, errType string
}

// attrs holds one attribute set as the option slices the instruments take,
// built once so that a measurement allocates nothing.
type attrs struct {
	measure metric.MeasurementOption
	add     []metric.AddOption
	record  []metric.RecordOption
}

func newAttrs(set attribute.Set) *attrs {
	o := metric.WithAttributeSet(set)
	return &attrs{measure: o, add: []metric.AddOption{o}, record: []metric.RecordOption{o}}
}

// attrCache builds attribute sets on first use and keeps them. Its size is
// bounded by the shards the worker has held times the operations and error
// types seen, the same bound as the series the exporter keeps.
type attrCache struct {
	base      attribute.Set
	withShard bool
	sets      sync.Map // attrKey → *attrs
}

func (c *attrCache) init(base attribute.Set, withShard bool) {
	c.base, c.withShard = base, withShard
}

// shard returns the attributes of per-shard measurements.
func (c *attrCache) shard(shard string) *attrs { return c.get(attrKey{shard: shard}) }

// call returns the attributes of a call's measurement: the shard's, the
// operation, and the error type when errType is not "".
func (c *attrCache) call(shard, op, errType string) *attrs {
	return c.get(attrKey{shard: shard, op: op, errType: errType})
}

func (c *attrCache) get(k attrKey) *attrs {
	if !c.withShard {
		k.shard = ""
	}
	if a, ok := c.sets.Load(k); ok {
		return a.(*attrs)
	}
	kvs := c.base.ToSlice()
	if k.shard != "" {
		kvs = append(kvs, ShardKey.String(k.shard))
	}
	if k.op != "" {
		kvs = append(kvs, OperationKey.String(k.op))
	}
	if k.errType != "" {
		kvs = append(kvs, ErrorTypeKey.String(k.errType))
	}
	a, _ := c.sets.LoadOrStore(k, newAttrs(attribute.NewSet(kvs...)))
	return a.(*attrs)
}
