package dynamolease

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/lease"
)

// Attribute names of a lease item, exactly as the Java KCL 2.x/3.x writes
// them (DynamoDBLeaseSerializer, DynamoDBMultiStreamLeaseSerializer).
const (
	attrLeaseKey             = "leaseKey"                           // S, the table's hash key
	attrLeaseOwner           = "leaseOwner"                         // S, absent when unowned
	attrLeaseCounter         = "leaseCounter"                       // N
	attrCheckpoint           = "checkpoint"                         // S
	attrCheckpointSub        = "checkpointSubSequenceNumber"        // N
	attrPendingCheckpoint    = "pendingCheckpoint"                  // S
	attrPendingCheckpointSub = "pendingCheckpointSubSequenceNumber" // N
	attrPendingState         = "pendingCheckpointState"             // B
	attrOwnerSwitches        = "ownerSwitchesSinceCheckpoint"       // N
	attrParentShardIDs       = "parentShardId"                      // SS
	attrChildShardIDs        = "childShardIds"                      // SS
	attrStartingHashKey      = "startingHashKey"                    // S
	attrEndingHashKey        = "endingHashKey"                      // S
	attrCheckpointOwner      = "checkpointOwner"                    // S, KCL 3.x
	attrThroughputKBps       = "throughputKBps"                     // N, KCL 3.x
	attrEntityType           = "entityType"                         // S, KCL 3.5 single table format
	attrStreamName           = "streamName"                         // S, multi-stream leases
	attrShardID              = "shardId"                            // S, multi-stream leases
)

// entityTypeLease is the entityType of lease rows. KCL 3.5's single table
// format keeps worker metrics and coordinator state rows in the lease table
// too, each with its own entityType.
const entityTypeLease = "LEASE"

// ErrNotLease is matched by the error UnmarshalItem returns for an item whose
// entityType is not "LEASE": a row KCL 3.5's single table format keeps in the
// lease table for other purposes (worker metrics, coordinator state). Such an
// item is not malformed; it is simply not a lease. Store.List skips these
// items and Store.Get reports them as lease.ErrNotFound.
var ErrNotLease = errors.New("dynamolease: item is not a lease")

// MarshalItem returns the DynamoDB item for l, shaped exactly as the Java KCL
// writes a lease: leaseKey, leaseCounter, ownerSwitchesSinceCheckpoint,
// checkpoint and checkpointSubSequenceNumber always; leaseOwner,
// pendingCheckpoint and pendingCheckpointSubSequenceNumber,
// pendingCheckpointState, parentShardId, childShardIds, startingHashKey and
// endingHashKey, checkpointOwner, throughputKBps, streamName and shardId only
// when set (KCL never writes empty strings, sets or binaries). It always
// writes entityType "LEASE", as KCL 3.5 marks lease rows; earlier KCL
// versions ignore the attribute.
//
// MarshalItem does not validate l: a lease UnmarshalItem would reject (an
// empty key, a zero checkpoint, a negative counter, duplicate shard ids)
// yields an item UnmarshalItem rejects too. Store.Create checks this before
// writing.
func MarshalItem(l lease.Lease) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{
		attrLeaseKey:      &types.AttributeValueMemberS{Value: l.Key},
		attrLeaseCounter:  numberInt(l.Counter),
		attrOwnerSwitches: numberInt(l.OwnerSwitchesSinceCheckpoint),
		attrEntityType:    &types.AttributeValueMemberS{Value: entityTypeLease},
	}
	if !l.Checkpoint.IsZero() {
		item[attrCheckpoint] = &types.AttributeValueMemberS{Value: l.Checkpoint.SequenceNumber()}
		item[attrCheckpointSub] = numberUint(l.Checkpoint.SubSequenceNumber())
	}
	if l.Owner != "" {
		item[attrLeaseOwner] = &types.AttributeValueMemberS{Value: l.Owner}
	}
	if !l.PendingCheckpoint.IsZero() {
		item[attrPendingCheckpoint] = &types.AttributeValueMemberS{Value: l.PendingCheckpoint.SequenceNumber()}
		item[attrPendingCheckpointSub] = numberUint(l.PendingCheckpoint.SubSequenceNumber())
	}
	if len(l.PendingCheckpointState) > 0 {
		item[attrPendingState] = &types.AttributeValueMemberB{Value: slices.Clone(l.PendingCheckpointState)}
	}
	if len(l.ParentShardIDs) > 0 {
		item[attrParentShardIDs] = &types.AttributeValueMemberSS{Value: slices.Clone(l.ParentShardIDs)}
	}
	if len(l.ChildShardIDs) > 0 {
		item[attrChildShardIDs] = &types.AttributeValueMemberSS{Value: slices.Clone(l.ChildShardIDs)}
	}
	if l.HashRange != nil {
		item[attrStartingHashKey] = &types.AttributeValueMemberS{Value: l.HashRange.Start.String()}
		item[attrEndingHashKey] = &types.AttributeValueMemberS{Value: l.HashRange.End.String()}
	}
	if l.CheckpointOwner != "" {
		item[attrCheckpointOwner] = &types.AttributeValueMemberS{Value: l.CheckpointOwner}
	}
	if l.ThroughputKBps != nil {
		item[attrThroughputKBps] = numberFloat(*l.ThroughputKBps)
	}
	if l.StreamName != "" {
		item[attrStreamName] = &types.AttributeValueMemberS{Value: l.StreamName}
	}
	if l.ShardID != "" {
		item[attrShardID] = &types.AttributeValueMemberS{Value: l.ShardID}
	}
	return item
}

func numberInt(n int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func numberUint(n uint64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatUint(n, 10)}
}

func numberFloat(f float64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatFloat(f, 'f', -1, 64)}
}

// UnmarshalItem reads a lease item as the Java KCL 2.x/3.x writes it.
// Attributes it does not know are ignored (Store updates never remove them).
//
// Required: leaseKey (S, non-empty), leaseCounter (N) and checkpoint (S, a
// sequence number or TRIM_HORIZON, LATEST, AT_TIMESTAMP, SHARD_END) — KCL
// cannot work a lease without them either. Tolerated when absent, as KCL
// tolerates them: checkpointSubSequenceNumber and
// pendingCheckpointSubSequenceNumber (read as 0, like KCL's
// ExtendedSequenceNumber), ownerSwitchesSinceCheckpoint (read as 0), and every
// optional attribute. An empty pendingCheckpointState is read as no state, and
// so is one of type N: KCL's DynamoDBLeaseSerializer.toDynamoRecord (used to
// create leases) writes the checkpoint's sub-sequence number there by mistake.
//
// Every present attribute must have KCL's type and a value KCL would write:
// counters and sub-sequence numbers are non-negative integers, strings are
// non-empty, throughputKBps is a finite non-negative number, shard-id sets
// hold no empty or duplicate ids, and startingHashKey and endingHashKey come
// together and form a valid range. Otherwise UnmarshalItem returns a
// *lease.ItemError naming the item's key and the attribute (wrapping the
// *checkpoint.ParseError or hashkey error when there is one).
//
// parentShardId and childShardIds are DynamoDB string sets, which have no
// order; they are returned sorted. (KCL does not record which parent of a
// merge is the adjacent one either.)
//
// An item whose entityType is not "LEASE" is another KCL 3.5 row type; for it
// UnmarshalItem returns an error matching ErrNotLease. An absent entityType
// means a lease (KCL before 3.5 does not write it).
func UnmarshalItem(item map[string]types.AttributeValue) (lease.Lease, error) {
	d := decoder{item: item}
	var l lease.Lease

	key, ok := d.str(attrLeaseKey)
	if d.err != nil {
		return lease.Lease{}, d.err
	}
	if !ok {
		return lease.Lease{}, &lease.ItemError{Attribute: attrLeaseKey, Reason: "missing"}
	}
	l.Key, d.key = key, key

	if et, ok := d.str(attrEntityType); d.err != nil {
		return lease.Lease{}, d.err
	} else if ok && et != entityTypeLease {
		return lease.Lease{}, fmt.Errorf("%w: %q has entityType %q", ErrNotLease, key, et)
	}

	l.Counter = d.count(attrLeaseCounter, true)
	l.OwnerSwitchesSinceCheckpoint = d.count(attrOwnerSwitches, false)
	l.Owner, _ = d.str(attrLeaseOwner)
	l.CheckpointOwner, _ = d.str(attrCheckpointOwner)
	l.StreamName, _ = d.str(attrStreamName)
	l.ShardID, _ = d.str(attrShardID)
	l.Checkpoint = d.position(attrCheckpoint, attrCheckpointSub, true)
	l.PendingCheckpoint = d.position(attrPendingCheckpoint, attrPendingCheckpointSub, false)
	if _, isN := item[attrPendingState].(*types.AttributeValueMemberN); !isN {
		l.PendingCheckpointState = d.binary(attrPendingState)
	}
	l.ParentShardIDs = d.stringSet(attrParentShardIDs)
	l.ChildShardIDs = d.stringSet(attrChildShardIDs)
	l.HashRange = d.hashRange()
	l.ThroughputKBps = d.throughput()
	if d.err != nil {
		return lease.Lease{}, d.err
	}
	return l, nil
}

// decoder reads attributes of one item, keeping the first error.
type decoder struct {
	item map[string]types.AttributeValue
	key  string
	err  *lease.ItemError
}

func (d *decoder) fail(attr, reason string, err error) {
	if d.err == nil {
		d.err = &lease.ItemError{Key: d.key, Attribute: attr, Reason: reason, Err: err}
	}
}

// member returns attribute attr as DynamoDB type P (named want in errors)
// and whether it is present with that type; a present attribute of another
// type is an error.
func member[T any, P interface {
	*T
	types.AttributeValue
}](d *decoder, attr, want string) (P, bool) {
	av, ok := d.item[attr]
	if !ok {
		return nil, false
	}
	v, is := av.(P)
	switch {
	case !is:
		d.fail(attr, fmt.Sprintf("want type %s, have %s", want, typeName(av)), nil)
		return nil, false
	case v == nil:
		d.fail(attr, fmt.Sprintf("want type %s, have a nil value", want), nil)
		return nil, false
	}
	return v, true
}

// str returns a non-empty S attribute and whether it is present.
func (d *decoder) str(attr string) (string, bool) {
	s, ok := member[types.AttributeValueMemberS](d, attr, "S")
	if !ok {
		return "", false
	}
	if s.Value == "" {
		d.fail(attr, "empty string (KCL never writes one)", nil)
		return "", false
	}
	return s.Value, true
}

// number returns the text of an N attribute and whether it is present.
func (d *decoder) number(attr string) (string, bool) {
	n, ok := member[types.AttributeValueMemberN](d, attr, "N")
	if !ok {
		return "", false
	}
	return n.Value, true
}

// count returns a non-negative integer N attribute; 0 when it is absent.
func (d *decoder) count(attr string, required bool) int64 {
	s, ok := d.number(attr)
	if !ok {
		if required && d.err == nil {
			d.fail(attr, "missing", nil)
		}
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case err != nil:
		d.fail(attr, fmt.Sprintf("not an integer: %q", truncate(s)), nil)
		return 0
	case n < 0:
		d.fail(attr, fmt.Sprintf("negative: %d", n), nil)
		return 0
	}
	return n
}

// position reads a checkpoint attribute and its sub-sequence number attribute.
func (d *decoder) position(attr, subAttr string, required bool) checkpoint.Position {
	value, ok := d.str(attr)
	sub := d.count(subAttr, false)
	if !ok {
		if required && d.err == nil {
			d.fail(attr, "missing", nil)
		}
		return checkpoint.Position{}
	}
	if d.err != nil {
		return checkpoint.Position{}
	}
	p, err := checkpoint.Parse(value, uint64(sub))
	if err != nil {
		d.fail(attr, "not a sequence number or checkpoint sentinel", err)
		return checkpoint.Position{}
	}
	return p
}

// binary returns a B attribute; nil when absent or empty.
func (d *decoder) binary(attr string) []byte {
	b, ok := member[types.AttributeValueMemberB](d, attr, "B")
	if !ok || len(b.Value) == 0 {
		return nil
	}
	return slices.Clone(b.Value)
}

// stringSet returns an SS attribute of shard ids, sorted; nil when absent.
func (d *decoder) stringSet(attr string) []string {
	ss, ok := member[types.AttributeValueMemberSS](d, attr, "SS")
	if !ok {
		return nil
	}
	ids := slices.Clone(ss.Value)
	if reason := checkShardIDs(ids); reason != "" {
		d.fail(attr, reason, nil)
		return nil
	}
	slices.Sort(ids)
	return ids
}

// checkShardIDs returns why ids cannot be stored as a DynamoDB string set of
// shard ids, or "".
func checkShardIDs(ids []string) string {
	if len(ids) == 0 {
		return "empty string set"
	}
	sorted := slices.Sorted(slices.Values(ids))
	for i, id := range sorted {
		if id == "" {
			return "empty shard id in string set"
		}
		if i > 0 && sorted[i-1] == id {
			return fmt.Sprintf("duplicate shard id %q in string set", truncate(id))
		}
	}
	return ""
}

func (d *decoder) hashRange() *hashkey.Range {
	start, okStart := d.str(attrStartingHashKey)
	end, okEnd := d.str(attrEndingHashKey)
	switch {
	case d.err != nil || (!okStart && !okEnd):
		return nil
	case !okStart:
		d.fail(attrStartingHashKey, "missing while endingHashKey is present", nil)
		return nil
	case !okEnd:
		d.fail(attrEndingHashKey, "missing while startingHashKey is present", nil)
		return nil
	}
	s, err := hashkey.Parse(start)
	if err != nil {
		d.fail(attrStartingHashKey, "not a hash key", err)
		return nil
	}
	e, err := hashkey.Parse(end)
	if err != nil {
		d.fail(attrEndingHashKey, "not a hash key", err)
		return nil
	}
	if s.Compare(e) > 0 {
		d.fail(attrStartingHashKey, fmt.Sprintf("greater than endingHashKey %s", e), hashkey.ErrInvalidRange)
		return nil
	}
	return &hashkey.Range{Start: s, End: e}
}

func (d *decoder) throughput() *float64 {
	s, ok := d.number(attrThroughputKBps)
	if !ok {
		return nil
	}
	if !isDecimal(s) {
		d.fail(attrThroughputKBps, fmt.Sprintf("not a decimal number: %q", truncate(s)), nil)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil || math.IsInf(f, 0):
		d.fail(attrThroughputKBps, fmt.Sprintf("out of range: %q", truncate(s)), nil)
		return nil
	case f < 0:
		d.fail(attrThroughputKBps, fmt.Sprintf("negative: %q", truncate(s)), nil)
		return nil
	}
	return &f
}

// isDecimal reports whether s is a DynamoDB number literal: an optional sign,
// digits with an optional fraction, and an optional exponent. It rejects what
// strconv.ParseFloat accepts beyond that (Inf, NaN, hexadecimal, underscores).
func isDecimal(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	digits := 0
	for ; i < len(s) && isDigit(s[i]); i++ {
		digits++
	}
	if i < len(s) && s[i] == '.' {
		for i++; i < len(s) && isDigit(s[i]); i++ {
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			i++
		}
		exp := 0
		for ; i < len(s) && isDigit(s[i]); i++ {
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(s)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// truncate bounds how much of a bad value an error message repeats.
func truncate(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// typeName names the DynamoDB type of av for error messages.
func typeName(av types.AttributeValue) string {
	switch av.(type) {
	case nil:
		return "none (nil value)"
	case *types.AttributeValueMemberS:
		return "S"
	case *types.AttributeValueMemberN:
		return "N"
	case *types.AttributeValueMemberB:
		return "B"
	case *types.AttributeValueMemberSS:
		return "SS"
	case *types.AttributeValueMemberNS:
		return "NS"
	case *types.AttributeValueMemberBS:
		return "BS"
	case *types.AttributeValueMemberBOOL:
		return "BOOL"
	case *types.AttributeValueMemberNULL:
		return "NULL"
	case *types.AttributeValueMemberL:
		return "L"
	case *types.AttributeValueMemberM:
		return "M"
	default:
		return fmt.Sprintf("%T", av)
	}
}
