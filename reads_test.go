package memo

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomemo/memo/internal/await"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkReads checks that shard s's list and read index agree, with its lock
// held and the stripes drained: the list's entries are linked both ways,
// each is the index's entry of its key, and the index holds nothing else.
func checkReads(t *testing.T, s *shard[int, int]) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	l := &s.l
	l.flush()
	n := 0
	for i := l.nodes[0].next; i != 0; i = l.nodes[i].next {
		require.Equal(t, i, l.nodes[l.nodes[i].next].prev, "links of node %d", i)
		k := l.nodes[i].key
		require.Equal(t, ref(i), l.items[k], "items of %d", k)
		e := l.rx.get(k)
		require.NotNil(t, e, "index entry of %d", k)
		require.Equal(t, i, e.node, "node of %d's entry", k)
		require.True(t, l.rx.held[i], "node %d held", i)
		require.Equal(t, l.nodes[i].val, e.val, "value of %d", k)
		n++
	}
	require.Equal(t, l.len(), n, "entries linked")
	require.Equal(t, n, l.rx.table.Load().n, "entries indexed")
	held := 0
	for _, h := range l.rx.held {
		if h {
			held++
		}
	}
	require.Equal(t, n, held, "nodes with an index entry")
}

func TestConcurrentReadsBasics(t *testing.T) {
	runs := 0
	f, c := Memoize(func(k int) int { runs++; return 10 * k }, MaxSize(4), ConcurrentReads())
	for k := 1; k <= 4; k++ {
		assert.Equal(t, 10*k, f(k))
	}
	assert.Equal(t, 10, f(1), "a hit read without the lock")
	assert.Equal(t, 4, runs)
	f(5) // evicts the least recently used: 2, since 1 was hit
	assert.False(t, c.Contains(2))
	assert.True(t, c.Contains(1))
	assert.Equal(t, counts{Hits: 1, Misses: 5, Evictions: 1}, countsOf(c.CacheInfo()))

	c.Forget(1)
	assert.Equal(t, 10, f(1))
	assert.Equal(t, 6, runs, "a forgotten key is computed again")
	c.Put(1, 99)
	assert.Equal(t, 99, f(1), "a hit reads what Put stored")
	c.Clear()
	assert.Equal(t, counts{}, countsOf(c.CacheInfo()))
	assert.Equal(t, 10, f(1))
	assert.Equal(t, 7, runs, "a key cleared is computed again")
	assert.Equal(t, 10, f(1))
	assert.Equal(t, counts{Hits: 1, Misses: 1}, countsOf(c.CacheInfo()))
	assert.Equal(t, 1, c.Len())
	checkReads(t, &c.first)
}

// TestConcurrentReadsOrder: hits from one goroutine, more than a stripe
// holds, are applied in order, so eviction follows LRU.
func TestConcurrentReadsOrder(t *testing.T) {
	const size = 100
	f, c := Memoize(func(k int) int { return k }, MaxSize(size), ConcurrentReads())
	for k := range size {
		f(k)
	}
	// Hit every even key, in descending order, several stripes' worth.
	for range 3 {
		for k := size - 2; k >= 0; k -= 2 {
			f(k)
		}
	}
	// Fifty new keys evict the fifty odd ones, least recently used.
	for k := size; k < size+size/2; k++ {
		f(k)
	}
	for k := range size {
		assert.Equal(t, k%2 == 0, c.Contains(k), "key %d", k)
	}
	// And then the even keys, from the least recently hit: 98, 96, 94...
	for k := size + size/2; k < size+size/2+10; k++ {
		f(k)
	}
	for k := 80; k < size; k += 2 {
		assert.False(t, c.Contains(k), "key %d", k)
	}
	assert.True(t, c.Contains(78))
	checkReads(t, &c.first)
}

// TestConcurrentReadsCounting: goroutines hit and miss at once, with Forget
// and Put among them; every call is counted once, every answer is right,
// and the list and the index agree afterwards.
func TestConcurrentReadsCounting(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"one shard", nil},
		{"Shards(4)", []Option{Shards(4)}},
		{"TTL", []Option{TTL(time.Hour)}}, // hits through doAny, which reads the clock
	} {
		f, c := Memoize(func(k int) int { return k * k }, append(tc.opts, MaxSize(64), ConcurrentReads())...)
		const goroutines, calls = 8, 5000
		key := func(rng *rand.Rand) int {
			if k := rng.IntN(100); k < 64 {
				return k
			}
			return rng.IntN(16) // mostly hits on a hot set
		}
		callSquares(t, f, goroutines, calls, 3, key, func(g, i, k int) {
			switch {
			case g == 0 && i%100 == 0:
				c.Forget(k)
			case g == 1 && i%100 == 0:
				c.Put(k, k*k)
			}
		})
		ci := c.CacheInfo()
		assert.Equal(t, goroutines*calls, ci.Hits+ci.Misses, tc.name)
		assert.Greater(t, ci.Hits, goroutines*calls/2, tc.name)
		assert.LessOrEqual(t, ci.CurrSize, 64)
		for _, s := range c.shards {
			checkReads(t, s)
		}
	}
}

// TestConcurrentReadsInvalidation: once Put, Forget or Clear has returned,
// no call gets the value it replaced or removed, while other goroutines hit
// the key all along.
func TestConcurrentReadsInvalidation(t *testing.T) {
	var mu sync.Mutex
	next := 0 // what the function returns for key 1
	f, c := Memoize(func(int) int { mu.Lock(); defer mu.Unlock(); return next }, ConcurrentReads())
	f(1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					f(1)
				}
			}
		})
	}
	within(t, timeout, func() {
		for v := 1; v <= 300; v++ {
			switch v % 3 {
			case 0:
				c.Put(1, v)
			case 1:
				mu.Lock()
				next = v
				mu.Unlock()
				c.Forget(1)
			case 2:
				mu.Lock()
				next = v
				mu.Unlock()
				c.Clear()
			}
			if got := f(1); got != v {
				t.Fatalf("after change %d, f(1) = %d", v, got)
			}
		}
	})
	close(stop)
	wg.Wait()
	checkReads(t, &c.first)
}

// TestConcurrentReadsFullStripe: when the lock is held, hits fill their
// stripe and go on being counted; the moves noted are applied once the lock
// is free.
func TestConcurrentReadsFullStripe(t *testing.T) {
	f, c := Memoize(func(k int) int { return k }, MaxSize(3), ConcurrentReads())
	f(1)
	f(2)
	f(3)
	s := &c.first
	s.mu.Lock()
	within(t, timeout, func() {
		for range 3 * stripeLen {
			f(1) // never waits for the lock
		}
	})
	s.mu.Unlock()
	ci := c.CacheInfo()
	assert.Equal(t, 3*stripeLen, ci.Hits)
	f(4) // evicts 2: the first stripeLen hits on 1 were noted and applied
	assert.True(t, c.Contains(1))
	assert.False(t, c.Contains(2))
	checkReads(t, s)
}

// TestConcurrentReadsKeyed: a keyed cache's hits read without the lock too.
func TestConcurrentReadsKeyed(t *testing.T) {
	type user struct{ id int }
	f, c := MemoizeKeyed(func(u user) (string, error) { return fmt.Sprint("user ", u.id), nil },
		func(u user) (int, error) { return u.id, nil }, ConcurrentReads())
	_, err := f(user{7})
	require.NoError(t, err)
	c.first.mu.Lock()
	within(t, timeout, func() {
		v, err := f(user{7}) // never waits for the lock
		assert.NoError(t, err)
		assert.Equal(t, "user 7", v)
	})
	c.first.mu.Unlock()
	assert.Equal(t, counts{Hits: 1, Misses: 1}, countsOf(c.CacheInfo()))
}

func TestConcurrentReadsAllocatesNothingOnAHit(t *testing.T) {
	f, _ := Memoize(func(n int) int { return n }, ConcurrentReads())
	f(1)
	assert.Zero(t, testing.AllocsPerRun(1000, func() { f(1) }))
}

// TestConcurrentReadsExpiry: a value past its expiry is never read from the
// index; the call takes the lock, as without the option, and gets a stale
// value (with StaleWhileRevalidate) or a new one.
func TestConcurrentReadsExpiry(t *testing.T) {
	clk := newFakeClock(t0)
	runs := 0
	f, c := Memoize(func(k int) int { runs++; return 100*runs + k }, TTL(time.Minute), Clock(clk.Now), ConcurrentReads())
	assert.Equal(t, 101, f(1))
	c.first.mu.Lock()
	within(t, timeout, func() { assert.Equal(t, 101, f(1), "a fresh hit, without the lock") })
	c.first.mu.Unlock()
	clk.Advance(time.Minute)
	assert.Equal(t, 201, f(1), "expired: computed again")
	assert.Equal(t, counts{Hits: 1, Misses: 2, Expirations: 1}, countsOf(c.CacheInfo()))
	checkReads(t, &c.first)

	var n atomic.Int32
	g, _ := Memoize(func(k int) int { return int(n.Add(1)) }, TTL(time.Minute), StaleWhileRevalidate(time.Minute),
		Clock(clk.Now), ConcurrentReads())
	assert.Equal(t, 1, g(1))
	clk.Advance(time.Minute)
	assert.Equal(t, 1, g(1), "stale, served under the lock while a refresh runs")
	await.Soon(t, func() bool { return g(1) == 2 }, "the refreshed value, read from the index")
}

// TestConcurrentReadsInterfaceKeys: keys holding interfaces are read without
// the lock once the cache has checked they compare, and numbers that are
// equal share an entry, as without the option.
func TestConcurrentReadsInterfaceKeys(t *testing.T) {
	f, c := MemoizeErr(func(k any) (string, error) { return fmt.Sprint(k), nil }, ConcurrentReads())
	_, err := f(1)
	require.NoError(t, err)
	_, err = f("a")
	require.NoError(t, err)
	c.first.mu.Lock()
	within(t, timeout, func() {
		v, err := f(1.0) // the same key as 1: normalised, then read without the lock
		assert.NoError(t, err)
		assert.Equal(t, "1", v)
		v, err = f("a")
		assert.NoError(t, err)
		assert.Equal(t, "a", v)
	})
	c.first.mu.Unlock()
	_, err = f([]int{1})
	assert.ErrorIs(t, err, ErrNotComparable)
	assert.Equal(t, counts{Hits: 2, Misses: 2}, countsOf(c.CacheInfo()))
}

func TestConcurrentReadsOptions(t *testing.T) {
	id := func(k int) int { return k }
	const ordered = "memo: ConcurrentReads cannot be combined with WTinyLFU or EstimateSizes, which need every hit in order"
	assert.PanicsWithValue(t, ordered, func() { Memoize(id, WTinyLFU(), ConcurrentReads()) })
	assert.PanicsWithValue(t, ordered, func() { Memoize(id, EstimateSizes(0), ConcurrentReads()) })

	// Caching off, or nothing kept: the option has nothing to read.
	f, c := Memoize(id, MaxSize(0), ConcurrentReads())
	assert.Equal(t, 1, f(1))
	assert.Nil(t, c.first.l.rx)
	_, c = Memoize(id, SingleFlight(), ConcurrentReads())
	assert.Nil(t, c.first.l.rx)
	_, c = Memoize(id, ConcurrentReads())
	assert.True(t, c.Parameters().ConcurrentReads)
}

// TestConcurrentReadsNoteAfterClear: a hit that took its ticket before a
// Clear may note its node after it, when the emptied list has no room for
// that node yet; the next drain skips the note.
func TestConcurrentReadsNoteAfterClear(t *testing.T) {
	f, c := Memoize(func(k int) int { return k }, MaxSize(1000), ConcurrentReads())
	for k := range 1000 {
		f(k)
	}
	c.Clear()
	x := c.first.l.rx
	require.Less(t, len(x.held), 999)
	st, _ := x.stripe()
	st.noted[0].Store(999) // the late note of a hit on the node of key 998
	st.taken.Store(1)
	f(1)
	assert.Equal(t, counts{Hits: 1, Misses: 1}, countsOf(c.CacheInfo()))
	checkReads(t, &c.first)
}
