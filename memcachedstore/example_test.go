package memcachedstore_test

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/gomemo/memo"
	"github.com/gomemo/memo/memcachedstore"
)

// Two processes, each with its own cache, share a function's results
// through memcached: what one computes, the other finds.
func Example() {
	// The fleet's servers, such as "10.0.0.1:11211,10.0.0.2:11211".
	client := memcache.New(strings.Split(os.Getenv("MEMCACHED_SERVERS"), ",")...)
	client.Timeout = 200 * time.Millisecond
	defer client.Close()
	st, err := memcachedstore.New(client, memcachedstore.Options{})
	if err != nil {
		panic(err)
	}
	var runs atomic.Int64
	square := func(n int) int {
		runs.Add(1)
		return n * n
	}
	sharing := memo.Sharing{Store: st, Name: "square"}
	inA, a := memo.Memoize(square, memo.Share(sharing)) // in one process
	defer a.Close()
	inB, b := memo.Memoize(square, memo.Share(sharing)) // in another
	defer b.Close()

	fmt.Println(inA(12), inB(12))
	fmt.Println("executions:", runs.Load())
	fmt.Println("found in memcached by b:", b.CacheInfo().StoreHits)
	// Output:
	// 144 144
	// executions: 1
	// found in memcached by b: 1
}
