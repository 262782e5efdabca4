package memo

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomemo/memo/internal/await"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkList checks, with the lock held and the stripes drained, that l's
// order and index agree: the entries are linked both ways, each is the
// index's entry of its key and knows its node, the marks are the index's
// only other entries, and no slot is cut off from its key's probe sequence.
func checkList[K comparable, V any](t *testing.T, mu *sync.Mutex, l *list[K, V]) {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	l.flush()
	n := 0
	for _, s := range l.order() {
		for i := l.nodes[s].next; i != s; i = l.nodes[i].next {
			require.Equal(t, i, l.nodes[l.nodes[i].next].prev, "links of node %d", i)
			e := l.nodes[i].e
			require.Same(t, e, l.idx.get(e.key), "index entry of %v", e.key)
			require.Equal(t, i, e.ref.Load(), "node of %v's entry", e.key)
			n++
		}
	}
	require.Equal(t, l.len(), n, "entries linked")
	marks := 0
	tab := l.idx.tab.Load()
	for i := range tab.slots {
		e := tab.slots[i].Load()
		if e == nil {
			continue
		}
		require.Same(t, e, l.idx.get(e.key), "slot %d reachable from its key's first slot", i)
		if e.ref.Load() < 0 {
			marks++
		}
	}
	require.Equal(t, l.marks, marks, "marks")
	require.Equal(t, n+marks, l.idx.n, "entries indexed")
	require.LessOrEqual(t, 2*l.idx.n, len(tab.slots), "the table at most half full")
}

// TestIndexModel runs random insertions and removals on an index against a
// map, with keys chosen so that probe sequences collide and wrap around the
// table: every key is found exactly when the map has it, and removals leave
// no key cut off.
func TestIndexModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, space := range []int{3, 20, 200} {
		var x index[int, int]
		x.hash = func(k int) uint64 { return uint64(k%7) << 61 } // 8 first slots at most: long runs
		x.init()
		model := map[int]*entry[int, int]{}
		for step := range 20000 {
			k := rng.IntN(space)
			if e, ok := model[k]; ok && rng.IntN(2) == 0 {
				x.del(e)
				delete(model, k)
			} else if !ok {
				e := &entry[int, int]{key: k, val: k}
				x.add(e)
				model[k] = e
			}
			if step%97 == 0 || space <= 20 {
				for k := range space {
					require.Same(t, model[k], x.get(k), "space %d step %d key %d", space, step, k)
				}
				require.Equal(t, len(model), x.n)
			}
		}
	}
}

func TestReadsBasics(t *testing.T) {
	runs := 0
	f, c := Memoize(func(k int) int { runs++; return 10 * k }, MaxSize(4))
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
	checkList(t, &c.first.mu, &c.first.l)
}

// TestHitsTakeNoLock: with the cache's lock held by someone else, hits on
// fresh values still answer, in every kind of cache; a miss waits.
func TestHitsTakeNoLock(t *testing.T) {
	clk := newFakeClock(t0)
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"LRU", nil},
		{"WTinyLFU", []Option{WTinyLFU()}},
		{"EstimateSizes", []Option{EstimateSizes(0)}},
		{"TTL", []Option{TTL(time.Hour), Clock(clk.Now)}},
		{"MaxWeight", []Option{MaxWeight(100, func(int, int) int { return 1 })}},
	} {
		f, c := Memoize(func(k int) int { return 10 * k }, append(tc.opts, MaxSize(8))...)
		f(1)
		f(2)
		c.first.mu.Lock()
		within(t, timeout, func() {
			for range 3 * stripeLen {
				assert.Equal(t, 10, f(1), tc.name)
				assert.Equal(t, 20, f(2), tc.name)
			}
		})
		done := make(chan int)
		go func() { done <- f(3) }()
		select {
		case <-done:
			t.Fatalf("%s: a miss did not wait for the lock", tc.name)
		case <-time.After(20 * time.Millisecond):
		}
		c.first.mu.Unlock()
		assert.Equal(t, 30, <-done, tc.name)
		assert.Equal(t, counts{Hits: 6 * stripeLen, Misses: 3}, countsOf(c.CacheInfo()), tc.name)
		checkList(t, &c.first.mu, &c.first.l)
	}

	// A keyed cache, and keys holding interfaces, normalised or not.
	type user struct{ id int }
	g, cg := MemoizeKeyed(func(u user) (string, error) { return fmt.Sprint("user ", u.id), nil },
		func(u user) (int, error) { return u.id, nil })
	_, err := g(user{7})
	require.NoError(t, err)
	h, ch := MemoizeErr(func(k any) (string, error) { return fmt.Sprint(k), nil })
	_, err = h(1)
	require.NoError(t, err)
	_, err = h("a")
	require.NoError(t, err)
	cg.first.mu.Lock()
	ch.first.mu.Lock()
	within(t, timeout, func() {
		v, err := g(user{7})
		assert.NoError(t, err)
		assert.Equal(t, "user 7", v)
		v, err = h(1.0) // the same key as 1
		assert.NoError(t, err)
		assert.Equal(t, "1", v)
		v, err = h("a")
		assert.NoError(t, err)
		assert.Equal(t, "a", v)
	})
	cg.first.mu.Unlock()
	ch.first.mu.Unlock()
	assert.Equal(t, counts{Hits: 2, Misses: 2}, countsOf(ch.CacheInfo()))

	// The LRU core's Get.
	l := NewLRU[int, int](4, nil)
	l.Add(1, 10)
	l.mu.Lock()
	within(t, timeout, func() {
		v, ok := l.Get(1)
		assert.True(t, ok)
		assert.Equal(t, 10, v)
	})
	l.mu.Unlock()
}

// TestReadsOrderAcrossStacks: one goroutine's hits made from different
// stack depths, and from different goroutines one after another (which the
// scheduler may run on different processors), are made in order: sequential
// use is exactly LRU.
func TestReadsOrderAcrossStacks(t *testing.T) {
	const size = 8
	var deep func(d int, f func(int) int, k int) int
	deep = func(d int, f func(int) int, k int) int {
		var pad [64]byte // a frame big enough to move the stack
		if d == 0 {
			return f(k) + int(pad[k%64])
		}
		return deep(d-1, f, k) + int(pad[d%64])
	}
	rng := rand.New(rand.NewPCG(7, 8))
	handoff := make(chan func())
	go func() {
		for f := range handoff {
			f()
		}
	}()
	defer close(handoff)
	for trial := range longer(64) {
		f, c := Memoize(func(k int) int { return k }, MaxSize(size))
		model := []int{} // most recent first
		for step := range 400 {
			k := rng.IntN(2 * size)
			call := func() { deep(rng.IntN(200), f, k) }
			if step%3 == 0 {
				done := make(chan struct{})
				handoff <- func() { call(); close(done) } // another goroutine
				<-done
			} else {
				call()
			}
			if i := slices.Index(model, k); i >= 0 {
				model = slices.Delete(model, i, i+1)
			}
			model = slices.Insert(model, 0, k)
			if len(model) > size {
				model = model[:size]
			}
			if step%10 == 0 {
				c.first.mu.Lock()
				got := c.first.l.keys()
				c.first.mu.Unlock()
				require.Equal(t, model, got, "trial %d step %d", trial, step)
			}
		}
	}
}

// TestReadsOrderWithinAStripe: hits from one goroutine, more than a stripe
// holds, are made in order, so eviction follows LRU.
func TestReadsOrderWithinAStripe(t *testing.T) {
	const size = 200
	f, c := Memoize(func(k int) int { return k }, MaxSize(size))
	for k := range size {
		f(k)
	}
	// Hit every even key, in descending order, several stripes' worth.
	for range 3 {
		for k := size - 2; k >= 0; k -= 2 {
			f(k)
		}
	}
	// A hundred new keys evict the hundred odd ones, least recently used.
	for k := size; k < size+size/2; k++ {
		f(k)
	}
	for k := range size {
		assert.Equal(t, k%2 == 0, c.Contains(k), "key %d", k)
	}
	// And then the even keys, from the least recently hit: 198, 196...
	for k := size + size/2; k < size+size/2+10; k++ {
		f(k)
	}
	for k := 180; k < size; k += 2 {
		assert.False(t, c.Contains(k), "key %d", k)
	}
	assert.True(t, c.Contains(178))
	checkList(t, &c.first.mu, &c.first.l)
}

// TestReadsCounting: goroutines hit and miss at once, with Forget and Put
// among them, in every kind of cache; every call is counted once, every
// answer is right, and the order and the index agree afterwards.
func TestReadsCounting(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"one shard", nil},
		{"Shards(4)", []Option{Shards(4)}},
		{"TTL", []Option{TTL(time.Hour)}}, // hits through doAny, which reads the clock
		{"WTinyLFU", []Option{WTinyLFU()}},
		{"EstimateSizes", []Option{EstimateSizes(0)}},
	} {
		f, c := Memoize(func(k int) int { return k * k }, append(tc.opts, MaxSize(64))...)
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
			checkList(t, &s.mu, &s.l)
		}
	}
}

// TestReadsCountingAcrossClear: a hit that found its entry before a Clear is
// never counted after it. Goroutines hit keys of their own until told to
// stop; Clear runs meanwhile, and once every goroutine has finished its
// last call, the only calls counted are those that looked up after the
// Clear and missed in the emptied cache: at most one per goroutine, and no
// hit.
func TestReadsCountingAcrossClear(t *testing.T) {
	const goroutines = 8
	for _, opts := range [][]Option{nil, {Shards(4)}, {WTinyLFU()}, {EstimateSizes(0)}} {
		f, c := Memoize(func(k int) int { return k }, append(opts, MaxSize(1024))...)
		var quit atomic.Bool // set if the bound fires, so the iterations end
		t.Cleanup(func() { quit.Store(true) })
		within(t, timeout, func() {
			for iter := range longer(200) {
				if quit.Load() {
					return
				}
				for k := range 8 * goroutines {
					f(k)
				}
				var stop atomic.Bool
				var wg sync.WaitGroup
				started := make(chan struct{}, goroutines)
				for g := range goroutines {
					wg.Go(func() {
						started <- struct{}{}
						for i := 0; !stop.Load(); i++ {
							f(8*g + i%8)
							if i%64 == 0 {
								runtime.Gosched() // lets the test go on, on a machine of few cores
							}
						}
					})
				}
				for range goroutines {
					<-started
				}
				stop.Store(true)
				c.Clear()
				wg.Wait()
				ci := c.CacheInfo()
				require.Zero(t, ci.Hits, "iteration %d: %v", iter, ci)
				require.LessOrEqual(t, ci.Misses, goroutines, "iteration %d: %v", iter, ci)
			}
		})
	}
}

// TestReadsInvalidation: once Put, Forget or Clear has returned, no call
// gets the value it replaced or removed, while other goroutines hit the key
// all along.
func TestReadsInvalidation(t *testing.T) {
	for _, opts := range [][]Option{nil, {WTinyLFU(), MaxSize(64)}, {EstimateSizes(0)}} {
		var mu sync.Mutex
		next := 0 // what the function returns for key 1
		f, c := Memoize(func(int) int { mu.Lock(); defer mu.Unlock(); return next }, opts...)
		f(1)
		stop := hitting(t, 3, func() { f(1) })
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
		stop()
		checkList(t, &c.first.mu, &c.first.l)
	}
}

// TestReadsFullStripe: when the lock is held, hits fill their stripe and go
// on being counted; the moves noted are made once the lock is free.
func TestReadsFullStripe(t *testing.T) {
	f, c := Memoize(func(k int) int { return k }, MaxSize(3))
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
	assert.Equal(t, 3*stripeLen, c.CacheInfo().Hits)
	f(4) // evicts 2: the hits on 1 were noted and made
	assert.True(t, c.Contains(1))
	assert.False(t, c.Contains(2))
	checkList(t, &s.mu, &s.l)
}

// TestReadsExpiry: a value past its expiry is never read without the lock;
// the call takes the lock and gets a stale value (with
// StaleWhileRevalidate) or a new one.
func TestReadsExpiry(t *testing.T) {
	clk := newFakeClock(t0)
	runs := 0
	f, c := Memoize(func(k int) int { runs++; return 100*runs + k }, TTL(time.Minute), Clock(clk.Now))
	assert.Equal(t, 101, f(1))
	assert.Equal(t, 101, f(1))
	clk.Advance(time.Minute)
	assert.Equal(t, 201, f(1), "expired: computed again")
	assert.Equal(t, counts{Hits: 1, Misses: 2, Expirations: 1}, countsOf(c.CacheInfo()))
	checkList(t, &c.first.mu, &c.first.l)

	var n atomic.Int32
	g, _ := Memoize(func(k int) int { return int(n.Add(1)) }, TTL(time.Minute), StaleWhileRevalidate(time.Minute), Clock(clk.Now))
	assert.Equal(t, 1, g(1))
	clk.Advance(time.Minute)
	assert.Equal(t, 1, g(1), "stale, served under the lock while a refresh runs")
	await.Soon(t, func() bool { return g(1) == 2 }, "the refreshed value, read without the lock")
}

// TestReadsNoteOfAnEmptiedNode: a hit may note a node that the lock holder
// empties before the note is drained (the hit read its entry just before);
// the drain skips it, also when the node is past the end of a list emptied
// by a Clear.
func TestReadsNoteOfAnEmptiedNode(t *testing.T) {
	f, c := Memoize(func(k int) int { return k }, MaxSize(1000))
	for k := range 1000 {
		f(k)
	}
	s := &c.first
	s.mu.Lock()
	s.reset(0, false) // the store's clear, which keeps the generation
	require.Less(t, len(s.l.nodes), 999)
	st := &s.l.hits.s[0]
	st.notes[0].Store(999) // the late note of a hit on the node of key 998
	st.notes[1].Store(0)   // a sentinel
	st.state.Add(2)
	s.mu.Unlock()
	f(1)
	assert.Equal(t, counts{Hits: 2, Misses: 1001}, countsOf(c.CacheInfo()))
	checkList(t, &s.mu, &s.l)
}
