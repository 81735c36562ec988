package records

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/deaggregate"
	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/testkit/fakekinesis"
)

func lines(n int) <-chan []byte {
	ch := make(chan []byte, n)
	for i := range n {
		ch <- fmt.Appendf(nil, "line-%05d", i)
	}
	close(ch)
	return ch
}

// readAll returns every user record of every shard, by data, with the
// shard it was on.
func readAll(t *testing.T, f *fakekinesis.Fake, stream string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, sh := range f.Shards(stream) {
		id := aws.ToString(sh.ShardId)
		rg, err := hashkey.ParseRange(aws.ToString(sh.HashKeyRange.StartingHashKey), aws.ToString(sh.HashKeyRange.EndingHashKey))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range deaggregate.Records(f.Records(stream, id)) {
			if _, dup := got[string(r.Data)]; dup {
				t.Errorf("%s delivered twice", r.Data)
			}
			if !rg.Contains(hashkey.FromPartitionKey(r.PartitionKey)) {
				t.Errorf("%s with key %s is on %s, whose range does not hold its key", r.Data, r.PartitionKey, id)
			}
			got[string(r.Data)] = id
		}
	}
	return got
}

func TestProducerPutsEveryLineOnceOnTheShardOfItsKey(t *testing.T) {
	for _, agg := range []bool{false, true} {
		t.Run(fmt.Sprintf("aggregate=%v", agg), func(t *testing.T) {
			f := fakekinesis.New(fakekinesis.WithStream("s", 4))
			key, _ := TemplateKey("k-{n}")
			p, err := NewProducer(f, PutConfig{Stream: "s", Key: key, Aggregate: agg})
			if err != nil {
				t.Fatal(err)
			}
			st, err := p.Run(t.Context(), lines(1234))
			if err != nil {
				t.Fatal(err)
			}
			if st.Lines != 1234 || st.Put != 1234 || st.Failed != 0 {
				t.Fatalf("stats %+v", st)
			}
			if got := readAll(t, f, "s"); len(got) != 1234 {
				t.Fatalf("read %d records back, want 1234", len(got))
			}
			if agg && st.Entries > 8 {
				t.Errorf("aggregated into %d Kinesis records, want at most 2 per shard", st.Entries)
			}
			if !agg && st.Calls != 3 {
				t.Errorf("%d PutRecords calls for 1234 records, want 3 (500 each)", st.Calls)
			}
		})
	}
}

// partialFailer fails each record on its first attempt: every odd record
// of a batch gets an error code.
type partialFailer struct {
	*fakekinesis.Fake
	mu     sync.Mutex
	seen   map[string]int
	always bool // fail every attempt
	order  [][]string
}

func (p *partialFailer) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, opt ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	p.mu.Lock()
	var names []string
	fail := map[int]bool{}
	for i, e := range in.Records {
		names = append(names, string(e.Data))
		p.seen[string(e.Data)]++
		if i%2 == 1 && (p.always || p.seen[string(e.Data)] == 1) {
			fail[i] = true
		}
	}
	p.order = append(p.order, names)
	p.mu.Unlock()
	var sub kinesis.PutRecordsInput = *in
	sub.Records = nil
	for i, e := range in.Records {
		if !fail[i] {
			sub.Records = append(sub.Records, e)
		}
	}
	out, err := p.Fake.PutRecords(ctx, &sub, opt...)
	if err != nil {
		return nil, err
	}
	full := &kinesis.PutRecordsOutput{}
	j := 0
	for i := range in.Records {
		if fail[i] {
			full.Records = append(full.Records, recordsFailed())
			full.FailedRecordCount = aws.Int32(aws.ToInt32(full.FailedRecordCount) + 1)
			continue
		}
		full.Records = append(full.Records, out.Records[j])
		j++
	}
	return full, nil
}

func TestProducerRetriesFailedRecordsFirst(t *testing.T) {
	f := &partialFailer{Fake: fakekinesis.New(fakekinesis.WithStream("s", 2)), seen: map[string]int{}}
	key, _ := TemplateKey("{uuid}")
	p, _ := NewProducer(f, PutConfig{Stream: "s", Key: key, BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond})
	st, err := p.Run(t.Context(), lines(1000))
	if err != nil {
		t.Fatal(err)
	}
	if st.Put != 1000 || st.Failed != 0 || st.Retried == 0 {
		t.Fatalf("stats %+v", st)
	}
	if len(readAll(t, f.Fake, "s")) != 1000 {
		t.Fatal("not every line was put once")
	}
	// The second call starts with the 250 records the first one failed.
	second := f.order[1]
	for i := range 250 {
		if want := fmt.Sprintf("line-%05d", 2*i+1); second[i] != want {
			t.Fatalf("second batch[%d] = %s, want the failed %s first", i, second[i], want)
		}
	}
}

func TestProducerReportsRecordsThatKeepFailing(t *testing.T) {
	f := &partialFailer{Fake: fakekinesis.New(fakekinesis.WithStream("s", 1)), seen: map[string]int{}, always: true}
	key, _ := TemplateKey("fixed")
	p, _ := NewProducer(f, PutConfig{Stream: "s", Key: key, MaxAttempts: 3, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond})
	st, err := p.Run(t.Context(), lines(10))
	if !errors.Is(err, ErrRecordsFailed) {
		t.Fatalf("err = %v, want ErrRecordsFailed", err)
	}
	if st.Failed == 0 || st.Put+st.Failed != 10 {
		t.Fatalf("stats %+v", st)
	}
}

func TestProducerStopsOnUnknownStream(t *testing.T) {
	f := fakekinesis.New(fakekinesis.WithStream("s", 1))
	key, _ := TemplateKey("k")
	for _, agg := range []bool{false, true} {
		p, _ := NewProducer(f, PutConfig{Stream: "nope", Key: key, Aggregate: agg})
		if _, err := p.Run(t.Context(), lines(3)); err == nil {
			t.Errorf("aggregate=%v: no error for an unknown stream", agg)
		}
	}
}

func TestTemplateAndFieldKeys(t *testing.T) {
	k, err := TemplateKey("user-{n}")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := k(7, nil); got != "user-7" {
		t.Errorf("template {n} = %q", got)
	}
	k, _ = TemplateKey("{uuid}")
	a, _ := k(0, nil)
	b, _ := k(0, nil)
	if len(a) != 36 || a == b || a[14] != '4' {
		t.Errorf("uuids %q %q", a, b)
	}
	if _, err := TemplateKey("{x}"); err == nil {
		t.Error("unknown placeholder accepted")
	}
	fk := FieldKey("id")
	for line, want := range map[string]string{`{"id":"a"}`: "a", `{"id":42}`: "42", `{"id":true}`: "true"} {
		if got, err := fk(0, []byte(line)); err != nil || got != want {
			t.Errorf("%s: %q, %v", line, got, err)
		}
	}
	for _, line := range []string{`{"x":1}`, `nope`, `{"id":null}`, `{"id":{}}`, `{"id":""}`} {
		if _, err := fk(0, []byte(line)); !errors.Is(err, ErrNoKey) {
			t.Errorf("%s: err %v, want ErrNoKey", line, err)
		}
	}
}

func recordsFailed() kinesisResultEntry {
	return kinesisResultEntry{ErrorCode: aws.String("ProvisionedThroughputExceededException"), ErrorMessage: aws.String("slow down")}
}

type kinesisResultEntry = ktypes.PutRecordsResultEntry
