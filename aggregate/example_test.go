package aggregate_test

import (
	"fmt"
	"strconv"

	"github.com/kclgo/kcl/aggregate"
)

// A producer adds user records as they come and puts every full aggregate
// with PutRecords, then flushes the last one.
func ExampleAggregator() {
	a, err := aggregate.New(aggregate.WithMaxSize(4096))
	if err != nil {
		fmt.Println(err)
		return
	}
	put := func(e aggregate.Entry) {
		// In a real producer: a PutRecordsRequestEntry with Data e.Data,
		// PartitionKey e.PartitionKey and ExplicitHashKey e.ExplicitHashKey.
		fmt.Printf("put %d user records in %d bytes\n", e.Records, len(e.Data))
	}
	for i := range 100 {
		full, ok, err := a.Add(aggregate.UserRecord{
			PartitionKey: "sensor-" + strconv.Itoa(i%4),
			Data:         make([]byte, 100),
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		if ok {
			put(full)
		}
	}
	if last, ok := a.Flush(); ok {
		put(last)
	}
	// Output:
	// put 38 user records in 4088 bytes
	// put 38 user records in 4088 bytes
	// put 24 user records in 2604 bytes
}
