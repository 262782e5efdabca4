// Command fib memoizes a recursive Fibonacci function: the recursion goes
// through the cache, so each fib(n) runs once. It prints the cache statistics
// before and after, then clears the cache.
package main

import (
	"fmt"

	"github.com/gomemo/memo"
)

// plainCalls counts the calls a recursive Fibonacci makes without a cache.
func plainCalls(n int) int {
	if n < 2 {
		return 1
	}
	return 1 + plainCalls(n-1) + plainCalls(n-2)
}

func main() {
	var fib func(int) uint64
	fib, cache := memo.Memoize(func(n int) uint64 {
		if n < 2 {
			return uint64(n)
		}
		return fib(n-1) + fib(n-2)
	})

	fmt.Println("before:   ", cache.CacheInfo())
	fmt.Println("fib(30) = ", fib(30))
	fmt.Println("after:    ", cache.CacheInfo())
	fmt.Printf("without the cache fib(30) makes %d calls; with it, %d ran the function\n",
		plainCalls(30), cache.CacheInfo().Misses)

	fmt.Println("fib(90) = ", fib(90))
	fmt.Println("after:    ", cache.CacheInfo())

	cache.Clear()
	fmt.Println("cleared:  ", cache.CacheInfo())
}
