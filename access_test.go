package memo

import (
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Peek and Contains behave as otter's GetIfPresent and golang-lru's Peek and
// Contains: no loading, no recency update; memo also counts neither a hit
// nor a miss, so tests can look without side effects.
func TestPeekContainsLenTouchNothing(t *testing.T) {
	f, c := Memoize(func(n int) int { return n * n }, MaxSize(2))
	f(1)
	f(2)
	before := countsOf(c.CacheInfo())

	v, ok := c.Peek(1)
	assert.True(t, ok)
	assert.Equal(t, 1, v)
	assert.True(t, c.Contains(2))
	assert.False(t, c.Contains(3))
	_, ok = c.Peek(3)
	assert.False(t, ok)
	assert.Equal(t, 2, c.Len())
	assert.Equal(t, before, countsOf(c.CacheInfo()), "no hit, no miss counted")

	// Peek(1) did not make 1 recent: 1 is still the oldest, and goes first.
	f(3)
	assert.False(t, c.Contains(1))
	assert.True(t, c.Contains(2))

	// Keys that cannot be cached are never found.
	_, cn := Memoize(func(x float64) float64 { return x })
	assert.False(t, cn.Contains(math.NaN()))
	_, ca := MemoizeErr(func(k any) (int, error) { return 0, nil })
	assert.False(t, ca.Contains([]int{1}), "an uncomparable key does not panic Contains")
}

func TestPeekHonoursExpiry(t *testing.T) {
	clk := newFakeClock(t0)
	f, c := Memoize(func(n int) int { return n }, TTL(time.Minute), StaleWhileRevalidate(time.Minute), Clock(clk.Now))
	f(1)
	clk.Advance(90 * time.Second)
	assert.True(t, c.Contains(1), "stale within grace: a call would be answered with it")
	clk.Advance(time.Minute)
	assert.False(t, c.Contains(1), "past its grace")
	assert.Equal(t, 0, c.Len())
}

// Put behaves as otter's Set and golang-lru's Add on a memoized cache: the
// value answers later calls, replaces what the key had, and counts against
// the bound like any entry.
func TestPut(t *testing.T) {
	var runs atomic.Int32
	var events []Event[int, int]
	f, c := Memoize(func(n int) int { runs.Add(1); return n * n }, MaxSize(2),
		Observe(func(e Event[int, int]) { events = append(events, e) }))
	assert.True(t, c.Put(5, 500))
	assert.Equal(t, 500, f(5), "a value Put answers calls")
	assert.Zero(t, runs.Load())
	assert.True(t, c.Put(5, 501))
	assert.Equal(t, 501, f(5))
	assert.True(t, c.Put(6, 600))
	assert.True(t, c.Put(7, 700), "the bound holds: 5 goes")
	assert.False(t, c.Contains(5))
	assert.Equal(t, 2, c.Len())
	assert.Equal(t, []Event[int, int]{{Kind: Replaced, Key: 5, Value: 500}, {Kind: Evicted, Key: 5, Value: 501}}, events)
	assert.Equal(t, counts{Hits: 2, Evictions: 1}, countsOf(c.CacheInfo()))

	_, cn := Memoize(func(x float64) float64 { return x })
	assert.False(t, cn.Put(math.NaN(), 1), "a NaN key is never stored")
	_, c0 := Memoize(func(n int) int { return n }, MaxSize(0))
	assert.False(t, c0.Put(1, 1), "a cache of size 0 stores nothing")
}

func TestPutDuringExecution(t *testing.T) {
	g := newGate()
	f, c := MemoizeErr(g.fn)
	got := make(chan int)
	go func() { v, _ := f(1); got <- v }()
	<-g.started
	require.True(t, c.Put(1, 111))
	close(g.release)
	within(t, timeout, func() {
		assert.Equal(t, 10, <-got, "the execution's callers get its result")
	})
	v, err := f(1)
	require.NoError(t, err)
	assert.Equal(t, 111, v, "the value Put, the newer, stays")
	assert.Equal(t, int32(1), g.runs.Load())
}

func TestPutAndClear(t *testing.T) {
	f, c := Memoize(func(n int) int { return -n })
	// Put and Clear racing: whichever comes second wins, and the cache
	// is never half of each.
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(2)
		go func() { defer wg.Done(); c.Put(i, i) }()
		go func() { defer wg.Done(); c.Clear() }()
	}
	wg.Wait()
	c.Clear()
	assert.Equal(t, 0, c.Len())
	c.Put(1, 1)
	assert.Equal(t, 1, f(1), "a Put after the Clear stays")
}

func TestPutWithTTL(t *testing.T) {
	clk := newFakeClock(t0)
	f, c := Memoize(func(n int) int { return n }, TTL(time.Minute), Clock(clk.Now))
	c.Put(1, 100)
	clk.Advance(59 * time.Second)
	assert.Equal(t, 100, f(1))
	clk.Advance(time.Second)
	assert.Equal(t, 1, f(1), "a value Put expires as a computed one")
}

// SingleFlight behaves as x/sync/singleflight's Group.Do: callers that
// arrive while an execution for their key runs share its result; once it
// returns, nothing is retained and the next call executes again.
func TestSingleFlightOption(t *testing.T) {
	g := newGate()
	f, c := MemoizeErr(g.fn, SingleFlight())
	results := make(chan int, 3)
	for range 3 {
		go func() { v, _ := f(4); results <- v }()
	}
	<-g.started
	// The other two join the execution in progress.
	within(t, timeout, func() {
		for c.CacheInfo().Coalesced < 2 {
			time.Sleep(time.Millisecond)
		}
	})
	close(g.release)
	within(t, timeout, func() {
		for range 3 {
			assert.Equal(t, 40, <-results)
		}
	})
	assert.Equal(t, int32(1), g.runs.Load(), "one execution for three concurrent calls")
	within(t, timeout, func() {
		go func() { <-g.started }()
		v, err := f(4)
		require.NoError(t, err)
		assert.Equal(t, 40, v)
	})
	assert.Equal(t, int32(2), g.runs.Load(), "the next call runs again: nothing was kept")
	assert.Equal(t, counts{Hits: 2, Misses: 2, Coalesced: 2}, countsOf(c.CacheInfo()))
	assert.Equal(t, 0, c.Len())
	assert.False(t, c.Put(4, 1), "a SingleFlight cache keeps nothing")
	assert.True(t, c.Parameters().SingleFlight)

	const refused = "memo: SingleFlight keeps no results, so it cannot be combined with MaxSize, Unbounded, TTL, Window, ExpireAfterAccess, StaleWhileRevalidate, CacheErrors, ExpireAfter, MaxWeight or Share"
	id := func(n int) int { return n }
	assert.PanicsWithValue(t, refused, func() { Memoize(id, SingleFlight(), TTL(time.Second)) })
	assert.PanicsWithValue(t, refused, func() { Memoize(id, SingleFlight(), ExpireAfterAccess(time.Second)) })
	// A size is about keeping results too, in either order, even 0.
	assert.PanicsWithValue(t, refused, func() { Memoize(id, SingleFlight(), MaxSize(10)) })
	assert.PanicsWithValue(t, refused, func() { Memoize(id, MaxSize(0), SingleFlight()) })
	assert.PanicsWithValue(t, refused, func() { Memoize(id, Unbounded(), SingleFlight()) })
}

// ExpireAfter behaves as otter's per-entry ExpiryCalculator on creation:
// each entry's life comes from its value.
func TestExpireAfter(t *testing.T) {
	clk := newFakeClock(t0)
	var runs atomic.Int32
	// The value says how long it stays fresh: n seconds; 0 falls back to
	// the TTL; negative values are not cached.
	f, c := Memoize(func(n int) int { runs.Add(1); return n },
		ExpireAfter(func(v int) time.Duration { return time.Duration(v) * time.Second }),
		TTL(time.Hour), Clock(clk.Now))
	f(10)
	f(0)
	f(-1)
	assert.Equal(t, 2, c.Len(), "a value with a negative life is not cached")
	f(-1)
	assert.Equal(t, int32(4), runs.Load())
	clk.Advance(9 * time.Second)
	assert.True(t, c.Contains(10))
	clk.Advance(time.Second)
	assert.False(t, c.Contains(10), "10 lived 10 seconds")
	assert.True(t, c.Contains(0), "0 lives by the TTL")
	clk.Advance(time.Hour)
	assert.False(t, c.Contains(0))

	// Without TTL, a life of 0 never expires.
	g, cg := Memoize(func(n int) int { return n }, ExpireAfter(func(int) time.Duration { return 0 }), Clock(clk.Now))
	g(1)
	clk.Advance(1000 * time.Hour)
	assert.True(t, cg.Contains(1))

	assert.PanicsWithValue(t, "memo: ExpireAfter was given a func(string) time.Duration, but this cache needs a func(int) time.Duration",
		func() { Memoize(func(n int) int { return n }, ExpireAfter(func(string) time.Duration { return 0 })) })
	assert.PanicsWithValue(t, "memo: ExpireAfter was given a nil function",
		func() { Memoize(func(n int) int { return n }, ExpireAfter[int](nil)) })
}
