package streams

import (
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"

	"github.com/kclgo/kcl/cmd/kcl/internal/ops"
	"github.com/kclgo/kcl/internal/streamctl"
)

// describeJSON is `describe`'s result.
type describeJSON struct {
	summaryJSON
	Consumers []consumerJSON `json:"consumers"`
	// Shards are every shard, open and closed, in creation order.
	Shards []shardJSON `json:"shards"`
}

type consumerJSON struct {
	Name    string    `json:"name"`
	ARN     string    `json:"arn"`
	Status  string    `json:"status"`
	Created time.Time `json:"created"`
}

type shardJSON struct {
	ID       string   `json:"id"`
	State    string   `json:"state"` // open or closed
	Parents  []string `json:"parents"`
	Children []string `json:"children"`
	// StartingHashKey and EndingHashKey are decimal, as Kinesis gives them.
	StartingHashKey string `json:"startingHashKey"`
	EndingHashKey   string `json:"endingHashKey"`
	// KeySpaceStart, KeySpaceEnd and KeySpaceShare are percentages of the
	// hash key space.
	KeySpaceStart          float64 `json:"keySpaceStart"`
	KeySpaceEnd            float64 `json:"keySpaceEnd"`
	KeySpaceShare          float64 `json:"keySpaceShare"`
	StartingSequenceNumber string  `json:"startingSequenceNumber"`
	EndingSequenceNumber   string  `json:"endingSequenceNumber,omitempty"`
}

func shardOf(s *streamctl.Shard) shardJSON {
	state := "closed"
	if s.Open {
		state = "open"
	}
	return shardJSON{
		ID: s.ID, State: state, Parents: nonNil(s.Parents()), Children: nonNil(s.Children),
		StartingHashKey: s.Range.Start.String(), EndingHashKey: s.Range.End.String(),
		KeySpaceStart:          round(100 * streamctl.Position(s.Range.Start)),
		KeySpaceEnd:            round(100 * (streamctl.Position(s.Range.Start) + s.Share())),
		KeySpaceShare:          round(100 * s.Share()),
		StartingSequenceNumber: s.StartingSequence, EndingSequenceNumber: s.EndingSequence,
	}
}

// round keeps four decimals, so that JSON output is stable.
func round(pct float64) float64 {
	return float64(int64(pct*1e4+0.5)) / 1e4
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func newDescribe(env *ops.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Describe a stream: status, mode, retention, encryption, consumers and the shard lineage",
		Long: "Describe a stream: its status, capacity mode, retention, encryption, enhanced fan-out consumers, and\n" +
			"the lineage of its shards as a tree (parents above children), with each shard's state and its hash\n" +
			"key range as percentages of the key space. A shard merged from two parents is drawn under the first\n" +
			"and referred to under the second.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if _, err := env.Output(); err != nil {
				return err
			}
			ctx, stop := ops.Context(cmd)
			defer stop()
			st, err := stream(ctx, env, name)
			if err != nil {
				return err
			}
			d, err := st.Summary(ctx)
			if err != nil {
				return fail(name, err)
			}
			out := describeJSON{summaryJSON: summary(d), Consumers: []consumerJSON{}, Shards: []shardJSON{}}
			consumers, err := st.Consumers(ctx, aws.ToString(d.StreamARN))
			if err != nil {
				return fail(name, err)
			}
			for _, c := range consumers {
				out.Consumers = append(out.Consumers, consumerJSON{
					Name: aws.ToString(c.ConsumerName), ARN: aws.ToString(c.ConsumerARN),
					Status: string(c.ConsumerStatus), Created: aws.ToTime(c.ConsumerCreationTimestamp).UTC(),
				})
			}
			lin, err := st.Lineage(ctx)
			if err != nil {
				return fail(name, err)
			}
			for _, s := range lin.Shards {
				out.Shards = append(out.Shards, shardOf(s))
			}
			return env.Print(out, func(t *ops.Tab) { describeTable(t, out, lin) })
		},
	}
}

func describeTable(t *ops.Tab, out describeJSON, lin *streamctl.Lineage) {
	t.Row("Stream:", out.Name)
	t.Row("ARN:", out.ARN)
	t.Row("Status:", out.Status)
	t.Row("Mode:", out.Mode)
	t.Row("Retention:", fmt.Sprintf("%d hours", out.RetentionHours))
	enc := out.Encryption
	if out.KeyID != "" {
		enc += " (" + out.KeyID + ")"
	}
	t.Row("Encryption:", enc)
	t.Row("Open shards:", out.OpenShards)
	t.Line("")
	if len(out.Consumers) == 0 {
		t.Line("Consumers: none")
	} else {
		t.Line("Consumers:")
		t.Row("NAME", "STATUS", "CREATED")
		for _, c := range out.Consumers {
			t.Row(c.Name, c.Status, c.Created.Format(time.RFC3339))
		}
	}
	t.Line("")
	t.Line("Shards:")
	t.Row("SHARD", "STATE", "HASH KEYS", "SHARE")
	var draw func(s *streamctl.Shard, prefix, branch string)
	draw = func(s *streamctl.Shard, prefix, branch string) {
		j := shardOf(s)
		t.Row(prefix+branch+s.ID, j.State, pct(j.KeySpaceStart)+" – "+pct(j.KeySpaceEnd), pct(j.KeySpaceShare))
		below := prefix
		switch branch {
		case "├─ ":
			below += "│  "
		case "└─ ":
			below += "   "
		}
		for i, id := range s.Children {
			b := "├─ "
			if i == len(s.Children)-1 {
				b = "└─ "
			}
			c := lin.Shard(id)
			if c.Parent != s.ID && lin.Shard(c.Parent) != nil {
				// A merge child is drawn under its first parent.
				t.Row(below+b+c.ID, "", "", "(merged; see under "+c.Parent+")")
				continue
			}
			draw(c, below, b)
		}
	}
	for _, r := range lin.Roots() {
		draw(r, "", "")
	}
}

// pct formats a percentage with one decimal, without a trailing ".0".
func pct(p float64) string {
	return strings.TrimSuffix(fmt.Sprintf("%.1f", p), ".0") + "%"
}
