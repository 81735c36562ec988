package dynamolease

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestNewValidates(t *testing.T) {
	client := dynamodb.New(dynamodb.Options{Region: "us-east-1"})
	manyTags := map[string]string{}
	for i := range 51 {
		manyTags[strings.Repeat("k", i+1)] = "v"
	}
	tests := []struct {
		name    string
		client  API
		table   string
		opts    []Option
		wantErr string // a substring of the error; "" for success
	}{
		{name: "a valid table name with the defaults is accepted", client: client, table: "my-app_1.leases"},
		{name: "a nil client is rejected", client: nil, table: "leases", wantErr: "nil client"},
		{name: "a nil *dynamodb.Client is rejected", client: (*dynamodb.Client)(nil), table: "leases", wantErr: "nil *dynamodb.Client"},
		{name: "a two-character table name is rejected", client: client, table: "ab", wantErr: `table name "ab": length 2`},
		{name: "a 256-character table name is rejected", client: client, table: strings.Repeat("a", 256), wantErr: "length 256"},
		{name: "a 255-character table name is accepted", client: client, table: strings.Repeat("a", 255)},
		{name: "a table name with a slash is rejected", client: client, table: "my/app", wantErr: `character '/' at offset 2`},
		{name: "zero provisioned capacity is rejected", client: client, table: "leases",
			opts: []Option{WithProvisioned(0, 5)}, wantErr: "WithProvisioned(0, 5)"},
		{name: "provisioned capacity is accepted", client: client, table: "leases", opts: []Option{WithProvisioned(10, 10)}},
		{name: "a zero page size is rejected", client: client, table: "leases", opts: []Option{WithPageSize(0)}, wantErr: "WithPageSize(0)"},
		{name: "a negative table wait is rejected", client: client, table: "leases",
			opts: []Option{WithTableWait(-time.Second)}, wantErr: "WithTableWait(-1s)"},
		{name: "more than 50 tags are rejected", client: client, table: "leases", opts: []Option{WithTags(manyTags)}, wantErr: "WithTags: 51 tags"},
		{name: "an empty tag key is rejected", client: client, table: "leases", opts: []Option{WithTags(map[string]string{"": "x"})}, wantErr: "empty tag key"},
		{name: "a nil option is rejected", client: client, table: "leases", opts: []Option{nil}, wantErr: "nil Option"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.client, tc.table, tc.opts...)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.wantErr == "" && s == nil:
				t.Fatal("New returned a nil Store")
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("New = %v; want an error containing %q", err, tc.wantErr)
			case err != nil && !strings.HasPrefix(err.Error(), "dynamolease: "):
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestOptionsSetDocumentedDefaults(t *testing.T) {
	o := defaultOptions()
	if o.billing != types.BillingModePayPerRequest || !o.ownerIndex || o.pageSize != 0 ||
		o.tableWait != 5*time.Minute || o.deletionProtection || len(o.tags) != 0 {
		t.Errorf("defaults = %+v", o)
	}
	for _, opt := range []Option{WithProvisioned(3, 4), WithTags(map[string]string{"b": "2", "a": "1"}),
		WithDeletionProtection(true), WithOwnerIndex(false), WithPageSize(25), WithTableWait(time.Second)} {
		opt(&o)
	}
	if o.err != nil {
		t.Fatal(o.err)
	}
	if o.billing != types.BillingModeProvisioned || o.readCapacity != 3 || o.writeCapacity != 4 ||
		!o.deletionProtection || o.ownerIndex || o.pageSize != 25 || o.tableWait != time.Second {
		t.Errorf("options = %+v", o)
	}
	if len(o.tags) != 2 || aws.ToString(o.tags[0].Key) != "a" || aws.ToString(o.tags[1].Value) != "2" {
		t.Errorf("tags = %+v; want a=1, b=2 in key order", o.tags)
	}
}
