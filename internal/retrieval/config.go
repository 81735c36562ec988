package retrieval

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/deaggregate"
	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/internal/awserr"
)

// API is the part of the Kinesis client a Fetcher calls, with the
// aws-sdk-go-v2 signatures: *kinesis.Client and *fakekinesis.Fake satisfy it.
//
// If the value also has DescribeStreamSummary (both of those do), a Fetcher
// uses it to tell a missing shard from a missing stream; see [Fetcher.Run].
type API interface {
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// streamDescriber is the optional method used to find out whether a
// ResourceNotFoundException was about the stream or the shard.
type streamDescriber interface {
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
}

// Defaults and limits of [Config].
const (
	// DefaultMaxRecords is the default and largest Config.MaxRecords, the
	// GetRecords limit.
	DefaultMaxRecords = 10000
	// DefaultIdleTime is the default Config.IdleTime.
	DefaultIdleTime = time.Second
	// MinIdleTime is the smallest Config.IdleTime: Kinesis allows 5
	// GetRecords calls per second per shard, shared by every consumer.
	MinIdleTime = 200 * time.Millisecond
	// DefaultMaxBatches is the default Config.MaxBatches.
	DefaultMaxBatches = 3
	// DefaultMaxBytes is the default Config.MaxBytes (8 MiB).
	DefaultMaxBytes = 8 << 20
	// DefaultBackoffBase and DefaultBackoffMax are the defaults of
	// Config.BackoffBase and Config.BackoffMax.
	DefaultBackoffBase = 250 * time.Millisecond
	DefaultBackoffMax  = 10 * time.Second
)

// Config says which shard a [Fetcher] reads, from where, and how fast. The
// zero value of every optional field selects its default.
type Config struct {
	// StreamName or StreamARN names the stream; at least one is required.
	// When both are set they are both sent, and Kinesis checks they agree.
	StreamName string
	StreamARN  string
	// ShardID is the shard to read. Required.
	ShardID string
	// HashRange is the shard's hash key range. KPL aggregates holding a user
	// record outside it are dropped whole, as KCL does (see
	// deaggregate.WithHashRange). The zero Range disables the filter.
	HashRange hashkey.Range
	// Start is the lease's checkpoint. A sequence position starts reading
	// AT_SEQUENCE_NUMBER and drops every user record at or before it, so a
	// half-processed KPL aggregate resumes at the next sub-record.
	// checkpoint.TrimHorizon and checkpoint.Latest start there;
	// checkpoint.AtTimestamp needs Timestamp. Required; checkpoint.ShardEnd
	// is rejected (there is nothing left to read).
	Start checkpoint.Position
	// Timestamp is the AT_TIMESTAMP start; required with
	// checkpoint.AtTimestamp, and must be zero otherwise.
	Timestamp time.Time
	// MaxRecords is the GetRecords Limit, 1..10,000. Default 10,000.
	MaxRecords int
	// IdleTime is the least time between the starts of two GetRecords calls
	// (retries included), at least 200 ms. Default 1 s.
	IdleTime time.Duration
	// MaxBatches and MaxBytes bound prefetching: no GetRecords call starts
	// while MaxBatches batches, or MaxBytes bytes of Kinesis record data,
	// are fetched but not yet received from Run's channel. One call may
	// overshoot MaxBytes by one batch. Defaults 3 and 8 MiB.
	MaxBatches int
	MaxBytes   int
	// BackoffBase and BackoffMax shape the exponential backoff (with
	// jitter) between retries of throttled and failed calls. Defaults
	// 250 ms and 10 s.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// OnError, when set, hears about every KPL aggregate that was malformed
	// (passed through as one record) or dropped by the hash range filter.
	// It is called synchronously on Run's fetch goroutine; keep it fast.
	OnError func(*deaggregate.RecordError)
	// Hooks observe calls; see [Hooks].
	Hooks Hooks
}

// Hooks are optional observers. They are called synchronously on Run's
// fetch goroutine (one at a time), must be fast and must not block.
type Hooks struct {
	// Call, when set, is called after every GetShardIterator and GetRecords
	// call.
	Call func(CallInfo)
}

// CallInfo describes one Kinesis call made by a Fetcher.
type CallInfo struct {
	// Op is "GetShardIterator" or "GetRecords".
	Op string
	// Duration is how long the call took.
	Duration time.Duration
	// Records and Bytes count the Kinesis records GetRecords returned and
	// their data bytes; MillisBehindLatest is what it reported.
	Records            int
	Bytes              int
	MillisBehindLatest time.Duration
	// Err is the call's error, nil on success, and Kind its
	// classification (awserr.Throttled for a throttled call).
	Err  error
	Kind awserr.Kind
}

// ErrInvalidConfig is wrapped by every *ConfigError.
var ErrInvalidConfig = errors.New("retrieval: invalid config")

// ConfigError is the error New returns for an invalid Config.
type ConfigError struct {
	// Field is the Config field at fault, such as "IdleTime".
	Field string
	// Value is its value.
	Value any
	// Reason says what is wrong.
	Reason string
}

func (e *ConfigError) Error() string {
	field := e.Field
	if !strings.Contains(field, ".") {
		field = "Config." + field // a field of Config; others are qualified
	}
	return fmt.Sprintf("retrieval: invalid %s %v: %s", field, e.Value, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// withDefaults returns cfg with defaults applied, or the first problem.
func (cfg Config) withDefaults() (Config, error) {
	bad := func(field string, v any, reason string) (Config, error) {
		return Config{}, &ConfigError{Field: field, Value: v, Reason: reason}
	}
	if cfg.StreamName == "" && cfg.StreamARN == "" {
		return bad("StreamName", `""`, "StreamName or StreamARN is required")
	}
	if cfg.ShardID == "" {
		return bad("ShardID", `""`, "required")
	}
	switch cfg.Start.Kind() {
	case checkpoint.KindSequence, checkpoint.KindTrimHorizon, checkpoint.KindLatest:
		if !cfg.Timestamp.IsZero() {
			return bad("Timestamp", cfg.Timestamp, "set without Start AT_TIMESTAMP")
		}
	case checkpoint.KindAtTimestamp:
		if cfg.Timestamp.IsZero() {
			return bad("Timestamp", cfg.Timestamp, "required with Start AT_TIMESTAMP")
		}
	case checkpoint.KindShardEnd:
		return bad("Start", cfg.Start, "the shard is already finished")
	default:
		return bad("Start", cfg.Start, "required")
	}
	if cfg.MaxRecords == 0 {
		cfg.MaxRecords = DefaultMaxRecords
	}
	if cfg.MaxRecords < 1 || cfg.MaxRecords > DefaultMaxRecords {
		return bad("MaxRecords", cfg.MaxRecords, "must be in [1, 10000]")
	}
	if cfg.IdleTime == 0 {
		cfg.IdleTime = DefaultIdleTime
	}
	if cfg.IdleTime < MinIdleTime {
		return bad("IdleTime", cfg.IdleTime, "must be at least 200ms (5 GetRecords calls per second per shard)")
	}
	if cfg.MaxBatches == 0 {
		cfg.MaxBatches = DefaultMaxBatches
	}
	if cfg.MaxBatches < 1 {
		return bad("MaxBatches", cfg.MaxBatches, "must be positive")
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxBytes < 1 {
		return bad("MaxBytes", cfg.MaxBytes, "must be positive")
	}
	if cfg.BackoffBase == 0 {
		cfg.BackoffBase = DefaultBackoffBase
	}
	if cfg.BackoffBase < 0 {
		return bad("BackoffBase", cfg.BackoffBase, "must be positive")
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = max(DefaultBackoffMax, cfg.BackoffBase)
	}
	if cfg.BackoffMax < cfg.BackoffBase {
		return bad("BackoffMax", cfg.BackoffMax, "must be at least BackoffBase")
	}
	return cfg, nil
}

// startIterator returns the GetShardIterator input that starts reading at
// cfg.Start.
func (cfg *Config) startIterator() *kinesis.GetShardIteratorInput {
	in := cfg.iteratorInput()
	switch cfg.Start.Kind() {
	case checkpoint.KindSequence:
		in.ShardIteratorType = types.ShardIteratorTypeAtSequenceNumber
		seq := cfg.Start.SequenceNumber()
		in.StartingSequenceNumber = &seq
	case checkpoint.KindTrimHorizon:
		in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
	case checkpoint.KindLatest:
		in.ShardIteratorType = types.ShardIteratorTypeLatest
	case checkpoint.KindAtTimestamp:
		in.ShardIteratorType = types.ShardIteratorTypeAtTimestamp
		ts := cfg.Timestamp
		in.Timestamp = &ts
	}
	return in
}

func (cfg *Config) iteratorInput() *kinesis.GetShardIteratorInput {
	in := &kinesis.GetShardIteratorInput{ShardId: &cfg.ShardID}
	if cfg.StreamName != "" {
		in.StreamName = &cfg.StreamName
	}
	if cfg.StreamARN != "" {
		in.StreamARN = &cfg.StreamARN
	}
	return in
}
