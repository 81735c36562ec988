package dynamolease

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kclgo/kcl/lease"
)

// API is the part of *dynamodb.Client a Store uses, with the SDK's exact
// method signatures, so that *dynamodb.Client and test fakes both satisfy it.
type API interface {
	CreateTable(ctx context.Context, params *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, params *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	GetItem(ctx context.Context, params *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, params *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, params *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, params *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Scan(ctx context.Context, params *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	Query(ctx context.Context, params *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(ctx context.Context, params *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

var _ API = (*dynamodb.Client)(nil)

// OwnerIndexName is the name of KCL 3.x's global secondary index on the
// lease table (hash key leaseOwner, range key leaseKey, keys only), which
// ListOwned queries.
const OwnerIndexName = "LeaseOwnerToLeaseKeyIndex"

// Store is a lease.Store, lease.OwnerLister, lease.FleetStore and
// lease.Surveyor backed by a DynamoDB table in the Java KCL's format. Its
// methods are safe for concurrent use.
type Store struct {
	client API
	table  string
	opts   options
	stats  statsRecorder

	// metrics holds the history of ReportWorkerMetrics (metricsreport.go).
	metrics metricsHistory

	mu sync.Mutex
	// index records whether the table has OwnerIndexName, once known.
	index indexState
}

var (
	_ lease.Store       = (*Store)(nil)
	_ lease.OwnerLister = (*Store)(nil)
	_ lease.FleetStore  = (*Store)(nil)
)

type indexState int

const (
	indexUnknown indexState = iota
	indexPresent
	indexAbsent
)

// New returns a Store for the lease table named table, reached through
// client. It validates its arguments and options and starts nothing: call
// EnsureTable to create the table if needed and wait until it is ACTIVE.
//
// Table names follow DynamoDB's rules: 3 to 255 characters from a-z, A-Z,
// 0-9, '_', '-' and '.'. KCL names the table after the application.
func New(client API, table string, opts ...Option) (*Store, error) {
	if client == nil {
		return nil, errors.New("dynamolease: nil client")
	}
	if c, ok := client.(*dynamodb.Client); ok && c == nil {
		return nil, errors.New("dynamolease: nil *dynamodb.Client")
	}
	if reason := checkTableName(table); reason != "" {
		return nil, fmt.Errorf("dynamolease: table name %q: %s", truncate(table), reason)
	}
	o := defaultOptions()
	for _, opt := range opts {
		if opt == nil {
			return nil, errors.New("dynamolease: nil Option")
		}
		opt(&o)
	}
	if o.err != nil {
		return nil, o.err
	}
	if o.kcl3Tables && (o.workerMetricsTable == table || o.coordStateTable == table) {
		return nil, fmt.Errorf("dynamolease: WithKCL3Tables: %q is the lease table", truncate(table))
	}
	return &Store{client: client, table: table, opts: o}, nil
}

func checkTableName(name string) string {
	if len(name) < 3 || len(name) > 255 {
		return fmt.Sprintf("length %d, want 3 to 255 characters", len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Sprintf("character %q at offset %d, want only a-z, A-Z, 0-9, '_', '-', '.'", c, i)
		}
	}
	return ""
}

// Table returns the name of the lease table.
func (s *Store) Table() string { return s.table }

func (s *Store) indexState() indexState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.index
}

func (s *Store) setIndexState(st indexState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.index = st
}

// Stats counts the DynamoDB calls a Store made and the capacity they
// consumed, as DynamoDB reported it (every call asks for
// ReturnConsumedCapacity TOTAL, which includes index writes).
//
// DynamoDB bills a write whose condition failed (at least one write unit) but
// does not report its consumption; such calls are counted in
// ConditionalCheckFailures, not in WriteCapacityUnits. DynamoDB Local reports
// capacity as DynamoDB would.
type Stats struct {
	// ReadCapacityUnits were consumed by GetItem, BatchGetItem, Scan and
	// Query.
	ReadCapacityUnits float64
	// WriteCapacityUnits were consumed by successful PutItem, UpdateItem and
	// DeleteItem calls.
	WriteCapacityUnits float64
	// Calls counts calls per DynamoDB operation, failed ones included.
	Calls Calls
	// ConditionalCheckFailures counts writes refused by their condition.
	ConditionalCheckFailures int64
	// Throttled counts calls that failed with a throttling error after the
	// SDK's retries.
	Throttled int64
	// Capacity splits ReadCapacityUnits and WriteCapacityUnits by
	// operation.
	Capacity Capacity
}

// Capacity is the capacity units consumed per DynamoDB operation.
type Capacity struct {
	GetItem, PutItem, UpdateItem, DeleteItem, Scan, Query, BatchGetItem float64
}

// Calls counts calls per DynamoDB operation.
type Calls struct {
	GetItem, PutItem, UpdateItem, DeleteItem, Scan, Query, DescribeTable, CreateTable int64
	// BatchGetItem counts requests, each retry of unprocessed keys included.
	BatchGetItem int64
}

// Stats returns the counts since the Store was created.
func (s *Store) Stats() Stats {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	return s.stats.s
}

type operation int

const (
	opGetItem operation = iota + 1
	opPutItem
	opUpdateItem
	opDeleteItem
	opScan
	opQuery
	opDescribeTable
	opCreateTable
	opBatchGetItem
)

type statsRecorder struct {
	mu sync.Mutex
	s  Stats
}

// record counts one call of op that consumed cc and returned err (already
// classified).
func (r *statsRecorder) record(op operation, cc *types.ConsumedCapacity, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := &r.s.Calls
	switch op {
	case opGetItem:
		c.GetItem++
	case opPutItem:
		c.PutItem++
	case opUpdateItem:
		c.UpdateItem++
	case opDeleteItem:
		c.DeleteItem++
	case opScan:
		c.Scan++
	case opQuery:
		c.Query++
	case opDescribeTable:
		c.DescribeTable++
	case opCreateTable:
		c.CreateTable++
	case opBatchGetItem:
		c.BatchGetItem++
	}
	if cc != nil && cc.CapacityUnits != nil {
		u, by := *cc.CapacityUnits, &r.s.Capacity
		switch op {
		case opGetItem, opScan, opQuery, opBatchGetItem:
			r.s.ReadCapacityUnits += u
		case opPutItem, opUpdateItem, opDeleteItem:
			r.s.WriteCapacityUnits += u
		}
		switch op {
		case opGetItem:
			by.GetItem += u
		case opPutItem:
			by.PutItem += u
		case opUpdateItem:
			by.UpdateItem += u
		case opDeleteItem:
			by.DeleteItem += u
		case opScan:
			by.Scan += u
		case opQuery:
			by.Query += u
		case opBatchGetItem:
			by.BatchGetItem += u
		}
	}
	switch {
	case err == nil:
	case conditionFailed(err) != nil:
		r.s.ConditionalCheckFailures++
	case errors.Is(err, lease.ErrThrottled):
		r.s.Throttled++
	}
}
