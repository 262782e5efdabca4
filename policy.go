package memo

import "math"

// WTinyLFU makes the cache choose what to evict by how often keys are used
// as well as how recently, instead of exact LRU: the W-TinyLFU policy
// (Einziger, Friedman and Manes, "TinyLFU: A Highly Efficient Cache Admission
// Policy", 2017), with the size of its recency window adapted by hill
// climbing (Einziger, Eytan, Friedman and Manes, "Adaptive Software Cache
// Management", 2018).
//
// A new entry enters a small LRU window. When the window overflows, its
// least recently used entry may enter the main part only by evicting the
// main part's least recently used one, and only if its key was used more
// often recently: a one-off key, a scan or a loop longer than the cache
// cannot push out the keys that keep coming back, as they do under LRU. How
// often a key was used is counted for every key, cached or not, in a
// frequency sketch of about 8 bytes per entry, halved periodically so that
// old popularity fades. The main part keeps its entries used twice in a
// protected segment (80% of it). The window's share of the cache starts at
// 1% and moves, every 10 x MaxSize calls (at least 4,096, at most 100,000),
// in whichever direction raised the hit ratio: toward LRU where recency wins
// (large windows), toward LFU where frequency does. Its steps lengthen while
// the hit ratio keeps rising, so that it reaches the large window a
// recency-friendly traffic wants in a few periods.
//
// It keeps more of what matters on skewed traffic, scans and loops (the
// table in docs/choosing.md compares it with LRU and otter on public
// traces); exact LRU, the default, is what Python's lru_cache users expect.
// Counting, single-flight, invalidation (Forget, Clear) and expiry are the
// same as with LRU; only the choice of the entry evicted for room changes. It
// needs a MaxSize, and cannot be combined with MaxWeight or EstimateSizes,
// which model an LRU.
func WTinyLFU() Option {
	return func(c *config) { c.WTinyLFU = true }
}

// The segments of a list under W-TinyLFU, each a circular list through its
// sentinel node: the sentinels are nodes 0, 1 and 2 of the list.
const (
	window    = 0
	probation = 1
	protected = 2
	segments  = 3
)

// The policy's settings: the climber's first step (a share of MaxSize), how
// much a step grows after a rise of the hit ratio and shrinks after a fall,
// its least and largest size (shares of MaxSize), how many calls a period
// lasts (climbPeriod x MaxSize, but at least climbMinCalls, which keep the
// noise of its hit ratio near 0.01, and at most climbMaxCalls, so that a
// large cache adapts in a trace's time), and the protected segment's share
// of the main part.
const (
	climbStep     = 0.0625
	climbGrow     = 1.5
	climbShrink   = 0.5
	climbMinStep  = 0.01
	climbMaxStep  = 0.25
	climbPeriod   = 10
	climbMinCalls = 4096
	climbMaxCalls = 100_000
	protectShare  = 0.8
)

// tinyLFU is the W-TinyLFU policy of one list (see WTinyLFU). It knows each
// node's segment and how many nodes each segment holds; the list calls it
// wherever a node enters, moves or leaves.
type tinyLFU[K comparable, V any] struct {
	hash        func(K) uint64
	where       []uint8 // per node: its segment
	count       [segments]int
	max         int // entries the list holds at most
	wmax, pmax  int // the most entries the window and the protected segment hold
	sketch      sketch
	hits, calls int     // since the climber's last step
	period      int     // calls between the climber's steps
	last        float64 // the hit ratio of the climber's last period
	step        float64 // how far the next step moves the window, in entries
	widen       bool    // whether the next step widens the window
}

func newTinyLFU[K comparable, V any](size int, hash func(K) uint64) *tinyLFU[K, V] {
	p := &tinyLFU[K, V]{hash: hash, max: size, period: min(max(climbPeriod*size, climbMinCalls), climbMaxCalls)}
	p.sketch.init(size)
	p.reset()
	return p
}

// init empties the policy's view of the list, which now has room for n
// nodes, keeping what it learnt.
func (p *tinyLFU[K, V]) init(n int) {
	p.where = make([]uint8, n)
	p.count = [segments]int{}
}

// reset forgets what the policy learnt: the sketch and the climber.
func (p *tinyLFU[K, V]) reset() {
	p.sketch.clear()
	p.hits, p.calls, p.last = 0, 0, 0
	p.step, p.widen = climbStep*float64(p.max), true
	p.resizeTo(max(1, p.max/100))
}

// grow makes room for n nodes.
func (p *tinyLFU[K, V]) grow(n int) {
	p.where = extend(p.where, n)
}

// hit counts a hit on node i and moves it: to the front of the window or of
// the protected segment, where an entry of the probation goes when used
// again.
func (p *tinyLFU[K, V]) hit(l *list[K, V], i int32) {
	p.sketch.add(p.hash(l.nodes[i].e.key))
	p.hits++
	p.front(l, i)
	p.tick(l)
}

// front moves node i as a use of its entry does.
func (p *tinyLFU[K, V]) front(l *list[K, V], i int32) {
	to := p.where[i]
	if to == probation {
		to = protected
	} else if l.nodes[to].next == i {
		return // already first in its segment
	}
	p.move(l, i, to)
	if to == protected {
		p.demote(l)
	}
}

// inserted links node i, a new entry for k, at the front of the window,
// counting the miss. The room was made first (victim).
func (p *tinyLFU[K, V]) inserted(l *list[K, V], i int32, k K) {
	p.sketch.add(p.hash(k))
	p.where[i] = window
	p.count[window]++
	l.linkFront(window, i)
	p.overflow(l)
	p.tick(l)
}

// victim returns the node to evict so that a new entry fits in the full
// list. If the window is full, its least recently used entry (the candidate)
// moves to the probation, and of it and the probation's least recently used
// entry, the one whose key was used less often goes (the candidate, on a
// tie). Otherwise the main part gives up its least recently used entry.
func (p *tinyLFU[K, V]) victim(l *list[K, V]) int32 {
	if p.count[window] >= p.wmax && p.count[window] > 0 {
		c := l.nodes[window].prev
		p.move(l, c, probation)
		v := l.nodes[probation].prev
		if v != c && p.sketch.freq(p.hash(l.nodes[c].e.key)) > p.sketch.freq(p.hash(l.nodes[v].e.key)) {
			return v
		}
		return c
	}
	for _, s := range []int32{probation, protected, window} {
		if p.count[s] > 0 {
			return l.nodes[s].prev
		}
	}
	panic("memo: victim of an empty list")
}

// removing notes that node i is about to be unlinked.
func (p *tinyLFU[K, V]) removing(i int32) {
	p.count[p.where[i]]--
}

// move makes node i the most recently used entry of segment to.
func (p *tinyLFU[K, V]) move(l *list[K, V], i int32, to uint8) {
	p.count[p.where[i]]--
	l.unlink(i)
	p.where[i] = to
	p.count[to]++
	l.linkFront(int32(to), i)
}

// overflow moves the window's least recently used entries to the probation
// while the window holds more than wmax.
func (p *tinyLFU[K, V]) overflow(l *list[K, V]) {
	for p.count[window] > p.wmax {
		p.move(l, l.nodes[window].prev, probation)
	}
}

// demote moves the protected segment's least recently used entries to the
// probation while it holds more than pmax.
func (p *tinyLFU[K, V]) demote(l *list[K, V]) {
	for p.count[protected] > p.pmax {
		p.move(l, l.nodes[protected].prev, probation)
	}
}

// tick counts a call, and at the end of every period moves the window one
// step. A period's hit ratio is compared with the last one's: a rise larger
// than the noise of a sample of that many calls keeps the direction and
// lengthens the step, so that a window far from where the traffic wants it
// gets there in a few periods; a fall larger than the noise turns back and
// halves the step; a change within the noise keeps going with the same
// step, so that the window keeps probing. The step never goes below 1% of
// the cache (nor 1 entry), so that the window follows traffic that changes.
func (p *tinyLFU[K, V]) tick(l *list[K, V]) {
	p.calls++
	if p.calls < p.period {
		return
	}
	ratio := float64(p.hits) / float64(p.calls)
	noise := math.Sqrt(2 * max(ratio*(1-ratio), 0.01) / float64(p.calls))
	p.hits, p.calls = 0, 0
	switch change := ratio - p.last; {
	case change > noise:
		p.step *= climbGrow
	case change < -noise:
		p.widen = !p.widen
		p.step *= climbShrink
	}
	p.last = ratio
	p.step = min(max(p.step, climbMinStep*float64(p.max), 1), climbMaxStep*float64(p.max))
	d := int(p.step)
	if !p.widen {
		d = -d
	}
	p.resizeTo(min(max(p.wmax+d, 1), p.max))
	p.overflow(l)
	p.demote(l)
}

// resizeTo gives the window w entries, and the protected segment its share
// of the rest.
func (p *tinyLFU[K, V]) resizeTo(w int) {
	p.wmax = w
	p.pmax = int(protectShare * float64(p.max-w))
}

// sketch is a count-min sketch of how often keys were used: 4-bit
// counters, 16 per entry, in blocks of one cache line. A key's 4 counters
// are in one block, one in each quarter of it, so that counting a use reads
// and writes one line; its count is the least of the 4 (fewer collisions
// than 1 or 2 counters; more would keep the counts of keys no longer used
// from fading). Every 10 x max additions, every counter is halved.
type sketch struct {
	blocks []sketchBlock
	mask   uint64 // len(blocks) - 1
	adds   int
	period int
}

// sketchBlock is one cache line of counters, 16 per word, in 4 quarters of
// 2 words.
type sketchBlock [8]uint64

func (s *sketch) init(max int) {
	n := 1
	for n*128 < 16*max {
		n <<= 1
	}
	s.blocks = make([]sketchBlock, n)
	s.mask = uint64(n - 1)
	s.period = 10 * max
}

func (s *sketch) clear() {
	clear(s.blocks)
	s.adds = 0
}

// counter returns the word and the shift of the nibble that holds, in
// block b, the counter of quarter q for the key of hash h (a well-mixed
// hash: see mixHash). The low bits of h choose the block, the high ones the
// counters.
func counter(b *sketchBlock, h uint64, q int) (*uint64, uint64) {
	c := h >> (40 + 6*q)
	return &b[(2*q+int(c>>4&1))&7], (c & 15) * 4
}

// add counts a use of the key of hash h.
func (s *sketch) add(h uint64) {
	b := &s.blocks[h&s.mask]
	for q := range 4 {
		w, sh := counter(b, h, q)
		if (*w>>sh)&15 != 15 {
			*w += 1 << sh
		}
	}
	s.adds++
	if s.adds >= s.period {
		for i := range s.blocks {
			for j := range s.blocks[i] {
				s.blocks[i][j] = (s.blocks[i][j] >> 1) & 0x7777777777777777
			}
		}
		s.adds /= 2
	}
}

// freq returns the count of the key of hash h.
func (s *sketch) freq(h uint64) int {
	b := &s.blocks[h&s.mask]
	n := uint64(15)
	for q := range 4 {
		w, sh := counter(b, h, q)
		n = min(n, (*w>>sh)&15)
	}
	return int(n)
}
