package memo

import "math"

// WTinyLFU makes the cache choose what to evict by how often keys are used
// as well as how recently, instead of exact LRU: the W-TinyLFU policy
// (Einziger, Friedman and Manes, "TinyLFU: A Highly Efficient Cache Admission
// Policy", 2017), with the size of its recency window adapted to the traffic
// from a history of recent evictions, as ARC adapts its parts (Megiddo and
// Modha, "ARC: A Self-Tuning, Low Overhead Replacement Cache", 2003).
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
// 1%. A ghost history remembers, for about MaxSize/2 recent evictions (2
// bytes per entry), each evicted key's fingerprint and why it went: refused
// by the main part as it left the window, or evicted from the main part for
// a candidate used more often. A miss on a key the main part refused shows
// that a larger window would have kept it, and widens the window; a miss on
// a key the main part evicted narrows it. So the window grows toward LRU
// where recency wins, and stays small where frequency does. After it grows,
// the window fills with new entries while the main part gives up its least
// recently used ones for room; the ghost history does not remember those (a
// recall of one would narrow the window again only because it grew), and
// while the window is short of its size by more than 1% of the cache, an
// entry of the main part used again joins the window, as under LRU, instead
// of staying in a main part that is shrinking. The window holds at least 1
// entry and at most all but 1: the main part keeps an entry even where
// recency wins, so that its evictions still show when frequency wins again.
// In a cache of more than 6,400 entries, the window's steps lengthen while
// it keeps moving one way, well beyond what chance would move it, so that it
// can cross the whole cache within about 6,400 misses found in the ghost
// history, and shorten again as soon as it stops.
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

// protectShare is the protected segment's share of the main part.
const protectShare = 0.8

// tinyLFU is the W-TinyLFU policy of one list (see WTinyLFU). It knows each
// node's segment and how many nodes each segment holds; the list calls it
// wherever a node enters, moves or leaves.
type tinyLFU[K comparable, V any] struct {
	hash       func(K) uint64
	where      []uint8 // per node: its segment
	count      [segments]int
	max        int // entries the list holds at most
	wmax, pmax int // the most entries the window and the protected segment hold
	sketch     sketch
	ghost      []uint32 // the ghost history: per slot, an evicted key's fingerprint and cause, or 0
	ghosts     [3]int   // per cause (ghostWindow, ghostMain): the slots that hold it
	gain       float64  // what the window's steps are multiplied by: 1 or more (see recall)
	recalls    int      // the recalls of the current round
	moved      float64  // the sum of the current round's steps (before the gain)
	spread     float64  // the sum of their squares
	trend      float64  // the sign of the last round's move if it stood out, else 0
}

func newTinyLFU[K comparable, V any](size int, hash func(K) uint64) *tinyLFU[K, V] {
	p := &tinyLFU[K, V]{hash: hash, max: size}
	p.sketch.init(size)
	// Half as many ghost slots as entries: a recall then says what a part
	// somewhat larger would have kept, rather than one twice as large.
	p.ghost = make([]uint32, max(1, size/2))
	p.reset()
	return p
}

// init empties the policy's view of the list, which now has room for n
// nodes, keeping what it learnt.
func (p *tinyLFU[K, V]) init(n int) {
	p.where = make([]uint8, n)
	p.count = [segments]int{}
}

// reset forgets what the policy learnt: the sketch, the ghost history and
// the window's steps.
func (p *tinyLFU[K, V]) reset() {
	p.sketch.clear()
	clear(p.ghost)
	p.ghosts = [3]int{}
	p.gain, p.recalls, p.moved, p.spread, p.trend = 1, 0, 0, 0, 0
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
	p.front(l, i)
}

// front moves node i as a use of its entry does: to the front of its
// segment, from the probation to the protected segment, or, while the
// window is growing, into the window.
func (p *tinyLFU[K, V]) front(l *list[K, V], i int32) {
	from := p.where[i]
	to := from
	if from != window && p.growing() {
		to = window
	} else if from == probation {
		to = protected
	}
	if to == from {
		l.promote(int32(to), i)
		return
	}
	p.move(l, i, to)
	if to == protected {
		p.demote(l)
	}
}

// inserted links node i, a new entry for k, at the front of the window,
// counting the miss and moving the window if the ghost remembers k. The
// room was made first (victim).
func (p *tinyLFU[K, V]) inserted(l *list[K, V], i int32, k K) {
	h := p.hash(k)
	p.sketch.add(h)
	p.where[i] = window
	p.count[window]++
	l.linkFront(window, i)
	p.recall(h)
	p.overflow(l)
	p.demote(l)
}

// victim returns the node to evict so that a new entry fits in the full
// list. If the window is full, its least recently used entry (the candidate)
// moves to the probation, and of it and the probation's least recently used
// entry, the one whose key was used less often goes (the candidate, on a
// tie); the ghost history remembers the key evicted, and why. Otherwise the
// window has room (it grew, or lost entries), and the main part gives up its
// least recently used entry, which the ghost history does not remember: the
// main part did not choose it over a candidate (see WTinyLFU).
func (p *tinyLFU[K, V]) victim(l *list[K, V]) int32 {
	if p.count[window] >= p.wmax && p.count[window] > 0 {
		c := l.nodes[window].prev
		p.move(l, c, probation)
		v := l.nodes[probation].prev
		hc := p.hash(l.nodes[c].e.key)
		if v != c {
			hv := p.hash(l.nodes[v].e.key)
			if p.sketch.freq(hc) > p.sketch.freq(hv) {
				p.bury(hv, ghostMain)
				return v
			}
		}
		p.bury(hc, ghostWindow)
		return c
	}
	for _, s := range []int32{probation, protected, window} {
		if p.count[s] > 0 {
			return l.nodes[s].prev
		}
	}
	panic("memo: victim of an empty list")
}

// growing reports whether the window holds fewer entries than its size by
// more than 1% of the cache: it grew, and is filling.
func (p *tinyLFU[K, V]) growing() bool { return p.count[window]+p.max/100 < p.wmax }

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

// The causes of an eviction the ghost history remembers, in a slot's low 2
// bits (0: an empty slot).
const (
	ghostWindow = 1 // a candidate from the window, refused by the main part
	ghostMain   = 2 // the main part's victim, for a candidate used more often
)

// slot returns the ghost history's slot for the key of hash h: a
// direct-mapped table, where a newer eviction replaces an older one, so that
// the history holds about as many evictions as the table has slots. The low
// 32 bits of h choose the slot (by multiplication, for a table of any
// length); the high ones are the fingerprint.
func (p *tinyLFU[K, V]) slot(h uint64) *uint32 {
	return &p.ghost[(h&0xffffffff)*uint64(len(p.ghost))>>32]
}

// bury remembers that the key of hash h was evicted, and why.
func (p *tinyLFU[K, V]) bury(h uint64, cause uint32) {
	s := p.slot(h)
	p.ghosts[*s&3]--
	*s = uint32(h>>32)&^3 | cause
	p.ghosts[cause]++
}

// recall moves the window if the key of hash h, missed, is in the ghost
// history, and forgets it there. A key the main part refused widens the
// window; one the main part evicted narrows it. Each step is 1 entry, or
// the ratio of the other cause's slots to this one's if larger, as ARC
// weighs its two ghost lists: a hit on the rarer cause moves the window
// further. The step is then multiplied by the gain. The window keeps
// between 1 entry and all but 1: a main part of no entries would evict
// nothing, and no recall could narrow the window again.
//
// The gain follows rounds of 64 recalls. A round's move stands out when it
// is more than 3 times the spread that steps of the same lengths in random
// directions would have (the root of the sum of their squares). After a
// round that stands out the same way as the round before, the gain doubles;
// after one that stands out when the round before did not, it stays; after
// any other round (one that does not stand out, or a turn), it halves, down
// to 1. The gain is at most MaxSize/6,400, so that a round of 1-entry steps
// moves the window by at most 1% of the cache and cannot overshoot far: in
// a cache of at most 6,400 entries the steps are ARC's. A large cache
// whose traffic wants a much larger or smaller window gets there in about a
// hundred rounds instead of tens of thousands of 1-entry steps, and where
// the window is where it should be, its steps stay as short as ARC's.
func (p *tinyLFU[K, V]) recall(h uint64) {
	s := p.slot(h)
	if *s == 0 || *s&^3 != uint32(h>>32)&^3 {
		return
	}
	cause := *s & 3
	p.ghosts[cause]--
	*s = 0
	w, m := float64(p.ghosts[ghostWindow]), float64(p.ghosts[ghostMain])
	step := max(1, m/max(w, 1))
	if cause == ghostMain {
		step = -max(1, w/max(m, 1))
	}
	p.resizeTo(min(max(p.wmax+int(p.gain*step), 1), max(1, p.max-1)))
	p.moved += step
	p.spread += step * step
	if p.recalls++; p.recalls < roundRecalls {
		return
	}
	trend := 0.0
	if p.moved*p.moved > 9*p.spread {
		trend = math.Copysign(1, p.moved)
	}
	switch {
	case trend != 0 && trend == p.trend:
		p.gain = min(2*p.gain, max(1, float64(p.max)/(100*roundRecalls)))
	case trend == 0 || p.trend != 0:
		p.gain = max(1, p.gain/2)
	}
	p.trend, p.recalls, p.moved, p.spread = trend, 0, 0, 0
}

// roundRecalls is the number of recalls in a round of the window's gain.
const roundRecalls = 64

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

// bump adds 1 to the counter at shift sh of word w, unless it is at 15,
// without a branch.
func bump(w *uint64, sh uint64) {
	n := (*w >> sh) & 15
	*w += ((n+1)>>4 ^ 1) << sh
}

// add counts a use of the key of hash h.
func (s *sketch) add(h uint64) {
	b := &s.blocks[h&s.mask]
	bump(counter(b, h, 0))
	bump(counter(b, h, 1))
	bump(counter(b, h, 2))
	bump(counter(b, h, 3))
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
