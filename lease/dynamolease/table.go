package dynamolease

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Polling bounds for EnsureTable's wait.
const (
	pollMin = 50 * time.Millisecond
	pollMax = 2 * time.Second
)

// EnsureTable makes sure the lease table exists and is ready: it describes
// the table and creates it when it is missing (hash key leaseKey of type S,
// the billing mode, tags, deletion protection and owner index the options
// ask for), then waits until the table and, when it has one, its owner index
// are ACTIVE. It blocks for at most the WithTableWait timeout (5 minutes by
// default) or until ctx ends.
//
// Many workers may call EnsureTable on the same new table at once, as a
// fleet starting on a fresh application does: the losers of the creation
// race (ResourceInUseException) wait for the winner's table instead of
// failing.
//
// An existing table is used as it is, if its key schema is KCL's (leaseKey,
// HASH, S); EnsureTable never changes it. If it lacks LeaseOwnerToLeaseKeyIndex
// (tables created by KCL 2.x or by WithOwnerIndex(false)), EnsureTable
// succeeds and records that the index is missing: ListOwned then returns an
// error matching errors.ErrUnsupported, and callers fall back to List. An
// index some other process is still building is not waited for; ListOwned
// checks it again.
func (s *Store) EnsureTable(ctx context.Context) error {
	ctx, cancel := context.WithTimeoutCause(ctx, s.opts.tableWait,
		fmt.Errorf("table not ACTIVE within %v (WithTableWait): %w", s.opts.tableWait, context.DeadlineExceeded))
	defer cancel()

	desc, err := s.describeTable(ctx)
	created := false
	if isTableNotFound(err) {
		created = true
		desc, err = nil, s.createTable(ctx)
	}
	if err != nil {
		return fmt.Errorf("dynamolease: ensure table %s: %w", s.table, err)
	}
	// Wait for the index only while the table itself is new: an index added
	// to an existing table can take long to build, and List works without it.
	waitIndex := created || desc.TableStatus == types.TableStatusCreating
	desc, err = s.waitReady(ctx, desc, waitIndex)
	if err != nil {
		return fmt.Errorf("dynamolease: ensure table %s: %w", s.table, err)
	}
	if reason := checkKeySchema(desc); reason != "" {
		return fmt.Errorf("dynamolease: table %s is not a KCL lease table: %s", s.table, reason)
	}
	s.setIndexState(ownerIndexState(desc))
	return nil
}

func (s *Store) describeTable(ctx context.Context) (*types.TableDescription, error) {
	out, err := s.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.table)})
	err = classify(err, nil)
	s.stats.record(opDescribeTable, nil, err)
	if err != nil {
		return nil, err
	}
	if out.Table == nil {
		return nil, errors.New("DescribeTable returned no table description")
	}
	return out.Table, nil
}

// createTable creates the lease table. A table that exists or is being
// created already (ResourceInUseException: a concurrent worker won the race)
// is not an error: the caller waits for it.
func (s *Store) createTable(ctx context.Context) error {
	in := &dynamodb.CreateTableInput{
		TableName: aws.String(s.table),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrLeaseKey), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrLeaseKey), KeyType: types.KeyTypeHash},
		},
		BillingMode: s.opts.billing,
		Tags:        s.opts.tags,
	}
	var throughput *types.ProvisionedThroughput
	if s.opts.billing == types.BillingModeProvisioned {
		throughput = &types.ProvisionedThroughput{
			ReadCapacityUnits:  aws.Int64(s.opts.readCapacity),
			WriteCapacityUnits: aws.Int64(s.opts.writeCapacity),
		}
		in.ProvisionedThroughput = throughput
	}
	if s.opts.deletionProtection {
		in.DeletionProtectionEnabled = aws.Bool(true)
	}
	if s.opts.ownerIndex {
		in.AttributeDefinitions = append(in.AttributeDefinitions,
			types.AttributeDefinition{AttributeName: aws.String(attrLeaseOwner), AttributeType: types.ScalarAttributeTypeS})
		in.GlobalSecondaryIndexes = []types.GlobalSecondaryIndex{{
			IndexName: aws.String(OwnerIndexName),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(attrLeaseOwner), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(attrLeaseKey), KeyType: types.KeyTypeRange},
			},
			Projection:            &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
			ProvisionedThroughput: throughput,
		}}
	}
	_, err := s.client.CreateTable(ctx, in)
	if isResourceInUse(err) {
		s.stats.record(opCreateTable, nil, nil)
		return nil
	}
	err = classify(err, nil)
	s.stats.record(opCreateTable, nil, err)
	return err
}

// waitReady polls DescribeTable, backing off from 50 ms to 2 s with jitter,
// until the table is ACTIVE (or UPDATING, which serves reads and writes)
// and, if waitIndex, its owner index is ACTIVE too. desc is the last
// description, nil if none. A table that is not found yet is waited for: it
// was just created, by this worker or a concurrent one.
func (s *Store) waitReady(ctx context.Context, desc *types.TableDescription, waitIndex bool) (*types.TableDescription, error) {
	delay := pollMin
	for {
		if desc != nil {
			switch desc.TableStatus {
			case types.TableStatusActive, types.TableStatusUpdating:
				if !waitIndex || ownerIndexStatus(desc) != types.IndexStatusCreating {
					return desc, nil
				}
			case types.TableStatusDeleting, types.TableStatusArchiving, types.TableStatusArchived,
				types.TableStatusInaccessibleEncryptionCredentials:
				return nil, fmt.Errorf("table status is %s", desc.TableStatus)
			}
		}
		jittered := delay/2 + rand.N(delay/2+1)
		t := time.NewTimer(jittered)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, context.Cause(ctx)
		case <-t.C:
		}
		delay = min(2*delay, pollMax)

		d, err := s.describeTable(ctx)
		switch {
		case err == nil:
			desc = d
		case isTableNotFound(err):
			desc = nil
		default:
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			return nil, err
		}
	}
}

// ownerIndexStatus returns the status of the owner index, "" if the table has
// none.
func ownerIndexStatus(desc *types.TableDescription) types.IndexStatus {
	for _, gsi := range desc.GlobalSecondaryIndexes {
		if aws.ToString(gsi.IndexName) == OwnerIndexName {
			return gsi.IndexStatus
		}
	}
	return ""
}

// ownerIndexState says whether ListOwned can query the owner index now.
func ownerIndexState(desc *types.TableDescription) indexState {
	switch ownerIndexStatus(desc) {
	case types.IndexStatusActive:
		return indexPresent
	case "":
		return indexAbsent
	default: // CREATING, UPDATING, DELETING: look again later
		return indexUnknown
	}
}

// checkKeySchema returns why desc is not shaped like a KCL lease table, or "".
func checkKeySchema(desc *types.TableDescription) string {
	if len(desc.KeySchema) != 1 || aws.ToString(desc.KeySchema[0].AttributeName) != attrLeaseKey ||
		desc.KeySchema[0].KeyType != types.KeyTypeHash {
		return fmt.Sprintf("key schema %s, want hash key %s only", describeKeySchema(desc.KeySchema), attrLeaseKey)
	}
	for _, def := range desc.AttributeDefinitions {
		if aws.ToString(def.AttributeName) == attrLeaseKey && def.AttributeType != types.ScalarAttributeTypeS {
			return fmt.Sprintf("%s has type %s, want S", attrLeaseKey, def.AttributeType)
		}
	}
	return ""
}

func describeKeySchema(ks []types.KeySchemaElement) string {
	s := "["
	for i, k := range ks {
		if i > 0 {
			s += " "
		}
		s += aws.ToString(k.AttributeName) + ":" + string(k.KeyType)
	}
	return s + "]"
}
