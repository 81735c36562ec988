package consumer

import (
	"context"
	"errors"
	"testing"
)

func TestProcessorFuncCallsTheFunctionWithItsArguments(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(t.Context(), key{}, "v")
	b := &Batch{ShardID: "shardId-1"}
	want := errors.New("boom")
	var gotCtx context.Context
	var gotBatch *Batch
	var p Processor = ProcessorFunc(func(ctx context.Context, b *Batch) error {
		gotCtx, gotBatch = ctx, b
		return want
	})
	if err := p.ProcessRecords(ctx, b); !errors.Is(err, want) {
		t.Fatalf("ProcessRecords returned %v, want %v", err, want)
	}
	if gotCtx.Value(key{}) != "v" || gotBatch != b {
		t.Fatalf("function got ctx %v and batch %p, want the caller's ctx and batch %p", gotCtx, gotBatch, b)
	}
}

func TestFactoryFuncCallsTheFunctionWithTheShard(t *testing.T) {
	var got ShardInfo
	var f Factory = FactoryFunc(func(shard ShardInfo) (Processor, error) {
		got = shard
		return ProcessorFunc(func(context.Context, *Batch) error { return nil }), nil
	})
	p, err := f.NewProcessor(ShardInfo{StreamName: "s", ShardID: "shardId-7", ParentShardIDs: []string{"shardId-3"}})
	if err != nil || p == nil {
		t.Fatalf("NewProcessor = %v, %v; want a processor", p, err)
	}
	if got.StreamName != "s" || got.ShardID != "shardId-7" || len(got.ParentShardIDs) != 1 {
		t.Fatalf("function got %+v", got)
	}
}

// Processors implementing various subsets of the optional interfaces.
type (
	plainProcessor struct{}
	initProcessor  struct{ plainProcessor }
	endProcessor   struct{ plainProcessor }
	lostProcessor  struct{ plainProcessor }
	stopProcessor  struct{ plainProcessor }
	fullProcessor  struct{ plainProcessor }
)

func (plainProcessor) ProcessRecords(context.Context, *Batch) error  { return nil }
func (initProcessor) Initialize(context.Context, InitInput) error    { return nil }
func (endProcessor) ShardEnded(context.Context, *Checkpointer) error { return nil }
func (lostProcessor) LeaseLost(context.Context)                      {}
func (stopProcessor) ShutdownRequested(context.Context, *Checkpointer) error {
	return nil
}
func (fullProcessor) Initialize(context.Context, InitInput) error     { return nil }
func (fullProcessor) ShardEnded(context.Context, *Checkpointer) error { return nil }
func (fullProcessor) LeaseLost(context.Context)                       {}
func (fullProcessor) ShutdownRequested(context.Context, *Checkpointer) error {
	return nil
}

var (
	_ Initializer       = fullProcessor{}
	_ ShardEnder        = fullProcessor{}
	_ LeaseLoser        = fullProcessor{}
	_ ShutdownRequester = fullProcessor{}
)

func TestOptionalInterfacesAreFoundByTypeAssertion(t *testing.T) {
	tests := []struct {
		name                        string
		p                           Processor
		init, end, lost, stopReqstr bool
	}{
		{name: "a ProcessorFunc implements none", p: ProcessorFunc(func(context.Context, *Batch) error { return nil })},
		{name: "a plain processor implements none", p: plainProcessor{}},
		{name: "an initializer is only an Initializer", p: initProcessor{}, init: true},
		{name: "a shard ender is only a ShardEnder", p: endProcessor{}, end: true},
		{name: "a lease loser is only a LeaseLoser", p: lostProcessor{}, lost: true},
		{name: "a shutdown requester is only a ShutdownRequester", p: stopProcessor{}, stopReqstr: true},
		{name: "a full processor implements all four", p: fullProcessor{}, init: true, end: true, lost: true, stopReqstr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, init := tt.p.(Initializer)
			_, end := tt.p.(ShardEnder)
			_, lost := tt.p.(LeaseLoser)
			_, stop := tt.p.(ShutdownRequester)
			if init != tt.init || end != tt.end || lost != tt.lost || stop != tt.stopReqstr {
				t.Errorf("Initializer=%v ShardEnder=%v LeaseLoser=%v ShutdownRequester=%v, want %v %v %v %v",
					init, end, lost, stop, tt.init, tt.end, tt.lost, tt.stopReqstr)
			}
		})
	}
}
