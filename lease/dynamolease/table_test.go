package dynamolease

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// fakeControlPlane is an in-memory DynamoDB control plane for one table:
// CreateTable and DescribeTable with the states DynamoDB goes through. Item
// operations are not implemented.
type fakeControlPlane struct {
	mu sync.Mutex
	// desc is the table, nil while there is none.
	desc *types.TableDescription
	// creatingFor is how many DescribeTable calls see a new table (and its
	// index) CREATING before both turn ACTIVE.
	creatingFor int
	// invisibleFor is how many DescribeTable calls still answer
	// ResourceNotFoundException for an existing table (DynamoDB's control
	// plane is eventually consistent).
	invisibleFor int
	describes    int
	creates      int
}

var _ API = (*fakeControlPlane)(nil)

var errNotImplemented = errors.New("fake: not implemented")

func (f *fakeControlPlane) DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.describes++
	if f.desc == nil || f.invisibleFor > 0 {
		f.invisibleFor--
		return nil, &types.ResourceNotFoundException{Message: aws.String("Requested resource not found")}
	}
	if f.desc.TableStatus == types.TableStatusCreating {
		if f.creatingFor > 0 {
			f.creatingFor--
		} else {
			f.desc.TableStatus = types.TableStatusActive
			for i := range f.desc.GlobalSecondaryIndexes {
				f.desc.GlobalSecondaryIndexes[i].IndexStatus = types.IndexStatusActive
			}
		}
	}
	d := *f.desc
	d.GlobalSecondaryIndexes = append([]types.GlobalSecondaryIndexDescription(nil), f.desc.GlobalSecondaryIndexes...)
	return &dynamodb.DescribeTableOutput{Table: &d}, nil
}

func (f *fakeControlPlane) CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates++
	if f.desc != nil {
		return nil, &types.ResourceInUseException{Message: aws.String("Table already exists")}
	}
	f.desc = tableDesc(in.TableName, in.KeySchema, types.TableStatusCreating)
	for _, gsi := range in.GlobalSecondaryIndexes {
		f.desc.GlobalSecondaryIndexes = append(f.desc.GlobalSecondaryIndexes, types.GlobalSecondaryIndexDescription{
			IndexName: gsi.IndexName, KeySchema: gsi.KeySchema, Projection: gsi.Projection, IndexStatus: types.IndexStatusCreating,
		})
	}
	return &dynamodb.CreateTableOutput{}, nil
}

func (f *fakeControlPlane) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return nil, errNotImplemented
}

func (f *fakeControlPlane) PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return nil, errNotImplemented
}

func (f *fakeControlPlane) UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return nil, errNotImplemented
}

func (f *fakeControlPlane) DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return nil, errNotImplemented
}

func (f *fakeControlPlane) Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return nil, errNotImplemented
}

func (f *fakeControlPlane) Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return nil, errNotImplemented
}

func (f *fakeControlPlane) BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	return nil, errNotImplemented
}

func tableDesc(name *string, keys []types.KeySchemaElement, status types.TableStatus) *types.TableDescription {
	return &types.TableDescription{TableName: name, KeySchema: keys, TableStatus: status}
}

func leaseKeySchema() []types.KeySchemaElement {
	return []types.KeySchemaElement{{AttributeName: aws.String(attrLeaseKey), KeyType: types.KeyTypeHash}}
}

func newFakeStore(t *testing.T, f *fakeControlPlane, opts ...Option) *Store {
	t.Helper()
	s, err := New(f, "leases", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEnsureTable(t *testing.T) {
	tests := []struct {
		name      string
		fake      *fakeControlPlane
		opts      []Option
		wantErr   string // substring; "" for success
		wantIndex indexState
		check     func(t *testing.T, f *fakeControlPlane)
	}{
		{name: "a missing table is created and waited for until it and its index are ACTIVE",
			fake: &fakeControlPlane{creatingFor: 3}, wantIndex: indexPresent,
			check: func(t *testing.T, f *fakeControlPlane) {
				if f.creates != 1 || f.describes != 5 {
					t.Errorf("%d creates, %d describes; want 1 and 5", f.creates, f.describes)
				}
				if gsi := f.desc.GlobalSecondaryIndexes; len(gsi) != 1 || aws.ToString(gsi[0].IndexName) != OwnerIndexName {
					t.Errorf("indexes = %+v; want the owner index", gsi)
				}
			}},
		{name: "without the owner index option a new table has no index",
			fake: &fakeControlPlane{}, opts: []Option{WithOwnerIndex(false)}, wantIndex: indexAbsent},
		{name: "losing the creation race waits for the winner's table",
			fake: &fakeControlPlane{desc: tableDesc(aws.String("leases"), leaseKeySchema(), types.TableStatusCreating),
				creatingFor: 2, invisibleFor: 2},
			wantIndex: indexAbsent,
			check: func(t *testing.T, f *fakeControlPlane) {
				if f.creates != 1 {
					t.Errorf("%d creates; want 1 refused with ResourceInUseException", f.creates)
				}
			}},
		{name: "an ACTIVE table is used without creating anything",
			fake: &fakeControlPlane{desc: tableDesc(aws.String("leases"), leaseKeySchema(), types.TableStatusActive)}, wantIndex: indexAbsent,
			check: func(t *testing.T, f *fakeControlPlane) {
				if f.creates != 0 || f.describes != 1 {
					t.Errorf("%d creates, %d describes; want 0 and 1", f.creates, f.describes)
				}
			}},
		{name: "an index another process is still building is not waited for",
			fake: &fakeControlPlane{desc: &types.TableDescription{
				TableName: aws.String("leases"), KeySchema: leaseKeySchema(), TableStatus: types.TableStatusActive,
				GlobalSecondaryIndexes: []types.GlobalSecondaryIndexDescription{{IndexName: aws.String(OwnerIndexName), IndexStatus: types.IndexStatusCreating}},
			}},
			wantIndex: indexUnknown},
		{name: "a table being deleted is an error",
			fake:    &fakeControlPlane{desc: tableDesc(aws.String("leases"), leaseKeySchema(), types.TableStatusDeleting)},
			wantErr: "table status is DELETING"},
		{name: "a table keyed differently is an error",
			fake: &fakeControlPlane{desc: tableDesc(aws.String("leases"),
				[]types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}}, types.TableStatusActive)},
			wantErr: "not a KCL lease table: key schema [id:HASH]"},
		{name: "the wait is bounded by WithTableWait",
			fake: &fakeControlPlane{creatingFor: 1 << 30}, opts: []Option{WithTableWait(300 * time.Millisecond)},
			wantErr: "not ACTIVE within 300ms (WithTableWait)"},
	}
	for _, tc := range tests {
		// synctest: the backoff between DescribeTable calls takes no real time.
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newFakeStore(t, tc.fake, tc.opts...)
				err := s.EnsureTable(t.Context())
				switch {
				case tc.wantErr == "" && err != nil:
					t.Fatalf("EnsureTable: %v", err)
				case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
					t.Fatalf("EnsureTable = %v; want an error containing %q", err, tc.wantErr)
				}
				if err == nil && s.indexState() != tc.wantIndex {
					t.Errorf("index state = %v; want %v", s.indexState(), tc.wantIndex)
				}
				if tc.check != nil {
					tc.check(t, tc.fake)
				}
			})
		})
	}
}

func TestEnsureTableTimeoutMatchesDeadlineExceeded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStore(t, &fakeControlPlane{creatingFor: 1 << 30})
		start := time.Now()
		if err := s.EnsureTable(t.Context()); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("EnsureTable = %v; want an error matching context.DeadlineExceeded", err)
		}
		if waited := time.Since(start); waited != defaultTableWait {
			t.Errorf("EnsureTable gave up after %v; want the default %v", waited, defaultTableWait)
		}
	})
}

func TestEnsureTableStopsWhenTheContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStore(t, &fakeControlPlane{creatingFor: 1 << 30})
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Minute, cancel)
		if err := s.EnsureTable(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("EnsureTable = %v; want an error matching context.Canceled", err)
		}
	})
}

func TestEnsureTablePollsWithBoundedBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeControlPlane{creatingFor: 40}
		s := newFakeStore(t, f)
		start := time.Now()
		if err := s.EnsureTable(t.Context()); err != nil {
			t.Fatal(err)
		}
		// 41 waits: 50 ms doubling to 2 s, each jittered to [d/2, d].
		if waited := time.Since(start); waited < 30*time.Second || waited > 80*time.Second {
			t.Errorf("waited %v for 41 polls; want between 30 s and 80 s", waited)
		}
	})
}

func TestListOwnedChecksAnIndexStillBuilding(t *testing.T) {
	f := &fakeControlPlane{desc: &types.TableDescription{
		TableName: aws.String("leases"), KeySchema: leaseKeySchema(), TableStatus: types.TableStatusActive,
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndexDescription{{IndexName: aws.String(OwnerIndexName), IndexStatus: types.IndexStatusCreating}},
	}}
	s := newFakeStore(t, f)
	if err := s.EnsureTable(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListOwned(t.Context(), "worker-a"); !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "CREATING") {
		t.Errorf("ListOwned = %v; want errors.ErrUnsupported while the index is CREATING", err)
	}
	f.mu.Lock()
	f.desc.GlobalSecondaryIndexes[0].IndexStatus = types.IndexStatusActive
	f.mu.Unlock()
	if _, err := s.ListOwned(t.Context(), "worker-a"); !errors.Is(err, errNotImplemented) {
		t.Errorf("ListOwned = %v; want it to query the now ACTIVE index", err)
	}
	if s.indexState() != indexPresent {
		t.Errorf("index state = %v; want present", s.indexState())
	}
}
