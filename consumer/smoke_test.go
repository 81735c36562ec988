package consumer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/internal/fakekinesis"
	"github.com/kclgo/kcl/lease/memlease"
)

func TestSmoke(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream("s", 2))
		store := memlease.New()
		var mu sync.Mutex
		got := map[string][]string{}
		fac := consumer.FactoryFunc(func(si consumer.ShardInfo) (consumer.Processor, error) {
			return consumer.ProcessorFunc(func(ctx context.Context, b *consumer.Batch) error {
				mu.Lock()
				for _, r := range b.Records {
					got[r.PartitionKey] = append(got[r.PartitionKey], string(r.Data))
				}
				mu.Unlock()
				return b.Checkpointer.Checkpoint(ctx)
			}), nil
		})
		for i := range 10 {
			f.Put("s", fmt.Sprintf("k%d", i%3), []byte(fmt.Sprint(i)))
		}
		w, err := consumer.New(f, store, "s", fac, consumer.WithInitialPosition(checkpoint.TrimHorizon), consumer.WithIdleTime(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		time.Sleep(5 * time.Second)
		_, err = f.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("85070591730234615865843651857942052864")})
		if err != nil {
			t.Fatal(err)
		}
		for i := 10; i < 20; i++ {
			f.Put("s", fmt.Sprintf("k%d", i%3), []byte(fmt.Sprint(i)))
		}
		time.Sleep(20 * time.Second)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		t.Logf("%v", got)
		for _, l := range store.Leases() {
			t.Logf("%s owner=%q cp=%v parents=%v children=%v", l.Key, l.Owner, l.Checkpoint, l.ParentShardIDs, l.ChildShardIDs)
		}
	})
}
