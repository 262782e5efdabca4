package memo

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/gomemo/memo/internal/trace"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkPolicy fails unless l's segments are well linked and agree with what
// its policy counts: every node in the segment its policy says, each
// segment within its bound, no more entries than the list's.
func checkPolicy(t *testing.T, l *list[int, int]) {
	t.Helper()
	l.flush()
	p := l.pol
	total := 0
	for s := int32(0); s < segments; s++ {
		n := 0
		for i, prev := l.nodes[s].next, s; i != s; prev, i = i, l.nodes[i].next {
			require.Equal(t, prev, l.nodes[i].prev, "backward link of node %d", i)
			require.Equal(t, uint8(s), p.where[i], "segment of node %d", i)
			require.Equal(t, ref(i), l.lookup(l.nodes[i].e.key), "index of node %d", i)
			n++
		}
		require.Equal(t, p.count[s], n, "entries of segment %d", s)
		total += n
	}
	require.Equal(t, l.len(), total)
	require.LessOrEqual(t, total, l.max)
	require.LessOrEqual(t, p.count[window], p.wmax)
	require.LessOrEqual(t, p.count[protected], p.pmax)
	require.GreaterOrEqual(t, p.wmax, 1)
}

// The list under WTinyLFU through every operation that adds, moves or
// removes entries, and through the window's moves: its segments stay
// consistent.
func TestWTinyLFUSegments(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, bound := range []int{1, 2, 3, 10, 64} {
		t.Run(fmt.Sprint(bound), func(t *testing.T) {
			var l list[int, int]
			l.pol = newTinyLFU[int, int](bound, func(k int) uint64 { return mix(uint64(k)) })
			l.init(bound)
			space := 3 * bound
			for step := range 20000 {
				k := rng.IntN(space)
				switch op := rng.IntN(20); {
				case op < 16: // a call: a hit, or a miss that stores
					if i, ok := l.lookup(k).entry(); ok {
						l.touch(i)
					} else {
						l.add(k, k, 0)
					}
				case op < 18: // a Put over an entry
					if l.lookup(k) != 0 {
						l.add(k, -k, 0)
					}
				case op < 19:
					l.remove(k)
				case step%1000 == 0:
					l.init(bound)
				}
				if step%16 == 0 || bound <= 3 {
					checkPolicy(t, &l)
				}
				if step == 10000 {
					space = max(bound/2, 1) // the traffic changes: the window moves
				}
			}
			checkPolicy(t, &l)
		})
	}
}

// A memoized function under WTinyLFU keeps the guarantees of the default:
// its counts, values, Forget, Put, Clear and expiry, through a random
// sequence checked against what was called.
func TestWTinyLFUKeepsTheGuarantees(t *testing.T) {
	clk := newFakeClock(time.Unix(1000, 0))
	runs := map[int]int{}
	f, c := Memoize(func(k int) int { runs[k]++; return 10 * k }, MaxSize(16), WTinyLFU(), TTL(time.Minute), Clock(clk.Now))
	rng := rand.New(rand.NewPCG(5, 6))
	calls := 0
	for step := range 20000 {
		k := rng.IntN(48)
		switch op := rng.IntN(100); {
		case op < 90:
			require.Equal(t, 10*k, f(k))
			calls++
		case op < 94:
			c.Forget(k)
			_, ok := c.Peek(k)
			require.False(t, ok, "forgotten")
			before := runs[k]
			f(k)
			calls++
			require.Equal(t, before+1, runs[k], "a call after Forget runs the function")
		case op < 97:
			c.Put(k, 10*k)
			v, ok := c.Peek(k)
			require.True(t, ok)
			require.Equal(t, 10*k, v)
		case op < 99:
			clk.Advance(20 * time.Second)
		case step%500 == 0:
			c.Clear()
			calls = 0
			require.Zero(t, c.Len())
		}
		ci := c.CacheInfo()
		require.Equal(t, calls, ci.Hits+ci.Misses, "every call counted once")
		require.LessOrEqual(t, ci.CurrSize, 16)
	}
	clk.Advance(2 * time.Minute)
	assert.Zero(t, c.CacheInfo().CurrSize, "every entry expired")
	checkPolicy(t, &c.shards[0].l)
}

// On the public traces and the Zipf stream, WTinyLFU does at least as well
// as LRU at every size (to 0.01) and better on average; the benchmarks
// module compares it with the other Go caches.
func TestWTinyLFUHitRatio(t *testing.T) {
	if raceEnabled() {
		t.Skip("pure computation, slow under -race; the runs without -race check it")
	}
	sumLRU, sumTiny := 0.0, 0.0
	for _, st := range []struct {
		name  string
		keys  []int
		sizes []int
	}{
		{"oltp", readTrace(t, "oltp.gz"), []int{250, 500, 1000, 2000}},
		{"gli", readTrace(t, "gli.gz"), []int{250, 500, 1000, 2000}},
		{"zipf", trace.GetOrCompute(), []int{trace.GetOrComputeSize / 4, trace.GetOrComputeSize}},
	} {
		for _, size := range st.sizes {
			f, c := Memoize(func(k int) int { return k }, MaxSize(size), WTinyLFU())
			for _, k := range st.keys {
				f(k)
			}
			tiny, lru := c.CacheInfo().HitRatio(), exactHitRatio(st.keys, size)
			t.Logf("%s at %d: LRU %.4f, WTinyLFU %.4f", st.name, size, lru, tiny)
			assert.GreaterOrEqual(t, tiny, lru-0.01, "%s at %d", st.name, size)
			sumLRU += lru
			sumTiny += tiny
		}
	}
	assert.Greater(t, sumTiny, sumLRU+0.5, "far better than LRU on average")
}

func TestWTinyLFUOptions(t *testing.T) {
	fn := func(n int) int { return n }
	assert.PanicsWithValue(t, "memo: WTinyLFU chooses what to evict, so it needs a MaxSize, not Unbounded", func() {
		Memoize(fn, WTinyLFU(), Unbounded())
	})
	assert.PanicsWithValue(t, "memo: WTinyLFU cannot be combined with MaxWeight or EstimateSizes, which assume an LRU", func() {
		Memoize(fn, WTinyLFU(), EstimateSizes(0))
	})
	_, c := Memoize(fn, WTinyLFU(), MaxSize(8), Shards(2))
	assert.True(t, c.Parameters().WTinyLFU)
	for _, s := range c.shards {
		require.NotNil(t, s.l.pol, "each shard has its policy")
		assert.Equal(t, 4, s.l.pol.max)
	}
}

// A scan of keys used once does not push out a key used all along, as it
// does under LRU.
func TestWTinyLFUResistsScans(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		kept bool
	}{
		{"LRU", []Option{MaxSize(100)}, false},
		{"WTinyLFU", []Option{MaxSize(100), WTinyLFU()}, true},
	} {
		runs := 0
		f, _ := Memoize(func(k int) int {
			if k < 10 {
				runs++
			}
			return k
		}, tc.opts...)
		for round := range 50 {
			for k := range 10 {
				f(k) // the hot keys
			}
			for k := range 200 {
				f(1000 + round*200 + k) // a scan, each key once
			}
		}
		if tc.kept {
			assert.Less(t, runs, 50, "%s: the hot keys stayed", tc.name)
		} else {
			assert.Equal(t, 500, runs, "%s: every scan pushed the hot keys out", tc.name)
		}
	}
}

// EstimateSizes and WTinyLFU under concurrent calls, Forget, Put, Clear and
// SizeAdvice, sharded and not: values stay right, counts add up, and the
// race detector finds nothing.
func TestSizesAndPolicyConcurrently(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"EstimateSizes", []Option{MaxSize(32), EstimateSizes(64)}},
		{"EstimateSizes/Shards(4)", []Option{MaxSize(32), Shards(4), EstimateSizes(64)}},
		{"EstimateSizes/Unbounded", []Option{Unbounded(), EstimateSizes(64)}},
		{"WTinyLFU", []Option{MaxSize(32), WTinyLFU()}},
		{"WTinyLFU/Shards(4)", []Option{MaxSize(32), Shards(4), WTinyLFU()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, c := Memoize(func(k int) int { return k * k }, tc.opts...)
			const goroutines, calls = 4, 4000
			callSquares(t, f, goroutines, calls, 11, func(rng *rand.Rand) int { return rng.IntN(100) }, func(g, i, k int) {
				switch {
				case g == 0 && i%400 == 0:
					c.Forget(k)
				case g == 1 && i%300 == 0:
					c.Put(k, k*k)
				case g == 2 && i%200 == 0:
					c.SizeAdvice()
				}
			})
			ci := c.CacheInfo()
			assert.Equal(t, goroutines*calls, ci.Hits+ci.Misses)
			sizes := c.SizeAdvice().Sizes
			for i, e := range sizes {
				assert.True(t, e.HitRatio >= 0 && e.HitRatio <= 1, "a ratio: %v", e.HitRatio)
				if i > 0 {
					assert.GreaterOrEqual(t, e.HitRatio, sizes[i-1].HitRatio, "an LRU hits more when larger")
				}
			}
			c.Clear()
			assert.Zero(t, c.Len())
		})
	}
}

// The sketch never counts a key less than it was used (up to 15), counts
// an unused key rarely, and halves every count after 10 x max uses.
func TestSketch(t *testing.T) {
	var s sketch
	s.init(100)
	h := func(k int) uint64 { return mix(uint64(k)) }
	uses := map[int]int{}
	rng := rand.New(rand.NewPCG(7, 8))
	for range 999 { // just under the halving period, 1000
		k := int(rng.ExpFloat64() * 20)
		uses[k]++
		s.add(h(k))
	}
	for k, n := range uses {
		require.Equal(t, min(n, 15), min(s.freq(h(k)), 15), "key %d: a count-min sketch this sparse counts exactly", k)
	}
	for k := 1000; k < 1100; k++ {
		assert.Zero(t, s.freq(h(k)), "key %d was never used", k)
	}
	before := map[int]int{}
	for k := range uses {
		before[k] = s.freq(h(k))
	}
	s.add(h(-1)) // the 1000th use: every counter halves
	for k, n := range before {
		assert.Equal(t, n/2, s.freq(h(k)), "key %d", k)
	}
}

// replayWindow replays keys through a list of size entries under WTinyLFU,
// with a fixed hash so that the run is the same every time, and returns its
// hit ratio and the window's share of the cache (in %) at each of 40 points
// spread over the replay.
func replayWindow(keys []int, size int) (ratio float64, window []int) {
	var l list[int, int]
	l.pol = newTinyLFU[int, int](size, func(k int) uint64 { return mix(uint64(k) + 1) })
	l.init(size)
	hits := 0
	for n, k := range keys {
		if i, ok := l.lookup(k).entry(); ok {
			l.touch(i)
			hits++
		} else {
			l.add(k, k, 0)
		}
		if (n+1)%(len(keys)/40) == 0 {
			window = append(window, 100*l.pol.wmax/size)
		}
	}
	return float64(hits) / float64(len(keys)), window
}

// The window follows the traffic: it grows where recency wins, to nearly
// the whole cache on a drifting working set, to the few dozen entries that
// hold keys used again within 50 calls on lookups, within the first quarter
// of the trace, and to most of a large cache on a disk's block reads, re-read
// 40,000 to 300,000 calls later; it stays small where frequency wins (a
// Zipf distribution, a scan through a hot set); on phases that alternate
// the two, it opens and closes with them, and it closes again when a
// drifting working set gives way to a Zipf distribution. The log shows the
// window over time (go test -run TestWTinyLFUWindowAdapts -v).
func TestWTinyLFUWindowAdapts(t *testing.T) {
	const (
		recency   = iota // share: the least mean window (% of size); at most 0.01 behind LRU
		frequency        // share: the most mean window; 0.02 ahead of LRU
		both             // share: the least widest window; the narrowest at most 5%; 0.02 ahead of LRU
	)
	for _, tc := range []struct {
		name  string
		keys  func() []int
		size  int
		kind  int
		share int
		long  bool // too slow under -race
	}{
		{"drift", func() []int { return trace.Drift(1<<20, trace.Seed) }, 1000, recency, 90, false},
		{"lookups", func() []int { return trace.Lookups(1<<18, trace.Seed) }, 1000, recency, 3, false},
		{"disk", func() []int { return trace.Disk(1<<22, trace.Seed) }, 200_000, recency, 85, true},
		{"zipf", trace.GetOrCompute, 1024, frequency, 5, false},
		{"scan in hot set", func() []int { return trace.ScanInHot(1<<20, trace.Seed) }, 1000, frequency, 5, false},
		{"phases", func() []int { return trace.Phases(1<<21, trace.Seed) }, 1000, both, 30, false},
		{"drift, then Zipf", driftThenZipf, 1000, both, 90, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.long && raceEnabled() {
				t.Skip("pure computation, slow under -race; the runs without -race check it")
			}
			keys := tc.keys()
			ratio, window := replayWindow(keys, tc.size)
			lru := exactHitRatio(keys, tc.size)
			t.Logf("%s at %d: LRU %.3f, WTinyLFU %.3f, window %% of the cache over time: %v", tc.name, tc.size, lru, ratio, window)
			later := window[10:]
			mean, least, most := 0, 100, 0
			for _, w := range later {
				mean += w
				least, most = min(least, w), max(most, w)
			}
			mean /= len(later)
			switch tc.kind {
			case recency:
				assert.GreaterOrEqual(t, mean, tc.share, "the window grew, by the first quarter of the trace")
				assert.GreaterOrEqual(t, ratio, lru-0.01, "close to LRU")
			case frequency:
				assert.LessOrEqual(t, mean, tc.share, "the window stayed small")
				assert.Greater(t, ratio, lru+0.02, "better than LRU")
			case both:
				assert.GreaterOrEqual(t, most, tc.share, "the window opened in a recency phase")
				assert.LessOrEqual(t, least, 5, "the window closed in a frequency phase")
				assert.Greater(t, ratio, lru+0.02, "better than LRU")
			}
		})
	}
}

// driftThenZipf returns the drift trace, then as many draws from the Zipf
// distribution of trace.Zipf (keys apart from the drift's): the window grows
// to the whole cache but one entry, then must find out from that entry's
// evictions that frequency wins now.
func driftThenZipf() []int {
	keys := trace.Drift(1<<20, trace.Seed)
	for _, k := range trace.Zipf(1<<21, 1<<16, trace.Seed) {
		keys = append(keys, 1<<20+k)
	}
	return keys
}

// On disk-like traces of other shapes (re-reads nearer or farther back, more
// or fewer of them, more or less frequency), WTinyLFU is far ahead of LRU
// where it keeps a small window, and within 0.01 of it where it follows
// LRU. Each replay takes seconds: it runs when MEMO_LONG_TESTS is set, as CI
// does once, without -race (MEMO_LONG_TESTS=1 go test -run
// TestWTinyLFUDiskShapes -v . logs the table).
func TestWTinyLFUDiskShapes(t *testing.T) {
	if os.Getenv("MEMO_LONG_TESTS") == "" {
		t.Skip("long: set MEMO_LONG_TESTS=1 (CI does)")
	}
	for _, shape := range []trace.DiskShape{
		{Gap: 20_000, Span: 130_000, Reread: 0.30, Zipf: 0.25},
		{Gap: 100_000, Span: 500_000, Reread: 0.30, Zipf: 0.25},
		{Gap: 40_000, Span: 260_000, Reread: 0.50, Zipf: 0.10},
		{Gap: 40_000, Span: 260_000, Reread: 0.15, Zipf: 0.40},
	} {
		keys := shape.Keys(1<<22, trace.Seed)
		for _, size := range []int{50_000, 200_000, 400_000} {
			t.Run(fmt.Sprintf("%+v/%d", shape, size), func(t *testing.T) {
				ratio, window := replayWindow(keys, size)
				lru := exactHitRatio(keys, size)
				t.Logf("%+v at %d: LRU %.3f, WTinyLFU %.3f, window %% at the end %d", shape, size, lru, ratio, window[len(window)-1])
				assert.GreaterOrEqual(t, ratio, lru-0.01)
			})
		}
	}
}

// The window's steps lengthen while it keeps moving one way, beyond chance,
// and shorten when it stops or turns: a round of 64 recalls that stands out
// after one that did not leaves the gain, a second one the same way doubles
// it, and any other round halves it. The gain is at most MaxSize/6,400: 1,
// ARC's steps, in a cache of at most 6,400 entries. The window never takes
// the main part's last entry.
func TestWTinyLFUGain(t *testing.T) {
	k := 0
	recall := func(p *tinyLFU[int, int], n int, cause ...uint32) { // n recalls, each of a key just buried, causes in turn
		for i := range n {
			k++
			p.bury(mix(uint64(k)), cause[i%len(cause)])
			p.recall(mix(uint64(k)))
		}
	}
	p := newTinyLFU[int, int](640_000, func(k int) uint64 { return mix(uint64(k)) })
	require.Equal(t, 6400, p.wmax)
	w, m := uint32(ghostWindow), uint32(ghostMain)
	for _, round := range []struct {
		causes []uint32 // of the round's recalls, in turn
		wmax   int      // after the round
		gain   float64
		why    string
	}{
		{[]uint32{w}, 6464, 1, "one round that stands out leaves the gain; steps of 1"},
		{[]uint32{w}, 6528, 2, "a second one the same way doubles it"},
		{[]uint32{w}, 6656, 4, "steps of 2"},
		{[]uint32{w, m}, 6656, 2, "as many steps each way: a round that does not stand out halves it"},
		{[]uint32{m}, 6528, 2, "a round that stands out, after one that did not"},
		{[]uint32{w}, 6656, 1, "a turn halves it"},
	} {
		recall(p, 64, round.causes...)
		assert.Equal(t, round.wmax, p.wmax, round.why)
		assert.Equal(t, round.gain, p.gain, round.why)
	}
	for range 20 {
		recall(p, 64, ghostWindow)
	}
	assert.Equal(t, 100.0, p.gain, "at most MaxSize/6,400")
	p.reset()
	assert.Equal(t, 1.0, p.gain, "reset forgets it")
	assert.Equal(t, 6400, p.wmax)

	small := newTinyLFU[int, int](6_400, func(k int) uint64 { return mix(uint64(k)) })
	for range 20 {
		recall(small, 64, ghostWindow)
	}
	assert.Equal(t, 1.0, small.gain, "ARC's steps in a cache of at most 6,400 entries")
	assert.Equal(t, 64+20*64, small.wmax)
	for range 200 {
		recall(small, 64, ghostWindow)
	}
	assert.Equal(t, 6_399, small.wmax, "at most the whole cache but one entry")
}

// A miss on a key the main part refused widens the window, one on a key it
// evicted narrows it; a key not in the ghost history, or recalled already,
// leaves it alone.
func TestWTinyLFUGhost(t *testing.T) {
	p := newTinyLFU[int, int](100, func(k int) uint64 { return mix(uint64(k)) })
	h := func(k int) uint64 { return mix(uint64(k)) }
	require.Equal(t, 1, p.wmax)
	p.bury(h(1), ghostWindow)
	p.bury(h(2), ghostWindow)
	p.bury(h(3), ghostMain)
	p.recall(h(1)) // 1 refused candidate and 1 victim left: a step of 1
	assert.Equal(t, 2, p.wmax)
	p.recall(h(1))
	p.recall(h(4))
	assert.Equal(t, 2, p.wmax, "recalled already, never buried")
	p.bury(h(5), ghostMain)
	p.bury(h(6), ghostMain)
	p.bury(h(7), ghostMain)
	p.recall(h(2)) // 4 victims, no refused candidate left: a step of 4
	assert.Equal(t, 6, p.wmax)
	p.recall(h(3))
	assert.Equal(t, 5, p.wmax)
	assert.Equal(t, int(protectShare*95), p.pmax, "the protected segment keeps its share of the rest")
	p.reset()
	p.recall(h(5))
	assert.Equal(t, 1, p.wmax, "reset forgets the history")
}

// While the window grows, the main part gives up its least recently used
// entries to make room, and the ghost history does not remember them: their
// recalls leave the window alone. While the window is short of its size by
// more than 1% of the cache, an entry of the main part used again joins it.
// Once the window holds its size, its refused candidates are remembered
// again, and a used entry of the probation is protected.
func TestWTinyLFUGrowth(t *testing.T) {
	var l list[int, int]
	l.pol = newTinyLFU[int, int](100, func(k int) uint64 { return mix(uint64(k)) })
	l.init(100)
	for k := range 100 {
		l.add(k, k, 0)
	}
	require.Equal(t, 1, l.pol.wmax)
	l.pol.resizeTo(50)
	for k := 100; k < 110; k++ {
		l.add(k, k, 0) // evicts 0 to 9, the probation's oldest
	}
	for k := range 10 {
		assert.False(t, l.lookup(k) > 0, "key %d evicted", k)
	}
	assert.Equal(t, [3]int{}, l.pol.ghosts, "nothing remembered")
	for k := range 10 {
		l.add(k, k, 0)
	}
	assert.Equal(t, 50, l.pol.wmax, "recalls of the keys evicted for the growth")
	at := func(k int) uint8 { i, _ := l.lookup(k).entry(); return l.pol.where[i] }
	require.Equal(t, uint8(probation), at(80))
	i, _ := l.lookup(80).entry()
	l.touch(i)
	assert.Equal(t, uint8(window), at(80), "used while the window grows")
	for k := 110; l.pol.count[window] < l.pol.wmax; k++ {
		l.add(k, k, 0)
	}
	l.add(1000, 1000, 0)
	assert.Equal(t, 1, l.pol.ghosts[ghostWindow], "the window's candidate refused")
	require.Equal(t, uint8(probation), at(90))
	i, _ = l.lookup(90).entry()
	l.touch(i)
	assert.Equal(t, uint8(protected), at(90), "used once the window is full")
	checkPolicy(t, &l)
}
