package memo

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests of ExpireAfterAccess, the sliding expiry.

func TestExpireAfterAccessSlides(t *testing.T) {
	clk := newFakeClock(t0)
	fn, _ := counted()
	f, c := Memoize(fn, ExpireAfterAccess(10*time.Second), Clock(clk.Now))
	assert.Equal(t, 1, f("a")) // stored at 0: fresh until 10s
	for _, at := range []time.Duration{9, 18, 27} {
		clk.Set(t0.Add(at * time.Second))
		assert.Equal(t, 1, f("a"), "a hit at %ds, within 10s of the last use", at)
	}
	clk.Set(t0.Add(37*time.Second - time.Nanosecond))
	assert.Equal(t, 1, f("a"), "fresh while now < last use + d")
	clk.Set(t0.Add(47*time.Second - 2*time.Nanosecond))
	assert.Equal(t, 1, f("a"), "the hit at 37s-1ns moved the expiry to 47s-1ns")
	clk.Advance(10 * time.Second)
	assert.Equal(t, 2, f("a"), "expired at exactly last use + d: recomputed")
	assert.Equal(t, counts{Hits: 5, Misses: 2, Expirations: 1}, countsOf(c.CacheInfo()))
	assert.Equal(t, 10*time.Second, c.Parameters().ExpireAfterAccess)
}

func TestExpireAfterAccessUnusedExpires(t *testing.T) {
	clk := newFakeClock(t0)
	fn, _ := counted()
	f, c := Memoize(fn, ExpireAfterAccess(10*time.Second), Clock(clk.Now))
	f("a")
	clk.Advance(9 * time.Second)
	_, ok := c.Peek("a")
	assert.True(t, ok)
	assert.Equal(t, 1, c.Len())
	clk.Advance(time.Second)
	_, ok = c.Peek("a")
	assert.False(t, ok, "Peek and Len are not uses: the expiry stayed at 10s")
	assert.Equal(t, 2, f("a"))
}

// The heap of expiries holds the expiries as stored; hits move them without
// the lock, and the purge must bring the heap up to them, not drop entries in
// use.
func TestExpireAfterAccessPurgeKeepsUsed(t *testing.T) {
	clk := newFakeClock(t0)
	fn, _ := counted()
	f, c := Memoize(fn, ExpireAfterAccess(10*time.Second), Clock(clk.Now))
	for _, k := range []string{"a", "b", "c", "d"} {
		f(k)
	}
	clk.Advance(9 * time.Second)
	f("a")
	f("c")
	clk.Advance(6 * time.Second) // 15s
	ci := c.CacheInfo()
	assert.Equal(t, 2, ci.CurrSize, "b and d expired at 10s; a and c were used at 9s")
	assert.Equal(t, 2, ci.Expirations)
	_, ok := c.Peek("c")
	assert.True(t, ok)
	clk.Advance(4 * time.Second) // 19s
	assert.Equal(t, 2, c.PurgeExpired(), "a and c, unused since 9s")
	assert.Equal(t, 0, c.Len())
}

// A random sequence of calls, Peeks, purges and clock steps, against a model
// that remembers each key's last use.
func TestExpireAfterAccessModel(t *testing.T) {
	const d = 10 * time.Second
	for seed := range uint64(longer(50)) {
		rng := rand.New(rand.NewPCG(seed, 27))
		clk := newFakeClock(t0)
		runs := map[int]int{}
		f, c := Memoize(func(k int) int { runs[k]++; return k*100 + runs[k] },
			ExpireAfterAccess(d), Clock(clk.Now), MaxSize(64), Shards(1+int(seed%2)))
		last := map[int]time.Time{} // the model: when each held key was last used
		live := func(k int) bool { u, ok := last[k]; return ok && clk.Now().Before(u.Add(d)) }
		for step := range 300 {
			k := rng.IntN(8)
			switch op := rng.IntN(10); {
			case op < 6:
				want := runs[k]
				if !live(k) {
					want++
				}
				require.Equal(t, k*100+want, f(k), "seed %d step %d: f(%d)", seed, step, k)
				last[k] = clk.Now()
			case op < 7:
				_, ok := c.Peek(k)
				require.Equal(t, live(k), ok, "seed %d step %d: Peek(%d)", seed, step, k)
			case op < 8:
				n := 0
				for k := range last {
					if live(k) {
						n++
					}
				}
				require.Equal(t, n, c.Len(), "seed %d step %d: Len", seed, step)
				for k := range last {
					if !live(k) {
						delete(last, k)
					}
				}
			default:
				// Whole seconds: more than d/1024, so every hit moves
				// its expiry, as the model assumes.
				clk.Advance(time.Duration(rng.IntN(5)) * time.Second)
			}
		}
	}
}

// Hits from many goroutines keep an entry alive across many lifetimes while
// the clock moves, and purges run between them; an entry nobody uses
// expires. Run under -race: the hits write the entry's expiry without the
// lock.
func TestExpireAfterAccessConcurrentHits(t *testing.T) {
	clk := newFakeClock(t0)
	var mu sync.Mutex
	runs := map[int]int{}
	f, c := Memoize(func(k int) int { mu.Lock(); runs[k]++; mu.Unlock(); return k },
		ExpireAfterAccess(10*time.Second), Clock(clk.Now), Shards(2), MaxSize(64))
	f(1)
	f(2)
	within(t, timeout, func() {
		for range 20 { // 60s: six lives of an entry
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					for range 100 {
						f(1)
						if g == 0 {
							c.PurgeExpired()
						}
					}
				})
			}
			wg.Wait()
			clk.Advance(3 * time.Second)
		}
		// Now with the clock moving under the hits.
		stop := hitting(t, 4, func() { f(1) })
		for range 50 { // 5s: with the 3s since the last step's hits, under 10s
			clk.Advance(time.Second / 10)
			c.PurgeExpired()
		}
		stop()
	})
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 1, runs[1], "used every 3s or more often, 1 never expired")
	_, ok := c.Peek(2)
	assert.False(t, ok, "2, unused, expired")
}

func TestExpireAfterAccessHitAllocatesNothing(t *testing.T) {
	clk := newFakeClock(t0)
	f, _ := Memoize(func(n int) int { return n }, ExpireAfterAccess(time.Hour), Clock(clk.Now))
	f(1)
	assert.Zero(t, testing.AllocsPerRun(1000, func() { clk.Advance(time.Second); f(1) }))
}

func TestExpireAfterAccessOptions(t *testing.T) {
	id := func(n int) int { return n }
	_, c := Memoize(id, ExpireAfterAccess(time.Minute), TTL(time.Second))
	assert.Equal(t, Parameters{MaxSize: DefaultMaxSize, Shards: 1, TTL: time.Second}, c.Parameters(), "the last of TTL, Window and ExpireAfterAccess wins")
	_, c = Memoize(id, Window(time.Second), ExpireAfterAccess(time.Minute))
	assert.Equal(t, Parameters{MaxSize: DefaultMaxSize, Shards: 1, ExpireAfterAccess: time.Minute}, c.Parameters())
	assert.PanicsWithValue(t, "memo: ExpireAfterAccess must not be negative, got -1s", func() { Memoize(id, ExpireAfterAccess(-time.Second)) })
	assert.PanicsWithValue(t, "memo: ExpireAfterAccess gives every value the same life, so it cannot be combined with ExpireAfter",
		func() { Memoize(id, ExpireAfterAccess(time.Second), ExpireAfter(func(int) time.Duration { return 0 })) })
	_, c = Memoize(id, ExpireAfterAccess(time.Minute), StaleWhileRevalidate(time.Second))
	assert.Equal(t, time.Second, c.Parameters().StaleWhileRevalidate, "something expires, so stale values can be served")
}

// In a shared cache, hits slide the expiry in memory only: the store's copy
// expires d after it was written.
func TestExpireAfterAccessShared(t *testing.T) {
	clk := newFakeClock(t0)
	st := newMemStore()
	st.now = clk.Now
	fn, _ := counted()
	f, c := Memoize(fn, ExpireAfterAccess(10*time.Second), Clock(clk.Now), Share(Sharing{Store: st, Name: "s", Poll: time.Hour}))
	defer c.Close()
	assert.Equal(t, 1, f("a"))
	require.Equal(t, int64(1), st.sets.Load())
	for range 3 {
		clk.Advance(8 * time.Second)
		assert.Equal(t, 1, f("a"), "used every 8s, it stays in memory")
	}
	assert.Equal(t, int64(1), st.sets.Load(), "hits do not write the store")
	st.mu.Lock()
	for _, v := range st.values {
		assert.True(t, t0.Add(10*time.Second).Equal(v.expires), "the store's copy expires 10s after it was written, not %v", v.expires)
	}
	st.mu.Unlock()

	// Another process finds nothing in the store after 10s, and computes.
	g, other := Memoize(func(string) int { return 100 }, ExpireAfterAccess(10*time.Second), Clock(clk.Now), Share(Sharing{Store: st, Name: "s", Poll: time.Hour}))
	defer other.Close()
	assert.Equal(t, 100, g("a"))
}
