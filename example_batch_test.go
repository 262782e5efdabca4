package memo_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gomemo/memo"
)

// A batch function memoized key by key: one call of the function for the
// keys the cache lacks, and a single-key Call that shares its cache.
func ExampleMemoizeBatch() {
	users := map[int]string{1: "ada", 2: "grace", 3: "edsger"}
	lookup := func(_ context.Context, ids []int) (map[int]string, error) {
		fmt.Println("query", ids) // say, SELECT ... WHERE id IN (...)
		found := map[int]string{}
		for _, id := range ids {
			if name, ok := users[id]; ok {
				found[id] = strings.ToUpper(name)
			}
		}
		return found, nil
	}
	names, cache := memo.MemoizeBatch(lookup)
	ctx := context.Background()

	got, err := names.Get(ctx, []int{1, 2})
	fmt.Println(got, err)
	// 1 and 2 come from the cache; 3 and 4 are queried together, and 4,
	// which the query does not return, fails alone.
	got, err = names.Get(ctx, []int{1, 2, 3, 4})
	fmt.Println(got, errors.Is(err, memo.ErrNotReturned))
	var failed *memo.BatchError[int]
	if errors.As(err, &failed) {
		fmt.Println(failed.Errs)
	}
	name, err := names.Call(ctx, 3) // cached by the Get above
	fmt.Println(name, err)

	ci := cache.CacheInfo()
	fmt.Println("hits", ci.Hits, "misses", ci.Misses)
	// Output:
	// query [1 2]
	// map[1:ADA 2:GRACE] <nil>
	// query [3 4]
	// map[1:ADA 2:GRACE 3:EDSGER] true
	// map[4:memo: the batch function returned no value for the key]
	// EDSGER <nil>
	// hits 3 misses 4
}
