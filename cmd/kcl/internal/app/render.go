package app

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kclgo/kcl/checkpoint"
)

// WriteTable writes the view for people: the leases, the workers and the
// problems.
func WriteTable(w io.Writer, v View) error {
	fmt.Fprintf(w, "application %s: %d leases, observed for %s\n\n", v.App, len(v.Rows), v.Observed.Round(100*time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	multi := false
	for _, r := range v.Rows {
		multi = multi || r.Stream != ""
	}
	if multi {
		fmt.Fprint(tw, "STREAM\t")
	}
	fmt.Fprintln(tw, "SHARD\tSTATE\tOWNER\tCOUNTER\tCHECKPOINT\tLAG\tAGE\tSWITCHES")
	for _, r := range v.Rows {
		if multi {
			fmt.Fprintf(tw, "%s\t", r.Stream)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%d\n", r.Shard, stateText(r), dash(ownerText(r)), r.Counter,
			positionText(r.Checkpoint), lagText(r.Lag), ageText(r.Lag), r.Switches)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range v.Rows {
		if r.Lag.Err != "" {
			fmt.Fprintf(w, "lag of %s unknown: %s\n", r.Shard, r.Lag.Err)
		}
	}
	fmt.Fprintln(w)
	if len(v.Workers) == 0 {
		fmt.Fprintln(w, "no worker holds a lease")
	} else {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "WORKER\tLEASES\tLAG")
		for _, wk := range v.Workers {
			lag := "-"
			if wk.LagKnown {
				lag = wk.Lag.Round(time.Millisecond).String()
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\n", wk.ID, wk.Leases, lag)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	if len(v.Problems) == 0 {
		_, err := fmt.Fprintln(w, "no problems seen")
		return err
	}
	fmt.Fprintln(w, "PROBLEMS")
	for _, p := range v.Problems {
		fmt.Fprintf(w, "  %s: %s\n", p.Kind, p.Message)
	}
	return nil
}

func stateText(r Row) string {
	if r.State == Waiting {
		return "waiting(" + strings.Join(r.WaitingFor, ",") + ")"
	}
	return r.State.String()
}

func ownerText(r Row) string {
	if r.HandoffFrom != "" {
		return r.HandoffFrom + "→" + r.Owner
	}
	return r.Owner
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// positionText is a checkpoint as KCL stores it, with its sub-sequence
// number after a slash when it is not 0.
func positionText(p checkpoint.Position) string {
	if p.IsSequence() && p.SubSequenceNumber() != 0 {
		return p.SequenceNumber() + "/" + strconv.FormatUint(p.SubSequenceNumber(), 10)
	}
	return dash(p.SequenceNumber())
}

func lagText(l Lag) string {
	switch {
	case l.Err != "":
		return "?"
	case !l.Known:
		return "-"
	}
	return l.Behind.Round(time.Millisecond).String()
}

func ageText(l Lag) string {
	if !l.HasAge {
		return "-"
	}
	return l.Age.Round(time.Second).String()
}

// JSONView is the view as --output json prints it. Its field names are
// stable: scripts read them.
type JSONView struct {
	Application    string        `json:"application"`
	ObservedMillis int64         `json:"observedMillis"`
	Leases         []JSONLease   `json:"leases"`
	Workers        []JSONWorker  `json:"workers"`
	Problems       []JSONProblem `json:"problems"`
}

// JSONLease is one lease of JSONView.
type JSONLease struct {
	LeaseKey                     string   `json:"leaseKey"`
	Stream                       string   `json:"stream,omitempty"`
	Shard                        string   `json:"shard"`
	State                        string   `json:"state"`
	WaitingFor                   []string `json:"waitingFor,omitempty"`
	Owner                        string   `json:"owner,omitempty"`
	HandoffFrom                  string   `json:"handoffFrom,omitempty"`
	LeaseCounter                 int64    `json:"leaseCounter"`
	Checkpoint                   string   `json:"checkpoint"`
	CheckpointSubSequenceNumber  uint64   `json:"checkpointSubSequenceNumber"`
	OwnerSwitchesSinceCheckpoint int64    `json:"ownerSwitchesSinceCheckpoint"`
	MillisBehindLatest           *int64   `json:"millisBehindLatest"`
	CheckpointAgeMillis          *int64   `json:"checkpointAgeMillis"`
	LagError                     string   `json:"lagError,omitempty"`
}

// JSONWorker is one worker of JSONView.
type JSONWorker struct {
	Worker             string `json:"worker"`
	Leases             int    `json:"leases"`
	MillisBehindLatest *int64 `json:"millisBehindLatest"`
}

// JSONProblem is one problem of JSONView.
type JSONProblem struct {
	Kind    string `json:"kind"`
	Shard   string `json:"shard,omitempty"`
	Message string `json:"message"`
}

// ToJSON returns v as --output json prints it.
func ToJSON(v View) JSONView {
	j := JSONView{Application: v.App, ObservedMillis: v.Observed.Milliseconds(),
		Leases: []JSONLease{}, Workers: []JSONWorker{}, Problems: []JSONProblem{}}
	for _, r := range v.Rows {
		l := JSONLease{LeaseKey: r.Key, Stream: r.Stream, Shard: r.Shard, State: r.State.String(), WaitingFor: r.WaitingFor,
			Owner: r.Owner, HandoffFrom: r.HandoffFrom, LeaseCounter: r.Counter, Checkpoint: r.Checkpoint.SequenceNumber(),
			CheckpointSubSequenceNumber: r.Checkpoint.SubSequenceNumber(), OwnerSwitchesSinceCheckpoint: r.Switches, LagError: r.Lag.Err}
		if r.Lag.Known {
			ms := r.Lag.Behind.Milliseconds()
			l.MillisBehindLatest = &ms
		}
		if r.Lag.HasAge {
			ms := r.Lag.Age.Milliseconds()
			l.CheckpointAgeMillis = &ms
		}
		j.Leases = append(j.Leases, l)
	}
	for _, w := range v.Workers {
		jw := JSONWorker{Worker: w.ID, Leases: w.Leases}
		if w.LagKnown {
			ms := w.Lag.Milliseconds()
			jw.MillisBehindLatest = &ms
		}
		j.Workers = append(j.Workers, jw)
	}
	for _, p := range v.Problems {
		j.Problems = append(j.Problems, JSONProblem(p))
	}
	return j
}
