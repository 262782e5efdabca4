// Command slowcall memoizes a call that takes two seconds, such as a request
// to a slow service: the first call waits, the repeat comes from the cache.
package main

import (
	"fmt"
	"time"

	"github.com/gomemo/memo"
)

// exchangeRate stands in for a slow remote call.
func exchangeRate(pair string) (float64, error) {
	time.Sleep(2 * time.Second)
	if pair == "EUR/USD" {
		return 1.08, nil
	}
	return 0, fmt.Errorf("unknown currency pair %q", pair)
}

func main() {
	rate, cache := memo.MemoizeErr(exchangeRate)

	for _, call := range []string{"first call ", "second call"} {
		start := time.Now()
		r, err := rate("EUR/USD")
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s: EUR/USD = %.2f in %v\n", call, r, time.Since(start).Round(time.Millisecond))
	}
	fmt.Println(cache.CacheInfo())
}
