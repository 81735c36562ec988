package shardsync

import (
	"errors"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/hashkey"
)

func kshard(id, start, end string, ending *string, parents ...string) types.Shard {
	s := types.Shard{
		ShardId:             aws.String(id),
		HashKeyRange:        &types.HashKeyRange{StartingHashKey: aws.String(start), EndingHashKey: aws.String(end)},
		SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1"), EndingSequenceNumber: ending},
	}
	if len(parents) > 0 {
		s.ParentShardId = aws.String(parents[0])
	}
	if len(parents) > 1 {
		s.AdjacentParentShardId = aws.String(parents[1])
	}
	return s
}

func TestFromTypes(t *testing.T) {
	const max = "340282366920938463463374607431768211455"
	tests := []struct {
		name   string
		shards []types.Shard
		want   []Shard
	}{
		{"an open shard has no ending sequence number", []types.Shard{kshard("s0", "0", max, nil)},
			[]Shard{{ID: "s0", HashRange: q(0, 4)}}},
		{"a closed shard has an ending sequence number", []types.Shard{
			kshard("s0", "0", max, aws.String("49590338271490256608559692538361571095921575989136588898"))},
			[]Shard{{ID: "s0", HashRange: q(0, 4), Closed: true}}},
		{"kinesis-mock's small ending sequence number still means closed", []types.Shard{
			kshard("s0", "0", max, aws.String("9223372036854775807"))},
			[]Shard{{ID: "s0", HashRange: q(0, 4), Closed: true}}},
		{"a merge child keeps both parents in order", []types.Shard{kshard("c", "0", max, nil, "a", "b")},
			[]Shard{{ID: "c", ParentID: "a", AdjacentParentID: "b", HashRange: q(0, 4)}}},
		{"a shard without a sequence number range is open", []types.Shard{{
			ShardId: aws.String("s0"), HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String("0"), EndingHashKey: aws.String(max)}}},
			[]Shard{{ID: "s0", HashRange: q(0, 4)}}},
		{"an empty listing converts to no shards", nil, []Shard{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromTypes(tt.shards)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("FromTypes = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFromTypesErrors(t *testing.T) {
	good := kshard("ok", "0", "1", nil)
	tests := []struct {
		name    string
		shard   types.Shard
		shardID string
		wrapped error
	}{
		{"a range whose start exceeds its end names the shard", kshard("s1", "10", "9", nil), "s1", hashkey.ErrInvalidRange},
		{"a range bound that is not a number names the shard", kshard("s1", "0", "-1", nil), "s1", hashkey.ErrInvalid},
		{"a range bound above 2^128-1 names the shard", kshard("s1", "0", "340282366920938463463374607431768211456", nil), "s1", hashkey.ErrInvalid},
		{"a shard without a hash key range is named", types.Shard{ShardId: aws.String("s1")}, "s1", nil},
		{"a shard listed twice is named", good, "ok", nil},
		{"a shard without an id is rejected", types.Shard{}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromTypes([]types.Shard{good, tt.shard})
			var se *ShardError
			if got != nil || !errors.As(err, &se) || se.ShardID != tt.shardID || !errors.Is(err, ErrMalformedShard) {
				t.Fatalf("FromTypes = %v, %v; want a *ShardError for %q", got, err, tt.shardID)
			}
			if tt.wrapped != nil && !errors.Is(err, tt.wrapped) {
				t.Errorf("error %v does not wrap %v", err, tt.wrapped)
			}
		})
	}
}

func TestShardErrorMessage(t *testing.T) {
	_, err := FromTypes([]types.Shard{kshard("shardId-000000000007", "10", "9", nil)})
	const want = `shardsync: shard "shardId-000000000007": bad hash key range: hashkey: invalid hash key range: start 10 is greater than end 9`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
	_, err = FromTypes([]types.Shard{{ShardId: aws.String("s1")}})
	if err == nil || err.Error() != `shardsync: shard "s1": no hash key range` {
		t.Errorf("error = %v", err)
	}
}
