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

// checkSizer fails unless z's view of l is what l's order says: each node in
// the segment its position gives, the node past each boundary known.
func checkSizer(t *testing.T, l *list[int, int], z *sizer[int, int]) {
	t.Helper()
	l.flush()
	order := l.keys()
	require.Equal(t, int32(len(order)), z.n, "nodes counted")
	pos := 0
	for i := l.nodes[0].next; i != 0; i = l.nodes[i].next {
		want := 0
		for want < len(z.bounds) && int32(pos) >= z.bounds[want] {
			want++
		}
		require.Equal(t, uint8(want), z.seg[i], "segment of the entry at position %d", pos)
		pos++
	}
	for j, b := range z.bounds {
		want := int32(0)
		if int32(len(order)) > b {
			want = int32(l.lookup(order[b]))
		}
		require.Equal(t, want, z.first[j], "node past boundary %d", j)
	}
}

// A list's sizer against its order, through every operation that moves or
// removes entries, and its hit counts against the positions an exact LRU
// model gives.
func TestSizerFollowsTheOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, bound := range []int{0, 1, 2, 7, 8, 40} {
		t.Run(fmt.Sprint(bound), func(t *testing.T) {
			var l list[int, int]
			z := newSizer[int, int](bound, bound, 1, 1<<20, func(k int) uint64 { return mix(uint64(k)) }, nil)
			l.sz = z
			l.init(bound)
			model := []int{} // keys, most recent first
			want := make([]uint64, len(z.hits))
			segmentOf := func(pos int) int {
				j := 0
				for j < len(z.bounds) && int32(pos) >= z.bounds[j] {
					j++
				}
				return j
			}
			moveFront := func(k int) {
				i := slices.Index(model, k)
				model = slices.Insert(slices.Delete(model, i, i+1), 0, k)
			}
			for step := range 5000 {
				k := rng.IntN(60)
				switch op := rng.IntN(10); {
				case op < 5: // a call: a hit, or a miss that stores
					if r := l.lookup(k); r != 0 {
						i, _ := r.entry()
						want[segmentOf(slices.Index(model, k))]++
						l.touch(i)
						moveFront(k)
					} else {
						l.add(k, k, 0)
						model = append([]int{k}, model...)
						if bound > 0 && len(model) > bound {
							model = model[:bound]
						}
					}
				case op < 7: // Put over an entry: moves it, counts nothing
					if l.lookup(k) != 0 {
						l.add(k, -k, 0)
						moveFront(k)
					}
				case op < 9:
					if _, ok := l.remove(k); ok {
						model = slices.DeleteFunc(model, func(m int) bool { return m == k })
					}
				case step%50 == 0:
					l.init(bound)
					model = model[:0]
				default:
					if old, ok := l.removeOldest(); ok {
						require.Equal(t, model[len(model)-1], old.key)
						model = model[:len(model)-1]
					}
				}
				if rng.IntN(8) == 0 {
					checkSizer(t, &l, z)
					require.Equal(t, model, l.keys())
				}
			}
			checkSizer(t, &l, z)
			assert.Equal(t, want, z.hits, "hits by segment")
		})
	}
}

// With every key followed, the estimates are exact: they are the hit ratios
// of exact LRU replays of the same calls, at every size.
func TestSizeAdviceExactWhenEveryKeyIsFollowed(t *testing.T) {
	keys := trace.Zipf(200_000, 3000, 7)
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"MaxSize(200)", []Option{MaxSize(200)}},
		{"Unbounded", []Option{Unbounded()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, c := Memoize(func(k int) int { return k }, append(tc.opts, EstimateSizes(0))...)
			for _, k := range keys {
				f(k)
			}
			a := c.SizeAdvice()
			assert.Equal(t, len(keys), a.Calls)
			require.NotEmpty(t, a.Sizes)
			for _, e := range a.Sizes {
				assert.InDelta(t, exactHitRatio(keys, e.Size), e.HitRatio, 1e-9, "size %d", e.Size)
			}
		})
	}
}

// The estimates against exact LRU replays of the same calls, at every
// advised size, on the Zipf stream and public traces, for three sampling
// hashes: within 0.02.
//
// It has no concurrency for the race detector to check, under which it takes
// minutes; CI runs it without -race (.ci/run, after ./test.sh).
func TestSizeAdviceAccuracy(t *testing.T) {
	if raceEnabled() {
		t.Skip("pure computation, slow under -race; the runs without -race check it")
	}
	type stream struct {
		name  string
		keys  []int
		sizes []int
	}
	streams := []stream{
		{"zipf", trace.GetOrCompute(), []int{trace.GetOrComputeSize / 4, trace.GetOrComputeSize}},
		{"gli", readTrace(t, "gli.gz"), []int{250, 500, 1000, 2000}},
		{"oltp", readTrace(t, "oltp.gz"), []int{250, 500, 1000, 2000}},
	}
	for _, st := range streams {
		t.Run(st.name, func(t *testing.T) {
			exact := map[int]float64{}
			for _, size := range st.sizes {
				worst := 0.0
				for seed := range uint64(3) {
					f, c := Memoize(func(k int) int { return k }, MaxSize(size), EstimateSizes(0))
					c.shards[0].l.sz.ghost.hash = func(k int) uint64 { return mix(uint64(k) + seed*0x9E3779B97F4A7C15) }
					for _, k := range st.keys {
						f(k)
					}
					for _, e := range c.SizeAdvice().Sizes {
						if _, ok := exact[e.Size]; !ok {
							exact[e.Size] = exactHitRatio(st.keys, e.Size)
						}
						diff := math.Abs(exact[e.Size] - e.HitRatio)
						worst = max(worst, diff)
						if seed == 0 {
							t.Logf("%s, %d calls, MaxSize %d, size %6d: exact %.4f, estimated %.4f, error %.4f", st.name, len(st.keys), size, e.Size, exact[e.Size], e.HitRatio, diff)
						}
						assert.InDelta(t, exact[e.Size], e.HitRatio, 0.02, "MaxSize %d, size %d, hash %d", size, e.Size, seed)
					}
				}
				t.Logf("%s, MaxSize %d: worst error %.4f over 3 hashes", st.name, size, worst)
			}
		})
	}
}

func TestSizeAdviceSharded(t *testing.T) {
	keys := trace.Zipf(100_000, 2000, 3)
	f, c := Memoize(func(k int) int { return k }, MaxSize(256), Shards(4), EstimateSizes(0))
	for _, k := range keys {
		f(k)
	}
	a := c.SizeAdvice()
	assert.Equal(t, []int{128, 256, 512, 1024, 2048, 0}, sizesOf(a))
	ci := c.CacheInfo()
	assert.InDelta(t, ci.HitRatio(), a.Sizes[1].HitRatio, 1e-9, "the cache's own size: its own hit ratio")
	for _, e := range a.Sizes {
		// Shards of an LRU are not one LRU, but they come close on a Zipf stream.
		assert.InDelta(t, exactHitRatio(keys, e.Size), e.HitRatio, 0.02, "size %d", e.Size)
	}
}

func TestSizeAdviceHitsAllocateNothing(t *testing.T) {
	f, c := Memoize(func(n int) int { return n }, MaxSize(64), EstimateSizes(64))
	for i := range 64 {
		f(i)
	}
	for i := range 3 * 4 * 64 { // misses and evictions, through compactions of the ghost's clock
		f(64 + i)
	}
	for i := range 64 {
		f(i)
	}
	k := 0
	assert.Zero(t, testing.AllocsPerRun(1000, func() { f(k % 64); k++ }), "a hit allocates nothing")
	a, ci := c.SizeAdvice(), c.CacheInfo()
	assert.Equal(t, ci.Hits+ci.Misses, a.Calls, "every call was counted")
	assert.InDelta(t, ci.HitRatio(), a.Sizes[1].HitRatio, 1e-9, "the cache's own size: its own hit ratio")
}

func TestSizeAdviceClear(t *testing.T) {
	f, c := Memoize(func(n int) int { return n }, MaxSize(64), EstimateSizes(0))
	for i := range 200 {
		f(i % 100)
	}
	require.NotZero(t, c.SizeAdvice().Sizes[3].HitRatio, "at 128 entries, the second pass over 100 keys hits")
	c.Clear()
	a := c.SizeAdvice()
	assert.Zero(t, a.Calls, "Clear forgets the calls, as it resets the counters")
	for _, e := range a.Sizes {
		assert.Zero(t, e.HitRatio)
	}
	assert.Equal(t, []int{32, 64, 128, 256, 512, 0}, sizesOf(a))
	for i := range 200 {
		f(i % 100)
	}
	assert.InDelta(t, 0.5, c.SizeAdvice().Sizes[3].HitRatio, 1e-9, "the keys evicted before the Clear are forgotten")
}

func TestSizeAdviceSmallAndOff(t *testing.T) {
	_, c := Memoize(func(n int) int { return n }, MaxSize(4), EstimateSizes(0))
	assert.Equal(t, []int{2, 4, 8, 16, 32, 0}, sizesOf(c.SizeAdvice()), "half of 4 entries")
	_, c = Memoize(func(n int) int { return n }, MaxSize(0), EstimateSizes(0))
	assert.Empty(t, c.SizeAdvice().Sizes, "a cache that keeps nothing estimates nothing")
	_, c = Memoize(func(n int) int { return n })
	assert.Empty(t, c.SizeAdvice().Sizes, "nothing without EstimateSizes")
	assert.PanicsWithValue(t, "memo: EstimateSizes's budget must not be negative, got -1", func() {
		Memoize(func(n int) int { return n }, EstimateSizes(-1))
	})
	assert.PanicsWithValue(t, "memo: EstimateSizes counts entries, so it cannot be combined with MaxWeight", func() {
		Memoize(func(n int) int { return n }, EstimateSizes(0), MaxWeight(10, func(int, int) int { return 1 }))
	})
}

func TestSizeAdviceTimeSaved(t *testing.T) {
	f, c := Memoize(func(n int) int { time.Sleep(2 * time.Millisecond); return n }, MeasureExecTime())
	f(1)
	f(1)
	f(1)
	a := c.SizeAdvice()
	assert.Equal(t, 2, a.Saved)
	assert.GreaterOrEqual(t, a.MeanExecTime, 2*time.Millisecond)
	assert.Equal(t, 2*a.MeanExecTime, a.TimeSaved, "two hits saved two executions")
}

func sizesOf(a Advice) []int {
	var sizes []int
	for _, e := range a.Sizes {
		sizes = append(sizes, e.Size)
	}
	return sizes
}

// TestEstimateSizesLargeBudgets: any budget that is not negative is valid,
// math.MaxInt included: the sample's memory grows with the keys followed,
// not with the budget, and with fewer keys than the budget every key is
// followed.
func TestEstimateSizesLargeBudgets(t *testing.T) {
	keys := trace.Zipf(20_000, 1000, 5)
	for _, tc := range []struct {
		name   string
		shards int
		budget int
	}{
		{"MaxInt", 1, math.MaxInt},
		{"half MaxInt, 2 shards", 2, math.MaxInt / 2},
		{"1<<30", 1, 1 << 30},
		{"MaxInt, 4 shards", 4, math.MaxInt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, c := Memoize(func(k int) int { return k }, MaxSize(100), Shards(tc.shards), EstimateSizes(tc.budget))
			for _, s := range c.shards {
				assert.LessOrEqual(t, len(s.l.sz.ghost.tree.sum), 4*defaultBudget+1, "the tree is not sized for the budget")
			}
			for _, k := range keys {
				f(k)
			}
			a := c.SizeAdvice()
			assert.Equal(t, len(keys), a.Calls)
			require.Len(t, a.Sizes, 6)
			if tc.shards == 1 {
				for _, e := range a.Sizes {
					assert.InDelta(t, exactHitRatio(keys, e.Size), e.HitRatio, 1e-9, "size %d", e.Size)
				}
			}
		})
	}
}

// TestSizeAdvicePutCounts: a Put counts as a call, over a held entry too,
// where an LRU replaying the calls hits.
func TestSizeAdvicePutCounts(t *testing.T) {
	f, c := Memoize(func(k int) int { return k }, MaxSize(4), EstimateSizes(0))
	f(1)
	c.Put(1, 5) // over the entry f(1) stored: a hit
	c.Put(2, 5) // a miss
	a := c.SizeAdvice()
	assert.Equal(t, 3, a.Calls)
	calls := []int{1, 1, 2}
	require.Len(t, a.Sizes, 6)
	for _, e := range a.Sizes {
		assert.InDelta(t, exactHitRatio(calls, e.Size), e.HitRatio, 1e-9, "size %d", e.Size)
		assert.InDelta(t, 1.0/3, e.HitRatio, 1e-9, "size %d", e.Size)
	}
}

// TestSizeAdvicePutsAndCalls: calls and Puts mixed, replayed as calls by an
// exact LRU of each size: with every key followed, the same hit ratios.
func TestSizeAdvicePutsAndCalls(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	f, c := Memoize(func(k int) int { return k }, MaxSize(8), EstimateSizes(0))
	var calls []int
	for range 5000 {
		k := int(rng.ExpFloat64() * 10)
		if rng.IntN(3) == 0 {
			c.Put(k, k)
		} else {
			f(k)
		}
		calls = append(calls, k)
	}
	a := c.SizeAdvice()
	assert.Equal(t, len(calls), a.Calls)
	for _, e := range a.Sizes {
		assert.InDelta(t, exactHitRatio(calls, e.Size), e.HitRatio, 1e-9, "size %d", e.Size)
	}
}

// shardedExactHitRatio replays keys through exact LRUs standing for c's
// shards, each key through its own shard's, each of size times that shard's
// share of MaxSize over MaxSize (0: unbounded), and returns their hit ratio.
func shardedExactHitRatio(c *Cache[int, int], keys []int, factor float64) float64 {
	byShard := map[*shard[int, int]][]int{}
	for _, k := range keys {
		s := c.shard(k)
		byShard[s] = append(byShard[s], k)
	}
	hits := 0.0
	for s, ks := range byShard {
		hits += exactHitRatio(ks, int(factor*float64(s.max))) * float64(len(ks))
	}
	return hits / float64(len(keys))
}

// TestSizeAdviceShardedExact: with fewer distinct keys than the budget, a
// sharded cache follows every key, though its shards hold them unevenly,
// and the estimates are exact: those of exact LRUs of each size standing
// for its shards.
func TestSizeAdviceShardedExact(t *testing.T) {
	keys := trace.Zipf(50_000, 1000, 9)
	for k := range 1000 { // every key of the space, once at least
		keys = append(keys, k)
	}
	for _, shards := range []int{2, 4, 8} {
		t.Run(fmt.Sprint(shards), func(t *testing.T) {
			f, c := Memoize(func(k int) int { return k }, MaxSize(400), Shards(shards), EstimateSizes(1001))
			counts := map[*shard[int, int]]int{}
			for k := range 1000 {
				counts[c.shard(k)]++
			}
			fuller := 0
			for _, n := range counts {
				fuller = max(fuller, n)
			}
			t.Logf("%d shards: the fullest holds %d of the 1000 keys, over its share %d of the budget", shards, fuller, 1001/shards)
			for _, k := range keys {
				f(k)
			}
			a := c.SizeAdvice()
			require.Len(t, a.Sizes, 6)
			for i, factor := range []float64{0.5, 1, 2, 4, 8, 0} {
				assert.InDelta(t, shardedExactHitRatio(c, keys, factor), a.Sizes[i].HitRatio, 1e-9, "size %d", a.Sizes[i].Size)
			}
		})
	}
}

// TestSizeAdviceShardedBudget: the shards of a cache follow at most about
// twice the budget in all, even when one shard's keys come first and fill it
// past its share; that shard gives the excess back on its next misses, and
// Clear gives back everything.
func TestSizeAdviceShardedBudget(t *testing.T) {
	const budget = 256
	f, c := Memoize(func(k int) int { return k }, MaxSize(64), Shards(4), EstimateSizes(budget))
	followed := func() (total int64, each []int) {
		for _, s := range c.shards {
			each = append(each, len(s.l.sz.ghost.at))
		}
		return c.shards[0].l.sz.ghost.followed.Load(), each
	}
	keysOf := func(s *shard[int, int], n int) (keys []int) {
		for k := 0; len(keys) < n; k++ {
			if c.shard(k) == s {
				keys = append(keys, k)
			}
		}
		return keys
	}
	first := keysOf(c.shards[0], 5000)
	for _, k := range first[:4000] {
		f(k)
	}
	total, each := followed()
	assert.Equal(t, []int{budget, 0, 0, 0}, each, "alone, a shard may follow the whole budget")
	assert.EqualValues(t, budget, total)
	for _, s := range c.shards[1:] {
		for _, k := range keysOf(s, 1000) {
			f(k)
		}
	}
	total, each = followed()
	assert.Equal(t, []int{budget, budget / 4, budget / 4, budget / 4}, each, "the others follow their share")
	assert.EqualValues(t, budget+3*budget/4, total)
	assert.LessOrEqual(t, total, int64(2*budget))
	f(first[4000]) // the first shard's next miss gives its excess back
	total, each = followed()
	assert.Equal(t, []int{budget / 4, budget / 4, budget / 4, budget / 4}, each)
	assert.EqualValues(t, budget, total)
	c.Clear()
	total, _ = followed()
	assert.Zero(t, total)
}
