package hashkey

import (
	"math/big"
	"testing"
)

// FuzzParse checks Parse against math/big: both accept exactly the strings of
// ASCII digits whose value is below 2^128, and agree on the value.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"0", "1", "00", "18446744073709551616", Max.String(), two128.String(), "", "+1", "-0", " 1", "1e3", "١"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Parse(s)
		want, ok := new(big.Int).SetString(s, 10)
		valid := ok && s != "" && s[0] != '+' && s[0] != '-' && want.Sign() >= 0 && want.Cmp(two128) < 0
		if valid != (err == nil) {
			t.Fatalf("Parse(%q) error = %v; math/big says valid=%v", s, err, valid)
		}
		if !valid {
			return
		}
		if toBig(got).Cmp(want) != 0 {
			t.Fatalf("Parse(%q) = %s, want %s", s, got, want)
		}
		if got.String() != want.String() {
			t.Fatalf("String() = %s, want %s", got, want)
		}
	})
}
