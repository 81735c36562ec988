package deaggregate

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// TestAppendWholeBatchEqualsOneRecordAtATime checks the digest windows: a
// batch of mixed records (valid aggregates, plain records, bad digests,
// records too short, aggregates of different sizes) deaggregated in one
// Append — digests computed sixteen at a time — gives exactly what Append
// gives one record at a time, and reports the same problems in the same order.
func TestAppendWholeBatchEqualsOneRecordAtATime(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 50 {
		n := r.IntN(120)
		in := make([]types.Record, 0, n)
		for i := range n {
			seq := fmt.Sprintf("%d%04d", trial+1, i)
			var d []byte
			switch r.IntN(6) {
			case 0:
				d = []byte("plain " + seq)
			case 1: // bad digest
				d = frame(cat(pkEntry("k"), record(pkIndex(0), data(seq))))
				d[len(d)-1] ^= 0xFF
			case 2: // magic but too short
				d = magic[:]
			default: // a valid aggregate of 1..30 user records
				var parts [][]byte
				parts = append(parts, pkEntry("k-"+seq), pkEntry("other"))
				for j := range 1 + r.IntN(30) {
					parts = append(parts, record(pkIndex(uint64(j%2)), data(fmt.Sprintf("%s/%d", seq, j))))
				}
				d = frame(cat(parts...))
			}
			in = append(in, kinesisRecord(seq, d))
		}
		var whole, single collector
		dw, _ := New(WithErrorHandler(whole.handle))
		ds, _ := New(WithErrorHandler(single.handle))
		got := dw.Append(nil, in)
		var want []Record
		for i := range in {
			want = ds.Append(want, in[i:i+1])
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("trial %d: a whole batch of %d records deaggregates differently from one record at a time", trial, n)
		}
		if len(whole.errs) != len(single.errs) {
			t.Fatalf("trial %d: %d problems reported for the batch, %d one at a time", trial, len(whole.errs), len(single.errs))
		}
		for i := range whole.errs {
			if whole.errs[i].Error() != single.errs[i].Error() {
				t.Fatalf("trial %d: problem %d: %v, one at a time %v", trial, i, whole.errs[i], single.errs[i])
			}
		}
		if dw.Stats() != ds.Stats() {
			t.Fatalf("trial %d: stats %+v, one at a time %+v", trial, dw.Stats(), ds.Stats())
		}
	}
}
