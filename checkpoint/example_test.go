package checkpoint_test

import (
	"fmt"

	"github.com/kclgo/kcl/checkpoint"
)

func ExamplePosition_Compare() {
	a, _ := checkpoint.At("9", 0)
	b, _ := checkpoint.At("10", 0) // compared as numbers, not strings
	fmt.Println(a.Compare(b), checkpoint.ShardEnd.Compare(b), checkpoint.TrimHorizon.Compare(a))
	// Output: -1 1 -1
}
