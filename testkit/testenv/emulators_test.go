package testenv

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

func TestDynamoDBLocalConditionalPut(t *testing.T) {
	t.Parallel()
	ddb := DynamoDB(t)
	table := UniqueName(t, "leases")
	CreateTable(t, ddb, table)

	put := func() error {
		_, err := ddb.PutItem(t.Context(), &dynamodb.PutItemInput{
			TableName: aws.String(table),
			Item: map[string]ddbtypes.AttributeValue{
				"leaseKey":   &ddbtypes.AttributeValueMemberS{Value: "shardId-000000000000"},
				"leaseOwner": &ddbtypes.AttributeValueMemberS{Value: "worker-1"},
			},
			ConditionExpression: aws.String("attribute_not_exists(leaseKey)"),
		})
		return err
	}
	if err := put(); err != nil {
		t.Fatalf("first conditional PutItem: %v", err)
	}
	var ccf *ddbtypes.ConditionalCheckFailedException
	if err := put(); !errors.As(err, &ccf) {
		t.Fatalf("second conditional PutItem error = %v, want ConditionalCheckFailedException", err)
	}
}

func TestKinesisMockPutAndGetRecords(t *testing.T) {
	t.Parallel()
	client := Kinesis(t)
	stream := CreateStream(t, client, 1)

	want := putRecords(t, client, stream, 3)

	shards, err := client.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatalf("ListShards: %v", err)
	}
	if len(shards.Shards) != 1 {
		t.Fatalf("stream has %d shards, want 1", len(shards.Shards))
	}
	it, err := client.GetShardIterator(t.Context(), &kinesis.GetShardIteratorInput{
		StreamName:        aws.String(stream),
		ShardId:           shards.Shards[0].ShardId,
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		t.Fatalf("GetShardIterator: %v", err)
	}

	iterator := it.ShardIterator
	var got []string
	Eventually(t, 10*time.Second, 100*time.Millisecond, func() bool {
		out, err := client.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: iterator})
		if err != nil {
			t.Fatalf("GetRecords: %v", err)
		}
		for _, r := range out.Records {
			got = append(got, string(r.Data))
		}
		iterator = out.NextShardIterator
		return len(got) >= len(want)
	}, "GetRecords did not return all %d records", len(want))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("records = %q, want %q", got, want)
	}
}

// putRecords writes n records to stream and returns their data in order.
func putRecords(t *testing.T, client *kinesis.Client, stream string, n int) []string {
	t.Helper()
	var want []string
	for i := range n {
		data := fmt.Sprintf("record-%d", i)
		_, err := client.PutRecord(t.Context(), &kinesis.PutRecordInput{
			StreamName:   aws.String(stream),
			PartitionKey: aws.String("pk"),
			Data:         []byte(data),
		})
		if err != nil {
			t.Fatalf("PutRecord: %v", err)
		}
		want = append(want, data)
	}
	return want
}
