package kemf

import (
	"fmt"
	"strings"
	"time"

	"github.com/kclgo/kcl/lease/dynamolease"
)

// Option configures an Exporter.
type Option func(*options)

type options struct {
	interval     time.Duration
	buffer       int
	drainTimeout time.Duration
	workerDim    bool
	streamDim    bool
	noShard      bool
	dims         []dimension
	stores       []LeaseStore
}

// LeaseStore is what WithLeaseStore reads: *dynamolease.Store has it.
type LeaseStore interface {
	Table() string
	Stats() dynamolease.Stats
}

var _ LeaseStore = (*dynamolease.Store)(nil)

type dimension struct{ name, value string }

// Defaults, documented on the options that change them.
const (
	defaultInterval     = time.Minute
	defaultBuffer       = 8
	defaultDrainTimeout = 5 * time.Second
)

func defaultOptions() options {
	return options{interval: defaultInterval, buffer: defaultBuffer, drainTimeout: defaultDrainTimeout}
}

// WithFlushInterval sets how often the aggregates are written as EMF lines.
// The default, one minute, is CloudWatch's standard resolution; shorter
// intervals write more lines (CloudWatch Logs ingestion is billed by the
// byte) without finer metrics. It must be at least one second.
func WithFlushInterval(d time.Duration) Option {
	return func(o *options) { o.interval = d }
}

// WithBuffer sets how many flushes may wait for the writer. When the writer
// falls behind and the buffer is full, the oldest waiting flush is dropped
// and counted in Stats.DroppedFlushes: the hooks never wait for the writer.
// The default is 8; it must be at least 1.
func WithBuffer(flushes int) Option {
	return func(o *options) { o.buffer = flushes }
}

// WithDrainTimeout bounds how long Run, once its context is done, waits for
// the writer to take the final flush and those still buffered. The default
// is 5 seconds; it must not be negative.
func WithDrainTimeout(d time.Duration) Option {
	return func(o *options) { o.drainTimeout = d }
}

// WithWorkerDimension adds the WorkerIdentifier dimension, the Worker's
// id, to the worker's lease metrics (Operation RenewAllLeases and
// TakeLeases), as the Java KCL does when its metricsEnabledDimensions
// include it. By default, as in KCL's default configuration, they carry
// Operation only and the workers' values add up in CloudWatch.
func WithWorkerDimension() Option {
	return func(o *options) { o.workerDim = true }
}

// WithStreamDimension adds the StreamName dimension, the stream as given
// to consumer.New, to every metric: for an Exporter that serves Workers of
// several streams, whose shard ids would otherwise mix. The Java KCL names
// the streams of a multi-stream application with its StreamId dimension
// instead.
func WithStreamDimension() Option {
	return func(o *options) { o.streamDim = true }
}

// WithLeaseStore reports the DynamoDB calls and the capacity the lease
// store s consumed since the previous flush, by DynamoDB operation, read
// from s.Stats at each flush (Operation LeaseTable, dimension TableName).
// May be given several times.
func WithLeaseStore(s LeaseStore) Option {
	return func(o *options) { o.stores = append(o.stores, s) }
}

// WithoutShardDimension aggregates the per-shard metrics (Operation
// ProcessTask) over every shard of the worker into one line without the
// ShardId dimension, for fleets with many shards: CloudWatch bills each
// metric and dimension combination, and a ShardId multiplies them by the
// stream's shards (and by every shard a resharding creates).
func WithoutShardDimension() Option {
	return func(o *options) { o.noShard = true }
}

// WithDimension adds a dimension with a fixed value to every metric, such
// as Service or Environment. At most 27 may be given (EMF allows 30 per
// metric, and kcl sets up to three); names must not be one of kcl's
// (Operation, ShardId, WorkerIdentifier, StreamName, TableName) nor a
// metric's.
func WithDimension(name, value string) Option {
	return func(o *options) { o.dims = append(o.dims, dimension{name, value}) }
}

// maxDimensions is EMF's limit on the dimensions of one dimension set;
// kclDimensions is the most kcl sets on one metric (Operation, ShardId or
// WorkerIdentifier or TableName, StreamName).
const (
	maxDimensions = 30
	kclDimensions = 3
)

func (o *options) validate(namespace string) error {
	if namespace == "" || len(namespace) > 255 {
		return fmt.Errorf("kemf: namespace %q: must be 1 to 255 characters", namespace)
	}
	if strings.HasPrefix(namespace, "AWS/") {
		return fmt.Errorf("kemf: namespace %q: the AWS/ prefix is reserved for AWS services", namespace)
	}
	if o.interval < time.Second {
		return fmt.Errorf("kemf: WithFlushInterval(%v): must be at least 1s", o.interval)
	}
	if o.buffer < 1 {
		return fmt.Errorf("kemf: WithBuffer(%d): must be at least 1", o.buffer)
	}
	if o.drainTimeout < 0 {
		return fmt.Errorf("kemf: WithDrainTimeout(%v): must not be negative", o.drainTimeout)
	}
	if n := len(o.dims) + kclDimensions; n > maxDimensions {
		return fmt.Errorf("kemf: WithDimension given %d times: at most %d dimensions fit beside kcl's", len(o.dims), maxDimensions-kclDimensions)
	}
	seen := map[string]bool{}
	for _, d := range o.dims {
		switch {
		case d.name == "" || len(d.name) > 255:
			return fmt.Errorf("kemf: WithDimension(%q, %q): the name must be 1 to 255 characters", d.name, d.value)
		case d.value == "" || len(d.value) > 1024:
			return fmt.Errorf("kemf: WithDimension(%q, %q): the value must be 1 to 1024 characters", d.name, d.value)
		case d.name == "_aws" || d.name == dimOperation || d.name == dimShardID || d.name == dimWorkerID ||
			d.name == dimStream || d.name == dimTable || isMetricName(d.name):
			return fmt.Errorf("kemf: WithDimension(%q, %q): the name is kcl's", d.name, d.value)
		case seen[d.name]:
			return fmt.Errorf("kemf: WithDimension(%q, %q): given twice", d.name, d.value)
		}
		seen[d.name] = true
	}
	return nil
}
