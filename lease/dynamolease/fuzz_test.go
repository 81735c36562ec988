package dynamolease

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kclgo/kcl/lease"
)

// The fuzz input encodes an item as records of
//
//	name byte, type byte, value byte, [value bytes]
//
// name picks an attribute from fuzzNames, type a DynamoDB type (S and N are
// the likeliest), and value either a word of fuzzWords (high bit set) or the
// length (0-63) of the raw value that follows. String sets split their value
// at 0x00 bytes.
var fuzzNames = []string{
	attrLeaseKey, attrLeaseOwner, attrLeaseCounter, attrCheckpoint, attrCheckpointSub,
	attrPendingCheckpoint, attrPendingCheckpointSub, attrPendingState, attrOwnerSwitches,
	attrParentShardIDs, attrChildShardIDs, attrStartingHashKey, attrEndingHashKey,
	attrCheckpointOwner, attrThroughputKBps, attrEntityType, attrStreamName, attrShardID,
	"someFutureKcl", "childShardId",
}

var fuzzWords = []string{
	"", "0", "1", "-1", "7", "1.5", "-0", "1e400", "NaN", "Infinity", "0x10", "1_000", "1E+2", " 1",
	"TRIM_HORIZON", "LATEST", "AT_TIMESTAMP", "SHARD_END", "SHARD-END",
	"9223372036854775807", "9223372036854775808", "18446744073709551616",
	"49654123456789012345678901234567890123456789012345678918",
	"9" + strings.Repeat("0", 128), "9" + strings.Repeat("0", 129),
	"340282366920938463463374607431768211455", "340282366920938463463374607431768211456",
	"LEASE", "WORKER_METRICS", "shardId-000000000000", "worker-a",
}

const (
	fuzzWordFlag = 0x80
	fuzzMaxRaw   = 0x3f
)

func decodeFuzzItem(data []byte) map[string]types.AttributeValue {
	item := make(map[string]types.AttributeValue)
	for len(data) >= 3 {
		name := fuzzNames[int(data[0])%len(fuzzNames)]
		typ, sel := data[1]%16, data[2]
		data = data[3:]
		var raw []byte
		if sel&fuzzWordFlag != 0 {
			raw = []byte(fuzzWords[int(sel&^fuzzWordFlag)%len(fuzzWords)])
		} else {
			n := min(int(sel&fuzzMaxRaw), len(data))
			raw, data = data[:n], data[n:]
		}
		item[name] = fuzzValue(typ, raw)
	}
	return item
}

func fuzzValue(typ byte, raw []byte) types.AttributeValue {
	switch typ {
	case 0, 1, 2, 3:
		return &types.AttributeValueMemberS{Value: string(raw)}
	case 4, 5, 6, 7:
		return &types.AttributeValueMemberN{Value: string(raw)}
	case 8:
		return &types.AttributeValueMemberB{Value: slices.Clone(raw)}
	case 9, 10:
		return &types.AttributeValueMemberSS{Value: strings.Split(string(raw), "\x00")}
	case 11:
		return &types.AttributeValueMemberNS{Value: strings.Split(string(raw), "\x00")}
	case 12:
		return &types.AttributeValueMemberBOOL{Value: len(raw) > 0}
	case 13:
		return &types.AttributeValueMemberNULL{Value: true}
	case 14:
		return &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: string(raw)}}}
	default:
		if len(raw) == 0 {
			return nil // a nil value in the map
		}
		return &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"k": &types.AttributeValueMemberS{Value: string(raw)}}}
	}
}

// encodeFuzzItem is the inverse of decodeFuzzItem for the S, N, B and SS
// attributes lease items hold, for seeding the corpus from real items.
func encodeFuzzItem(t testing.TB, item map[string]types.AttributeValue) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range item {
			if !yield(k) {
				return
			}
		}
	}) {
		idx := slices.Index(fuzzNames, name)
		if idx < 0 {
			t.Fatalf("encodeFuzzItem: attribute %s not in fuzzNames", name)
		}
		var typ byte
		var value string
		switch v := item[name].(type) {
		case *types.AttributeValueMemberS:
			typ, value = 0, v.Value
		case *types.AttributeValueMemberN:
			typ, value = 4, v.Value
		case *types.AttributeValueMemberB:
			typ, value = 8, string(v.Value)
		case *types.AttributeValueMemberSS:
			typ, value = 9, strings.Join(v.Value, "\x00")
		default:
			t.Fatalf("encodeFuzzItem: attribute %s has type %T", name, v)
		}
		buf.WriteByte(byte(idx))
		buf.WriteByte(typ)
		if w := slices.Index(fuzzWords, value); w >= 0 {
			buf.WriteByte(fuzzWordFlag | byte(w))
			continue
		}
		if len(value) > fuzzMaxRaw {
			t.Fatalf("encodeFuzzItem: attribute %s value %q is too long and not in fuzzWords", name, value)
		}
		buf.WriteByte(byte(len(value)))
		buf.WriteString(value)
	}
	return buf.Bytes()
}

// fuzzSeeds are the KCL items of testdata/kcl-lease-items.json and the
// complete valid item of the malformed-item tests.
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, f := range loadFixtures(t) {
		seeds = append(seeds, encodeFuzzItem(t, f.item))
	}
	return append(seeds, encodeFuzzItem(t, validItem()))
}

func FuzzUnmarshalItem(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		item := decodeFuzzItem(data)
		l, err := UnmarshalItem(item)
		if err != nil {
			var ie *lease.ItemError
			if !errors.As(err, &ie) && !errors.Is(err, ErrNotLease) {
				t.Fatalf("UnmarshalItem = %v; want a *lease.ItemError or ErrNotLease", err)
			}
			if ie != nil && ie.Attribute == "" {
				t.Fatalf("ItemError names no attribute: %v", err)
			}
			return
		}
		again := MarshalItem(l)
		l2, err := UnmarshalItem(again)
		if err != nil {
			t.Fatalf("UnmarshalItem(MarshalItem(%+v)) = %v", l, err)
		}
		if !reflect.DeepEqual(l2, l) {
			t.Fatalf("round trip changed the lease:\n\t%+v\nto\n\t%+v", l, l2)
		}
		if d := diffItems(MarshalItem(l2), again); len(d) > 0 {
			t.Fatalf("MarshalItem is not stable:\n\t%s", strings.Join(d, "\n\t"))
		}
	})
}

var writeCorpus = flag.Bool("write-fuzz-corpus", false, "rewrite testdata/fuzz/FuzzUnmarshalItem from the KCL items")

// TestFuzzCorpusIsCommitted checks that the committed seed corpus holds the
// current seeds; run it with -write-fuzz-corpus to rewrite it.
func TestFuzzCorpusIsCommitted(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzUnmarshalItem")
	for i, seed := range fuzzSeeds(t) {
		path := filepath.Join(dir, fmt.Sprintf("seed-%02d", i))
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", seed)
		if *writeCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Errorf("%s is missing or stale (err %v); run go test -run TestFuzzCorpusIsCommitted -write-fuzz-corpus", path, err)
		}
	}
}
