// Command producer puts numbered payloads into a Kinesis stream, for trying
// out kcl's workers (examples/minimal, examples/worker): for each of -keys
// partition keys it puts "key-00/0", "key-00/1", … in order, as plain
// records, KPL aggregates (kcl's aggregate package), or both alternately.
// See package sequenced for how per-key order is kept.
//
// Run it against the local emulators:
//
//	scripts/emulators.sh start && eval "$(scripts/emulators.sh env)"
//	go run ./examples/producer -stream orders -create 2 -rate 100 -duration 30s
//
// Without KCL_KINESIS_ENDPOINT it talks to Kinesis in AWS_REGION with the
// credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kclgo/kcl/examples/producer/sequenced"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var (
		stream   = flag.String("stream", "", "stream name (required)")
		create   = flag.Int("create", 0, "create the stream with this many shards first (0: it must exist)")
		keys     = flag.Int("keys", 8, "number of partition keys: key-00, key-01, …")
		rate     = flag.Float64("rate", 100, "user records per second over all keys (0: as fast as possible)")
		count    = flag.Int("count", 0, "stop after this many user records (0: no limit)")
		duration = flag.Duration("duration", 0, "stop after this long (0: no limit; Ctrl-C stops too)")
		mode     = flag.String("mode", "mixed", "plain, aggregated or mixed")
		perAgg   = flag.Int("max-per-aggregate", 8, "most user records in one aggregate")
	)
	flag.Parse()
	if *stream == "" {
		flag.Usage()
		return errors.New("-stream is required")
	}
	m, err := sequenced.ParseMode(*mode)
	if err != nil {
		return err
	}
	kc := kinesisClient()

	if *create > 0 {
		if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: stream, ShardCount: aws.Int32(int32(*create))}); err != nil {
			return fmt.Errorf("create stream: %w", err)
		}
		w := kinesis.NewStreamExistsWaiter(kc, func(o *kinesis.StreamExistsWaiterOptions) { o.MinDelay = 100 * time.Millisecond })
		if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: stream}, time.Minute); err != nil {
			return fmt.Errorf("wait for stream: %w", err)
		}
	}

	names := make([]string, *keys)
	for i := range names {
		names[i] = fmt.Sprintf("key-%02d", i)
	}
	p, err := sequenced.New(kc, sequenced.Config{
		Stream: *stream, Keys: names, Rate: *rate, Count: *count, Mode: m, MaxPerAggregate: *perAgg,
	})
	if err != nil {
		return err
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	start := time.Now()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			st := p.Stats()
			fmt.Printf("put %d user records (%d plain, %d in %d aggregates) in %v\n",
				st.Records, st.Records-st.AggregatedRecords, st.AggregatedRecords, st.Aggregates, time.Since(start).Round(time.Millisecond))
			return err
		case <-t.C:
			fmt.Printf("%5.1fs  %d user records put\n", time.Since(start).Seconds(), p.Stats().Records)
		}
	}
}

// kinesisClient builds the client literally, as kcl's examples do: the
// library never loads AWS configuration, and config.LoadDefaultConfig is
// kept out of kcl's dependencies.
func kinesisClient() *kinesis.Client {
	cfg := aws.Config{
		Region:      os.Getenv("AWS_REGION"),
		Credentials: credentials.NewStaticCredentialsProvider(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN")),
		HTTPClient:  &http.Client{Timeout: 30 * time.Second},
	}
	endpoint := os.Getenv("KCL_KINESIS_ENDPOINT")
	if endpoint == "" {
		return kinesis.NewFromConfig(cfg)
	}
	cfg.Region = "us-east-1"
	cfg.Credentials = credentials.NewStaticCredentialsProvider("demo", "demo", "")
	return kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(endpoint) })
}
