package deaggregate_test

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/aggregate"
	"github.com/kclgo/kcl/deaggregate"
)

// A consumer expands each batch from GetRecords into user records, keeping
// only those that belong to its shard, and reuses one slice across batches.
func ExampleDeaggregator_Append() {
	// What a KPL producer might have put: one aggregate of three user
	// records, one with an explicit hash key.
	data, err := aggregate.Marshal([]aggregate.UserRecord{
		{PartitionKey: "user-1", Data: []byte("signed up")},
		{PartitionKey: "user-2", Data: []byte("logged in")},
		{PartitionKey: "user-1", ExplicitHashKey: "42", Data: []byte("paid")},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	batch := []types.Record{
		{Data: data, PartitionKey: aws.String("user-1"), SequenceNumber: aws.String("49590338271490256608559692538361571095921575989136588898")},
		{Data: []byte("not aggregated"), PartitionKey: aws.String("user-3"), SequenceNumber: aws.String("49590338271490256608559692538361571095921575989136588899")},
	}

	// The shard's HashKeyRange from ListShards: here the whole key space.
	d, err := deaggregate.New(
		deaggregate.WithHashRange("0", "340282366920938463463374607431768211455"),
		deaggregate.WithErrorHandler(func(e *deaggregate.RecordError) { fmt.Println("skipped:", e) }),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	var records []deaggregate.Record // reused for every batch
	records = d.Append(records[:0], batch)
	for _, r := range records {
		fmt.Printf("%s/%d %s %q aggregated=%v\n", r.SequenceNumber[len(r.SequenceNumber)-3:], r.SubSequenceNumber, r.PartitionKey, r.Data, r.Aggregated)
	}
	fmt.Printf("%+v\n", d.Stats())
	// Output:
	// 898/0 user-1 "signed up" aggregated=true
	// 898/1 user-2 "logged in" aggregated=true
	// 898/2 user-1 "paid" aggregated=true
	// 899/0 user-3 "not aggregated" aggregated=false
	// {Records:2 Aggregates:1 UserRecords:4 Malformed:0 Filtered:0}
}
