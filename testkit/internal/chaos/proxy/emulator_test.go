package proxy

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap/zaptest"

	"github.com/kclgo/kcl/testkit/kinesismock"
	"github.com/kclgo/kcl/testkit/testenv"
)

// proxyFor starts a proxy in front of an emulator endpoint.
func proxyFor(t *testing.T, endpoint string) (*Proxy, string) {
	t.Helper()
	p, err := New(endpoint, WithLogger(zaptest.NewLogger(t)), WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := p.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, addr
}

// TestKinesisMockThroughProxy polls and subscribes (h2c) through the proxy
// to kinesis-mock, with and without faults.
func TestKinesisMockThroughProxy(t *testing.T) {
	control := testenv.Kinesis(t)
	p, addr := proxyFor(t, testenv.KinesisEndpoint(t))
	stream := testenv.CreateStream(t, control, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	put, err := control.PutRecord(ctx, &kinesis.PutRecordInput{
		StreamName: aws.String(stream), PartitionKey: aws.String("pk"), Data: []byte("through the proxy"),
	})
	if err != nil {
		t.Fatalf("PutRecord: %v", err)
	}

	polling := kinesisClient(t, addr, false, 1)
	it, err := polling.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(stream), ShardId: put.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		t.Fatalf("GetShardIterator: %v", err)
	}
	if err := p.SetRules([]Rule{{Op: "GetRecords", Kind: Throttle, Probability: 1}}); err != nil {
		t.Fatal(err)
	}
	_, err = polling.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	var pte *types.ProvisionedThroughputExceededException
	if !errors.As(err, &pte) {
		t.Fatalf("GetRecords with a throttle: %v, want ProvisionedThroughputExceededException", err)
	}
	if err := p.SetRules([]Rule{{Kind: SlowBody, Probability: 1, Latency: time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	got, err := polling.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil || len(got.Records) != 1 || string(got.Records[0].Data) != "through the proxy" {
		t.Fatalf("GetRecords with a slow body = %+v, %v", got, err)
	}
	if err := p.SetRules(nil); err != nil {
		t.Fatal(err)
	}

	summary, err := control.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatalf("DescribeStreamSummary: %v", err)
	}
	consumer := testenv.RegisterConsumer(t, control, aws.ToString(summary.StreamDescriptionSummary.StreamARN))
	cfg := awsConfig(t, true, 1)
	cfg.HTTPClient = kinesismock.SubscribeToShardAdapter(cfg.HTTPClient)
	efo := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(addr) })
	out, err := efo.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{
		ConsumerARN: aws.String(consumer), ShardId: put.ShardId,
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon},
	})
	if err != nil {
		t.Fatalf("SubscribeToShard: %v", err)
	}
	sub := out.GetStream()
	defer sub.Close()
	for received := false; !received; {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				t.Fatalf("event stream ended: %v", sub.Err())
			}
			if e, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent); ok {
				for _, r := range e.Value.Records {
					received = received || string(r.Data) == "through the proxy"
				}
			}
		case <-ctx.Done():
			t.Fatal("no record through the proxied subscription")
		}
	}
	if st := p.Stats(); st.Forwarded["SubscribeToShard"] != 1 {
		t.Errorf("stats = %+v, want one forwarded SubscribeToShard", st)
	}
}

// TestDynamoDBLocalThroughProxy writes and reads through the proxy (the
// SDK checks X-Amz-Crc32 on every answer) and throttles a write.
func TestDynamoDBLocalThroughProxy(t *testing.T) {
	control := testenv.DynamoDB(t)
	p, addr := proxyFor(t, testenv.DynamoDBEndpoint(t))
	table := testenv.UniqueName(t, "table")
	testenv.CreateTable(t, control, table)
	client := dynamoClient(t, addr, false, 1)
	ctx := t.Context()
	item := map[string]ddbtypes.AttributeValue{"leaseKey": &ddbtypes.AttributeValueMemberS{Value: "shardId-000000000000"}}

	if err := p.SetRules([]Rule{{Op: "PutItem", Kind: Throttle, Probability: 1}}); err != nil {
		t.Fatal(err)
	}
	_, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item})
	var pte *ddbtypes.ProvisionedThroughputExceededException
	if !errors.As(err, &pte) {
		t.Fatalf("PutItem with a throttle: %v, want ProvisionedThroughputExceededException", err)
	}
	if err := p.SetRules([]Rule{{Kind: SlowBody, Probability: 1, Latency: time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatalf("PutItem: %v", err)
	}
	got, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: item, ConsistentRead: aws.Bool(true)})
	if err != nil || len(got.Item) != 1 {
		t.Fatalf("GetItem = %+v, %v", got, err)
	}
}
