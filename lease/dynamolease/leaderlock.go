package dynamolease

import (
	"crypto/rand"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// KCL 3.x elects its leader with amazon-dynamodb-lock-client 1.4.0
// (leader/DynamoDBLockBasedLeaderDecider). This file reads and writes that
// lock's item exactly as the lock client does, so kcl and Java workers can
// contend for the same lock.

// Attribute names of a lock item (AmazonDynamoDBLockClient's constants).
const (
	attrOwnerName           = "ownerName"           // S, the holder's worker id
	attrLockLeaseDuration   = "leaseDuration"       // S (!), milliseconds
	attrRecordVersionNumber = "recordVersionNumber" // S, a UUID replaced on every write
	attrLockData            = "data"                // B, never written by KCL
	attrIsReleased          = "isReleased"          // S "1", never left by KCL
)

const (
	// leaderLockKey is the hash key value of KCL's leader lock.
	leaderLockKey = "Leader"
	// isReleasedValue is what the lock client writes to isReleased.
	isReleasedValue = "1"
	// kclLeaderLockDuration is KCL 3.x's default leader lock lease
	// (LeaseManagementConfig.dynamoDbLockBasedLeaderLeaseDurationInMillis);
	// its holder heartbeats every kclLeaderHeartbeat.
	kclLeaderLockDuration = 120 * time.Second
	kclLeaderHeartbeat    = 30 * time.Second
)

// Expression placeholders, as the lock client names them.
const (
	lockPK        = "#pk"
	lockRVN       = "#rvn"
	lockOwner     = "#on"
	lockDuration  = "#ld"
	lockReleased  = "#ir"
	lockRVNValue  = ":rvn"
	lockNewRVN    = ":newRvn"
	lockOwnerVal  = ":on"
	lockDurValue  = ":ld"
	lockRelValue  = ":ir"
	condLockFree  = "attribute_not_exists(" + lockPK + ")"
	condLockRVN   = "attribute_exists(" + lockPK + ") AND " + lockRVN + " = " + lockRVNValue
	condLockHeld  = condLockRVN + " AND " + lockOwner + " = " + lockOwnerVal
	condLockFreed = "attribute_exists(" + lockPK + ") AND " + lockReleased + " = " + lockRelValue
	updateLockHB  = "SET " + lockDuration + " = " + lockDurValue + ", " + lockRVN + " = " + lockNewRVN
)

// leaderLock is one lock item: KCL's leader lock, in the CoordinatorState
// table (hash key "key") or the lease table (hash key "leaseKey").
//
// The item stores no time. Whether a lock is expired is judged by whoever
// reads it, on its own clock: the holder from when it last wrote the item, an
// observer from when it first saw the current recordVersionNumber (see
// lockObservation).
type leaderLock struct {
	key                 string        // the hash key value; KCL uses leaderLockKey
	owner               string        // ownerName
	leaseDuration       time.Duration // whole milliseconds on the item
	recordVersionNumber string
	data                []byte // optional; KCL never sets it
	released            bool   // isReleased present; KCL deletes instead
	// entityType is "LEADER" as KCL 3.5 writes it on acquisition, "" on
	// items written by KCL 3.0–3.4 (and kept so by 3.5's heartbeats).
	entityType string
}

// newLeaderLock returns the lock item owner writes to acquire KCL's leader
// lock, as KCL 3.5 does: a fresh recordVersionNumber and entityType LEADER.
func newLeaderLock(owner string, leaseDuration time.Duration) leaderLock {
	return leaderLock{
		key:                 leaderLockKey,
		owner:               owner,
		leaseDuration:       leaseDuration,
		recordVersionNumber: newRecordVersionNumber(),
		entityType:          entityTypeLeader,
	}
}

// newRecordVersionNumber returns a random version 4 UUID, the form the lock
// client gives recordVersionNumber. Only its uniqueness matters.
func newRecordVersionNumber() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// decodeLeaderLock reads a lock item from table t (whose hash key names the
// key attribute).
//
// Required: the hash key, ownerName, leaseDuration (S holding non-negative
// whole milliseconds) and recordVersionNumber, all non-empty strings, as the
// lock client always writes them. Optional: data (B), isReleased (S "1"),
// entityType (S "LEADER"). Other attributes are ignored. A malformed item
// yields a *coordinationItemError (matching lease.ErrMalformed).
func decodeLeaderLock(t kcl3Table, item map[string]types.AttributeValue) (leaderLock, error) {
	d := newCoordinationDecoder("leader lock", item)
	var l leaderLock
	l.key = d.hashKey(t.hashKey)
	l.entityType = d.entityType(entityTypeLeader)
	l.owner = d.requiredStr(attrOwnerName)
	if s := d.requiredStr(attrLockLeaseDuration); s != "" {
		if ms, ok := d.parseInt(attrLockLeaseDuration, s); ok {
			if ms < 0 || ms > int64(time.Duration(1<<63-1)/time.Millisecond) {
				d.fail(attrLockLeaseDuration, fmt.Sprintf("out of range: %d ms", ms), nil)
			}
			l.leaseDuration = time.Duration(ms) * time.Millisecond
		}
	}
	l.recordVersionNumber = d.requiredStr(attrRecordVersionNumber)
	l.data = d.binary(attrLockData)
	if s, ok := member[types.AttributeValueMemberS](&d.decoder, attrIsReleased, "S"); ok {
		if s.Value != isReleasedValue {
			d.fail(attrIsReleased, fmt.Sprintf("%q, want %q", truncate(s.Value), isReleasedValue), nil)
		}
		l.released = true
	}
	if err := d.result(); err != nil {
		return leaderLock{}, err
	}
	return l, nil
}

// encodeLeaderLock returns l as a lock item of table t.
func encodeLeaderLock(t kcl3Table, l leaderLock) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{
		t.hashKey:               &types.AttributeValueMemberS{Value: l.key},
		attrOwnerName:           &types.AttributeValueMemberS{Value: l.owner},
		attrLockLeaseDuration:   lockDurationValue(l.leaseDuration),
		attrRecordVersionNumber: &types.AttributeValueMemberS{Value: l.recordVersionNumber},
	}
	if len(l.data) > 0 {
		item[attrLockData] = &types.AttributeValueMemberB{Value: slices.Clone(l.data)}
	}
	if l.released {
		item[attrIsReleased] = &types.AttributeValueMemberS{Value: isReleasedValue}
	}
	if l.entityType != "" {
		item[attrEntityType] = &types.AttributeValueMemberS{Value: l.entityType}
	}
	return item
}

// lockDurationValue is leaseDuration as the lock client stores it: a string
// of milliseconds.
func lockDurationValue(d time.Duration) types.AttributeValue {
	return &types.AttributeValueMemberS{Value: strconv.FormatInt(d.Milliseconds(), 10)}
}

// acquireFreeLockInput is the PutItem that takes lock l when no lock item
// exists (the lock client's upsertAndMonitorNewLock): the whole item,
// conditioned on attribute_not_exists(#pk). The acquirer's lease starts when
// it sends the request, not when the answer arrives.
func acquireFreeLockInput(t kcl3Table, l leaderLock) *dynamodb.PutItemInput {
	return &dynamodb.PutItemInput{
		TableName:                aws.String(t.name),
		Item:                     encodeLeaderLock(t, l),
		ConditionExpression:      aws.String(condLockFree),
		ExpressionAttributeNames: map[string]string{lockPK: t.hashKey},
	}
}

// acquireExpiredLockInput is the PutItem that takes over lock l from a holder
// presumed dead (upsertAndMonitorExpiredLock): the whole item, conditioned on
// the item still carrying seenRVN, the recordVersionNumber the acquirer saw
// unchanged for longer than the lock's leaseDuration (lockObservation). The
// previous owner is not checked: anyone may take an expired lock.
func acquireExpiredLockInput(t kcl3Table, l leaderLock, seenRVN string) *dynamodb.PutItemInput {
	return &dynamodb.PutItemInput{
		TableName:                 aws.String(t.name),
		Item:                      encodeLeaderLock(t, l),
		ConditionExpression:       aws.String(condLockRVN),
		ExpressionAttributeNames:  map[string]string{lockPK: t.hashKey, lockRVN: attrRecordVersionNumber},
		ExpressionAttributeValues: map[string]types.AttributeValue{lockRVNValue: &types.AttributeValueMemberS{Value: seenRVN}},
	}
}

// acquireReleasedLockInput is the PutItem that takes lock l when the item is
// marked released (upsertAndMonitorReleasedLock, without
// acquireReleasedLocksConsistently). KCL releases by deleting the item, so
// this only matters for locks released by other lock-client users.
func acquireReleasedLockInput(t kcl3Table, l leaderLock) *dynamodb.PutItemInput {
	return &dynamodb.PutItemInput{
		TableName:                 aws.String(t.name),
		Item:                      encodeLeaderLock(t, l),
		ConditionExpression:       aws.String(condLockFreed),
		ExpressionAttributeNames:  map[string]string{lockPK: t.hashKey, lockReleased: attrIsReleased},
		ExpressionAttributeValues: map[string]types.AttributeValue{lockRelValue: &types.AttributeValueMemberS{Value: isReleasedValue}},
	}
}

// heartbeatLockInput is the UpdateItem by which the holder of held renews
// it (sendHeartbeat): SET leaseDuration and a new recordVersionNumber newRVN,
// conditioned on the item existing with held's recordVersionNumber and
// owner. Other attributes (entityType included) are left as they are. On
// success the holder's lock is held with newRVN, its lease restarting when
// the request was sent; on a failed condition the lock is lost.
func heartbeatLockInput(t kcl3Table, held leaderLock, newRVN string) *dynamodb.UpdateItemInput {
	return &dynamodb.UpdateItemInput{
		TableName:           aws.String(t.name),
		Key:                 t.key(held.key),
		UpdateExpression:    aws.String(updateLockHB),
		ConditionExpression: aws.String(condLockHeld),
		ExpressionAttributeNames: map[string]string{
			lockPK: t.hashKey, lockRVN: attrRecordVersionNumber, lockOwner: attrOwnerName, lockDuration: attrLockLeaseDuration,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			lockRVNValue: &types.AttributeValueMemberS{Value: held.recordVersionNumber},
			lockOwnerVal: &types.AttributeValueMemberS{Value: held.owner},
			lockDurValue: lockDurationValue(held.leaseDuration),
			lockNewRVN:   &types.AttributeValueMemberS{Value: newRVN},
		},
	}
}

// releaseLockInput is the DeleteItem by which the holder of held releases
// it (releaseLock with deleteLockOnRelease, KCL's setting), conditioned like
// a heartbeat. A failed condition means the lock was already lost.
func releaseLockInput(t kcl3Table, held leaderLock) *dynamodb.DeleteItemInput {
	return &dynamodb.DeleteItemInput{
		TableName:                aws.String(t.name),
		Key:                      t.key(held.key),
		ConditionExpression:      aws.String(condLockHeld),
		ExpressionAttributeNames: map[string]string{lockPK: t.hashKey, lockRVN: attrRecordVersionNumber, lockOwner: attrOwnerName},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			lockRVNValue: &types.AttributeValueMemberS{Value: held.recordVersionNumber},
			lockOwnerVal: &types.AttributeValueMemberS{Value: held.owner},
		},
	}
}

// lockObservation is what a worker that does not hold a lock remembers of
// it: the recordVersionNumber it last saw, since when (on its own monotonic
// clock, from a time.Now reading taken after the read returned) and the
// leaseDuration the item stated. The lock client keeps the same in its
// notMyLocks cache.
type lockObservation struct {
	recordVersionNumber string
	since               time.Time
	leaseDuration       time.Duration
}

// observe returns the observation after reading l at now: unchanged (but
// for the stated leaseDuration) when l still has the recordVersionNumber
// already observed, restarted at now otherwise.
func (o lockObservation) observe(l leaderLock, now time.Time) lockObservation {
	if o.recordVersionNumber == l.recordVersionNumber && !o.since.IsZero() {
		o.leaseDuration = l.leaseDuration
		return o
	}
	return lockObservation{recordVersionNumber: l.recordVersionNumber, since: now, leaseDuration: l.leaseDuration}
}

// expired reports whether, at now, the observed recordVersionNumber has
// stayed unchanged for longer than leaseDuration, so that the lock may be
// taken with acquireExpiredLockInput (strictly longer, as the lock client's
// LockItem.isExpired).
func (o lockObservation) expired(now time.Time) bool {
	return !o.since.IsZero() && now.Sub(o.since) > o.leaseDuration
}
