package consumer_test

import (
	"context"
	"log"
	"os/signal"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease/dynamolease"
)

// A complete consumer: every process of the fleet runs this. The Worker
// shares the stream's shards with the other processes through the lease
// table, follows splits and merges, and on SIGTERM finishes its batches,
// checkpoints and hands its shards to the others.
func ExampleNew() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var cfg aws.Config // in a real program: config.LoadDefaultConfig(ctx)
	// The lease table of a Java KCL application works as it is: same name,
	// same items, same checkpoints.
	leases, err := dynamolease.New(dynamodb.NewFromConfig(cfg), "orders-app")
	if err != nil {
		log.Fatal(err)
	}
	if err := leases.EnsureTable(ctx); err != nil {
		log.Fatal(err)
	}

	process := consumer.ProcessorFunc(func(ctx context.Context, b *consumer.Batch) error {
		for _, r := range b.Records {
			log.Printf("%s %s: %s", b.ShardID, r.PartitionKey, r.Data)
		}
		return nil // an error would deliver the same batch again
	})
	w, err := consumer.New(kinesis.NewFromConfig(cfg), leases, "orders",
		consumer.FactoryFunc(func(consumer.ShardInfo) (consumer.Processor, error) { return process, nil }),
		consumer.WithInitialPosition(checkpoint.TrimHorizon),
		consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()),
		consumer.WithLogger(zap.Must(zap.NewProduction())),
	)
	if err != nil {
		log.Fatal(err) // a *consumer.ConfigError naming the bad option
	}
	if err := w.Run(ctx); err != nil {
		log.Fatal(err) // e.g. consumer.ErrStreamNotFound
	}
}
