package consumer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kclgo/kcl/lease"
)

// ErrMultiStreamTable is matched (errors.Is) by the error Run returns when
// the lease table holds leases of a KCL multi-stream application. A Worker
// consumes one stream and keys its leases by shard id; a multi-stream table
// keys them "account:stream:creationEpoch:shardId" and records the stream in
// each lease, so sharing it would mix two applications' checkpoints. Use a
// lease table of its own for the Worker. The error is a
// *MultiStreamTableError naming the lease found.
var ErrMultiStreamTable = errors.New("consumer: the lease table belongs to a multi-stream application")

// MultiStreamTableError reports a lease of a KCL multi-stream application
// found in the Worker's lease table. It matches ErrMultiStreamTable.
type MultiStreamTableError struct {
	// Key is the lease's key (leaseKey).
	Key string
	// StreamName is the lease's streamName attribute: KCL's serialized
	// stream identifier "account:stream:creationEpoch"; "" if absent.
	StreamName string
}

func (e *MultiStreamTableError) Error() string {
	msg := fmt.Sprintf("%v: lease %q", ErrMultiStreamTable, e.Key)
	if e.StreamName != "" {
		msg += fmt.Sprintf(" of stream %q", e.StreamName)
	}
	return msg + " is a multi-stream lease; a Worker consumes one stream and needs a lease table of its own"
}

// Is reports whether target is ErrMultiStreamTable.
func (e *MultiStreamTableError) Is(target error) bool { return target == ErrMultiStreamTable }

// checkSingleStream returns a *MultiStreamTableError for the first (in key
// order) multi-stream lease among leases, or nil. Shard sync calls it on
// every table read, before it writes anything: the first sync of Run — so
// that Run refuses such a table before creating, taking or writing any
// lease — and every later one, which stops the Worker if a multi-stream
// application starts writing into its table.
//
// A lease is a multi-stream lease when it has the streamName or shardId
// attribute (KCL's DynamoDBMultiStreamLeaseSerializer writes both on every
// multi-stream lease) or its key has the multi-stream form, four
// colon-separated parts: a shard id never contains a colon. Rows of other
// KCL 3.5 entity types (leader lock, worker metrics, migration state, stream
// metadata) are not leases: the store leaves them out of List, and they are
// neither taken nor refused.
func checkSingleStream(leases []lease.Lease) error {
	var found *lease.Lease
	for i, l := range leases {
		if (l.StreamName != "" || l.ShardID != "" || multiStreamKey(l.Key)) && (found == nil || l.Key < found.Key) {
			found = &leases[i]
		}
	}
	if found == nil {
		return nil
	}
	return &MultiStreamTableError{Key: found.Key, StreamName: found.StreamName}
}

// multiStreamKey reports whether key has the form of a KCL multi-stream
// lease key, "account:stream:creationEpochSeconds:shardId".
func multiStreamKey(key string) bool {
	parts := strings.Split(key, ":")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		if p == "" {
			return false
		}
	}
	return true
}
