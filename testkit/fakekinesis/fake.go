package fakekinesis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/hashkey"
)

// Service limits the fake enforces, as AWS documents them.
const (
	// IteratorTTL is how long a shard iterator stays valid after it is issued.
	IteratorTTL = 5 * time.Minute
	// MaxGetRecordsLimit is the largest Limit GetRecords accepts, and its
	// default.
	MaxGetRecordsLimit = 10000
	// MaxGetRecordsBytes bounds the data one GetRecords call returns.
	MaxGetRecordsBytes = 10 << 20
	// MaxPutRecordsEntries is the most entries one PutRecords call accepts.
	MaxPutRecordsEntries = 500
	// MaxRecordBytes bounds one record's data plus partition key.
	MaxRecordBytes = 1 << 20
	// ReadsPerSecond is the per-shard GetRecords rate [WithReadThrottle]
	// enforces.
	ReadsPerSecond = 5

	defaultShardLimit   = 500
	defaultRetention    = 24 * time.Hour
	defaultListShards   = 1000
	maxListShards       = 10000
	nextTokenTTL        = 5 * time.Minute
	account             = "123456789012"
	region              = "us-east-1"
	defaultOnDemandSize = 4
)

// An Option configures a [Fake].
type Option func(*options)

type options struct {
	fault        func(op string, in any) error
	readThrottle bool
	emptyEnd     bool
	shardLimit   int
	streams      []initialStream
	sub          subscribeOptions // enhanced fan-out; see subscribe.go
}

type initialStream struct {
	name   string
	shards int
}

// WithFault installs fn, called before every client operation with the
// operation's name ("GetRecords", "ListShards", ...) and its input (for
// example a *kinesis.GetRecordsInput). When fn returns an error the operation
// fails with it and changes nothing. fn is called without the fake's lock
// held, possibly from several goroutines at once, so it may call the fake's
// helpers but must be safe for concurrent use. The default injects nothing.
//
// An error that is not already a *smithy.OperationError is wrapped in one,
// and API errors (types.*Exception, smithy.APIError) are wrapped in an HTTP
// response error first, as the SDK does.
func WithFault(fn func(op string, in any) error) Option {
	return func(o *options) { o.fault = fn }
}

// WithReadThrottle makes GetRecords fail with a
// types.ProvisionedThroughputExceededException when a shard has already
// served [ReadsPerSecond] calls in the last second. Off by default.
func WithReadThrottle() Option {
	return func(o *options) { o.readThrottle = true }
}

// WithEmptyShardEnd makes GetRecords report the end of a closed shard
// (NextShardIterator nil, ChildShards set) only in a response with no
// records: the response carrying the shard's last records still has a
// NextShardIterator. By default the last records and the shard end come in
// the same response. Consumers must handle both shapes; this option lets a
// test cover the second.
func WithEmptyShardEnd() Option {
	return func(o *options) { o.emptyEnd = true }
}

// WithShardLimit sets the account's limit on open shards, checked by
// CreateStream and the resharding operations (LimitExceededException).
// The default is 500.
func WithShardLimit(n int) Option {
	return func(o *options) { o.shardLimit = n }
}

// WithStream creates stream name with the given number of shards when the
// fake is built, as CreateStream would.
func WithStream(name string, shards int) Option {
	return func(o *options) { o.streams = append(o.streams, initialStream{name, shards}) }
}

// Fake is an in-memory Kinesis. Its methods are safe for concurrent use.
// The zero value is not usable; call [New].
type Fake struct {
	opts   options
	secret string // tags iterators and tokens of this fake

	mu      sync.Mutex
	streams map[string]*stream // by name
	seq     uint64             // last sequence number issued
	calls   map[string]int
	errs    map[string]int
	subs    subscriptions // see subscribe.go
	// consumers are the registered stream consumers by ARN (consumers.go).
	consumers map[string]types.ConsumerDescription
}

type stream struct {
	name      string
	arn       string
	created   time.Time
	onDemand  bool
	shards    []*shard // in creation order; shards[i].id == shardID(i)
	openCount int
	updates   []time.Time // UpdateShardCount calls in the last 24 hours
}

type shard struct {
	id         string
	rng        hashkey.Range
	parent     string
	adjParent  string
	children   []string
	startSeq   uint64
	endSeq     uint64 // 0 while open
	opened     time.Time
	closed     time.Time
	records    []record
	recentRead []time.Time // GetRecords calls in the last second, for WithReadThrottle
}

type record struct {
	seq uint64
	rec types.Record
}

func (s *shard) isOpen() bool { return s.endSeq == 0 }

// New returns an empty fake with the given options applied. It panics if a
// [WithStream] option is invalid, as test set-up should.
func New(opts ...Option) *Fake {
	o := options{shardLimit: defaultShardLimit}
	for _, opt := range opts {
		opt(&o)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	f := &Fake{
		opts:    o,
		secret:  hex.EncodeToString(b[:]),
		streams: map[string]*stream{},
		calls:   map[string]int{},
		errs:    map[string]int{},

		consumers: map[string]types.ConsumerDescription{},
	}
	for _, s := range o.streams {
		if err := f.createStream(s.name, s.shards, false); err != nil {
			panic(fmt.Sprintf("fakekinesis: WithStream(%q, %d): %v", s.name, s.shards, err))
		}
	}
	return f
}

// Stats holds the number of client calls per operation name, and how many
// of them returned an error (injected faults included).
type Stats struct {
	Calls  map[string]int
	Errors map[string]int
}

// Stats returns a copy of the call counters.
func (f *Fake) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := Stats{Calls: map[string]int{}, Errors: map[string]int{}}
	for k, v := range f.calls {
		s.Calls[k] = v
	}
	for k, v := range f.errs {
		s.Errors[k] = v
	}
	return s
}

// begin counts a call, checks ctx and runs the fault hook. The lock is not
// held.
func (f *Fake) begin(ctx context.Context, op string, in any) error {
	f.mu.Lock()
	f.calls[op]++
	f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return f.fail(op, err)
	}
	if f.opts.fault != nil {
		if err := f.opts.fault(op, in); err != nil {
			return f.fail(op, err)
		}
	}
	return nil
}

// fail counts and wraps an error returned by op. The lock is not held.
func (f *Fake) fail(op string, err error) error {
	f.mu.Lock()
	f.errs[op]++
	f.mu.Unlock()
	return wrap(op, err)
}

// run performs a client operation: count, fault hook, then body under the
// lock.
func run[In, Out any](ctx context.Context, f *Fake, op string, in *In, body func(*In) (*Out, error)) (*Out, error) {
	if err := f.begin(ctx, op, in); err != nil {
		return nil, err
	}
	if in == nil {
		in = new(In)
	}
	f.mu.Lock()
	out, err := body(in)
	f.mu.Unlock()
	if err != nil {
		return nil, f.fail(op, err)
	}
	return out, nil
}

// nextSeq issues the next sequence number. f.mu is held.
func (f *Fake) nextSeq() uint64 {
	f.seq++
	return f.seq
}

// formatSeq renders n as a 56-digit decimal string, the length AWS uses.
func formatSeq(n uint64) string { return fmt.Sprintf("4959%052d", n) }

// seqBase is the value of formatSeq(0).
var seqBase, _ = new(big.Int).SetString(formatSeq(0), 10)

// parseSeq maps a sequence number string back to the fake's counter. ok is
// false when s is not a decimal number. Numbers below the fake's range map to
// 0 and numbers above it to the largest uint64.
func parseSeq(s string) (n uint64, ok bool) {
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.Sign() < 0 || s[0] == '+' {
		return 0, false
	}
	v.Sub(v, seqBase)
	switch {
	case v.Sign() <= 0:
		return 0, true
	case !v.IsUint64():
		return ^uint64(0), true
	}
	return v.Uint64(), true
}

func shardID(i int) string { return fmt.Sprintf("shardId-%012d", i) }

func streamARN(name string) string {
	return "arn:aws:kinesis:" + region + ":" + account + ":stream/" + name
}

// lookup finds a stream by name or ARN; when both are given they must agree.
// f.mu is held.
func (f *Fake) lookup(name, arn *string) (*stream, error) {
	n := aws.ToString(name)
	if a := aws.ToString(arn); a != "" {
		const prefix = "arn:aws:kinesis:" + region + ":" + account + ":stream/"
		if len(a) <= len(prefix) || a[:len(prefix)] != prefix {
			return nil, invalidArg("StreamARN %q is not a stream ARN of this account", a)
		}
		if n != "" && n != a[len(prefix):] {
			return nil, invalidArg("StreamName %q does not match StreamARN %q", n, a)
		}
		n = a[len(prefix):]
	}
	if n == "" {
		return nil, invalidArg("StreamName or StreamARN is required")
	}
	s, ok := f.streams[n]
	if !ok {
		return nil, notFound("Stream %s under account %s not found.", n, account)
	}
	return s, nil
}

func (s *stream) shard(id string) (*shard, error) {
	var i int
	if _, err := fmt.Sscanf(id, "shardId-%d", &i); err != nil || i < 0 || i >= len(s.shards) || s.shards[i].id != id {
		return nil, notFound("Shard %s in stream %s under account %s does not exist", id, s.name, account)
	}
	return s.shards[i], nil
}

// addShard appends a new open shard. f.mu is held.
func (f *Fake) addShard(s *stream, rng hashkey.Range, parent, adjParent string, now time.Time) *shard {
	sh := &shard{
		id:        shardID(len(s.shards)),
		rng:       rng,
		parent:    parent,
		adjParent: adjParent,
		startSeq:  f.nextSeq(),
		opened:    now,
	}
	s.shards = append(s.shards, sh)
	s.openCount++
	return sh
}

// closeShard closes sh at now. f.mu is held.
func (f *Fake) closeShard(s *stream, sh *shard, now time.Time) {
	sh.endSeq = f.nextSeq()
	sh.closed = now
	s.openCount--
}

// openShards returns the stream's open shards ordered by hash range.
func (s *stream) openShards() []*shard {
	var out []*shard
	for _, sh := range s.shards {
		if sh.isOpen() {
			out = append(out, sh)
		}
	}
	slices.SortFunc(out, func(a, b *shard) int { return a.rng.Start.Compare(b.rng.Start) })
	return out
}

func (f *Fake) totalOpen() int {
	n := 0
	for _, s := range f.streams {
		n += s.openCount
	}
	return n
}

func (sh *shard) api() types.Shard {
	out := types.Shard{
		ShardId: aws.String(sh.id),
		HashKeyRange: &types.HashKeyRange{
			StartingHashKey: aws.String(sh.rng.Start.String()),
			EndingHashKey:   aws.String(sh.rng.End.String()),
		},
		SequenceNumberRange: &types.SequenceNumberRange{
			StartingSequenceNumber: aws.String(formatSeq(sh.startSeq)),
		},
	}
	if sh.parent != "" {
		out.ParentShardId = aws.String(sh.parent)
	}
	if sh.adjParent != "" {
		out.AdjacentParentShardId = aws.String(sh.adjParent)
	}
	if !sh.isOpen() {
		out.SequenceNumberRange.EndingSequenceNumber = aws.String(formatSeq(sh.endSeq))
	}
	return out
}

// Put appends a record to stream as PutRecord would, routing it by the MD5
// of partitionKey, and returns the shard and sequence number it got. It
// bypasses fault injection and counters. Put panics if the stream does not
// exist or the partition key is invalid: it is for test set-up.
func (f *Fake) Put(streamName, partitionKey string, data []byte) (shardID, seq string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.lookup(&streamName, nil)
	if err == nil {
		shardID, seq, err = f.put(s, partitionKey, "", data, time.Now())
	}
	if err != nil {
		panic("fakekinesis: Put: " + err.Error())
	}
	return shardID, seq
}

// Records returns a copy of every record stored in a shard, in order. It
// returns nil when the stream or shard does not exist.
func (f *Fake) Records(streamName, shardID string) []types.Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.streams[streamName]
	if !ok {
		return nil
	}
	sh, err := s.shard(shardID)
	if err != nil {
		return nil
	}
	out := make([]types.Record, len(sh.records))
	for i, r := range sh.records {
		out[i] = copyRecord(r.rec)
	}
	return out
}

// Shards returns every shard of a stream, open and closed, in creation
// order, as ListShards would describe them. It returns nil when the stream
// does not exist.
func (f *Fake) Shards(streamName string) []types.Shard {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.streams[streamName]
	if !ok {
		return nil
	}
	out := make([]types.Shard, len(s.shards))
	for i, sh := range s.shards {
		out[i] = sh.api()
	}
	return out
}

func copyRecord(r types.Record) types.Record {
	r.Data = slices.Clone(r.Data)
	return r
}
