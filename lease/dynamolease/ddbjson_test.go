package dynamolease

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// fixture is one item of testdata/kcl-lease-items.json: a lease item exactly
// as the Java KCL writes it, in DynamoDB JSON.
type fixture struct {
	name string // the item's _case
	item map[string]types.AttributeValue
}

// loadFixtures reads testdata/kcl-lease-items.json, leaving out the
// _case/_about keys.
func loadFixtures(t testing.TB) []fixture {
	return loadItemFile(t, "kcl-lease-items.json")
}

// loadItemFile reads the items of testdata/name, a fixture file in
// DynamoDB JSON, each named by its _case; keys starting with '_' are left
// out.
func loadItemFile(t testing.TB, name string) []fixture {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Items []map[string]json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var out []fixture
	for i, raw := range file.Items {
		var c string
		if v, ok := raw["_case"]; !ok || json.Unmarshal(v, &c) != nil {
			t.Fatalf("%s: item %d: no _case", name, i)
		}
		item, err := itemFromJSON(raw)
		if err != nil {
			t.Fatalf("%s: item %q: %v", name, c, err)
		}
		out = append(out, fixture{name: c, item: item})
	}
	if len(out) == 0 {
		t.Fatalf("%s holds no items", name)
	}
	return out
}

// itemFromJSON converts an item in DynamoDB JSON ({"attr": {"S": "..."}})
// to SDK attribute values. Keys starting with '_' are comments.
func itemFromJSON(raw map[string]json.RawMessage) (map[string]types.AttributeValue, error) {
	item := make(map[string]types.AttributeValue, len(raw))
	for name, v := range raw {
		if strings.HasPrefix(name, "_") {
			continue
		}
		av, err := valueFromJSON(v)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", name, err)
		}
		item[name] = av
	}
	return item, nil
}

// valueFromJSON converts one DynamoDB JSON value: an object with exactly one
// of S, N, B (base64), SS, NS, BS, BOOL, NULL, L, M.
func valueFromJSON(raw json.RawMessage) (types.AttributeValue, error) {
	var typed map[string]json.RawMessage
	if err := json.Unmarshal(raw, &typed); err != nil {
		return nil, err
	}
	if len(typed) != 1 {
		return nil, fmt.Errorf("want one type key, have %d", len(typed))
	}
	for typ, v := range typed {
		switch typ {
		case "S":
			var s string
			err := json.Unmarshal(v, &s)
			return &types.AttributeValueMemberS{Value: s}, err
		case "N":
			var s string
			err := json.Unmarshal(v, &s)
			return &types.AttributeValueMemberN{Value: s}, err
		case "B":
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, err
			}
			b, err := base64.StdEncoding.DecodeString(s)
			return &types.AttributeValueMemberB{Value: b}, err
		case "SS":
			var ss []string
			err := json.Unmarshal(v, &ss)
			return &types.AttributeValueMemberSS{Value: ss}, err
		case "NS":
			var ns []string
			err := json.Unmarshal(v, &ns)
			return &types.AttributeValueMemberNS{Value: ns}, err
		case "BS":
			var bs []string
			if err := json.Unmarshal(v, &bs); err != nil {
				return nil, err
			}
			out := &types.AttributeValueMemberBS{}
			for _, s := range bs {
				b, err := base64.StdEncoding.DecodeString(s)
				if err != nil {
					return nil, err
				}
				out.Value = append(out.Value, b)
			}
			return out, nil
		case "BOOL":
			var b bool
			err := json.Unmarshal(v, &b)
			return &types.AttributeValueMemberBOOL{Value: b}, err
		case "NULL":
			return &types.AttributeValueMemberNULL{Value: true}, nil
		case "L":
			var raws []json.RawMessage
			if err := json.Unmarshal(v, &raws); err != nil {
				return nil, err
			}
			out := &types.AttributeValueMemberL{Value: []types.AttributeValue{}}
			for _, r := range raws {
				av, err := valueFromJSON(r)
				if err != nil {
					return nil, err
				}
				out.Value = append(out.Value, av)
			}
			return out, nil
		case "M":
			var raws map[string]json.RawMessage
			if err := json.Unmarshal(v, &raws); err != nil {
				return nil, err
			}
			m, err := itemFromJSON(raws)
			return &types.AttributeValueMemberM{Value: m}, err
		default:
			return nil, fmt.Errorf("unknown type %q", typ)
		}
	}
	panic("unreachable")
}

// diffItems lists the attributes in which two items differ. String sets
// compare as sets.
func diffItems(got, want map[string]types.AttributeValue) []string {
	var d []string
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		seen := map[string]bool{}
		for _, m := range []map[string]types.AttributeValue{got, want} {
			for k := range m {
				if !seen[k] {
					seen[k] = true
					if !yield(k) {
						return
					}
				}
			}
		}
	}) {
		g, w := got[name], want[name]
		if !sameValue(g, w) {
			d = append(d, fmt.Sprintf("%s: got %s, want %s", name, showValue(g), showValue(w)))
		}
	}
	return d
}

func sameValue(a, b types.AttributeValue) bool {
	as, aok := a.(*types.AttributeValueMemberSS)
	bs, bok := b.(*types.AttributeValueMemberSS)
	if aok && bok {
		return slices.Equal(slices.Sorted(slices.Values(as.Value)), slices.Sorted(slices.Values(bs.Value)))
	}
	ab, aok := a.(*types.AttributeValueMemberB)
	bb, bok := b.(*types.AttributeValueMemberB)
	if aok && bok {
		return bytes.Equal(ab.Value, bb.Value)
	}
	return reflect.DeepEqual(a, b)
}

func showValue(av types.AttributeValue) string {
	switch v := av.(type) {
	case nil:
		return "(absent)"
	case *types.AttributeValueMemberS:
		return fmt.Sprintf("S %q", v.Value)
	case *types.AttributeValueMemberN:
		return fmt.Sprintf("N %q", v.Value)
	case *types.AttributeValueMemberB:
		return fmt.Sprintf("B %q", v.Value)
	case *types.AttributeValueMemberSS:
		return fmt.Sprintf("SS %q", v.Value)
	default:
		return fmt.Sprintf("%T %+v", av, av)
	}
}
