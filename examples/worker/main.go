// Command worker runs one kcl Worker as a process and reports, on standard
// output, every user record it processes and every lease it gains or gives
// up, one JSON object per line. testkit/cmd/kcldemo runs several of them as a
// fleet, and end-to-end tests drive it the same way.
//
// Run it against the local emulators:
//
//	scripts/emulators.sh start && eval "$(scripts/emulators.sh env)"
//	cd examples/worker && go run . -stream orders -table orders-app -metrics-addr 127.0.0.1:9090
//
// # Flags
//
//	-stream NAME               stream to consume (required)
//	-table NAME                lease table (required); created if missing
//	-id WORKER_ID              lease owner id (default: host name, pid, random suffix)
//	-coordination MODE         auto (default): kcl fleet on a new table, KCL-compatible
//	                           on a table per-lease workers use (consumer.CoordinationAuto);
//	                           fleet: kcl fleet, heartbeats and a leader, failover time 2s
//	                           (consumer.CoordinationFleet); kcl: KCL-compatible per-lease
//	                           renewal (consumer.CoordinationKCL)
//	-lease-duration D          lease duration (default 10s); the take interval is D/4,
//	                           the assignment poll interval 200ms; in kcl fleet mode it
//	                           only bounds how long a per-lease owner keeps its leases
//	-idle D                    least time between GetRecords calls per shard (default 200ms)
//	-initial POSITION          trim_horizon (default) or latest: where never-processed
//	                           parts of the stream start
//	-checkpoint POLICY         batch (default): the Worker checkpoints after each batch;
//	                           manual: nothing is checkpointed but SHARD_END, so a new
//	                           owner of a shard starts again from its beginning
//	-shutdown-timeout D        bound on the graceful stop (default 10s)
//	-efo NAME                  read through enhanced fan-out as the stream consumer NAME
//	                           (registered if missing) instead of polling; -idle is ignored
//	-metrics-addr ADDR         serve /metrics (Prometheus, plugin/kprom), /healthz and /readyz
//	                           (package health) on ADDR, such as 127.0.0.1:9090 (default: off)
//
// This program is a module of its own (go.mod beside it) because /metrics comes from
// the Prometheus plugin, which is one: build it with `cd examples/worker && go build .`.
//
// Endpoints come from KCL_KINESIS_ENDPOINT and KCL_DYNAMODB_ENDPOINT (see
// scripts/emulators.sh env); without them it talks to AWS in AWS_REGION with
// the credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
//
// # Output
//
// One line per processed user record:
//
//	{"w":"<worker id>","shard":"<shard id>","key":"<partition key>","seq":"<sequence number>","sub":<sub-sequence number>,"data":"<record data>"}
//
// and one per lease change, event being acquired, lost, released or
// "shard ended":
//
//	{"w":"<worker id>","event":"acquired","shard":"<shard id>"}
//
// The lines of a batch are written and flushed before ProcessRecords
// returns, hence before the batch is checkpointed: a record whose checkpoint
// is in the lease table has always been reported, even if the process is
// killed right after. Logs go to standard error.
//
// SIGTERM or SIGINT stops the Worker gracefully (in-flight batches finish,
// checkpoints are written, leases released) and the process exits 0; a
// second signal kills it. It exits 1 if the Worker fails.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/health"
	"github.com/kclgo/kcl/lease/dynamolease"
	"github.com/kclgo/kcl/plugin/kprom"
	"github.com/kclgo/kcl/testkit/kinesismock"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		stream          = flag.String("stream", "", "stream name (required)")
		table           = flag.String("table", "", "lease table name (required; created if missing)")
		id              = flag.String("id", "", "worker id (default: host name, pid and a random suffix)")
		coordination    = flag.String("coordination", "auto", "auto, fleet (kcl fleet) or kcl (KCL-compatible per-lease renewal)")
		leaseDuration   = flag.Duration("lease-duration", 10*time.Second, "lease duration; the take interval is a quarter of it")
		idle            = flag.Duration("idle", 200*time.Millisecond, "least time between GetRecords calls on one shard")
		initial         = flag.String("initial", "trim_horizon", "trim_horizon or latest")
		checkpointing   = flag.String("checkpoint", "batch", "batch (checkpoint after each batch) or manual (only SHARD_END)")
		shutdownTimeout = flag.Duration("shutdown-timeout", 10*time.Second, "bound on the graceful stop")
		efo             = flag.String("efo", "", "enhanced fan-out consumer name (default: polling)")
		metricsAddr     = flag.String("metrics-addr", "", "serve /metrics, /healthz and /readyz on this address (default: off)")
	)
	flag.Parse()

	logCfg := zap.NewProductionConfig() // JSON on standard error
	logCfg.DisableStacktrace = true
	log, err := logCfg.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	defer func() { _ = log.Sync() }()
	fail := func(err error) int {
		log.Error("worker failed", zap.Error(err))
		return 1
	}

	if *stream == "" || *table == "" {
		flag.Usage()
		return fail(errors.New("-stream and -table are required"))
	}
	var pos checkpoint.Position
	switch *initial {
	case "trim_horizon":
		pos = checkpoint.TrimHorizon
	case "latest":
		pos = checkpoint.Latest
	default:
		return fail(fmt.Errorf("-initial %q: want trim_horizon or latest", *initial))
	}
	var policy consumer.CheckpointPolicy
	switch *checkpointing {
	case "batch":
		policy = consumer.CheckpointAfterEachBatch()
	case "manual":
		policy = consumer.CheckpointManual()
	default:
		return fail(fmt.Errorf("-checkpoint %q: want batch or manual", *checkpointing))
	}
	var coord consumer.Coordination
	switch *coordination {
	case "auto":
		coord = consumer.CoordinationAuto()
	case "fleet":
		coord = consumer.CoordinationFleet()
	case "kcl":
		coord = consumer.CoordinationKCL()
	default:
		return fail(fmt.Errorf("-coordination %q: want auto, fleet or kcl", *coordination))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, restore the default action: a second one kills.
	context.AfterFunc(ctx, stop)

	kc, ddb := clients(*efo != "")
	store, err := dynamolease.New(ddb, *table)
	if err != nil {
		return fail(err)
	}
	if err := store.EnsureTable(ctx); err != nil {
		return fail(err)
	}

	out := &output{w: bufio.NewWriterSize(os.Stdout, 64<<10)}
	metrics := kprom.New(kprom.WithLeaseStore(store))
	opts := []consumer.Option{
		consumer.WithHooks(metrics),
		consumer.WithLogger(log),
		consumer.WithInitialPosition(pos),
		consumer.WithCheckpointPolicy(policy),
		consumer.WithCoordination(coord),
		consumer.WithShutdownTimeout(*shutdownTimeout),
		consumer.WithLeaseDuration(*leaseDuration),
		consumer.WithTakeInterval(*leaseDuration / 4),
		consumer.WithAssignmentPollInterval(200 * time.Millisecond),
		consumer.WithHooks(out),
	}
	if *id != "" {
		opts = append(opts, consumer.WithWorkerID(*id))
	}
	if *efo != "" {
		opts = append(opts, consumer.WithEnhancedFanOut(*efo))
	} else {
		opts = append(opts, consumer.WithIdleTime(*idle))
	}
	factory := consumer.FactoryFunc(func(consumer.ShardInfo) (consumer.Processor, error) {
		return consumer.ProcessorFunc(out.records), nil
	})
	w, err := consumer.New(kc, store, *stream, factory, opts...)
	if err != nil {
		return fail(err)
	}
	out.id = w.ID()

	if *metricsAddr != "" {
		stopServing, err := serve(*metricsAddr, metrics, w, log)
		if err != nil {
			return fail(err)
		}
		defer stopServing()
	}

	log.Info("worker starting", zap.String("worker_id", w.ID()), zap.String("stream", *stream), zap.String("table", *table))
	if err := w.Run(ctx); err != nil {
		return fail(err)
	}
	log.Info("worker stopped", zap.String("worker_id", w.ID()))
	return 0
}

// serve serves /metrics, /healthz and /readyz on addr until the returned
// function is called. The registry holds the plugin and the Go runtime's
// and the process's own collectors.
func serve(addr string, metrics *kprom.Metrics, w *consumer.Worker, log *zap.Logger) (stop func(), err error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	probes := health.Handler(w)
	mux.Handle("GET /healthz", probes)
	mux.Handle("GET /readyz", probes)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-metrics-addr: %w", err)
	}
	log.Info("serving /metrics, /healthz and /readyz", zap.String("addr", ln.Addr().String()))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", zap.Error(err))
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}

// output writes the JSON lines. It is the processor of every shard and the
// Worker's LeaseHook; its mutex keeps the lines of concurrent shards whole.
type output struct {
	id string // set before Run

	mu sync.Mutex
	w  *bufio.Writer
}

type recordLine struct {
	W     string `json:"w"`
	Shard string `json:"shard"`
	Key   string `json:"key"`
	Seq   string `json:"seq"`
	Sub   uint64 `json:"sub"`
	Data  string `json:"data"`
}

type eventLine struct {
	W     string `json:"w"`
	Event string `json:"event"`
	Shard string `json:"shard"`
}

// records reports a batch. It returns only once the lines are flushed to
// standard output; an error (a broken pipe) makes the Worker deliver the
// batch again rather than checkpoint it.
func (o *output) records(_ context.Context, b *consumer.Batch) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range b.Records {
		o.write(recordLine{W: o.id, Shard: b.ShardID, Key: r.PartitionKey, Seq: r.SequenceNumber, Sub: r.SubSequenceNumber, Data: string(r.Data)})
	}
	return o.w.Flush()
}

// LeaseChanged implements consumer.LeaseHook. Writing to a pipe that is
// read promptly does not block for long, as hooks must not.
func (o *output) LeaseChanged(ev consumer.LeaseEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.write(eventLine{W: o.id, Event: ev.Kind.String(), Shard: ev.ShardID})
	_ = o.w.Flush() // a failed write shows again at the next batch
}

func (o *output) write(v any) {
	b, _ := json.Marshal(v) // plain structs of strings and numbers: cannot fail
	b = append(b, '\n')
	_, _ = o.w.Write(b) // a bufio.Writer keeps its first error; Flush returns it
}

// clients builds the SDK clients literally: the library never loads AWS
// configuration, and config.LoadDefaultConfig is kept out of kcl's
// dependencies. Against the emulators any region and static credentials do.
//
// For enhanced fan-out the Kinesis client must speak HTTP/2 and must not
// time out whole requests: a SubscribeToShard response streams for up to
// five minutes. Against AWS, Go's default transport negotiates HTTP/2 over
// TLS by itself; kinesis-mock's plain port needs HTTP/2 without TLS (h2c)
// and kinesismock's adapter. Each owned shard keeps one subscription (an
// HTTP/2 stream) open; when a connection reaches the server's limit of
// concurrent streams, net/http opens another (http.HTTP2Config's
// StrictMaxConcurrentRequests is false by default: keep it so), so a worker
// with many shards needs no tuning beyond leaving MaxConnsPerHost at 0.
func clients(efo bool) (*kinesis.Client, *dynamodb.Client) {
	cfg := aws.Config{
		Region:      os.Getenv("AWS_REGION"),
		Credentials: credentials.NewStaticCredentialsProvider(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN")),
		HTTPClient:  &http.Client{Timeout: 30 * time.Second},
	}
	kEndpoint, dEndpoint := os.Getenv("KCL_KINESIS_ENDPOINT"), os.Getenv("KCL_DYNAMODB_ENDPOINT")
	if kEndpoint != "" || dEndpoint != "" {
		cfg.Region = "us-east-1"
		cfg.Credentials = credentials.NewStaticCredentialsProvider("demo", "demo", "")
	}
	kcfg := cfg.Copy()
	if efo {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		var client aws.HTTPClient = &http.Client{Transport: tr}
		if kEndpoint != "" {
			var p http.Protocols
			p.SetUnencryptedHTTP2(true)
			tr.Protocols = &p
			client = kinesismock.SubscribeToShardAdapter(client)
		}
		kcfg.HTTPClient = client
	}
	kc := kinesis.NewFromConfig(kcfg, func(o *kinesis.Options) {
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
