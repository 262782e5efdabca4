package memo

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestHottestColdestLRU(t *testing.T) {
	f, c := Memoize(func(n int) int { return n * n }, MaxSize(3))
	for _, k := range []int{1, 2, 3, 1, 4} { // 2 evicted; order 4 1 3
		f(k)
	}
	assert.Equal(t, []int{4, 1, 3}, keysOf(c.Hottest()), "most recently used first")
	var keys, vals []int
	for k, v := range c.Coldest() {
		keys, vals = append(keys, k), append(vals, v)
	}
	assert.Equal(t, []int{3, 1, 4}, keys, "the next to be evicted first")
	assert.Equal(t, []int{9, 1, 16}, vals)
	before := c.CacheInfo()
	for range c.Hottest() {
	}
	assert.Equal(t, before, c.CacheInfo(), "iterating counts nothing")
	f(3) // 3 is now the most recent: iterating did not move anything
	assert.Equal(t, []int{3, 4, 1}, keysOf(c.Hottest()))
}

func TestHottestSkipsExpired(t *testing.T) {
	clk := newFakeClock(t0)
	f, c := Memoize(func(n int) int { return n }, TTL(10*time.Second), StaleWhileRevalidate(time.Minute), Clock(clk.Now))
	f(1)
	clk.Advance(5 * time.Second)
	f(2)
	clk.Advance(5 * time.Second) // 1 is stale, 2 fresh
	assert.Equal(t, []int{2}, keysOf(c.Hottest()))
	assert.Equal(t, []int{2}, keysOf(c.Coldest()))
	_, c = Memoize(func(n int) int { return n }, MaxSize(0))
	assert.Empty(t, keysOf(c.Hottest()), "a cache of size 0 holds nothing")
}

func TestHottestLoopMayCallTheCache(t *testing.T) {
	f, c := Memoize(func(n int) int { return n }, Shards(2), MaxSize(100))
	for k := range 20 {
		f(k)
	}
	seen := map[int]bool{}
	within(t, timeout, func() {
		for k := range c.Hottest() {
			seen[k] = true
			f(k + 100) // would deadlock if a lock were held
			c.Forget(k)
		}
	})
	assert.Len(t, seen, 20, "every entry of both shards, as they were when the loop began")
	n := 0
	for range c.Coldest() {
		if n++; n == 3 {
			break
		}
	}
	assert.Equal(t, 3, n, "breaking out of the loop stops it")
}

func TestHottestWTinyLFU(t *testing.T) {
	f, c := Memoize(func(n int) int { return n }, MaxSize(100), WTinyLFU())
	for k := range 100 {
		f(k)
	}
	hot := keysOf(c.Hottest())
	assert.ElementsMatch(t, hot, keysOf(c.Coldest()))
	assert.Len(t, hot, c.Len())
	assert.Equal(t, 99, hot[0], "the newest entry, in the window, first")
	slices.Reverse(hot)
	assert.Equal(t, hot, keysOf(c.Coldest()))
}

func keysOf[K comparable, V any](seq func(func(K, V) bool)) []K {
	var ks []K
	for k := range seq {
		ks = append(ks, k)
	}
	return ks
}
