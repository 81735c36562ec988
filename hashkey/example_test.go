package hashkey_test

import (
	"fmt"

	"github.com/kclgo/kcl/hashkey"
)

// A consumer decides whether a user record belongs to its shard by comparing
// the record's effective hash key with the shard's range from ListShards.
func ExampleEffective() {
	shard, err := hashkey.ParseRange("0", "170141183460469231731687303715884105727")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range []struct{ pk, ehk string }{
		{"user-1", ""},
		{"user-2", ""},
		{"user-2", "170141183460469231731687303715884105728"},
	} {
		k, err := hashkey.Effective(r.pk, r.ehk)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(k, shard.Contains(k))
	}
	// Output:
	// 285573413173782752570879317399258818820 false
	// 81544010656874607678696621737415172275 true
	// 170141183460469231731687303715884105728 false
}
