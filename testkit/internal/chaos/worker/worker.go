// Package worker is the chaos harness's worker process: one kcl Worker whose
// processor records everything it is given, and whose hooks record every
// lease change and checkpoint write, as history lines (package
// testkit/internal/chaos/history) appended to a log file. The harness
// (testkit/internal/chaos/scenario) starts it as `kclchaos worker -stream … -table …
// -id … -log …` and signals it; Main is the whole program.
//
// Every line is written with one write(2) on a file opened O_APPEND, before
// the batch it reports can be checkpointed, so a SIGKILL leaves at most a
// cut-short last line and a checkpointed record has always been logged.
//
// Endpoints come from KCL_KINESIS_ENDPOINT and KCL_DYNAMODB_ENDPOINT (the
// harness points them at its fault-injecting proxies). The Worker
// coordinates as -coordination says: by default as a Worker does by
// default (consumer.CoordinationAuto, kcl fleet mode on a new table), or
// with consumer.CoordinationFleet or consumer.CoordinationKCL. SIGTERM or SIGINT
// stops the Worker gracefully and the process exits 0; it exits 1 if the
// Worker fails and 2 on bad flags.
//
// The -bug flag injects a deliberate defect, for the checker's self-test;
// see Bug.
package worker

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease/dynamolease"
)

// Main runs the worker with the command-line arguments args (without the
// program name) and returns the process exit code. Logs go to stderr.
func Main(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("kclchaos worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		stream        = fs.String("stream", "", "stream name (required)")
		table         = fs.String("table", "", "lease table name (required; created if missing)")
		id            = fs.String("id", "", "worker id (required)")
		logPath       = fs.String("log", "", "history log file, appended to (required)")
		coordination  = fs.String("coordination", "auto", "how the workers coordinate: auto (the Worker's default, kcl fleet on a new table), fleet (kcl fleet required) or kcl (per-lease renewal, KCL-compatible)")
		leaseDuration = fs.Duration("lease-duration", 3*time.Second, "lease duration (per-lease renewal); the take interval is a quarter of it")
		idle          = fs.Duration("idle", 200*time.Millisecond, "least time between GetRecords calls on one shard")
		shardSync     = fs.Duration("shard-sync", 2*time.Second, "shard sync interval")
		policy        = fs.String("checkpoint", "batch", "checkpoint policy: batch, every=DURATION or manual (SHARD_END only)")
		shutdown      = fs.Duration("shutdown-timeout", 10*time.Second, "bound on the graceful stop")
		bugName       = fs.String("bug", "", "deliberate bug: unfenced or child-before-parent (default none)")
		verbose       = fs.Bool("v", false, "log at debug level")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *stream == "" || *table == "" || *id == "" || *logPath == "" {
		fmt.Fprintln(stderr, "kclchaos worker: -stream, -table, -id and -log are required")
		return 2
	}
	cp, err := ParsePolicy(*policy)
	if err != nil {
		fmt.Fprintln(stderr, "kclchaos worker:", err)
		return 2
	}
	bug, err := ParseBug(*bugName)
	if err != nil {
		fmt.Fprintln(stderr, "kclchaos worker:", err)
		return 2
	}
	coord, err := ParseCoordination(*coordination)
	if err != nil {
		fmt.Fprintln(stderr, "kclchaos worker:", err)
		return 2
	}

	logCfg := zap.NewProductionConfig()
	logCfg.DisableStacktrace = true
	logCfg.OutputPaths, logCfg.ErrorOutputPaths = []string{"stderr"}, []string{"stderr"}
	if *verbose {
		logCfg.Level = zap.NewAtomicLevelAt(zap.DebugLevel)
	}
	log, err := logCfg.Build()
	if err != nil {
		fmt.Fprintln(stderr, "kclchaos worker:", err)
		return 1
	}
	defer func() { _ = log.Sync() }()
	log = log.With(zap.String("worker_id", *id))

	f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		log.Error("opening the history log", zap.Error(err))
		return 1
	}
	defer f.Close()
	rec := &recorder{worker: *id, w: f}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // a second signal kills

	kc, ddb := clients()
	ds, err := dynamolease.New(ddb, *table)
	if err != nil {
		log.Error("lease store", zap.Error(err))
		return 1
	}
	if err := ds.EnsureTable(ctx); err != nil {
		log.Error("lease table", zap.Error(err))
		return 1
	}
	store := bug.wrap(ds, *id)

	w, err := consumer.New(kc, store, *stream,
		consumer.FactoryFunc(func(consumer.ShardInfo) (consumer.Processor, error) {
			return consumer.ProcessorFunc(rec.process), nil
		}),
		consumer.WithWorkerID(*id),
		consumer.WithLogger(log),
		consumer.WithInitialPosition(checkpoint.TrimHorizon),
		consumer.WithCheckpointPolicy(cp),
		consumer.WithShutdownTimeout(*shutdown),
		consumer.WithIdleTime(*idle),
		consumer.WithShardSyncInterval(*shardSync),
		consumer.WithParentPollInterval(200*time.Millisecond),
		consumer.WithLeaseDuration(*leaseDuration),
		consumer.WithTakeInterval(*leaseDuration/4),
		consumer.WithAssignmentPollInterval(200*time.Millisecond),
		consumer.WithHooks(rec),
		consumer.WithCoordination(coord),
	)
	if err != nil {
		log.Error("consumer", zap.Error(err))
		return 1
	}
	log.Info("worker starting", zap.String("stream", *stream), zap.String("table", *table),
		zap.Stringer("policy", cp), zap.Stringer("bug", bug), zap.Stringer("coordination", coord))
	if err := w.Run(ctx); err != nil {
		log.Error("worker failed", zap.Error(err))
		return 1
	}
	if err := rec.err(); err != nil {
		log.Error("writing the history log", zap.Error(err))
		return 1
	}
	log.Info("worker stopped")
	return 0
}

// ParseCoordination parses a -coordination value: "auto" (or ""),
// "fleet" or "kcl".
func ParseCoordination(s string) (consumer.Coordination, error) {
	switch s {
	case "", "auto":
		return consumer.CoordinationAuto(), nil
	case "fleet":
		return consumer.CoordinationFleet(), nil
	case "kcl":
		return consumer.CoordinationKCL(), nil
	}
	return consumer.Coordination{}, fmt.Errorf("-coordination %q: want auto, fleet or kcl", s)
}

// ParsePolicy parses a -checkpoint value: "batch", "every=DURATION" or
// "manual".
func ParsePolicy(s string) (consumer.CheckpointPolicy, error) {
	switch {
	case s == "batch":
		return consumer.CheckpointAfterEachBatch(), nil
	case s == "manual":
		return consumer.CheckpointManual(), nil
	case strings.HasPrefix(s, "every="):
		d, err := time.ParseDuration(strings.TrimPrefix(s, "every="))
		if err != nil || d <= 0 {
			return consumer.CheckpointPolicy{}, fmt.Errorf("-checkpoint %q: want a positive duration after every=", s)
		}
		return consumer.CheckpointEvery(d), nil
	}
	return consumer.CheckpointPolicy{}, fmt.Errorf("-checkpoint %q: want batch, every=DURATION or manual", s)
}

// clients builds the SDK clients literally (see examples/worker). Calls are
// bounded so that a blackholed request ends, and retried as the emulator
// tests' clients are.
func clients() (*kinesis.Client, *dynamodb.Client) {
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   100,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
	}
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("chaos", "chaos", ""),
		HTTPClient:  &http.Client{Transport: tr, Timeout: 15 * time.Second},
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 5
				o.MaxBackoff = time.Second
				o.RateLimiter = ratelimit.None
			})
		},
	}
	kEndpoint, dEndpoint := os.Getenv("KCL_KINESIS_ENDPOINT"), os.Getenv("KCL_DYNAMODB_ENDPOINT")
	kc := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		if kEndpoint != "" {
			o.BaseEndpoint = aws.String(kEndpoint)
		}
	})
	ddb := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if dEndpoint != "" {
			o.BaseEndpoint = aws.String(dEndpoint)
		}
	})
	return kc, ddb
}
