package memo

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A page cache with a byte budget: each value weighs its length.
func pages(t *testing.T, budget int, opts ...Option) (func(int) string, *Cache[int, string], *[]Event[int, string]) {
	t.Helper()
	var events []Event[int, string]
	f, c := Memoize(func(n int) string { return strings.Repeat("x", n) },
		append([]Option{Unbounded(), MaxWeight(budget, func(_ int, v string) int { return len(v) }),
			Observe(func(e Event[int, string]) { events = append(events, e) })}, opts...)...)
	return f, c, &events
}

// MaxWeight is otter's MaximumWeight with a Weigher (and golang-lru users'
// byte budget), but exact: otter evicts by its admission policy and may
// briefly exceed the bound, memo evicts exactly the least recently used
// entries until the total fits.
func TestMaxWeightEvictsLeastRecentlyUsed(t *testing.T) {
	f, c, events := pages(t, 100)
	f(40)
	f(30)
	f(20)
	assert.Equal(t, 90, c.CacheInfo().Weight)
	f(40) // a hit: 40 is now the most recent
	f(25) // 115 > 100: 30, the least recently used, goes; 85 left
	ci := c.CacheInfo()
	assert.Equal(t, 85, ci.Weight)
	assert.Equal(t, 100, ci.MaxWeight)
	assert.Equal(t, 3, ci.CurrSize)
	assert.False(t, c.Contains(30))
	f(70) // 155: 20 then 40 go (in recency order), 25 and 70 stay: 95
	assert.Equal(t, 95, c.CacheInfo().Weight)
	assert.True(t, c.Contains(25))
	assert.Equal(t, []Event[int, string]{
		{Kind: Evicted, Key: 30, Value: strings.Repeat("x", 30)},
		{Kind: Evicted, Key: 20, Value: strings.Repeat("x", 20)},
		{Kind: Evicted, Key: 40, Value: strings.Repeat("x", 40)},
	}, *events)
	assert.Equal(t, 3, c.CacheInfo().Evictions)
}

func TestMaxWeightTooHeavyIsNotCached(t *testing.T) {
	f, c, _ := pages(t, 100)
	f(10)
	assert.Equal(t, strings.Repeat("x", 101), f(101), "the call still gets it")
	assert.False(t, c.Contains(101))
	assert.True(t, c.Contains(10), "nothing was evicted for it")
	assert.False(t, c.Put(200, strings.Repeat("x", 200)))
	assert.True(t, c.Put(5, "xxxxx"))
	assert.Equal(t, 15, c.CacheInfo().Weight)
}

func TestMaxWeightFollowsRemovals(t *testing.T) {
	f, c, _ := pages(t, 100)
	f(10)
	f(20)
	c.Forget(10)
	assert.Equal(t, 20, c.CacheInfo().Weight)
	c.Put(20, "x")
	assert.Equal(t, 1, c.CacheInfo().Weight, "a replaced value's weight replaces the old one")
	c.Clear()
	assert.Equal(t, 0, c.CacheInfo().Weight)
	f(99)
	assert.Equal(t, 99, c.CacheInfo().Weight)
}

func TestMaxWeightWithMaxSize(t *testing.T) {
	f, c := Memoize(func(n int) int { return n }, MaxSize(2), MaxWeight(1000, func(_, v int) int { return v }))
	f(1)
	f(2)
	f(3)
	ci := c.CacheInfo()
	assert.Equal(t, 2, ci.CurrSize, "both bounds hold")
	assert.Equal(t, 5, ci.Weight)
}

func TestMaxWeightSharded(t *testing.T) {
	var runs atomic.Int32
	f, c := Memoize(func(n int) int { runs.Add(1); return n }, Unbounded(), Shards(4), MaxWeight(400, func(_, v int) int { return 10 }))
	for k := range 1000 {
		f(k)
	}
	ci := c.CacheInfo()
	assert.LessOrEqual(t, ci.Weight, 400)
	assert.Equal(t, ci.CurrSize*10, ci.Weight)
}

func TestMaxWeightMisuse(t *testing.T) {
	require.PanicsWithValue(t, "memo: MaxWeight's total must be positive, got 0",
		func() { Memoize(func(n int) int { return n }, MaxWeight(0, func(_, v int) int { return v })) })
	require.PanicsWithValue(t, "memo: MaxWeight was given a func(string, int) int, but this cache needs a func(int, int) int",
		func() { Memoize(func(n int) int { return n }, MaxWeight(10, func(string, int) int { return 0 })) })
	require.PanicsWithValue(t, "memo: MaxWeight was given a nil weigh function",
		func() { Memoize(func(n int) int { return n }, MaxWeight[int, int](10, nil)) })
	f, _ := Memoize(func(n int) int { return n }, MaxWeight(10, func(_, v int) int { return v }))
	defer func() {
		p, _ := recover().(*PanicError)
		require.NotNil(t, p, "a negative weight is the execution's panic")
		assert.Contains(t, p.Value, "weights must not be negative")
	}()
	f(-3)
}
