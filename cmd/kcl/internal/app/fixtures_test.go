package app

import (
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fixtureDir holds the Java-shaped items (../shared/testdata, copied into
// lease/dynamolease/testdata).
const fixtureDir = "../../../../lease/dynamolease/testdata"

// fixtureItems returns the items of the fixture file name whose _table is
// the lease table (or unnamed), in DynamoDB's attribute values, without the
// fixture's metadata keys.
func fixtureItems(t testing.TB, name string) []map[string]types.AttributeValue {
	t.Helper()
	return fixtureItemsFrom(t, fixtureDir, name)
}

func fixtureItemsFrom(t testing.TB, dir, name string) []map[string]types.AttributeValue {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Items []map[string]json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var out []map[string]types.AttributeValue
	for i, raw := range file.Items {
		if tb, ok := raw["_table"]; ok {
			var table string
			if json.Unmarshal(tb, &table) != nil || !strings.HasPrefix(table, "lease table") {
				continue
			}
		}
		item := make(map[string]types.AttributeValue)
		for k, v := range raw {
			if strings.HasPrefix(k, "_") {
				continue
			}
			av, err := attributeFromJSON(v)
			if err != nil {
				t.Fatalf("%s: item %d: %s: %v", name, i, k, err)
			}
			item[k] = av
		}
		out = append(out, item)
	}
	return out
}

// attributeFromJSON decodes one attribute value in DynamoDB JSON.
func attributeFromJSON(raw json.RawMessage) (types.AttributeValue, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || len(m) != 1 {
		return nil, fmt.Errorf("not a DynamoDB JSON value: %s", raw)
	}
	for typ, v := range m {
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
			var ss []string
			err := json.Unmarshal(v, &ss)
			return &types.AttributeValueMemberNS{Value: ss}, err
		case "BOOL":
			var b bool
			err := json.Unmarshal(v, &b)
			return &types.AttributeValueMemberBOOL{Value: b}, err
		case "NULL":
			return &types.AttributeValueMemberNULL{Value: true}, nil
		case "M":
			var mm map[string]json.RawMessage
			if err := json.Unmarshal(v, &mm); err != nil {
				return nil, err
			}
			out := make(map[string]types.AttributeValue, len(mm))
			for k, e := range mm {
				av, err := attributeFromJSON(e)
				if err != nil {
					return nil, err
				}
				out[k] = av
			}
			return &types.AttributeValueMemberM{Value: out}, nil
		case "L":
			var l []json.RawMessage
			if err := json.Unmarshal(v, &l); err != nil {
				return nil, err
			}
			out := make([]types.AttributeValue, len(l))
			for i, e := range l {
				av, err := attributeFromJSON(e)
				if err != nil {
					return nil, err
				}
				out[i] = av
			}
			return &types.AttributeValueMemberL{Value: out}, nil
		}
		return nil, fmt.Errorf("unknown type %s", typ)
	}
	panic("unreachable")
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}
