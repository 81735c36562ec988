package dynamolease

import (
	"errors"
	"maps"
	"reflect"
	"testing"

	"github.com/kclgo/kcl/lease"
)

// coordinationFuzzNames are the attributes the coordination fuzzer edits.
var coordinationFuzzNames = []string{
	attrCoordinatorKey, attrWorkerID, attrLeaseKey, attrEntityType,
	attrOwnerName, attrLockLeaseDuration, attrRecordVersionNumber, attrLockData, attrIsReleased,
	attrMetricsUpdated, attrMetricStats, attrOperatingRange, attrSupportCode, attrSupportUpdated,
	attrClientVersion, attrTableMigration, attrModifiedBy, attrModifiedAt, attrMigrationHistory,
}

// FuzzDecodeCoordinationRows starts from a KCL 3.5.1 fixture (pick) and
// applies edits, each three bytes plus a raw value as in decodeFuzzItem:
// attribute, type, value (or, with type 0xff, deletion). Every decoder must
// return a value or a *coordinationItemError naming an attribute, and what
// decodes must encode back to the same value.
func FuzzDecodeCoordinationRows(f *testing.F) {
	fixtures := loadKCL3Fixtures(f)
	for i := range fixtures {
		f.Add(uint8(i), []byte{})
	}
	f.Add(uint8(4), []byte{5, 4, 0x80 | 3})    // leaseDuration N "-1"
	f.Add(uint8(6), []byte{10, 14, 2, 'x', 1}) // sts as a list
	f.Add(uint8(9), []byte{18, 15, 1, 'x'})    // h as a map
	f.Fuzz(func(t *testing.T, pick uint8, edits []byte) {
		fx := fixtures[int(pick)%len(fixtures)]
		item := maps.Clone(fx.item)
		for len(edits) >= 3 {
			name := coordinationFuzzNames[int(edits[0])%len(coordinationFuzzNames)]
			typ, sel := edits[1], edits[2]
			edits = edits[3:]
			if typ == 0xff {
				delete(item, name)
				continue
			}
			var raw []byte
			if sel&fuzzWordFlag != 0 {
				raw = []byte(fuzzWords[int(sel&^fuzzWordFlag)%len(fuzzWords)])
			} else {
				n := min(int(sel&fuzzMaxRaw), len(edits))
				raw, edits = edits[:n], edits[n:]
			}
			item[name] = fuzzValue(typ%16, raw)
		}

		checkErr := func(decoder string, err error) bool {
			if err == nil {
				return true
			}
			var ce *coordinationItemError
			var ie *lease.ItemError
			if !errors.As(err, &ce) || !errors.As(err, &ie) || !errors.Is(err, lease.ErrMalformed) {
				t.Fatalf("%s = %v (%T); want a *coordinationItemError", decoder, err, err)
			}
			if ie.Attribute == "" {
				t.Fatalf("%s: error names no attribute: %v", decoder, err)
			}
			return false
		}
		if l, err := decodeLeaderLock(fx.table, item); checkErr("decodeLeaderLock", err) {
			back, err := decodeLeaderLock(fx.table, encodeLeaderLock(fx.table, l))
			if err != nil || !reflect.DeepEqual(back, l) {
				t.Fatalf("leader lock round trip: %+v became %+v, %v", l, back, err)
			}
		}
		if w, err := decodeWorkerMetricStats(fx.table, item); checkErr("decodeWorkerMetricStats", err) {
			back, err := decodeWorkerMetricStats(fx.table, encodeWorkerMetricStats(fx.table, w))
			if err != nil || !reflect.DeepEqual(back, w) {
				t.Fatalf("WorkerMetricStats round trip: %+v became %+v, %v", w, back, err)
			}
		}
		_, err := decodeClientVersionState(fx.table, item)
		checkErr("decodeClientVersionState", err)
		_, err = decodeTableMigrationState(fx.table, item)
		checkErr("decodeTableMigrationState", err)
	})
}
