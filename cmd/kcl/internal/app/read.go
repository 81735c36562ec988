package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/dynamolease"
)

// Errors the commands branch on.
var (
	// ErrNoApp: no lease table has the application's name.
	ErrNoApp = errors.New("no such application")
	// ErrNotLeaseTable: the table exists but is not a KCL lease table.
	ErrNotLeaseTable = errors.New("not a KCL lease table")
)

// Table is an application's lease table.
type Table struct {
	App   string
	store *dynamolease.Store
}

// Open checks that the table named app exists and is a KCL lease table (its
// hash key is leaseKey, a string), and returns it.
func Open(ctx context.Context, client dynamolease.API, app string) (*Table, error) {
	store, err := dynamolease.New(client, app)
	if err != nil {
		return nil, fmt.Errorf("application %q: %w: %w", app, ErrNoApp, err)
	}
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(app)})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil, fmt.Errorf("application %q: %w: no lease table %q", app, ErrNoApp, app)
	}
	if err != nil {
		return nil, fmt.Errorf("application %q: %w", app, err)
	}
	if !isLeaseTable(out.Table) {
		return nil, fmt.Errorf("table %q is %w (its key is not leaseKey)", app, ErrNotLeaseTable)
	}
	return &Table{App: app, store: store}, nil
}

func isLeaseTable(t *types.TableDescription) bool {
	if t == nil || len(t.KeySchema) != 1 || aws.ToString(t.KeySchema[0].AttributeName) != "leaseKey" {
		return false
	}
	for _, a := range t.AttributeDefinitions {
		if aws.ToString(a.AttributeName) == "leaseKey" {
			return a.AttributeType == types.ScalarAttributeTypeS
		}
	}
	return false
}

// Leases reads every lease of the table. Rows that are not leases (KCL 3.x
// coordination rows, kcl fleet rows) are skipped; items that cannot be read
// as leases make it fail, naming them.
func (t *Table) Leases(ctx context.Context) ([]lease.Lease, error) {
	leases, err := t.store.List(ctx)
	if err != nil {
		var me *lease.MalformedError
		if errors.As(err, &me) && len(leases) == 0 {
			return nil, fmt.Errorf("table %q is %w: %w", t.App, ErrNotLeaseTable, err)
		}
		return nil, err
	}
	return leases, nil
}

// heartbeats reads the kcl-fleet heartbeat counters of the leases' owners;
// owners without one (per-lease workers, Java KCL workers) are left out.
func (t *Table) heartbeats(ctx context.Context, leases []lease.Lease) (map[string]int64, error) {
	owners := make(map[string]bool)
	var ids []string
	for _, l := range leases {
		if l.Owner != "" && !owners[l.Owner] {
			owners[l.Owner] = true
			ids = append(ids, l.Owner)
		}
	}
	beats := make(map[string]int64)
	if len(ids) == 0 {
		return beats, nil
	}
	hbs, err := t.store.Heartbeats(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("heartbeats: %w", err)
	}
	for _, h := range hbs {
		beats[h.WorkerID] = h.Counter
	}
	return beats, nil
}

// KinesisAPI is the part of *kinesis.Client the view and reset use.
type KinesisAPI interface {
	ListShards(ctx context.Context, params *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(ctx context.Context, params *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, params *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

var _ KinesisAPI = (*kinesis.Client)(nil)

// Shards lists the stream's shards.
func Shards(ctx context.Context, client KinesisAPI, stream string) ([]ktypes.Shard, error) {
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	var shards []ktypes.Shard
	for {
		out, err := client.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("stream %q: %w", stream, err)
		}
		shards = append(shards, out.Shards...)
		if out.NextToken == nil {
			return shards, nil
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// ClosedShards returns the ids of the closed shards among shards.
func ClosedShards(shards []ktypes.Shard) map[string]bool {
	closed := make(map[string]bool)
	for _, s := range shards {
		if s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil {
			closed[aws.ToString(s.ShardId)] = true
		}
	}
	return closed
}

// lagReaders bounds the lag measurements in flight.
const lagReaders = 16

// Describe reads the table at now and builds the view. With a Kinesis
// client it also measures each unfinished lease's lag and reads which shards
// are closed, on stream for single-stream leases and on the stream a
// multi-stream lease names; without stream, single-stream leases have no lag.
// obs accumulates observations across calls (the --watch loop passes the
// same one).
func Describe(ctx context.Context, t *Table, kc KinesisAPI, stream string, obs *Observer, d time.Duration) (View, error) {
	leases, err := t.Leases(ctx)
	if err != nil {
		return View{}, err
	}
	beats, err := t.heartbeats(ctx, leases)
	if err != nil {
		return View{}, err
	}
	now := time.Now()
	obs.Observe(leases, now)
	obs.ObserveWorkers(beats, now)
	in := Input{App: t.App, Leases: leases, Observer: obs, Now: now, LeaseDuration: d, Lags: map[string]Lag{},
		Closed: map[string]map[string]bool{}}
	if kc == nil {
		return Build(in), nil
	}
	if stream != "" {
		// The stream the user named must exist; a stream a multi-stream
		// lease names may be gone, which its rows then say.
		shards, err := Shards(ctx, kc, stream)
		if err != nil {
			return View{}, err
		}
		in.Closed[""] = ClosedShards(shards)
	}
	unreadable := make(map[string]string)
	type measure struct {
		key, stream, shard string
		cp                 checkpoint.Position
	}
	var todo []measure
	for _, l := range leases {
		group, name := StreamOf(l), StreamOf(l)
		if name == "" {
			name = stream
		}
		if name == "" {
			continue
		}
		if _, ok := in.Closed[group]; !ok && unreadable[group] == "" {
			shards, err := Shards(ctx, kc, name)
			if err != nil {
				unreadable[group] = shortErr(err)
			} else {
				in.Closed[group] = ClosedShards(shards)
			}
		}
		if l.Finished() {
			continue
		}
		if msg := unreadable[group]; msg != "" {
			in.Lags[l.Key] = Lag{Err: msg}
			continue
		}
		shard := l.Key
		if l.ShardID != "" {
			shard = l.ShardID
		}
		todo = append(todo, measure{l.Key, name, shard, l.Checkpoint})
	}
	// Shards are read in parallel (each read counts against its own
	// shard's limit of five a second), a bounded number at a time.
	lags := make([]Lag, len(todo))
	sem := make(chan struct{}, lagReaders)
	var wg sync.WaitGroup
	for i, m := range todo {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			lags[i] = MeasureLag(ctx, kc, m.stream, m.shard, m.cp, now)
		}()
	}
	wg.Wait()
	for i, m := range todo {
		in.Lags[m.key] = lags[i]
	}
	return Build(in), nil
}
