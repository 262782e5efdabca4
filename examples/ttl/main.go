// Command ttl memoizes a lookup whose answer changes upstream: within its TTL
// the cached answer is served, after it the value is fetched afresh.
package main

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gomemo/memo"
)

func main() {
	// upstream is a value that changes behind our back: a price, a config.
	var upstream atomic.Int64
	upstream.Store(100)

	price, cache := memo.MemoizeErr(func(item string) (int64, error) {
		return upstream.Load(), nil
	}, memo.TTL(500*time.Millisecond))

	start := time.Now()
	show := func() {
		p, _ := price("widget")
		fmt.Printf("t=%-6v upstream=%d served=%d\n", time.Since(start).Round(100*time.Millisecond), upstream.Load(), p)
	}

	show()              // a miss: fetched
	upstream.Store(120) // upstream changes...
	time.Sleep(200 * time.Millisecond)
	show() // ...but the cached value is still fresh
	time.Sleep(400 * time.Millisecond)
	show() // 600ms after it was stored: expired, fetched afresh
	fmt.Println(cache.CacheInfo(), "expirations:", cache.CacheInfo().Expirations)
}
