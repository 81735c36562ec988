// Command hostbench runs the multilang host as `kcl multilang` does, for the
// start-up measurement of the host benchmarks (BenchmarkHostStartup in
// ../host) while cmd/kcl has no main package: it loads the properties file,
// builds the Kinesis and DynamoDB clients, makes the lease table ready
// (creating it when it is missing) and runs a host.Host until SIGINT or
// SIGTERM.
//
// Unlike kcl it ignores AwsCredentialsProvider and signs with static
// credentials, which is all the local emulators need.
//
// Usage:
//
//	hostbench -p app.properties
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/kclgo/kcl/cmd/kcl/internal/multilang/host"
	"github.com/kclgo/kcl/cmd/kcl/internal/properties"
	"github.com/kclgo/kcl/lease/dynamolease"
)

func main() {
	file := flag.String("p", "", "the MultiLangDaemon properties file")
	flag.Parse()
	if err := run(*file); err != nil {
		fmt.Fprintln(os.Stderr, "hostbench:", err)
		os.Exit(1)
	}
}

func run(file string) error {
	log, err := zap.NewProduction()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	cfg, warnings, err := properties.LoadFile(file)
	for _, w := range warnings {
		log.Warn(w.String())
	}
	if err != nil {
		return err
	}
	conf := aws.Config{
		Region: cfg.Region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDHOSTBENCH", SecretAccessKey: "hostbench"}, nil
		}),
	}
	kc := kinesis.NewFromConfig(conf, func(o *kinesis.Options) {
		if cfg.KinesisEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.KinesisEndpoint)
		}
	})
	dc := dynamodb.NewFromConfig(conf, func(o *dynamodb.Options) {
		if cfg.DynamoDBEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.DynamoDBEndpoint)
		}
	})
	store, err := dynamolease.New(dc, cfg.TableName)
	if err != nil {
		return err
	}
	h, err := host.New(host.Config{Properties: cfg, Kinesis: kc, Store: store, Logger: log})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := store.EnsureTable(ctx); err != nil {
		return err
	}
	return h.Run(ctx)
}
