package fakekinesis

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// CreateStream creates a stream that is ACTIVE at once. ShardCount defaults
// to 4 for an ON_DEMAND stream and is required otherwise. An existing name
// gives ResourceInUseException; exceeding the shard limit gives
// LimitExceededException.
func (f *Fake) CreateStream(ctx context.Context, in *kinesis.CreateStreamInput, optFns ...func(*kinesis.Options)) (*kinesis.CreateStreamOutput, error) {
	return run(ctx, f, "CreateStream", in, func(in *kinesis.CreateStreamInput) (*kinesis.CreateStreamOutput, error) {
		onDemand := in.StreamModeDetails != nil && in.StreamModeDetails.StreamMode == types.StreamModeOnDemand
		n := int(aws.ToInt32(in.ShardCount))
		if in.ShardCount == nil {
			if !onDemand {
				return nil, invalidArg("ShardCount is required for a PROVISIONED stream")
			}
			n = defaultOnDemandSize
		}
		if err := f.createStream(aws.ToString(in.StreamName), n, onDemand); err != nil {
			return nil, err
		}
		return &kinesis.CreateStreamOutput{}, nil
	})
}

// createStream adds a stream with n uniform shards. f.mu is held, or f is
// not yet shared.
func (f *Fake) createStream(name string, n int, onDemand bool) error {
	if !validStreamName(name) {
		return invalidArg("StreamName %q must match [a-zA-Z0-9_.-]{1,128}", name)
	}
	if n < 1 {
		return invalidArg("ShardCount %d must be at least 1", n)
	}
	if _, ok := f.streams[name]; ok {
		return inUse("Stream %s under account %s already exists.", name, account)
	}
	if f.totalOpen()+n > f.opts.shardLimit {
		return limitExceeded("This request would exceed the shard limit for the account %s (%d).", account, f.opts.shardLimit)
	}
	now := time.Now()
	s := &stream{name: name, arn: streamARN(name), created: now, onDemand: onDemand}
	for _, r := range uniformRanges(n) {
		f.addShard(s, r, "", "", now)
	}
	f.streams[name] = s
	return nil
}

func validStreamName(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// DescribeStreamSummary describes a stream, always ACTIVE, with 24 h
// retention and no encryption.
func (f *Fake) DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	return run(ctx, f, "DescribeStreamSummary", in, func(in *kinesis.DescribeStreamSummaryInput) (*kinesis.DescribeStreamSummaryOutput, error) {
		s, err := f.lookup(in.StreamName, in.StreamARN)
		if err != nil {
			return nil, err
		}
		mode := types.StreamModeProvisioned
		if s.onDemand {
			mode = types.StreamModeOnDemand
		}
		return &kinesis.DescribeStreamSummaryOutput{StreamDescriptionSummary: &types.StreamDescriptionSummary{
			StreamName:              aws.String(s.name),
			StreamARN:               aws.String(s.arn),
			StreamStatus:            types.StreamStatusActive,
			StreamModeDetails:       &types.StreamModeDetails{StreamMode: mode},
			RetentionPeriodHours:    aws.Int32(int32(defaultRetention / time.Hour)),
			StreamCreationTimestamp: aws.Time(s.created),
			OpenShardCount:          aws.Int32(int32(s.openCount)),
			ConsumerCount:           aws.Int32(0),
			EncryptionType:          types.EncryptionTypeNone,
			EnhancedMonitoring:      []types.EnhancedMetrics{{}},
		}}, nil
	})
}

// ListShards lists a stream's shards in shard id order, honouring
// ExclusiveStartShardId, MaxResults (1..10000; at most 1000 are returned per
// page, the default), NextToken (valid for 5 minutes; it must come alone or
// with MaxResults) and ShardFilter:
//
//   - FROM_TRIM_HORIZON (the default): every shard (the fake never trims);
//   - AT_TRIM_HORIZON: shards open at the trim horizon, the later of
//     now−24h and the stream's creation;
//   - AT_LATEST: open shards;
//   - AT_TIMESTAMP: shards opened at or before Timestamp and still open or
//     closed at or after it;
//   - FROM_TIMESTAMP: open shards and shards closed at or after Timestamp;
//   - AFTER_SHARD_ID: shards whose id follows ShardId.
//
// Timestamps before the trim horizon are corrected to it, for both timestamp
// filters.
func (f *Fake) ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	return run(ctx, f, "ListShards", in, f.listShards)
}

// listQuery is what a ListShards page selects; NextToken carries it.
type listQuery struct {
	stream  string
	filter  types.ShardFilterType
	shardID string    // AFTER_SHARD_ID
	ts      time.Time // AT_TIMESTAMP, FROM_TIMESTAMP
	after   string    // ExclusiveStartShardId, then the last shard returned
}

func (f *Fake) listShards(in *kinesis.ListShardsInput) (*kinesis.ListShardsOutput, error) {
	limit := defaultListShards
	if in.MaxResults != nil {
		m := int(*in.MaxResults)
		if m < 1 || m > maxListShards {
			return nil, invalidArg("MaxResults %d must be in [1, %d]", m, maxListShards)
		}
		limit = min(m, defaultListShards)
	}
	now := time.Now()
	var q listQuery
	var s *stream
	if in.NextToken != nil {
		if in.StreamName != nil || in.StreamARN != nil || in.ExclusiveStartShardId != nil || in.ShardFilter != nil || in.StreamCreationTimestamp != nil {
			return nil, invalidArg("NextToken cannot be combined with StreamName, StreamARN, ExclusiveStartShardId, ShardFilter or StreamCreationTimestamp")
		}
		var err error
		if q, err = f.decodeNextToken(*in.NextToken, now); err != nil {
			return nil, err
		}
		var ok bool
		if s, ok = f.streams[q.stream]; !ok {
			return nil, notFound("Stream %s under account %s not found.", q.stream, account)
		}
	} else {
		var err error
		if s, err = f.lookup(in.StreamName, in.StreamARN); err != nil {
			return nil, err
		}
		q = listQuery{stream: s.name, filter: types.ShardFilterTypeFromTrimHorizon, after: aws.ToString(in.ExclusiveStartShardId)}
		if sf := in.ShardFilter; sf != nil {
			q.filter = sf.Type
			switch sf.Type {
			case types.ShardFilterTypeAfterShardId:
				if sf.ShardId == nil {
					return nil, invalidArg("ShardFilter AFTER_SHARD_ID requires ShardId")
				}
				q.shardID = *sf.ShardId
			case types.ShardFilterTypeAtTimestamp, types.ShardFilterTypeFromTimestamp:
				if sf.Timestamp == nil {
					return nil, invalidArg("ShardFilter %s requires Timestamp", sf.Type)
				}
				q.ts = *sf.Timestamp
			case types.ShardFilterTypeAtTrimHorizon, types.ShardFilterTypeFromTrimHorizon, types.ShardFilterTypeAtLatest:
			default:
				return nil, invalidArg("ShardFilter type %q is not valid", sf.Type)
			}
		}
	}
	horizon := now.Add(-defaultRetention)
	if horizon.Before(s.created) {
		horizon = s.created
	}
	ts := q.ts
	if ts.Before(horizon) {
		ts = horizon
	}
	var out kinesis.ListShardsOutput
	for _, sh := range s.shards { // creation order is shard id order
		if sh.id <= q.after || !q.selects(sh, horizon, ts) {
			continue
		}
		if len(out.Shards) == limit {
			next := q
			next.after = *out.Shards[len(out.Shards)-1].ShardId
			out.NextToken = aws.String(f.encodeNextToken(next, now))
			break
		}
		out.Shards = append(out.Shards, sh.api())
	}
	return &out, nil
}

func (q listQuery) selects(sh *shard, horizon, ts time.Time) bool {
	openAt := func(t time.Time) bool {
		return !sh.opened.After(t) && (sh.isOpen() || !sh.closed.Before(t))
	}
	switch q.filter {
	case types.ShardFilterTypeAtLatest:
		return sh.isOpen()
	case types.ShardFilterTypeAtTrimHorizon:
		return openAt(horizon)
	case types.ShardFilterTypeAtTimestamp:
		return openAt(ts)
	case types.ShardFilterTypeFromTimestamp:
		return sh.isOpen() || !sh.closed.Before(ts)
	case types.ShardFilterTypeAfterShardId:
		return sh.id > q.shardID
	default: // FROM_TRIM_HORIZON
		return true
	}
}

func (f *Fake) encodeNextToken(q listQuery, now time.Time) string {
	return f.seal("list", q.stream, string(q.filter), q.shardID, strconv.FormatInt(q.ts.UnixNano(), 10), q.after, strconv.FormatInt(now.UnixNano(), 10))
}

func (f *Fake) decodeNextToken(tok string, now time.Time) (listQuery, error) {
	p, ok := f.open(tok, "list", 6)
	if !ok {
		return listQuery{}, invalidArg("NextToken %q is not valid", tok)
	}
	ts, err1 := strconv.ParseInt(p[3], 10, 64)
	issued, err2 := strconv.ParseInt(p[5], 10, 64)
	if err1 != nil || err2 != nil {
		return listQuery{}, invalidArg("NextToken %q is not valid", tok)
	}
	if now.Sub(time.Unix(0, issued)) > nextTokenTTL {
		return listQuery{}, &types.ExpiredNextTokenException{Message: aws.String("The timestamp of the last NextToken has expired.")}
	}
	return listQuery{stream: p[0], filter: types.ShardFilterType(p[1]), shardID: p[2], ts: time.Unix(0, ts), after: p[4]}, nil
}

// seal encodes fields as an opaque token tagged with this fake's secret, so
// a garbled or foreign token is recognised as invalid.
func (f *Fake) seal(kind string, fields ...string) string {
	payload := kind + "|" + strings.Join(fields, "|")
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + f.mac(payload)
}

// open reverses seal, checking the kind and the number of fields.
func (f *Fake) open(tok, kind string, n int) ([]string, bool) {
	body, mac, ok := strings.Cut(tok, ".")
	if !ok {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || f.mac(string(raw)) != mac {
		return nil, false
	}
	p := strings.Split(string(raw), "|")
	if len(p) != n+1 || p[0] != kind {
		return nil, false
	}
	return p[1:], true
}

func (f *Fake) mac(payload string) string {
	sum := sha256.Sum256([]byte(f.secret + payload))
	return hex.EncodeToString(sum[:12])
}
