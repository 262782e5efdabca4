package memo

import (
	"cmp"
	"container/heap"
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// EstimateSizes makes the cache estimate, from its own traffic, the hit
// ratio it would have at other sizes; SizeAdvice reports the estimates.
//
// For a cache of MaxSize m, the sizes are m/2, m, 2m, 4m, 8m and unbounded.
// Up to m the estimate is exact: the cache notes whether each hit was in the
// more or the less recently used half of its entries. Above m it follows the
// keys the cache evicted: a miss would have been a hit at size s if fewer
// than s keys were used since the key's last call, which an LRU knows from
// the order of its evictions. It follows a sample of the keys, chosen by a
// hash of the key (spatial sampling: SHARDS, Waldspurger et al., FAST 2015),
// at most budget keys (32768 when budget is 0): with fewer distinct keys than
// that, every key is followed and the estimate is exact. A sharded cache
// gives each shard an equal share of the budget (at least 64 keys), but lets
// a shard follow more while the shards together follow no more than budget
// keys, so that this holds however the keys fall into shards. When the
// shards' keys come unevenly, the total may meanwhile exceed budget, by up to
// the sum of the shards' shares; a shard past its share gives the excess
// back on its next misses. Any budget is valid that is not negative,
// math.MaxInt included: the sample takes memory for the keys it follows, not
// for the budget. An Unbounded cache, which holds every key, is estimated
// exactly at 16, 64, 256 ... 4^10 entries.
//
// The cost: a byte per entry, and about 80 bytes per followed key (2.6 MB
// at the default budget); a miss hashes its key; a hit in the less recently
// used half of the entries moves a marker by one entry (for an Unbounded
// cache, one per size it crosses). Sizes below m/2 are not estimated, since
// each marker costs the hits that cross it; a cache shrunk to m/2 estimates
// m/4 in turn.
//
// The estimates are for one LRU of each size replaying the calls that used
// or stored an entry: calls that stored nothing (errors, SingleFlight) and
// expiry are not modelled, a Put counts as a call, and a sharded cache is
// modelled as shards of each size. Hits made by many goroutines at once reach the
// estimate as they reach the recency order (see Memoize's note on
// concurrency): a hit that comes while its processor's full buffer waits
// for the lock is counted in CacheInfo but not modelled. A negative budget is invalid, and
// EstimateSizes cannot be combined with MaxWeight, whose bound is not a
// number of entries.
func EstimateSizes(budget int) Option {
	return func(c *config) {
		if budget == 0 {
			budget = defaultBudget
		}
		c.EstimateSizes = budget
	}
}

// defaultBudget is the sample budget of EstimateSizes(0).
const defaultBudget = 32768

// SizeEstimate is the estimated hit ratio of the cache at one size.
type SizeEstimate struct {
	// Size is a number of entries; 0 stands for unbounded.
	Size int `json:"size"`
	// HitRatio is the estimated share of the calls that would have been
	// hits at Size.
	HitRatio float64 `json:"hit_ratio"`
}

// Advice is what SizeAdvice reports: how the cache would do at other sizes,
// and what caching has saved.
type Advice struct {
	// Sizes are the estimates of EstimateSizes, smallest size first, then
	// unbounded; empty without EstimateSizes.
	Sizes []SizeEstimate `json:"sizes"`
	// Calls is how many calls the estimates replay: those that hit an entry
	// or stored one, since the last Clear.
	Calls int `json:"calls"`
	// Saved is the number of executions the cache saved: its hits
	// (CacheInfo.Hits).
	Saved int `json:"saved"`
	// MeanExecTime is how long an execution takes on average, and TimeSaved
	// that times Saved: the time the cache saved its callers. Both are 0
	// without MeasureExecTime.
	MeanExecTime time.Duration `json:"mean_exec_time_ns"`
	TimeSaved    time.Duration `json:"time_saved_ns"`
}

// SizeAdvice returns the estimates of EstimateSizes and what the cache has
// saved, since the last Clear.
func (c *Cache[K, V]) SizeAdvice() Advice {
	ci := c.CacheInfo()
	a := Advice{Saved: ci.Hits}
	if ci.ExecTime > 0 && ci.Misses > 0 {
		a.MeanExecTime = ci.ExecTime / time.Duration(ci.Misses)
		a.TimeSaved = a.MeanExecTime * time.Duration(ci.Hits)
	}
	if c.shards[0].l.sz == nil {
		return a
	}
	var sizes []float64 // per size: entries, then estimated hits
	var hits []float64
	calls := 0.0
	c.lockAll()
	for _, s := range c.shards {
		s.l.flush() // the hits it has yet to count
		z := s.l.sz
		if sizes == nil {
			sizes, hits = make([]float64, len(z.sizes)), make([]float64, len(z.sizes))
		}
		h, m := z.counts()
		calls += h + m
		for i := range z.sizes {
			sizes[i] += z.sizes[i]
			hits[i] += z.estimate(i, h, m)
		}
	}
	c.unlockAll()
	a.Calls = int(min(calls, math.MaxInt32))
	for i := range sizes {
		e := SizeEstimate{}
		if !math.IsInf(sizes[i], 1) {
			e.Size = int(sizes[i])
		}
		if calls > 0 {
			e.HitRatio = hits[i] / calls
		}
		a.Sizes = append(a.Sizes, e)
	}
	return a
}

// sizer follows one list's recency order to estimate the hits an LRU of
// other sizes would have had (see EstimateSizes).
//
// Below the list's bound, the list is cut into segments at the sizes
// estimated (one, at half the bound, unless the list is unbounded): segment j
// holds the entries at positions bounds[j-1] to bounds[j]-1 (0 to
// bounds[0]-1 for the first), and the last segment every position from the
// last bound on. A hit in segment j would have been a hit at every size above
// bounds[j-1]. Each node knows its segment (seg), and each boundary the node
// just past it (first): a move to the front from segment j passes the node
// before each of the j boundaries above it across, and a removal passes the
// first node past each boundary below it back. A hit in the first segment,
// the common one, moves no boundary.
//
// Above the bound, the ghost follows a sample of the evicted keys.
type sizer[K comparable, V any] struct {
	sizes  []float64 // the sizes estimated, in entries: bounds, the list's bound, the ghost's sizes, +Inf
	bounds []int32   // the sizes below the list's bound, ascending
	first  []int32   // first[j]: the node at position bounds[j]; 0 while the list is not longer
	seg    []uint8   // seg[i]: the segment of node i
	n      int32     // nodes in the list
	hits   []uint64  // hits by segment
	misses uint64    // entries inserted
	ghost  *ghost[K] // nil for an unbounded list
}

// unboundedSizes are the sizes estimated for an Unbounded cache, as a whole.
var unboundedSizes = []int{16, 64, 256, 1 << 10, 1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20}

// newSizer returns the sizer of one of a cache's shards: one holding at
// most bound entries (0: unbounded), of shards of at least least entries, with
// a share of the sample's budget, hash as the sampling hash, and followed
// counting the keys the ghosts of all the cache's shards follow (nil: this
// shard's only).
func newSizer[K comparable, V any](bound, least, shards, budget int, hash func(K) uint64, followed *atomic.Int64) *sizer[K, V] {
	z := &sizer[K, V]{}
	if bound == 0 {
		for _, b := range unboundedSizes {
			z.bounds = append(z.bounds, int32(max(b/shards, 1)))
		}
	} else if least >= 2 {
		z.bounds = append(z.bounds, int32(bound/2))
	}
	for _, b := range z.bounds {
		z.sizes = append(z.sizes, float64(b))
	}
	if bound > 0 {
		z.sizes = append(z.sizes, float64(bound))
		z.ghost = newGhost(bound, max(budget/shards, 64), budget, hash, followed)
		for _, f := range ghostFactors {
			z.sizes = append(z.sizes, float64(f*bound))
		}
	}
	z.sizes = append(z.sizes, math.Inf(1))
	z.first = make([]int32, len(z.bounds))
	z.hits = make([]uint64, len(z.bounds)+1)
	return z
}

// init empties the sizer's view of the list, which now has room for n
// nodes, keeping the counts.
func (z *sizer[K, V]) init(n int) {
	z.seg = make([]uint8, n)
	clear(z.first)
	z.n = 0
}

// grow makes room for n nodes.
func (z *sizer[K, V]) grow(n int) {
	z.seg = extend(z.seg, n)
}

// reset forgets every count, for Clear.
func (z *sizer[K, V]) reset() {
	clear(z.hits)
	z.misses = 0
	if z.ghost != nil {
		z.ghost.reset()
	}
}

// pushed notes that node i, a new entry, was pushed to the front of l: the
// node before each boundary crosses it.
func (z *sizer[K, V]) pushed(l *list[K, V], i int32) {
	z.seg[i] = 0
	z.n++
	for j, b := range z.bounds {
		f := z.first[j]
		switch {
		case f != 0:
			f = l.nodes[f].prev
		case z.n == b+1:
			f = l.nodes[0].prev
		default:
			continue
		}
		z.first[j], z.seg[f] = f, uint8(j+1)
	}
}

// hit counts a hit on node i of l by the segment of its node, then moves
// it to the front.
func (z *sizer[K, V]) hit(l *list[K, V], i int32) {
	sg := z.seg[i]
	z.hits[sg]++
	if sg != 0 {
		z.front(l, i)
	}
	l.promote(0, i)
}

// front notes that node i, past the first segment, is about to move to the
// front of l: the node before each boundary above it crosses it.
func (z *sizer[K, V]) front(l *list[K, V], i int32) {
	for j := range int(z.seg[i]) {
		f := l.nodes[z.first[j]].prev
		z.first[j], z.seg[f] = f, uint8(j+1)
	}
	z.seg[i] = 0
}

// removing notes that node i is about to be unlinked from l: the node past
// each boundary below it crosses back.
func (z *sizer[K, V]) removing(l *list[K, V], i int32) {
	sg := int(z.seg[i])
	for j, f := range z.first {
		if j < sg {
			if f == i { // the node after i takes its place
				f = l.nodes[i].next
				z.first[j] = f
				if f != 0 {
					z.seg[f] = uint8(j + 1)
				}
			}
			continue
		}
		if f == 0 {
			break
		}
		next := l.nodes[f].next
		z.seg[f], z.first[j] = uint8(j), next
		if next != 0 {
			z.seg[next] = uint8(j + 1)
		}
	}
	z.n--
}

// missed notes a miss for k, which is about to be inserted.
func (z *sizer[K, V]) missed(k K) {
	z.misses++
	if z.ghost != nil {
		z.ghost.missed(k, z.n)
	}
}

// evicted notes that k was evicted to make room.
func (z *sizer[K, V]) evicted(k K) {
	if z.ghost != nil {
		z.ghost.evicted(k)
	}
}

// counts returns the hits and misses noted.
func (z *sizer[K, V]) counts() (hits, misses float64) {
	for _, h := range z.hits {
		hits += float64(h)
	}
	return hits, float64(z.misses)
}

// estimate returns the hits at sizes[i], given the hits and misses noted.
func (z *sizer[K, V]) estimate(i int, hits, misses float64) float64 {
	if i < len(z.bounds) {
		n := uint64(0)
		for _, h := range z.hits[:i+1] {
			n += h
		}
		return float64(n)
	}
	i -= len(z.bounds)
	if z.ghost == nil || i == 0 {
		return hits // unbounded, or the list's own size
	}
	return hits + misses*z.ghost.share(i-1)
}

// ghostFactors are the sizes above its bound a list estimates, as multiples
// of the bound.
var ghostFactors = []int{2, 4, 8}

// ghost follows the keys a list evicts, for the keys of a sample, to tell
// which of its misses an LRU of a size above its bound would have hit.
//
// An LRU evicts keys in the order of their last use. So when a key evicted
// at time t is called again, the keys used since its last call are the
// entries the list holds and the keys evicted after t and not called since:
// a larger LRU would have hit if their number is below its size. The ghost
// counts the followed keys evicted after t in a Fenwick tree indexed by
// eviction time, and scales the count by the inverse of the sampling rate.
//
// A key is followed when its hash is at most threshold. When more than
// budget keys are followed, the one of largest hash is dropped and threshold
// lowered below it (fixed-size SHARDS). In a sharded cache, budget is a
// shard's share of the whole budget, limit: a ghost follows more than its
// share while the ghosts of all the shards follow no more than limit keys in
// all, so that with fewer distinct keys than limit every key is followed,
// however unevenly they fall into shards. A ghost that finds limit exceeded
// drops keys until it is back to its share or the total to limit; the total
// stays within limit plus the sum of the shares (the shards over their share
// followed their keys while the total was within limit, and the others stop
// at their share).
type ghost[K comparable] struct {
	hash      func(K) uint64
	threshold uint64
	budget    int              // this ghost's share of limit
	limit     int              // the keys all the cache's ghosts may follow before each keeps to its share
	followed  *atomic.Int64    // the keys all the cache's ghosts follow
	limits    []float64        // per size above the bound: that size
	at        map[uint64]int64 // followed key -> when it was evicted, or held
	byHash    hashHeap         // the followed keys, largest hash first
	tree      fenwick          // 1 at the eviction time of each evicted followed key
	now       int64            // evictions of followed keys so far
	weight    float64          // the followed misses, each counting 1/rate
	hits      []float64        // per size above the bound, then unbounded: the weight of the followed misses a list of that size would have hit
	scratch   []evicted        // compact's buffer
}

// held is the time of a followed key that is in the list.
const held = -1

// newGhost returns the ghost of a list holding at most bound entries, with
// a share budget of limit, and followed counting the keys the ghosts of all
// the cache's shards follow (nil: this ghost's only).
func newGhost[K comparable](bound, budget, limit int, hash func(K) uint64, followed *atomic.Int64) *ghost[K] {
	if followed == nil {
		followed = new(atomic.Int64)
	}
	g := &ghost[K]{hash: hash, budget: budget, limit: limit, followed: followed}
	for _, f := range ghostFactors {
		g.limits = append(g.limits, float64(f*bound))
	}
	g.hits = make([]float64, len(g.limits)+1)
	g.reset()
	return g
}

func (g *ghost[K]) reset() {
	g.followed.Add(-int64(len(g.at)))
	g.threshold = math.MaxUint64
	g.at = make(map[uint64]int64)
	g.byHash = g.byHash[:0]
	g.tree.init(g.treeLen(0))
	g.now, g.weight = 0, 0
	clear(g.hits)
}

// share returns the share of the misses that a list of the i-th size above
// the bound would have hit (len(limits) for unbounded).
func (g *ghost[K]) share(i int) float64 {
	if g.weight == 0 {
		return 0
	}
	return g.hits[i] / g.weight
}

// missed notes a miss for k, which is about to be inserted into a list now
// holding n entries.
func (g *ghost[K]) missed(k K, n int32) {
	h := g.hash(k)
	if h > g.threshold {
		g.shrink()
		return
	}
	scale := math.Exp2(64) / (float64(g.threshold) + 1)
	g.weight += scale
	t, seen := g.at[h]
	switch {
	case !seen:
		heap.Push(&g.byHash, h)
		g.followed.Add(1)
	case t != held: // evicted, and not called since: its distance decides
		distance := float64(n) + float64(g.tree.count(t+1, g.now))*scale
		for j, limit := range g.limits {
			if distance < limit {
				g.hits[j] += scale
			}
		}
		g.tree.add(t, -1)
		fallthrough
	default: // seen before: an unbounded cache holds it
		g.hits[len(g.limits)] += scale
	}
	g.at[h] = held
	g.shrink()
}

// shrink drops the followed keys of largest hash while the ghost follows
// more than its share of the budget and all the cache's ghosts more than
// limit, lowering threshold below each.
func (g *ghost[K]) shrink() {
	for len(g.at) > g.budget && g.followed.Load() > int64(g.limit) {
		top := heap.Pop(&g.byHash).(uint64)
		if t := g.at[top]; t != held {
			g.tree.add(t, -1)
		}
		delete(g.at, top)
		g.followed.Add(-1)
		g.threshold = top - 1
	}
}

// evicted notes that the list evicted k to make room.
func (g *ghost[K]) evicted(k K) {
	h := g.hash(k)
	if h > g.threshold {
		return
	}
	if _, ok := g.at[h]; !ok {
		return
	}
	if g.now == g.tree.len() {
		g.compact()
	}
	g.at[h] = g.now
	g.tree.add(g.now, 1)
	g.now++
}

// compact renumbers the eviction times 0, 1, 2... in their order, when the
// clock reaches the end of the tree. Its buffers are reused, so that calls
// allocate nothing in the long run.
func (g *ghost[K]) compact() {
	g.scratch = g.scratch[:0]
	for h, t := range g.at {
		if t != held {
			g.scratch = append(g.scratch, evicted{h, t})
		}
	}
	slices.SortFunc(g.scratch, func(a, b evicted) int { return cmp.Compare(a.t, b.t) })
	g.tree.init(g.treeLen(len(g.scratch)))
	for i, e := range g.scratch {
		g.at[e.h] = int64(i)
		g.tree.add(int64(i), 1)
	}
	g.now = int64(len(g.scratch))
}

// treeLen returns how many eviction times the tree is to have room for,
// with n evicted keys followed: 4 per key of the budget, or of
// defaultBudget if the budget is larger, or 4 per key followed if more keys
// are, so that a large budget takes memory only as keys are followed, and a
// compaction leaves room for at least 3 times as many evictions as it had to
// renumber.
func (g *ghost[K]) treeLen(n int) int {
	return 4 * max(min(g.budget, defaultBudget), n)
}

// evicted is a followed key's hash and the time it was evicted.
type evicted struct {
	h uint64
	t int64
}

// fenwick is a Fenwick tree of counts by time.
type fenwick struct{ sum []int32 }

// init empties the tree and sizes it for n times, reusing its memory when it
// is large enough.
func (f *fenwick) init(n int) {
	if cap(f.sum) >= n+1 {
		f.sum = f.sum[:n+1]
		clear(f.sum)
		return
	}
	f.sum = make([]int32, n+1)
}

func (f *fenwick) len() int64 { return int64(len(f.sum) - 1) }

// add adds d at time t.
func (f *fenwick) add(t int64, d int32) {
	for i := t + 1; i < int64(len(f.sum)); i += i & -i {
		f.sum[i] += d
	}
}

// prefix returns the total at times before t.
func (f *fenwick) prefix(t int64) int64 {
	var n int64
	for i := t; i > 0; i -= i & -i {
		n += int64(f.sum[i])
	}
	return n
}

// count returns the total at times from a to b-1.
func (f *fenwick) count(a, b int64) int64 { return f.prefix(b) - f.prefix(a) }

// hashHeap is a max-heap of hashes.
type hashHeap []uint64

func (h hashHeap) Len() int           { return len(h) }
func (h hashHeap) Less(i, j int) bool { return h[i] > h[j] }
func (h hashHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *hashHeap) Push(x any)        { *h = append(*h, x.(uint64)) }
func (h *hashHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
