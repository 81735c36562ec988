package shardsync

import (
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/hashkey"
)

// Shard is what shard sync needs to know about one shard of a ListShards
// response.
type Shard struct {
	// ID is the shard id (ShardId).
	ID string
	// ParentID and AdjacentParentID are the parents (ParentShardId,
	// AdjacentParentShardId); "" when absent. A split child has one parent, a
	// merge child two.
	ParentID, AdjacentParentID string
	// HashRange is the shard's hash key range (HashKeyRange).
	HashRange hashkey.Range
	// Closed reports whether the shard has an EndingSequenceNumber: it no
	// longer accepts records and has children. Only the presence of the
	// ending sequence number counts, never its value (kinesis-mock reports
	// 2^63−1, which is smaller than real sequence numbers).
	Closed bool
}

// parents returns the shard's parent ids, without empty ones or duplicates.
func (s Shard) parents() []string { return parentSet(s.ParentID, s.AdjacentParentID) }

// ErrMalformedShard is matched (errors.Is) by every *ShardError: a shard in a
// ListShards or GetRecords response that cannot be used as it is.
var ErrMalformedShard = errors.New("shardsync: malformed shard")

// ShardError reports a shard of a ListShards response or a child shard of a
// GetRecords response that cannot be turned into a Shard or a lease. It
// matches ErrMalformedShard, and Err (for example hashkey.ErrInvalid or
// hashkey.ErrInvalidRange) through Unwrap.
type ShardError struct {
	ShardID string // "" when the shard has no id
	Reason  string
	Err     error // the underlying error; nil when Reason says it all
}

func (e *ShardError) Error() string {
	msg := fmt.Sprintf("shardsync: shard %q: %s", e.ShardID, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns ErrMalformedShard and the underlying error.
func (e *ShardError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrMalformedShard}
	}
	return []error{ErrMalformedShard, e.Err}
}

// FromTypes converts a ListShards response (all pages) to Shards, in the
// same order. It fails with a *ShardError naming the first shard without an
// id, with a missing or unparsable hash key range, or listed twice.
func FromTypes(shards []types.Shard) ([]Shard, error) {
	out := make([]Shard, 0, len(shards))
	seen := make(map[string]bool, len(shards))
	for _, s := range shards {
		id := deref(s.ShardId)
		if id == "" {
			return nil, &ShardError{Reason: "no shard id"}
		}
		if seen[id] {
			return nil, &ShardError{ShardID: id, Reason: "listed twice"}
		}
		seen[id] = true
		r, err := parseRange(id, s.HashKeyRange)
		if err != nil {
			return nil, err
		}
		out = append(out, Shard{
			ID:               id,
			ParentID:         deref(s.ParentShardId),
			AdjacentParentID: deref(s.AdjacentParentShardId),
			HashRange:        r,
			Closed:           s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil,
		})
	}
	return out, nil
}

func parseRange(id string, r *types.HashKeyRange) (hashkey.Range, error) {
	if r == nil || r.StartingHashKey == nil || r.EndingHashKey == nil {
		return hashkey.Range{}, &ShardError{ShardID: id, Reason: "no hash key range"}
	}
	hr, err := hashkey.ParseRange(*r.StartingHashKey, *r.EndingHashKey)
	if err != nil {
		return hashkey.Range{}, &ShardError{ShardID: id, Reason: "bad hash key range", Err: err}
	}
	return hr, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
