// Command minimal is the smallest useful kcl consumer: it logs every record
// of a stream and checkpoints after each batch. Start several copies and
// they share the stream's shards; stop one with Ctrl-C and the others take
// its shards over.
//
// Against the local emulators, with records put by examples/producer:
//
//	scripts/emulators.sh start && eval "$(scripts/emulators.sh env)"
//	go run ./examples/producer -stream orders -create 2 -duration 1m &
//	go run ./examples/minimal -stream orders
//
// Without KCL_KINESIS_ENDPOINT and KCL_DYNAMODB_ENDPOINT it uses AWS in
// AWS_REGION with the credentials in AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY. (A real application builds its aws.Config with
// config.LoadDefaultConfig; kcl's own module does not depend on it.)
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease/dynamolease"
)

func main() {
	stream := flag.String("stream", "orders", "stream to consume")
	app := flag.String("app", "minimal", "application name: the lease table's name")
	flag.Parse()

	// Ctrl-C stops the worker gracefully: it finishes the batch in hand,
	// checkpoints and releases its leases.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	// Clients for AWS, or for local emulators when their endpoints are set.
	kinesisURL, dynamoURL := os.Getenv("KCL_KINESIS_ENDPOINT"), os.Getenv("KCL_DYNAMODB_ENDPOINT")
	cfg := aws.Config{
		Region:      os.Getenv("AWS_REGION"),
		Credentials: credentials.NewStaticCredentialsProvider(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN")),
		HTTPClient:  &http.Client{Timeout: 30 * time.Second},
	}
	if kinesisURL != "" || dynamoURL != "" {
		cfg.Region, cfg.Credentials = "us-east-1", credentials.NewStaticCredentialsProvider("local", "local", "")
	}
	kc := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		if kinesisURL != "" {
			o.BaseEndpoint = aws.String(kinesisURL)
		}
	})
	ddb := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if dynamoURL != "" {
			o.BaseEndpoint = aws.String(dynamoURL)
		}
	})

	// The lease table records which worker processes which shard, and how far.
	store, err := dynamolease.New(ddb, *app)
	if err != nil {
		log.Fatal(err)
	}
	if err := store.EnsureTable(ctx); err != nil {
		log.Fatal(err)
	}

	// One processor per shard; here the same function for every shard.
	logRecords := consumer.ProcessorFunc(func(ctx context.Context, b *consumer.Batch) error {
		for _, r := range b.Records {
			log.Printf("%s %s key=%s data=%q", b.ShardID, r.SequenceNumber, r.PartitionKey, r.Data)
		}
		return nil // processed: the Worker checkpoints the batch (see the policy below)
	})
	w, err := consumer.New(kc, store, *stream,
		consumer.FactoryFunc(func(consumer.ShardInfo) (consumer.Processor, error) { return logRecords, nil }),
		consumer.WithInitialPosition(checkpoint.TrimHorizon),
		consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()),
	)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("worker %s consuming %s", w.ID(), *stream)
	if err := w.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
