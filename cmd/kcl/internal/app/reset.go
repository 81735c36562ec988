package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/lease"
)

// Errors of a reset.
var (
	// ErrLiveOwner: a lease to reset is held by a worker observed renewing,
	// and --force was not given. Nothing was written.
	ErrLiveOwner = errors.New("held by a live worker")
	// ErrUnknownShard: --shard names no lease of the table.
	ErrUnknownShard = errors.New("no lease for shard")
	// ErrChanged: a lease changed between the plan and the write (a
	// condition failed). Nothing was written.
	ErrChanged = errors.New("the lease table changed while resetting")
)

// Change is one lease a reset moves.
type Change struct {
	Key, Shard string
	// Owner and Counter are the lease as observed; the write is conditioned
	// on both.
	Owner   string
	Counter int64
	// Live reports whether the owner was observed renewing.
	Live     bool
	From, To checkpoint.Position
}

// ResetPlan is what a reset will write.
type ResetPlan struct {
	App     string
	Target  Target
	Changes []Change
	// Skipped names leases left alone, with why (finished, or no position
	// could be found for the time).
	Skipped []string
}

// ResetOptions configure PlanReset.
type ResetOptions struct {
	Target Target
	// Shard limits the reset to one shard; "" for every unfinished lease.
	Shard string
	// Stream is the stream of a single-stream application; needed to
	// resolve a time.
	Stream string
	// Observe is how long to watch the table for live owners, and
	// LeaseDuration the application's lease duration.
	Observe, LeaseDuration time.Duration
}

// PlanReset reads the table twice, o.Observe apart, to see which owners
// renew, and returns the changes a reset to o.Target makes. Finished leases
// are reset only when named with o.Shard. A sequence-number target needs
// o.Shard (sequence numbers belong to one shard). It writes nothing.
func PlanReset(ctx context.Context, t *Table, kc KinesisAPI, o ResetOptions) (ResetPlan, error) {
	if o.Target.Position.IsSequence() && o.Shard == "" {
		return ResetPlan{}, fmt.Errorf("%w: a sequence number belongs to one shard: name it with --shard", ErrBadTarget)
	}
	obs := NewObserver()
	if _, err := Describe(ctx, t, nil, "", obs, o.LeaseDuration); err != nil {
		return ResetPlan{}, err
	}
	if o.Observe > 0 {
		select {
		case <-ctx.Done():
			return ResetPlan{}, ctx.Err()
		case <-time.After(o.Observe):
		}
	}
	leases, err := t.Leases(ctx)
	if err != nil {
		return ResetPlan{}, err
	}
	beats, err := t.heartbeats(ctx, leases)
	if err != nil {
		return ResetPlan{}, err
	}
	now := time.Now()
	obs.Observe(leases, now)
	obs.ObserveWorkers(beats, now)

	plan := ResetPlan{App: t.App, Target: o.Target}
	var selected []lease.Lease
	for _, l := range leases {
		shard := shardOf(l)
		if o.Shard != "" && shard != o.Shard && l.Key != o.Shard {
			continue
		}
		if l.Finished() && o.Shard == "" {
			plan.Skipped = append(plan.Skipped, shard+": finished")
			continue
		}
		selected = append(selected, l)
	}
	if o.Shard != "" && len(selected) == 0 {
		return ResetPlan{}, fmt.Errorf("%w %s in application %s", ErrUnknownShard, o.Shard, t.App)
	}
	timed := !o.Target.Time.IsZero()
	if timed {
		for _, l := range selected {
			if StreamOf(l) == "" && (o.Stream == "" || kc == nil) {
				return ResetPlan{}, fmt.Errorf("%w: a time needs the stream: give --stream", ErrBadTarget)
			}
		}
	}
	for _, l := range selected {
		to := o.Target.Position
		if timed {
			stream := StreamOf(l)
			if stream == "" {
				stream = o.Stream
			}
			p, err := ResolveTime(ctx, kc, stream, shardOf(l), o.Target.Time)
			if err != nil {
				return ResetPlan{}, err
			}
			to = p
		}
		plan.Changes = append(plan.Changes, Change{Key: l.Key, Shard: shardOf(l), Owner: l.Owner, Counter: l.Counter,
			Live: l.Owner != "" && obs.Liveness(l.Key, l.Owner, now, o.LeaseDuration) == Live, From: l.Checkpoint, To: to})
	}
	return plan, nil
}

// shardOf returns the shard id of a lease.
func shardOf(l lease.Lease) string {
	if l.ShardID != "" {
		return l.ShardID
	}
	return l.Key
}

// Refusal returns an error matching ErrLiveOwner naming the leases held by
// live workers, unless force; nil otherwise.
func (p ResetPlan) Refusal(force bool) error {
	if force {
		return nil
	}
	var live []string
	for _, c := range p.Changes {
		if c.Live {
			live = append(live, c.Shard+" ("+c.Owner+")")
		}
	}
	if len(live) == 0 {
		return nil
	}
	return fmt.Errorf("%s %w: %s; stop the application first, or fence the holders with --force", plural(len(live), "lease is", "leases are"), ErrLiveOwner, strings.Join(live, ", "))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// WritePlan prints what a reset will change.
func WritePlan(w io.Writer, p ResetPlan) error {
	fmt.Fprintf(w, "reset application %s to %s: %s\n\n", p.App, p.Target, plural(len(p.Changes), "lease", "leases"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tOWNER\tCOUNTER\tFROM\tTO")
	for _, c := range p.Changes {
		owner := dash(c.Owner)
		if c.Live {
			owner += " (live)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", c.Shard, owner, c.Counter, positionText(c.From), positionText(c.To))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range p.Skipped {
		fmt.Fprintf(w, "left alone: %s\n", s)
	}
	return nil
}

// TransactAPI is the part of *dynamodb.Client a reset writes with.
type TransactAPI interface {
	TransactWriteItems(ctx context.Context, params *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

var _ TransactAPI = (*dynamodb.Client)(nil)

// maxTransact is DynamoDB's limit of items in one transaction.
const maxTransact = 100

// ApplyReset writes the plan: for each change, one update conditioned on
// the lease's counter and owner as planned, that sets the checkpoint (and
// its sub-sequence number), resets ownerSwitchesSinceCheckpoint, removes any
// pending checkpoint, increments the counter and removes the owner and any
// handoff. The counter fences the holder: its renewals and checkpoints are
// conditioned on the counter it holds, so they fail and it lets the shard
// go; removing the owner keeps a holder that re-reads after a failed renewal
// from taking the new counter for its own landed write (KCL's check is
// "owner = me, counter one up"), and lets any worker take the lease at once,
// from the new checkpoint.
//
// The updates go in transactions of up to 100 leases: each transaction
// writes all its leases or none. On a failed condition it returns an error
// matching ErrChanged and that transaction wrote nothing.
func ApplyReset(ctx context.Context, client TransactAPI, p ResetPlan) error {
	for start := 0; start < len(p.Changes); start += maxTransact {
		batch := p.Changes[start:min(start+maxTransact, len(p.Changes))]
		items := make([]types.TransactWriteItem, len(batch))
		for i, c := range batch {
			items[i] = types.TransactWriteItem{Update: resetUpdate(p.App, c)}
		}
		_, err := client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		var tce *types.TransactionCanceledException
		if errors.As(err, &tce) {
			var changed []string
			for i, r := range tce.CancellationReasons {
				if aws.ToString(r.Code) == "ConditionalCheckFailed" && i < len(batch) {
					changed = append(changed, batch[i].Shard)
				}
			}
			if start > 0 {
				return fmt.Errorf("%w (%s); the first %d leases were reset", ErrChanged, strings.Join(changed, ", "), start)
			}
			return fmt.Errorf("%w (%s); nothing was written: run the reset again", ErrChanged, strings.Join(changed, ", "))
		}
		if err != nil {
			return fmt.Errorf("reset: %s", shortErr(err))
		}
	}
	return nil
}

func resetUpdate(table string, c Change) *types.Update {
	names := map[string]string{
		"#k": "leaseKey", "#c": "leaseCounter", "#o": "leaseOwner", "#cp": "checkpoint", "#sub": "checkpointSubSequenceNumber",
		"#sw": "ownerSwitchesSinceCheckpoint", "#p": "pendingCheckpoint", "#psub": "pendingCheckpointSubSequenceNumber",
		"#ps": "pendingCheckpointState", "#co": "checkpointOwner",
	}
	values := map[string]types.AttributeValue{
		":c":   &types.AttributeValueMemberN{Value: strconv.FormatInt(c.Counter, 10)},
		":c1":  &types.AttributeValueMemberN{Value: strconv.FormatInt(c.Counter+1, 10)},
		":cp":  &types.AttributeValueMemberS{Value: c.To.SequenceNumber()},
		":sub": &types.AttributeValueMemberN{Value: strconv.FormatUint(c.To.SubSequenceNumber(), 10)},
		":0":   &types.AttributeValueMemberN{Value: "0"},
	}
	cond := "attribute_exists(#k) AND #c = :c AND "
	if c.Owner == "" {
		cond += "attribute_not_exists(#o)"
	} else {
		cond += "#o = :o"
		values[":o"] = &types.AttributeValueMemberS{Value: c.Owner}
	}
	return &types.Update{
		TableName:                 aws.String(table),
		Key:                       map[string]types.AttributeValue{"leaseKey": &types.AttributeValueMemberS{Value: c.Key}},
		ConditionExpression:       aws.String(cond),
		UpdateExpression:          aws.String("SET #cp = :cp, #sub = :sub, #sw = :0, #c = :c1 REMOVE #p, #psub, #ps, #o, #co"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}
}

// ResetJSON is a reset as --output json prints it: the plan, and whether it
// was written. Its field names are stable.
type ResetJSON struct {
	Application string       `json:"application"`
	Target      string       `json:"target"`
	Applied     bool         `json:"applied"`
	Changes     []ChangeJSON `json:"changes"`
	Skipped     []string     `json:"skipped"`
}

// ChangeJSON is one change of ResetJSON.
type ChangeJSON struct {
	LeaseKey     string `json:"leaseKey"`
	Shard        string `json:"shard"`
	Owner        string `json:"owner,omitempty"`
	Live         bool   `json:"live"`
	LeaseCounter int64  `json:"leaseCounter"`
	From         string `json:"from"`
	To           string `json:"to"`
}

// PlanJSON returns p as --output json prints it.
func PlanJSON(p ResetPlan, applied bool) ResetJSON {
	j := ResetJSON{Application: p.App, Target: p.Target.String(), Applied: applied, Changes: []ChangeJSON{}, Skipped: []string{}}
	for _, c := range p.Changes {
		j.Changes = append(j.Changes, ChangeJSON{LeaseKey: c.Key, Shard: c.Shard, Owner: c.Owner, Live: c.Live,
			LeaseCounter: c.Counter, From: positionText(c.From), To: positionText(c.To)})
	}
	j.Skipped = append(j.Skipped, p.Skipped...)
	return j
}
