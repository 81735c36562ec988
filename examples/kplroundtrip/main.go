// Command kplroundtrip is kcl's demo until the Worker lands: it creates a
// stream on a local Kinesis emulator, puts plain records and KPL-aggregated
// records (built with kcl's aggregate package) into it, reads every shard back
// with GetRecords, expands the aggregates with kcl's deaggregate package and
// prints what came back, ending with a check that every user record was
// recovered exactly once.
//
// Run it with the emulators started by the project's scripts:
//
//	make demo
//
// or, with emulators already running:
//
//	eval "$(scripts/emulators.sh env)" && go run ./examples/kplroundtrip
//
// It exits non-zero if a record is missing, duplicated or altered.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/aggregate"
	"github.com/kclgo/kcl/deaggregate"
	"github.com/kclgo/kcl/hashkey"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "kplroundtrip:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var (
		shards  = flag.Int("shards", 2, "shards in the demo stream")
		keys    = flag.Int("keys", 8, "distinct partition keys")
		perKey  = flag.Int("per-key", 5, "records per partition key and kind (plain and aggregated)")
		verbose = flag.Bool("v", true, "print every user record read back")
	)
	flag.Parse()

	endpoint := os.Getenv("KCL_KINESIS_ENDPOINT")
	if endpoint == "" {
		return errors.New(`KCL_KINESIS_ENDPOINT is not set: run "make demo", or start the emulators with "make emulators-start" and eval "$(scripts/emulators.sh env)"`)
	}
	// Examples build their clients literally; the library itself never loads
	// AWS configuration.
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("demo", "demo", ""),
		HTTPClient:  &http.Client{Timeout: 30 * time.Second},
	}
	kc := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(endpoint) })

	stream := fmt.Sprintf("kcl-demo-%d", time.Now().UnixNano())
	fmt.Printf("creating stream %s with %d shards\n", stream, *shards)
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: &stream, ShardCount: aws.Int32(int32(*shards))}); err != nil {
		return fmt.Errorf("create stream: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := kc.DeleteStream(dctx, &kinesis.DeleteStreamInput{StreamName: &stream}); err != nil {
			fmt.Fprintln(os.Stderr, "delete stream:", err)
		}
	}()
	w := kinesis.NewStreamExistsWaiter(kc)
	if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: &stream}, time.Minute, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second
	}); err != nil {
		return fmt.Errorf("wait for stream: %w", err)
	}

	want, err := produce(ctx, kc, stream, *keys, *perKey)
	if err != nil {
		return err
	}
	got, err := consume(ctx, kc, stream)
	if err != nil {
		return err
	}
	if *verbose {
		printRecords(got)
	}
	return verify(want, got)
}

// produce puts, for every key, perKey plain records and perKey user records
// packed into KPL aggregates, and returns the payloads it put per key.
//
// Like the KPL, it keeps one aggregator per shard and routes each user record
// by its effective hash key: an aggregate lands on the shard of its first user
// record, and a consumer filtering by hash range (as KCL and kcl do) drops an
// aggregate holding a record that belongs to another shard.
func produce(ctx context.Context, kc *kinesis.Client, stream string, keys, perKey int) (map[string][]string, error) {
	ls, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: &stream})
	if err != nil {
		return nil, fmt.Errorf("list shards: %w", err)
	}
	type shardAgg struct {
		r hashkey.Range
		a *aggregate.Aggregator
	}
	var aggs []shardAgg
	for _, sh := range ls.Shards {
		r, err := hashkey.ParseRange(aws.ToString(sh.HashKeyRange.StartingHashKey), aws.ToString(sh.HashKeyRange.EndingHashKey))
		if err != nil {
			return nil, fmt.Errorf("shard %s: %w", aws.ToString(sh.ShardId), err)
		}
		a, err := aggregate.New(aggregate.WithMaxSize(4096))
		if err != nil {
			return nil, err
		}
		aggs = append(aggs, shardAgg{r, a})
	}

	want := make(map[string][]string)
	var plain, aggregated []types.PutRecordsRequestEntry
	addEntry := func(e aggregate.Entry) {
		entry := types.PutRecordsRequestEntry{Data: e.Data, PartitionKey: aws.String(e.PartitionKey)}
		if e.ExplicitHashKey != "" {
			entry.ExplicitHashKey = aws.String(e.ExplicitHashKey)
		}
		aggregated = append(aggregated, entry)
	}
	for i := range perKey {
		for k := range keys {
			key := fmt.Sprintf("key-%02d", k)
			p := fmt.Sprintf("%s plain #%d", key, i)
			plain = append(plain, types.PutRecordsRequestEntry{Data: []byte(p), PartitionKey: aws.String(key)})
			want[key] = append(want[key], p)

			a := fmt.Sprintf("%s aggregated #%d", key, i)
			hk := hashkey.FromPartitionKey(key)
			for _, sa := range aggs {
				if !sa.r.Contains(hk) {
					continue
				}
				full, ok, err := sa.a.Add(aggregate.UserRecord{PartitionKey: key, Data: []byte(a)})
				if err != nil {
					return nil, fmt.Errorf("aggregate: %w", err)
				}
				if ok {
					addEntry(full)
				}
			}
			want[key] = append(want[key], a)
		}
	}
	for _, sa := range aggs {
		if last, ok := sa.a.Flush(); ok {
			addEntry(last)
		}
	}
	fmt.Printf("putting %d plain records and %d aggregates holding %d user records\n", len(plain), len(aggregated), keys*perKey)
	for _, batch := range [][]types.PutRecordsRequestEntry{plain, aggregated} {
		for len(batch) > 0 {
			n := min(len(batch), 500) // PutRecords takes at most 500 entries
			out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &stream, Records: batch[:n]})
			if err != nil {
				return nil, fmt.Errorf("put records: %w", err)
			}
			if c := aws.ToInt32(out.FailedRecordCount); c > 0 {
				return nil, fmt.Errorf("put records: %d entries failed", c)
			}
			batch = batch[n:]
		}
	}
	return want, nil
}

// consume reads every shard from TRIM_HORIZON until it returns no more
// records and expands aggregates, filtering each by its shard's hash range.
func consume(ctx context.Context, kc *kinesis.Client, stream string) ([]shardRecord, error) {
	ls, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: &stream})
	if err != nil {
		return nil, fmt.Errorf("list shards: %w", err)
	}
	var out []shardRecord
	for _, sh := range ls.Shards {
		d, err := deaggregate.New(
			deaggregate.WithHashRange(aws.ToString(sh.HashKeyRange.StartingHashKey), aws.ToString(sh.HashKeyRange.EndingHashKey)),
			deaggregate.WithErrorHandler(func(e *deaggregate.RecordError) {
				fmt.Fprintf(os.Stderr, "shard %s: %v\n", aws.ToString(sh.ShardId), e)
			}),
		)
		if err != nil {
			return nil, err
		}
		it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: &stream, ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			return nil, fmt.Errorf("get shard iterator: %w", err)
		}
		iter := it.ShardIterator
		var recs []deaggregate.Record
		for iter != nil {
			res, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				return nil, fmt.Errorf("get records: %w", err)
			}
			if len(res.Records) == 0 && aws.ToInt64(res.MillisBehindLatest) == 0 {
				break // an open shard, read up to its tip: everything put so far has been read
			}
			recs = d.Append(recs[:0], res.Records)
			for _, r := range recs {
				out = append(out, shardRecord{shard: aws.ToString(sh.ShardId), Record: r})
			}
			iter = res.NextShardIterator
		}
		st := d.Stats()
		fmt.Printf("%s: %d Kinesis records, %d aggregates, %d user records, %d malformed, %d filtered\n",
			aws.ToString(sh.ShardId), st.Records, st.Aggregates, st.UserRecords, st.Malformed, st.Filtered)
	}
	return out, nil
}

type shardRecord struct {
	shard string
	deaggregate.Record
}

func printRecords(recs []shardRecord) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tSEQUENCE\tSUB\tAGG\tKEY\tDATA")
	for _, r := range recs {
		seq := r.SequenceNumber
		if len(seq) > 12 {
			seq = "…" + seq[len(seq)-11:]
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%t\t%s\t%s\n", r.shard, seq, r.SubSequenceNumber, r.Aggregated, r.PartitionKey, r.Data)
	}
	tw.Flush()
}

// verify checks that every payload came back exactly once and, per key, in
// the order it was put within each kind (plain records and aggregated user
// records travel in separate PutRecords calls).
func verify(want map[string][]string, got []shardRecord) error {
	gotByKey := make(map[string][]string)
	for _, r := range got {
		gotByKey[r.PartitionKey] = append(gotByKey[r.PartitionKey], string(r.Data))
	}
	var problems []string
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	total := 0
	for _, k := range keys {
		total += len(want[k])
		for _, kind := range []string{" plain ", " aggregated "} {
			w, g := filter(want[k], kind), filter(gotByKey[k], kind)
			if strings.Join(w, "\n") != strings.Join(g, "\n") {
				problems = append(problems, fmt.Sprintf("key %s (%s): put %q, read %q", k, strings.TrimSpace(kind), w, g))
			}
		}
	}
	fmt.Printf("user records put: %d, read back: %d\n", total, len(got))
	if len(got) != total {
		problems = append(problems, fmt.Sprintf("read %d user records, want %d", len(got), total))
	}
	if len(problems) > 0 {
		return fmt.Errorf("round trip failed:\n  %s", strings.Join(problems, "\n  "))
	}
	fmt.Println("OK: every record came back exactly once, in order per key")
	return nil
}

func filter(s []string, substr string) []string {
	var out []string
	for _, v := range s {
		if strings.Contains(v, substr) {
			out = append(out, v)
		}
	}
	return out
}
