package memo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/gomemo/memo/internal/trace"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLRUBasics(t *testing.T) {
	c := NewLRU[string, int](2, nil)
	assert.False(t, c.Add("a", 1))
	assert.False(t, c.Add("b", 2))
	assert.Equal(t, []string{"b", "a"}, c.Keys())

	v, ok := c.Get("a") // a becomes most recent
	require.True(t, ok)
	assert.Equal(t, 1, v)
	assert.Equal(t, []string{"a", "b"}, c.Keys())

	v, ok = c.Peek("b") // b stays least recent
	require.True(t, ok)
	assert.Equal(t, 2, v)
	assert.Equal(t, []string{"a", "b"}, c.Keys())

	assert.True(t, c.Add("c", 3), "adding to a full cache evicts")
	_, ok = c.Get("b")
	assert.False(t, ok, "b was least recently used")
	assert.Equal(t, []string{"c", "a"}, c.Keys())

	assert.False(t, c.Add("a", 10), "replacing a value evicts nothing")
	v, _ = c.Peek("a")
	assert.Equal(t, 10, v)
	assert.Equal(t, []string{"a", "c"}, c.Keys())

	v, ok = c.Remove("a")
	assert.True(t, ok)
	assert.Equal(t, 10, v)
	_, ok = c.Remove("a")
	assert.False(t, ok)
	assert.Equal(t, 1, c.Len())
	assert.Equal(t, 2, c.Cap())

	c.Clear()
	assert.Equal(t, 0, c.Len())
	assert.Empty(t, c.Keys())
	c.Add("x", 1)
	assert.Equal(t, []string{"x"}, c.Keys())
}

func TestLRUSizeOne(t *testing.T) {
	c := NewLRU[int, int](1, nil)
	for i := range 5 {
		c.Add(i, i)
		assert.Equal(t, []int{i}, c.Keys())
	}
}

func TestNewLRUBadSize(t *testing.T) {
	for _, n := range []int{0, -1, math.MaxInt32} {
		assert.PanicsWithValue(t,
			fmt.Sprintf("memo: NewLRU size must be between 1 and 2147483646, got %d", n),
			func() { NewLRU[int, int](n, nil) })
	}
	assert.Panics(t, func() { NewLRU[int, int](1, nil).Resize(0) })
}

func TestLRUEvictCallback(t *testing.T) {
	type kv struct{ k, v int }
	var got []kv
	var c *LRU[int, int]
	c = NewLRU(2, func(k, v int) {
		// Calling back into the cache deadlocks if the lock were still held.
		c.Len()
		got = append(got, kv{k, v})
	})
	within(t, 5*time.Second, func() {
		c.Add(1, 10)
		c.Add(2, 20)
		c.Add(3, 30)
		c.Get(2)
		c.Add(4, 40)
		c.Remove(2) // reported too, as golang-lru reports it
		c.Add(5, 50)
		c.Add(6, 60)
		c.RemoveOldest()
		c.Clear()
	})
	assert.Equal(t, []kv{{1, 10}, {3, 30}, {2, 20}, {4, 40}, {5, 50}, {6, 60}}, got,
		"evictions, Remove, RemoveOldest and Clear all reach the callback")
}

// The golang-lru/v2 operations, with golang-lru's semantics: Contains and
// Peek leave recency alone; ContainsOrAdd and PeekOrAdd add only if the key
// is absent, in one step, and leave a present key's recency alone;
// GetOldest and RemoveOldest act on the least recently used entry. (Values,
// like Keys, lists the most recent first: golang-lru lists the oldest
// first, a difference the LRU's doc states.)
func TestLRUGolangLRUOperations(t *testing.T) {
	c := NewLRU[string, int](3, nil)
	c.Add("a", 1)
	c.Add("b", 2)
	assert.True(t, c.Contains("a"))
	assert.False(t, c.Contains("z"))

	ok, evicted := c.ContainsOrAdd("a", 100)
	assert.True(t, ok)
	assert.False(t, evicted)
	v, _ := c.Peek("a")
	assert.Equal(t, 1, v, "a present key is not overwritten")
	ok, evicted = c.ContainsOrAdd("c", 3)
	assert.False(t, ok)
	assert.False(t, evicted)

	k, v, ok := c.GetOldest()
	assert.Equal(t, "a", k, "Contains, ContainsOrAdd and Peek left a the oldest")
	assert.Equal(t, 1, v)
	assert.True(t, ok)

	prev, ok, evicted := c.PeekOrAdd("b", 200)
	assert.Equal(t, 2, prev)
	assert.True(t, ok)
	assert.False(t, evicted)
	prev, ok, evicted = c.PeekOrAdd("d", 4)
	assert.Zero(t, prev)
	assert.False(t, ok)
	assert.True(t, evicted, "a, the oldest, made room")
	assert.Equal(t, []int{4, 3, 2}, c.Values())

	k, v, ok = c.RemoveOldest()
	assert.Equal(t, "b", k)
	assert.Equal(t, 2, v)
	assert.True(t, ok)
	assert.Equal(t, []string{"d", "c"}, c.Keys())
	c.Clear()
	_, _, ok = c.GetOldest()
	assert.False(t, ok)
	_, _, ok = c.RemoveOldest()
	assert.False(t, ok)
	assert.Empty(t, c.Values())
}

func TestLRUResize(t *testing.T) {
	var evicted []int
	c := NewLRU(5, func(k, _ int) { evicted = append(evicted, k) })
	for i := range 5 {
		c.Add(i, i)
	}
	assert.Equal(t, 3, c.Resize(2))
	assert.Equal(t, []int{0, 1, 2}, evicted)
	assert.Equal(t, []int{4, 3}, c.Keys())
	assert.Equal(t, 2, c.Cap())
	assert.Equal(t, 0, c.Resize(10))
	for i := 10; i < 20; i++ {
		c.Add(i, i)
	}
	assert.Equal(t, 10, c.Len())
}

func TestLRUNaNKeys(t *testing.T) {
	nan := math.NaN()
	c := NewLRU[float64, int](2, nil)
	for range 100 {
		assert.False(t, c.Add(nan, 1))
	}
	assert.Equal(t, 0, c.Len())
	assert.Zero(t, c.l.idx.n, "a NaN key would leak an entry per Add")
	_, ok := c.Get(nan)
	assert.False(t, ok)

	ca := NewLRU[any, int](2, nil)
	ca.Add(any(nan), 1)
	ca.Add(struct{ f any }{nan}, 1)
	assert.Equal(t, 0, ca.Len())
	assert.Zero(t, ca.l.idx.n)
	ca.Add(1.5, 1)
	assert.Equal(t, 1, ca.Len())
}

func TestLRUUncomparableKey(t *testing.T) {
	c := NewLRU[any, int](2, nil)
	within(t, 5*time.Second, func() {
		err := func() (err any) {
			defer func() { err = recover() }()
			c.Add([]int{1}, 1)
			return nil
		}()
		if e, ok := err.(error); assert.True(t, ok, "Add panicked with %#v, want an error", err) {
			assert.ErrorIs(t, e, ErrNotComparable)
			assert.Contains(t, e.Error(), "[]int")
		}
		// The lock was not left held.
		c.Add("ok", 1)
		assert.Equal(t, 1, c.Len())
	})
}

// refLRU is the naive model: a slice of entries, most recently used first.
type refLRU struct {
	size int
	ents []refEntry
}

type refEntry struct{ k, v int }

func (r *refLRU) find(k int) int {
	return slices.IndexFunc(r.ents, func(e refEntry) bool { return e.k == k })
}

func (r *refLRU) get(k int, touch bool) (int, bool) {
	i := r.find(k)
	if i < 0 {
		return 0, false
	}
	e := r.ents[i]
	if touch {
		r.ents = slices.Insert(slices.Delete(r.ents, i, i+1), 0, e)
	}
	return e.v, true
}

// add stores k and returns the entry evicted to make room, if any.
func (r *refLRU) add(k, v int) (old []refEntry) {
	if i := r.find(k); i >= 0 {
		r.ents = slices.Delete(r.ents, i, i+1)
	} else if len(r.ents) == r.size {
		old = r.shrink(r.size - 1)
	}
	r.ents = slices.Insert(r.ents, 0, refEntry{k, v})
	return old
}

// shrink drops the least recently used entries beyond n and returns them,
// least recently used first.
func (r *refLRU) shrink(n int) (old []refEntry) {
	for len(r.ents) > n {
		old = append(old, r.ents[len(r.ents)-1])
		r.ents = r.ents[:len(r.ents)-1]
	}
	return old
}

func (r *refLRU) remove(k int) (int, bool) {
	i := r.find(k)
	if i < 0 {
		return 0, false
	}
	v := r.ents[i].v
	r.ents = slices.Delete(r.ents, i, i+1)
	return v, true
}

func (r *refLRU) keys() []int {
	ks := []int{}
	for _, e := range r.ents {
		ks = append(ks, e.k)
	}
	return ks
}

// TestLRUModel runs thousands of random operation sequences against the
// naive model and requires identical answers, identical evictions and, at
// random points, identical recency order.
func TestLRUModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for seq := range longer(2000) {
		size := 1 + rng.IntN(8)
		keySpace := 1 + rng.IntN(3*size)
		var evicted []refEntry
		c := NewLRU(size, func(k, v int) { evicted = append(evicted, refEntry{k, v}) })
		ref := &refLRU{size: size}
		// Half the sequences are nine parts Get, so that runs of hits longer
		// than the list's buffer of pending moves (recentLen) are common.
		readHeavy := seq%2 == 0
		if readHeavy {
			for k := range size {
				ref.add(k, k)
				c.Add(k, k)
			}
		}
		for op := range 200 {
			k, v := rng.IntN(keySpace), rng.Int()
			var what string
			kind := rng.IntN(7)
			if readHeavy && rng.IntN(10) != 0 {
				kind = 2
			}
			switch kind {
			case 0, 1:
				what = "Add"
				evicted = nil
				want := ref.add(k, v)
				require.Equal(t, len(want) > 0, c.Add(k, v), "seq %d op %d Add(%d)", seq, op, k)
				require.Equal(t, want, evicted, "seq %d op %d Add(%d): evicted", seq, op, k)
			case 2, 3:
				what = "Get"
				wv, wok := ref.get(k, true)
				gv, gok := c.Get(k)
				require.Equal(t, [2]any{wv, wok}, [2]any{gv, gok}, "seq %d op %d Get(%d)", seq, op, k)
			case 4:
				what = "Peek"
				wv, wok := ref.get(k, false)
				gv, gok := c.Peek(k)
				require.Equal(t, [2]any{wv, wok}, [2]any{gv, gok}, "seq %d op %d Peek(%d)", seq, op, k)
			case 5:
				what = "Remove"
				wv, wok := ref.remove(k)
				gv, gok := c.Remove(k)
				require.Equal(t, [2]any{wv, wok}, [2]any{gv, gok}, "seq %d op %d Remove(%d)", seq, op, k)
			case 6:
				what = "Resize"
				if rng.IntN(10) == 0 {
					size = 1 + rng.IntN(8)
					evicted = nil
					want := ref.shrink(size)
					ref.size = size
					require.Equal(t, len(want), c.Resize(size), "seq %d op %d Resize(%d)", seq, op, size)
					require.Equal(t, want, evicted, "seq %d op %d Resize(%d): evicted", seq, op, size)
				}
			}
			if rng.IntN(16) == 0 {
				// Not after every operation: Keys makes the pending moves, and
				// the other methods must see the order right without it.
				require.Equal(t, ref.keys(), c.Keys(), "seq %d op %d %s(%d): order", seq, op, what, k)
			}
			require.LessOrEqual(t, c.Len(), c.Cap())
			require.LessOrEqual(t, len(c.l.nodes)-1, size+8, "nodes are reused, not leaked")
		}
	}
}

func TestLRUConcurrent(t *testing.T) {
	c := NewLRU[int, int](64, nil)
	hammer(t, 8, 30*time.Second, 0, func(_ int, rng *rand.Rand) {
		for range 5000 {
			k := rng.IntN(128)
			if v, ok := c.Get(k); ok && v != k*k {
				t.Errorf("Get(%d) = %d, want %d", k, v, k*k)
				return
			}
			c.Add(k, k*k)
		}
	})
	assert.Equal(t, 64, c.Len())
}

// TestLRUGetAllocatesNothing: a Get allocates nothing, hit or miss, and an
// Add allocates the one entry it stores, also when it evicts.
func TestLRUGetAllocatesNothing(t *testing.T) {
	c := NewLRU[int, int](128, nil)
	for i := range 128 {
		c.Add(i, i)
	}
	k := 0
	assert.Zero(t, testing.AllocsPerRun(1000, func() { c.Get(k % 256); k++ }))
	allocs := testing.AllocsPerRun(1000, func() {
		c.Add(k%256, k) // half of these evict, reusing the slot
		k++
	})
	assert.Equal(t, 1.0, allocs)
}

// TestHitRatioMatchesReference runs the benchmark workloads' kind of key
// stream (Zipf over a key space 16 times the cache) through the LRU core and
// a memoized function, and requires exactly the hits of the naive reference
// LRU: the speed work must not cost exactness.
func TestHitRatioMatchesReference(t *testing.T) {
	for _, size := range []int{1, 16, 256} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			keys := trace.Zipf(20000, uint64(16*size), trace.Seed)
			ref := &refLRU{size: size}
			refHits := 0
			for _, k := range keys {
				if _, ok := ref.get(k, true); ok {
					refHits++
				} else {
					ref.add(k, k)
				}
			}

			c := NewLRU[int, int](size, nil)
			lruHits := 0
			for _, k := range keys {
				if _, ok := c.Get(k); ok {
					lruHits++
				} else {
					c.Add(k, k)
				}
			}
			f, fc := Memoize(func(k int) int { return k }, MaxSize(size))
			for _, k := range keys {
				f(k)
			}

			assert.Equal(t, refHits, lruHits, "LRU core")
			assert.Equal(t, refHits, fc.CacheInfo().Hits, "Memoize")
			assert.Equal(t, ref.keys(), c.Keys(), "same final recency order")
		})
	}
}
