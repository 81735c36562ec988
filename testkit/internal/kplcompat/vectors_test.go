package kplcompat

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// vector is one testdata/kpl file; tools/kplvectors/generate.js documents
// the format.
type vector struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Package     string `json:"package"`
	Limit       *struct {
		PartitionKey  string `json:"partitionKey"`
		MaxDataLength int    `json:"maxDataLength"`
		OnePlusError  string `json:"onePlusError"`
	} `json:"limit"`
	UserRecords       []vectorRecord `json:"userRecords"`
	AggregatedRecords []vectorRecord `json:"aggregatedRecords"`
	// EncodedUserRecords, set only in vectors showing a bug of the package
	// (integer-like-keys), is what the aggregates really encode.
	EncodedUserRecords []vectorRecord `json:"encodedUserRecords"`
}

type vectorRecord struct {
	PartitionKey    string  `json:"partitionKey"`
	ExplicitHashKey *string `json:"explicitHashKey"`

	// Exactly one of Data (stored bytes), DataGen (a user record's generated
	// payload) and DataParts (an aggregate with generated payloads in it) is
	// used; DataSHA256, DataLength and DataMD5 check the rebuilt bytes.
	Data       []byte     `json:"data"`
	DataGen    *generated `json:"dataGen"`
	DataSHA256 string     `json:"dataSHA256"`
	DataParts  []struct {
		Base64 []byte     `json:"base64"`
		Gen    *generated `json:"gen"`
	} `json:"dataParts"`
	DataLength int    `json:"dataLength"`
	DataMD5    string `json:"dataMD5"`

	// RecordCount is, for an aggregated record, how many user records
	// aws-kinesis-agg put in it.
	RecordCount int `json:"recordCount"`
}

type generated struct {
	Seed   uint32 `json:"seed"`
	Length int    `json:"length"`
}

// ehk returns the explicit hash key, "" when the vector has null.
func (r vectorRecord) ehk() string {
	if r.ExplicitHashKey == nil {
		return ""
	}
	return *r.ExplicitHashKey
}

// bytes returns the record's data, rebuilding generated payloads and
// checking them against the digests generate.js stored.
func (r vectorRecord) bytes() ([]byte, error) {
	switch {
	case r.DataGen != nil:
		b := generatedBytes(r.DataGen.Seed, r.DataGen.Length)
		if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != r.DataSHA256 {
			return nil, fmt.Errorf("generated payload (seed %d, %d bytes) has SHA-256 %x, vector says %s; generatedBytes disagrees with generate.js",
				r.DataGen.Seed, r.DataGen.Length, got, r.DataSHA256)
		}
		return b, nil
	case r.DataParts != nil:
		var b []byte
		for _, p := range r.DataParts {
			if p.Gen != nil {
				b = append(b, generatedBytes(p.Gen.Seed, p.Gen.Length)...)
			} else {
				b = append(b, p.Base64...)
			}
		}
		if len(b) != r.DataLength {
			return nil, fmt.Errorf("rebuilt aggregate is %d bytes, vector says %d", len(b), r.DataLength)
		}
		if got := md5.Sum(b); hex.EncodeToString(got[:]) != r.DataMD5 {
			return nil, fmt.Errorf("rebuilt aggregate has MD5 %x, vector says %s", got, r.DataMD5)
		}
		return b, nil
	default:
		if r.Data == nil {
			return []byte{}, nil
		}
		return r.Data, nil
	}
}

// generatedBytes is the Go twin of generatedBytes in generate.js: length
// bytes made of xorshift32 outputs for seed, each little-endian, the last
// one truncated. A zero seed is replaced by 0x9e3779b9, as there.
func generatedBytes(seed uint32, length int) []byte {
	x := seed
	if x == 0 {
		x = 0x9e3779b9
	}
	b := make([]byte, length)
	for i := 0; i < length; i += 4 {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		for k := 0; k < 4 && i+k < length; k++ {
			b[i+k] = byte(x >> (8 * k))
		}
	}
	return b
}

// repoRoot returns the directory holding the module's go.mod.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// loadVectors reads every testdata/kpl vector, in file-name order.
func loadVectors(t testing.TB) []vector {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "testdata", "kpl", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no vectors in testdata/kpl; run: node tools/kplvectors/generate.js")
	}
	vs := make([]vector, 0, len(files))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v vector
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s: %v", filepath.Base(f), err)
		}
		if want := v.Name + ".json"; filepath.Base(f) != want {
			t.Fatalf("%s: vector is named %q", filepath.Base(f), v.Name)
		}
		vs = append(vs, v)
	}
	return vs
}

// userRecord is a user record with its data rebuilt.
type userRecord struct {
	PartitionKey    string
	ExplicitHashKey string
	Data            []byte
}

// inputs returns the vector's user records: what was given to the
// package's aggregator.
func (v vector) inputs(t testing.TB) []userRecord {
	t.Helper()
	return v.rebuild(t, v.UserRecords)
}

// encoded returns the user records the vector's aggregates encode: the
// inputs, unless the package mis-encoded them.
func (v vector) encoded(t testing.TB) []userRecord {
	t.Helper()
	if v.EncodedUserRecords != nil {
		return v.rebuild(t, v.EncodedUserRecords)
	}
	return v.inputs(t)
}

func (v vector) rebuild(t testing.TB, rs []vectorRecord) []userRecord {
	t.Helper()
	out := make([]userRecord, len(rs))
	for i, r := range rs {
		b, err := r.bytes()
		if err != nil {
			t.Fatalf("%s: user record %d: %v", v.Name, i, err)
		}
		out[i] = userRecord{PartitionKey: r.PartitionKey, ExplicitHashKey: r.ehk(), Data: b}
	}
	return out
}

func TestGeneratedBytesMatchesTheJavaScriptGenerator(t *testing.T) {
	// The first outputs of xorshift32 from seed 1 are 270369, 67634689,
	// 2647435461 (Marsaglia's triple 13, 17, 5).
	want := []byte{
		0x21, 0x20, 0x04, 0x00,
		0x01, 0x06, 0x08, 0x04,
		0xc5, 0xa8, 0xcc, 0x9d,
		0x4f, // first byte of the fourth output, 307599695
	}
	got := generatedBytes(1, len(want))
	if !bytes.Equal(got, want) {
		t.Fatalf("generatedBytes(1, %d) = % x, want % x", len(want), got, want)
	}
}
