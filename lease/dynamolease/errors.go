package dynamolease

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kclgo/kcl/lease"
)

// ErrTableNotFound is matched by the errors Store methods return when the
// lease table does not exist (DynamoDB's ResourceNotFoundException). Call
// EnsureTable first.
var ErrTableNotFound = errors.New("dynamolease: lease table not found")

// classify maps an error returned by a DynamoDB call to the error a Store
// method returns. It is the only place that inspects SDK error types.
// conflict is the lease sentinel a failed condition means for the call
// (lease.ErrConflict, lease.ErrLeaseLost or lease.ErrAlreadyExists), nil for
// calls without a condition. The SDK error stays in the chain, so callers can
// still errors.As it.
//
//   - context cancellation and deadlines: returned as they are;
//   - ConditionalCheckFailedException: conflict;
//   - ProvisionedThroughputExceededException, RequestLimitExceeded,
//     ThrottlingException, LimitExceededException: lease.ErrThrottled (the
//     SDK's retryer has already retried these);
//   - ResourceNotFoundException: ErrTableNotFound;
//   - anything else: returned as it is.
func classify(err, conflict error) error {
	var (
		ccf        *types.ConditionalCheckFailedException
		throughput *types.ProvisionedThroughputExceededException
		requests   *types.RequestLimitExceeded
		throttling *types.ThrottlingException
		limit      *types.LimitExceededException
		notFound   *types.ResourceNotFoundException
	)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.As(err, &ccf):
		if conflict == nil {
			conflict = lease.ErrConflict
		}
		return fmt.Errorf("%w: %w", conflict, err)
	case errors.As(err, &throughput), errors.As(err, &requests), errors.As(err, &throttling), errors.As(err, &limit):
		return fmt.Errorf("%w: %w", lease.ErrThrottled, err)
	case errors.As(err, &notFound):
		return fmt.Errorf("%w: %w", ErrTableNotFound, err)
	default:
		return err
	}
}

// conditionFailed returns the ConditionalCheckFailedException in err's chain,
// or nil.
func conditionFailed(err error) *types.ConditionalCheckFailedException {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ccf
	}
	return nil
}

// isResourceInUse reports whether a CreateTable failed because the table
// exists or is being created, by us or by a concurrent worker.
func isResourceInUse(err error) bool {
	var inUse *types.ResourceInUseException
	return errors.As(err, &inUse)
}

// isTableNotFound reports whether err is (or classify made it) a missing
// table.
func isTableNotFound(err error) bool {
	var notFound *types.ResourceNotFoundException
	return errors.As(err, &notFound) || errors.Is(err, ErrTableNotFound)
}

// consumedOutput is the DynamoDB outputs consumed reads capacity from.
type consumedOutput interface {
	*dynamodb.GetItemOutput | *dynamodb.PutItemOutput | *dynamodb.UpdateItemOutput | *dynamodb.DeleteItemOutput |
		*dynamodb.ScanOutput | *dynamodb.QueryOutput
}

// consumed returns out's ConsumedCapacity, nil when the call failed.
func consumed[O consumedOutput](out O, err error) *types.ConsumedCapacity {
	if err != nil || out == nil {
		return nil
	}
	switch o := any(out).(type) {
	case *dynamodb.GetItemOutput:
		return o.ConsumedCapacity
	case *dynamodb.PutItemOutput:
		return o.ConsumedCapacity
	case *dynamodb.UpdateItemOutput:
		return o.ConsumedCapacity
	case *dynamodb.DeleteItemOutput:
		return o.ConsumedCapacity
	case *dynamodb.ScanOutput:
		return o.ConsumedCapacity
	case *dynamodb.QueryOutput:
		return o.ConsumedCapacity
	}
	return nil
}

// noted classifies err (a failed condition as conflict, or lease.ErrConflict
// when conflict is nil), records the call of kind op with the capacity it
// consumed in the store's counters, and returns the classified error.
func (s *Store) noted(op operation, cc *types.ConsumedCapacity, err, conflict error) error {
	err = classify(err, conflict)
	s.stats.record(op, cc, err)
	return err
}
