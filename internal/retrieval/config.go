package retrieval

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/deaggregate"
	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/internal/awserr"
)

// API is the part of the Kinesis client a polling [Reader] calls, with the
// aws-sdk-go-v2 signatures: *kinesis.Client and *fakekinesis.Fake satisfy it.
// Enhanced fan-out needs more: [SubscribeAPI].
//
// If the value also has DescribeStreamSummary (both of those do), a Fetcher
// uses it to tell a missing shard from a missing stream; see the package
// documentation.
type API interface {
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// SubscribeAPI is the part of the Kinesis client a [FanOut] Reader calls,
// with the aws-sdk-go-v2 signatures: *kinesis.Client satisfies it.
// GetRecords, GetShardIterator and ListShards confirm the end of a shard
// whose subscription keeps delivering empty events, and tell a missing
// shard from a missing stream or consumer (see the package documentation).
type SubscribeAPI interface {
	API
	SubscribeToShard(ctx context.Context, in *kinesis.SubscribeToShardInput, optFns ...func(*kinesis.Options)) (*kinesis.SubscribeToShardOutput, error)
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

// streamDescriber is the optional method used to find out whether a
// ResourceNotFoundException was about the stream or the shard.
type streamDescriber interface {
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
}

// Defaults and limits of [Config], [Polling] and [FanOut].
const (
	// DefaultMaxRecords is the default and largest Polling.MaxRecords, the
	// GetRecords limit.
	DefaultMaxRecords = 10000
	// DefaultIdleTime is the default Polling.IdleTime.
	DefaultIdleTime = time.Second
	// MinIdleTime is the smallest Polling.IdleTime: Kinesis allows 5
	// GetRecords calls per second per shard, shared by every consumer.
	MinIdleTime = 200 * time.Millisecond
	// DefaultMaxBatches is the default Polling.MaxBatches.
	DefaultMaxBatches = 3
	// DefaultMaxBytes is the default Polling.MaxBytes (8 MiB).
	DefaultMaxBytes = 8 << 20
	// DefaultSilence is the default FanOut.Silence.
	DefaultSilence = 30 * time.Second
	// DefaultEndCheck is the default FanOut.EndCheck.
	DefaultEndCheck = 10 * time.Second
	// MaxEndCheck bounds the interval between two shard-end checks of a
	// shard that stays idle: each check that finds the shard open doubles
	// the interval from FanOut.EndCheck up to this.
	MaxEndCheck = 5 * time.Minute
	// MinResubscribeInUse is the least wait after ResourceInUse on
	// SubscribeToShard: Kinesis refuses a subscription within 5 s of the
	// previous one for the same consumer and shard.
	MinResubscribeInUse = 5 * time.Second
	// DefaultBackoffBase and DefaultBackoffMax are the defaults of
	// Config.BackoffBase and Config.BackoffMax.
	DefaultBackoffBase = 250 * time.Millisecond
	DefaultBackoffMax  = 10 * time.Second
)

// Shard says which shard a [Reader] reads and from where: what a lease
// says, whatever the mode. One Worker reading several streams gives each
// Reader its own stream here.
type Shard struct {
	// StreamName or StreamARN names the stream; at least one is required.
	// When both are set they are both sent, and Kinesis checks they agree.
	StreamName string
	StreamARN  string
	// ShardID is the shard to read. Required.
	ShardID string
	// HashRange is the shard's hash key range (the lease's). KPL
	// aggregates holding a user record outside it are dropped whole, as
	// KCL does (see deaggregate.WithKeyRange). Nil disables the filter.
	HashRange *hashkey.Range
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
}

// Mode is how a [Reader] reads its shard: [Polling] or [FanOut]. No other
// type implements it.
type Mode interface {
	// withDefaults returns the mode with its defaults applied, or the
	// first problem.
	withDefaults() (Mode, error)
}

// Polling reads the shard with GetRecords; [NewReader] returns a
// [*Fetcher]. The zero value of every field selects its default.
type Polling struct {
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
}

// FanOut reads the shard through enhanced fan-out (SubscribeToShard);
// [NewReader] returns a [*Subscriber] and needs a [SubscribeAPI]. The zero
// value of every optional field selects its default.
type FanOut struct {
	// ConsumerARN is the registered stream consumer (see EnsureConsumer).
	// Required.
	ConsumerARN string
	// Silence is how long a subscription may deliver no event at all before
	// it is cancelled and replaced (the watchdog); it also bounds one
	// SubscribeToShard call. Time the consumer takes to receive a batch
	// does not count. Default 30 s.
	Silence time.Duration
	// EndCheck is how long a subscription may deliver only empty events
	// without moving its continuation before the Subscriber asks ListShards
	// whether the shard is closed and, if so, confirms the end with
	// GetRecords from the continuation point. While the shard stays open
	// and idle, each further check waits twice as long as the previous one,
	// up to MaxEndCheck. Default 10 s.
	EndCheck time.Duration
}

// Config is what [NewReader] builds a Reader from: the shard, the mode, and
// what both modes share. The zero value of every optional field selects its
// default.
type Config struct {
	Shard
	// Mode is Polling{...} or FanOut{...}. Required.
	Mode Mode
	// BackoffBase and BackoffMax shape the exponential backoff (with
	// jitter) between retries of throttled and failed calls and
	// subscriptions (at least MinResubscribeInUse after ResourceInUse on
	// SubscribeToShard). Defaults 250 ms and 10 s.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// OnError, when set, hears about every KPL aggregate that was malformed
	// (passed through as one record) or dropped by the hash range filter.
	// It is called synchronously while Run decodes (see [Hooks]); keep it
	// fast.
	OnError func(*deaggregate.RecordError)
	// Hooks observe calls; see [Hooks].
	Hooks Hooks
}

// Hooks are optional observers. They are called synchronously, one at a
// time within one Run (on a Fetcher's fetch goroutine, on a Subscriber's
// Run goroutine), must be fast and must not block.
type Hooks struct {
	// Call, when set, is called after every Kinesis call: GetShardIterator
	// and GetRecords; with FanOut also each SubscribeToShard call (Op
	// "SubscribeToShard", with its Err), each event and each failure of an
	// event stream (Op "SubscribeToShardEvent", with Records, Bytes and
	// MillisBehindLatest, or Err and Kind; a subscription cancelled by the
	// watchdog reports ErrSilentSubscription), and ListShards.
	Call func(CallInfo)
}

// CallInfo describes one Kinesis call made by a Reader.
type CallInfo struct {
	// Op is the operation, such as "GetShardIterator" or "GetRecords".
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
	// Renewal is set on a SubscribeToShard call that continues from the
	// continuation of an earlier subscription of this Run.
	Renewal bool
}

// ErrInvalidConfig is wrapped by every *ConfigError.
var ErrInvalidConfig = errors.New("retrieval: invalid config")

// ConfigError is the error NewReader returns for an invalid Config.
type ConfigError struct {
	// Field is the field at fault, such as "IdleTime" (of Polling) or
	// "ShardID" (of Shard).
	Field string
	// Value is its value.
	Value any
	// Reason says what is wrong.
	Reason string
	// in is the struct of Field: "Config" (Shard's fields are promoted into
	// it), "Polling" or "FanOut"; "" for an argument of NewReader.
	in string
}

func (e *ConfigError) Error() string {
	field := e.Field
	if e.in != "" {
		field = e.in + "." + field
	}
	return fmt.Sprintf("retrieval: invalid %s %v: %s", field, e.Value, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

func bad(in, field string, v any, reason string) error {
	return &ConfigError{Field: field, Value: v, Reason: reason, in: in}
}

// withDefaults returns cfg with defaults applied, its mode's too, or the
// first problem.
func (cfg Config) withDefaults() (Config, error) {
	if err := cfg.Shard.validate(); err != nil {
		return Config{}, err
	}
	if r := cfg.HashRange; r != nil {
		hr := *r // the caller's (the lease's) may change; the Config may not
		cfg.HashRange = &hr
	}
	if cfg.Mode == nil {
		return Config{}, bad("Config", "Mode", nil, "required: Polling or FanOut")
	}
	mode, err := cfg.Mode.withDefaults()
	if err != nil {
		return Config{}, err
	}
	cfg.Mode = mode
	if cfg.BackoffBase == 0 {
		cfg.BackoffBase = DefaultBackoffBase
	}
	if cfg.BackoffBase < 0 {
		return Config{}, bad("Config", "BackoffBase", cfg.BackoffBase, "must be positive")
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = max(DefaultBackoffMax, cfg.BackoffBase)
	}
	if cfg.BackoffMax < cfg.BackoffBase {
		return Config{}, bad("Config", "BackoffMax", cfg.BackoffMax, "must be at least BackoffBase")
	}
	return cfg, nil
}

// validate returns the first problem of s.
func (s *Shard) validate() error {
	if s.StreamName == "" && s.StreamARN == "" {
		return bad("Config", "StreamName", `""`, "StreamName or StreamARN is required")
	}
	if s.ShardID == "" {
		return bad("Config", "ShardID", `""`, "required")
	}
	if r := s.HashRange; r != nil && r.Start.Compare(r.End) > 0 {
		return bad("Config", "HashRange", *r, "its start is greater than its end")
	}
	switch s.Start.Kind() {
	case checkpoint.KindSequence, checkpoint.KindTrimHorizon, checkpoint.KindLatest:
		if !s.Timestamp.IsZero() {
			return bad("Config", "Timestamp", s.Timestamp, "set without Start AT_TIMESTAMP")
		}
	case checkpoint.KindAtTimestamp:
		if s.Timestamp.IsZero() {
			return bad("Config", "Timestamp", s.Timestamp, "required with Start AT_TIMESTAMP")
		}
	case checkpoint.KindShardEnd:
		return bad("Config", "Start", s.Start, "the shard is already finished")
	default:
		return bad("Config", "Start", s.Start, "required")
	}
	return nil
}

func (p Polling) withDefaults() (Mode, error) {
	if p.MaxRecords == 0 {
		p.MaxRecords = DefaultMaxRecords
	}
	if p.MaxRecords < 1 || p.MaxRecords > DefaultMaxRecords {
		return nil, bad("Polling", "MaxRecords", p.MaxRecords, "must be in [1, 10000]")
	}
	if p.IdleTime == 0 {
		p.IdleTime = DefaultIdleTime
	}
	if p.IdleTime < MinIdleTime {
		return nil, bad("Polling", "IdleTime", p.IdleTime, "must be at least 200ms (5 GetRecords calls per second per shard)")
	}
	if p.MaxBatches == 0 {
		p.MaxBatches = DefaultMaxBatches
	}
	if p.MaxBatches < 1 {
		return nil, bad("Polling", "MaxBatches", p.MaxBatches, "must be positive")
	}
	if p.MaxBytes == 0 {
		p.MaxBytes = DefaultMaxBytes
	}
	if p.MaxBytes < 1 {
		return nil, bad("Polling", "MaxBytes", p.MaxBytes, "must be positive")
	}
	return p, nil
}

func (f FanOut) withDefaults() (Mode, error) {
	if f.ConsumerARN == "" {
		return nil, bad("FanOut", "ConsumerARN", `""`, "required")
	}
	if f.Silence == 0 {
		f.Silence = DefaultSilence
	}
	if f.Silence < 0 {
		return nil, bad("FanOut", "Silence", f.Silence, "must be positive")
	}
	if f.EndCheck == 0 {
		f.EndCheck = DefaultEndCheck
	}
	if f.EndCheck < 0 {
		return nil, bad("FanOut", "EndCheck", f.EndCheck, "must be positive")
	}
	return f, nil
}

// position returns where reading starts: AFTER_SEQUENCE_NUMBER of after
// when it is set (a later iterator or subscription), else at s.Start.
func (s *Shard) position(after string) (typ types.ShardIteratorType, seq *string, ts *time.Time) {
	if after != "" {
		return types.ShardIteratorTypeAfterSequenceNumber, &after, nil
	}
	switch s.Start.Kind() {
	case checkpoint.KindSequence:
		n := s.Start.SequenceNumber()
		return types.ShardIteratorTypeAtSequenceNumber, &n, nil
	case checkpoint.KindLatest:
		return types.ShardIteratorTypeLatest, nil, nil
	case checkpoint.KindAtTimestamp:
		t := s.Timestamp
		return types.ShardIteratorTypeAtTimestamp, nil, &t
	}
	return types.ShardIteratorTypeTrimHorizon, nil, nil
}

// iteratorInput returns the GetShardIterator input that starts at
// position(after).
func (s *Shard) iteratorInput(after string) *kinesis.GetShardIteratorInput {
	in := &kinesis.GetShardIteratorInput{ShardId: &s.ShardID}
	in.StreamName, in.StreamARN = s.stream()
	in.ShardIteratorType, in.StartingSequenceNumber, in.Timestamp = s.position(after)
	return in
}

// startingPosition returns the SubscribeToShard position of
// position(after).
func (s *Shard) startingPosition(after string) *types.StartingPosition {
	p := &types.StartingPosition{}
	p.Type, p.SequenceNumber, p.Timestamp = s.position(after)
	return p
}

// stream returns the stream's name and ARN as a request names them (nil
// when not set).
func (s *Shard) stream() (name, arn *string) {
	if s.StreamName != "" {
		name = &s.StreamName
	}
	if s.StreamARN != "" {
		arn = &s.StreamARN
	}
	return name, arn
}
