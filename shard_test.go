package memo

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShards(t *testing.T) {
	runs := 0
	f, c := Memoize(func(n int) int { runs++; return n * n }, MaxSize(10), Shards(4))
	require.Len(t, c.shards, 4)
	sizes := 0
	for _, s := range c.shards {
		sizes += s.max
		assert.GreaterOrEqual(t, s.max, 2)
	}
	assert.Equal(t, 10, sizes, "the shards share MaxSize exactly")
	assert.Equal(t, 4, c.Parameters().Shards)
	assert.Equal(t, 10, c.Parameters().MaxSize)

	for i := range 100 {
		assert.Equal(t, i*i, f(i))
		assert.LessOrEqual(t, c.CacheInfo().CurrSize, 10)
	}
	assert.Equal(t, 100, runs)
	f(99)
	ci := c.CacheInfo()
	assert.Equal(t, counts{Hits: 1, Misses: 100, Evictions: 90}, countsOf(ci))
	assert.Equal(t, 10, ci.CurrSize)
	assert.Equal(t, "CacheInfo(hits=1, misses=100, maxsize=10, currsize=10)", ci.String())

	assert.True(t, c.Forget(99))
	assert.Equal(t, 9, c.CacheInfo().CurrSize)
	c.Clear()
	assert.Equal(t, CacheInfo{MaxSize: 10}, c.CacheInfo())
}

func TestShardsSingleFlight(t *testing.T) {
	g := newGate()
	f, c := MemoizeErr(g.fn, MaxSize(64), Shards(8))
	within(t, timeout, func() {
		res := make(chan int, 4)
		for range 4 {
			go func() { v, _ := f(5); res <- v }()
		}
		<-g.started
		eventually(func() bool { return c.CacheInfo().Coalesced == 3 })
		close(g.release)
		for range 4 {
			assert.Equal(t, 50, <-res)
		}
	})
	assert.Equal(t, int32(1), g.runs.Load())
}

func TestShardsOptions(t *testing.T) {
	_, cu := Memoize(func(int) int { return 0 }, Unbounded(), Shards(4))
	for _, s := range cu.shards {
		assert.Zero(t, s.max, "no bound")
	}
	_, c1 := Memoize(func(int) int { return 0 }, Shards(1))
	assert.Len(t, c1.shards, 1)
	assert.Nil(t, c1.hash, "one shard needs no hash")
	f0, c0 := Memoize(func(int) int { return 0 }, MaxSize(0), Shards(4))
	f0(1)
	assert.Len(t, c0.shards, 1, "a cache that is off only counts")
	assert.Equal(t, 1, c0.CacheInfo().Misses)
}

func TestShardsWithTTLAndAnyKeys(t *testing.T) {
	clk := newFakeClock(t0)
	f, c := Memoize(func(x any) int { return 1 }, MaxSize(16), Shards(4), TTL(time.Second), Clock(clk.Now))
	f(1)
	f(1.0) // normalised before the shard is chosen: the same entry
	f("a")
	assert.Equal(t, 2, c.CacheInfo().CurrSize)
	assert.Equal(t, 1, c.CacheInfo().Hits)
	clk.Advance(time.Second)
	assert.Equal(t, 2, c.PurgeExpired())

	_, err := func() (v int, err error) {
		defer func() { err, _ = recover().(error) }()
		return f([]int{1}), nil
	}()
	assert.ErrorIs(t, err, ErrNotComparable)
}

func TestShardsConcurrent(t *testing.T) {
	f, c := Memoize(func(n int) int { return -n }, MaxSize(32), Shards(4))
	hammer(t, 8, 60*time.Second, 3, func(_ int, rng *rand.Rand) {
		for range 3000 {
			k := rng.IntN(100)
			if v := f(k); v != -k {
				t.Errorf("f(%d) = %d, want %d", k, v, -k)
				return
			}
		}
	})
	ci := c.CacheInfo()
	assert.Equal(t, 8*3000, ci.Hits+ci.Misses)
	assert.LessOrEqual(t, ci.CurrSize, 32)
}

func TestShardedHitAllocatesNothing(t *testing.T) {
	f, _ := Memoize(func(n int) int { return n }, MaxSize(64), Shards(4))
	f(1)
	assert.Zero(t, testing.AllocsPerRun(1000, func() { f(1) }))
}

// TestShardedClearIsOneStep: Clear resets every shard of a sharded cache in
// one step. With shard 1 held, a Clear in progress must not have reset shard 0
// already, which a concurrent CacheInfo would see as half a Clear.
func TestShardedClearIsOneStep(t *testing.T) {
	f, c := Memoize(func(n int) int { return n }, MaxSize(64), Shards(2))
	for i := range 64 {
		f(i)
	}
	for _, s := range c.shards {
		require.NotZero(t, s.st.misses, "every shard has counters to reset")
	}
	p0, p1 := c.shards[0], c.shards[1]
	p1.mu.Lock()
	cleared := make(chan struct{})
	go func() { defer close(cleared); c.Clear() }()
	within(t, timeout, func() {
		// Clear either has not reached shard 0 yet, or holds it while it
		// waits for shard 1; shard 0 must never be seen reset meanwhile.
		held := time.Time{}
		for held.IsZero() || time.Since(held) < 50*time.Millisecond {
			if !p0.mu.TryLock() {
				if held.IsZero() {
					held = time.Now()
				}
				continue
			}
			held = time.Time{}
			reset := p0.st == stats{}
			p0.mu.Unlock()
			if reset {
				t.Error("shard 0 was reset while shard 1 was not")
				break
			}
		}
		p1.mu.Unlock()
		<-cleared
	})
	assert.Equal(t, CacheInfo{MaxSize: 64}, c.CacheInfo())
}
