package dynamolease

import (
	"errors"
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/lease"
)

func mustAt(t testing.TB, seq string, sub uint64) checkpoint.Position {
	t.Helper()
	p, err := checkpoint.At(seq, sub)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustRange(t testing.TB, start, end string) *hashkey.Range {
	t.Helper()
	r, err := hashkey.ParseRange(start, end)
	if err != nil {
		t.Fatal(err)
	}
	return &r
}

func ptr[T any](v T) *T { return &v }

// kclLeases are the leases the items of testdata/kcl-lease-items.json hold,
// by leaseKey.
func kclLeases(t testing.TB) map[string]lease.Lease {
	return map[string]lease.Lease{
		"shardId-000000000000": {
			Key:        "shardId-000000000000",
			Checkpoint: checkpoint.TrimHorizon,
			HashRange:  mustRange(t, "0", "85070591730234615865843651857942052863"),
		},
		"shardId-000000000001": {
			Key:        "shardId-000000000001",
			Owner:      "ip-10-0-0-12.ec2.internal:4f0c2a3e-0b7d-4d3e-9a55-3c1f5c1e2b7a",
			Counter:    48213,
			Checkpoint: mustAt(t, "49654123456789012345678901234567890123456789012345678918", 7),
			HashRange:  mustRange(t, "85070591730234615865843651857942052864", "170141183460469231731687303715884105727"),
		},
		"shardId-000000000006": {
			Key:            "shardId-000000000006",
			Checkpoint:     checkpoint.TrimHorizon,
			ParentShardIDs: []string{"shardId-000000000002", "shardId-000000000003"},
			HashRange:      mustRange(t, "170141183460469231731687303715884105728", "340282366920938463463374607431768211455"),
		},
		"shardId-000000000002": {
			Key:           "shardId-000000000002",
			Owner:         "worker-b",
			Counter:       912,
			Checkpoint:    checkpoint.ShardEnd,
			ChildShardIDs: []string{"shardId-000000000006"},
			HashRange:     mustRange(t, "170141183460469231731687303715884105728", "255211775190703847597530955573826158591"),
		},
		"shardId-000000000004": {
			Key:                          "shardId-000000000004",
			Owner:                        "worker-a",
			Counter:                      77,
			OwnerSwitchesSinceCheckpoint: 1,
			Checkpoint:                   mustAt(t, "49654123456789012345678901234567890123456789012345678000", 0),
			PendingCheckpoint:            mustAt(t, "49654123456789012345678901234567890123456789012345678999", 3),
			PendingCheckpointState:       []byte("state-bytes"),
		},
		"shardId-000000000005": {
			Key:             "shardId-000000000005",
			Owner:           "worker-c",
			CheckpointOwner: "worker-a",
			Counter:         3051,
			Checkpoint:      checkpoint.Latest,
			ThroughputKBps:  ptr(12.345678),
		},
		"123456789012:orders:1700000000:shardId-000000000003": {
			Key:        "123456789012:orders:1700000000:shardId-000000000003",
			StreamName: "123456789012:orders:1700000000",
			ShardID:    "shardId-000000000003",
			Owner:      "worker-a",
			Counter:    5,
			Checkpoint: checkpoint.AtTimestamp,
		},
	}
}

func TestUnmarshalItemReadsEveryKCLItemAndMarshalsItBack(t *testing.T) {
	want := kclLeases(t)
	fixtures := loadFixtures(t)
	if len(fixtures) != len(want) {
		t.Fatalf("kcl-lease-items.json has %d items, the test expects %d", len(fixtures), len(want))
	}
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			got, err := UnmarshalItem(f.item)
			if err != nil {
				t.Fatalf("UnmarshalItem: %v", err)
			}
			w, ok := want[got.Key]
			if !ok {
				t.Fatalf("no expected lease for key %q", got.Key)
			}
			if !reflect.DeepEqual(got, w) {
				t.Errorf("UnmarshalItem =\n\t%+v\nwant\n\t%+v", got, w)
			}
			// MarshalItem writes the same attributes, plus entityType LEASE,
			// which KCL 3.5 writes on every lease row.
			wantItem := maps.Clone(f.item)
			wantItem[attrEntityType] = &types.AttributeValueMemberS{Value: entityTypeLease}
			if d := diffItems(MarshalItem(got), wantItem); len(d) > 0 {
				t.Errorf("MarshalItem differs from the KCL item:\n\t%s", strings.Join(d, "\n\t"))
			}
		})
	}
}

// validItem is a lease item with every attribute set, for the malformed-item
// cases to break one attribute at a time.
func validItem() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrLeaseKey:             &types.AttributeValueMemberS{Value: "shardId-000000000001"},
		attrLeaseOwner:           &types.AttributeValueMemberS{Value: "worker-a"},
		attrLeaseCounter:         &types.AttributeValueMemberN{Value: "12"},
		attrCheckpoint:           &types.AttributeValueMemberS{Value: "49654123456789012345678901234567890123456789012345678918"},
		attrCheckpointSub:        &types.AttributeValueMemberN{Value: "3"},
		attrPendingCheckpoint:    &types.AttributeValueMemberS{Value: "49654123456789012345678901234567890123456789012345678999"},
		attrPendingCheckpointSub: &types.AttributeValueMemberN{Value: "1"},
		attrPendingState:         &types.AttributeValueMemberB{Value: []byte("state")},
		attrOwnerSwitches:        &types.AttributeValueMemberN{Value: "2"},
		attrParentShardIDs:       &types.AttributeValueMemberSS{Value: []string{"shardId-000000000000"}},
		attrChildShardIDs:        &types.AttributeValueMemberSS{Value: []string{"shardId-000000000007", "shardId-000000000008"}},
		attrStartingHashKey:      &types.AttributeValueMemberS{Value: "1"},
		attrEndingHashKey:        &types.AttributeValueMemberS{Value: "340282366920938463463374607431768211455"},
		attrCheckpointOwner:      &types.AttributeValueMemberS{Value: "worker-b"},
		attrThroughputKBps:       &types.AttributeValueMemberN{Value: "1.5"},
		attrEntityType:           &types.AttributeValueMemberS{Value: "LEASE"},
		attrStreamName:           &types.AttributeValueMemberS{Value: "123456789012:orders:1700000000"},
		attrShardID:              &types.AttributeValueMemberS{Value: "shardId-000000000001"},
	}
}

func avS(v string) types.AttributeValue     { return &types.AttributeValueMemberS{Value: v} }
func avN(v string) types.AttributeValue     { return &types.AttributeValueMemberN{Value: v} }
func avSS(v ...string) types.AttributeValue { return &types.AttributeValueMemberSS{Value: v} }

func TestUnmarshalItemRejectsMalformedItems(t *testing.T) {
	const key = "shardId-000000000001"
	tests := []struct {
		name     string
		attr     string
		value    types.AttributeValue // nil removes the attribute
		remove   bool
		wantKey  string
		wantAttr string // the attribute the error names, if not attr
		wantIs   error  // an error the ItemError must also match, if any
	}{
		{name: "an item without leaseKey is rejected naming leaseKey and no key", attr: attrLeaseKey, remove: true},
		{name: "a leaseKey of type N is rejected", attr: attrLeaseKey, value: avN("1")},
		{name: "an empty leaseKey is rejected", attr: attrLeaseKey, value: avS("")},
		{name: "an item without leaseCounter is rejected", attr: attrLeaseCounter, remove: true, wantKey: key},
		{name: "a leaseCounter stored as a string is rejected", attr: attrLeaseCounter, value: avS("12"), wantKey: key},
		{name: "a fractional leaseCounter is rejected", attr: attrLeaseCounter, value: avN("1.5"), wantKey: key},
		{name: "a negative leaseCounter is rejected", attr: attrLeaseCounter, value: avN("-1"), wantKey: key},
		{name: "a leaseCounter beyond a Java long is rejected", attr: attrLeaseCounter, value: avN("9223372036854775808"), wantKey: key},
		{name: "an item without checkpoint is rejected", attr: attrCheckpoint, remove: true, wantKey: key},
		{name: "a checkpoint stored as a number is rejected", attr: attrCheckpoint, value: avN("5"), wantKey: key},
		{name: "an unknown checkpoint sentinel is rejected", attr: attrCheckpoint, value: avS("TRIM-HORIZON"), wantKey: key, wantIs: checkpoint.ErrInvalid},
		{name: "a garbage checkpoint is rejected", attr: attrCheckpoint, value: avS("4965abc"), wantKey: key, wantIs: checkpoint.ErrInvalid},
		{name: "a checkpoint with a leading zero is rejected", attr: attrCheckpoint, value: avS("0123"), wantKey: key, wantIs: checkpoint.ErrInvalid},
		{name: "a checkpoint longer than 129 digits is rejected", attr: attrCheckpoint, value: avS(strings.Repeat("9", 130)), wantKey: key, wantIs: checkpoint.ErrInvalid},
		{name: "a checkpointSubSequenceNumber stored as a string is rejected", attr: attrCheckpointSub, value: avS("3"), wantKey: key},
		{name: "a negative checkpointSubSequenceNumber is rejected", attr: attrCheckpointSub, value: avN("-3"), wantKey: key},
		{name: "a garbage pendingCheckpoint is rejected", attr: attrPendingCheckpoint, value: avS("LATER"), wantKey: key, wantIs: checkpoint.ErrInvalid},
		{name: "a pendingCheckpointSubSequenceNumber stored as a string is rejected", attr: attrPendingCheckpointSub, value: avS("1"), wantKey: key},
		{name: "a pendingCheckpointState stored as a string is rejected", attr: attrPendingState, value: avS("state"), wantKey: key},
		{name: "an ownerSwitchesSinceCheckpoint stored as a string is rejected", attr: attrOwnerSwitches, value: avS("2"), wantKey: key},
		{name: "an empty leaseOwner is rejected", attr: attrLeaseOwner, value: avS(""), wantKey: key},
		{name: "a leaseOwner stored as a string set is rejected", attr: attrLeaseOwner, value: avSS("worker-a"), wantKey: key},
		{name: "a parentShardId stored as a string is rejected", attr: attrParentShardIDs, value: avS("shardId-000000000000"), wantKey: key},
		{name: "an empty parentShardId set is rejected", attr: attrParentShardIDs, value: avSS(), wantKey: key},
		{name: "a parentShardId set holding an empty id is rejected", attr: attrParentShardIDs, value: avSS("shardId-000000000000", ""), wantKey: key},
		{name: "a parentShardId set holding a duplicate is rejected", attr: attrParentShardIDs, value: avSS("a", "b", "a"), wantKey: key},
		{name: "an empty childShardIds set is rejected", attr: attrChildShardIDs, value: avSS(), wantKey: key},
		{name: "a childShardIds list is rejected", attr: attrChildShardIDs, value: &types.AttributeValueMemberL{Value: []types.AttributeValue{avS("x")}}, wantKey: key},
		{name: "a startingHashKey greater than endingHashKey is rejected", attr: attrEndingHashKey, value: avS("0"), wantKey: key, wantAttr: attrStartingHashKey, wantIs: hashkey.ErrInvalidRange},
		{name: "a startingHashKey that is not a number is rejected", attr: attrStartingHashKey, value: avS("-1"), wantKey: key, wantIs: hashkey.ErrInvalid},
		{name: "an endingHashKey beyond 2^128-1 is rejected", attr: attrEndingHashKey, value: avS("340282366920938463463374607431768211456"), wantKey: key, wantIs: hashkey.ErrInvalid},
		{name: "a startingHashKey without endingHashKey is rejected", attr: attrEndingHashKey, remove: true, wantKey: key},
		{name: "an endingHashKey without startingHashKey is rejected", attr: attrStartingHashKey, remove: true, wantKey: key},
		{name: "a throughputKBps stored as a string is rejected", attr: attrThroughputKBps, value: avS("1.5"), wantKey: key},
		{name: "a NaN throughputKBps is rejected", attr: attrThroughputKBps, value: avN("NaN"), wantKey: key},
		{name: "an infinite throughputKBps is rejected", attr: attrThroughputKBps, value: avN("1e400"), wantKey: key},
		{name: "a hexadecimal throughputKBps is rejected", attr: attrThroughputKBps, value: avN("0x10"), wantKey: key},
		{name: "a negative throughputKBps is rejected", attr: attrThroughputKBps, value: avN("-0.5"), wantKey: key},
		{name: "an empty checkpointOwner is rejected", attr: attrCheckpointOwner, value: avS(""), wantKey: key},
		{name: "an entityType stored as a number is rejected", attr: attrEntityType, value: avN("1"), wantKey: key},
		{name: "a streamName stored as binary is rejected", attr: attrStreamName, value: &types.AttributeValueMemberB{Value: []byte("x")}, wantKey: key},
		{name: "a nil attribute value is rejected", attr: attrShardID, value: nil, wantKey: key},
		{name: "a typed nil attribute value is rejected", attr: attrLeaseCounter, value: (*types.AttributeValueMemberN)(nil), wantKey: key},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			item := validItem()
			if tc.remove {
				delete(item, tc.attr)
			} else {
				item[tc.attr] = tc.value
			}
			l, err := UnmarshalItem(item)
			var ie *lease.ItemError
			if !errors.As(err, &ie) {
				t.Fatalf("UnmarshalItem = %+v, %v; want a *lease.ItemError", l, err)
			}
			wantAttr := tc.attr
			if tc.wantAttr != "" {
				wantAttr = tc.wantAttr
			}
			if ie.Attribute != wantAttr || ie.Key != tc.wantKey {
				t.Errorf("ItemError names item %q attribute %q; want item %q attribute %q (%v)", ie.Key, ie.Attribute, tc.wantKey, wantAttr, err)
			}
			if !errors.Is(err, lease.ErrMalformed) {
				t.Errorf("error %v does not match lease.ErrMalformed", err)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v does not match %v", err, tc.wantIs)
			}
			if !reflect.DeepEqual(l, lease.Lease{}) {
				t.Errorf("UnmarshalItem returned a lease with its error: %+v", l)
			}
		})
	}
}

func TestUnmarshalItemToleratesWhatKCLTolerates(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(item map[string]types.AttributeValue)
		check func(t *testing.T, l lease.Lease)
	}{
		{"a missing checkpointSubSequenceNumber reads as 0", func(item map[string]types.AttributeValue) {
			delete(item, attrCheckpointSub)
		}, func(t *testing.T, l lease.Lease) {
			if l.Checkpoint.SubSequenceNumber() != 0 || !l.Checkpoint.IsSequence() {
				t.Errorf("Checkpoint = %v", l.Checkpoint)
			}
		}},
		{"a missing pendingCheckpointSubSequenceNumber reads as 0", func(item map[string]types.AttributeValue) {
			delete(item, attrPendingCheckpointSub)
		}, func(t *testing.T, l lease.Lease) {
			if l.PendingCheckpoint.SubSequenceNumber() != 0 || !l.PendingCheckpoint.IsSequence() {
				t.Errorf("PendingCheckpoint = %v", l.PendingCheckpoint)
			}
		}},
		{"a missing ownerSwitchesSinceCheckpoint reads as 0", func(item map[string]types.AttributeValue) {
			delete(item, attrOwnerSwitches)
		}, func(t *testing.T, l lease.Lease) {
			if l.OwnerSwitchesSinceCheckpoint != 0 {
				t.Errorf("OwnerSwitchesSinceCheckpoint = %d", l.OwnerSwitchesSinceCheckpoint)
			}
		}},
		{"an empty pendingCheckpointState reads as no state", func(item map[string]types.AttributeValue) {
			item[attrPendingState] = &types.AttributeValueMemberB{}
		}, func(t *testing.T, l lease.Lease) {
			if l.PendingCheckpointState != nil {
				t.Errorf("PendingCheckpointState = %q", l.PendingCheckpointState)
			}
		}},
		{"a pendingCheckpointState of type N reads as no state (KCL's toDynamoRecord writes one)", func(item map[string]types.AttributeValue) {
			item[attrPendingState] = avN("3")
		}, func(t *testing.T, l lease.Lease) {
			if l.PendingCheckpointState != nil {
				t.Errorf("PendingCheckpointState = %q", l.PendingCheckpointState)
			}
		}},
		{"a missing entityType reads as a lease (KCL before 3.5)", func(item map[string]types.AttributeValue) {
			delete(item, attrEntityType)
		}, func(t *testing.T, l lease.Lease) {}},
		{"attributes of later KCL versions are ignored", func(item map[string]types.AttributeValue) {
			item["someFutureKcl"] = &types.AttributeValueMemberM{}
			item["leaseKeyPrefix"] = avN("7")
		}, func(t *testing.T, l lease.Lease) {}},
		{"a pendingCheckpointSubSequenceNumber without pendingCheckpoint is ignored", func(item map[string]types.AttributeValue) {
			delete(item, attrPendingCheckpoint)
		}, func(t *testing.T, l lease.Lease) {
			if !l.PendingCheckpoint.IsZero() {
				t.Errorf("PendingCheckpoint = %v", l.PendingCheckpoint)
			}
		}},
		{"shard-id sets read back sorted", func(item map[string]types.AttributeValue) {
			item[attrParentShardIDs] = avSS("shardId-000000000009", "shardId-000000000002")
		}, func(t *testing.T, l lease.Lease) {
			if want := []string{"shardId-000000000002", "shardId-000000000009"}; !reflect.DeepEqual(l.ParentShardIDs, want) {
				t.Errorf("ParentShardIDs = %q, want %q", l.ParentShardIDs, want)
			}
		}},
		{"a throughputKBps in exponent notation reads as its value", func(item map[string]types.AttributeValue) {
			item[attrThroughputKBps] = avN("1.25E2")
		}, func(t *testing.T, l lease.Lease) {
			if l.ThroughputKBps == nil || *l.ThroughputKBps != 125 {
				t.Errorf("ThroughputKBps = %v", l.ThroughputKBps)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			item := validItem()
			tc.edit(item)
			l, err := UnmarshalItem(item)
			if err != nil {
				t.Fatalf("UnmarshalItem: %v", err)
			}
			tc.check(t, l)
		})
	}
}

func TestUnmarshalItemTellsOtherEntityTypesApart(t *testing.T) {
	// KCL 3.5's single table format keeps worker metrics and coordinator
	// state in the lease table; such rows lack lease attributes.
	item := map[string]types.AttributeValue{
		attrLeaseKey:   avS("worker-a"),
		attrEntityType: avS("WORKER_METRICS"),
		"cpu":          avN("42"),
	}
	_, err := UnmarshalItem(item)
	if !errors.Is(err, ErrNotLease) {
		t.Fatalf("UnmarshalItem = %v; want an error matching ErrNotLease", err)
	}
	if errors.Is(err, lease.ErrMalformed) {
		t.Errorf("UnmarshalItem = %v; another entity type is not a malformed lease", err)
	}
}

func TestMarshalItemRoundTripsEveryField(t *testing.T) {
	l := lease.Lease{
		Key:                          "123456789012:orders:1700000000:shardId-000000000007",
		Owner:                        "worker-a",
		Counter:                      1<<63 - 1,
		Checkpoint:                   mustAt(t, "9"+strings.Repeat("0", 128), 1<<63-1),
		PendingCheckpoint:            checkpoint.ShardEnd,
		PendingCheckpointState:       []byte{0, 0xff},
		OwnerSwitchesSinceCheckpoint: 3,
		ParentShardIDs:               []string{"shardId-000000000003", "shardId-000000000004"},
		ChildShardIDs:                []string{"shardId-000000000009"},
		HashRange:                    &hashkey.Range{End: hashkey.Max},
		CheckpointOwner:              "worker-b",
		ThroughputKBps:               ptr(0.1),
		StreamName:                   "123456789012:orders:1700000000",
		ShardID:                      "shardId-000000000007",
	}
	got, err := UnmarshalItem(MarshalItem(l))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, l) {
		t.Errorf("round trip =\n\t%+v\nwant\n\t%+v", got, l)
	}
}

func TestMarshalItemWritesOnlyWhatIsSet(t *testing.T) {
	item := MarshalItem(lease.Lease{Key: "shardId-000000000000", Checkpoint: checkpoint.TrimHorizon, ParentShardIDs: []string{}})
	want := map[string]types.AttributeValue{
		attrLeaseKey:      avS("shardId-000000000000"),
		attrLeaseCounter:  avN("0"),
		attrOwnerSwitches: avN("0"),
		attrCheckpoint:    avS("TRIM_HORIZON"),
		attrCheckpointSub: avN("0"),
		attrEntityType:    avS("LEASE"),
	}
	if d := diffItems(item, want); len(d) > 0 {
		t.Errorf("MarshalItem differs:\n\t%s", strings.Join(d, "\n\t"))
	}
}
