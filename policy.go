package memo

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
// 1%. A ghost history remembers, for about MaxSize recent evictions (4 to 8
// bytes per entry), each evicted key's fingerprint and why it went: refused
// by the main part as it left the window, or evicted from the main part. A
// miss on a key the main part refused shows that a larger window would have
// kept it, and widens the window; a miss on a key the main part evicted
// narrows it. So the window grows toward LRU where recency wins, and stays
// small where frequency does.
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
	ghostMask  uint64   // len(ghost) - 1
	ghosts     [3]int   // per cause (ghostWindow, ghostMain): the slots that hold it
}

func newTinyLFU[K comparable, V any](size int, hash func(K) uint64) *tinyLFU[K, V] {
	p := &tinyLFU[K, V]{hash: hash, max: size}
	p.sketch.init(size)
	n := 1 // the ghost's slots: the least power of 2 >= size
	for n < size {
		n <<= 1
	}
	p.ghost = make([]uint32, n)
	p.ghostMask = uint64(n - 1)
	p.reset()
	return p
}

// init empties the policy's view of the list, which now has room for n
// nodes, keeping what it learnt.
func (p *tinyLFU[K, V]) init(n int) {
	p.where = make([]uint8, n)
	p.count = [segments]int{}
}

// reset forgets what the policy learnt: the sketch and the ghost history.
func (p *tinyLFU[K, V]) reset() {
	p.sketch.clear()
	clear(p.ghost)
	p.ghosts = [3]int{}
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
// tie). Otherwise the main part gives up its least recently used entry. The
// ghost history remembers the key evicted, and why.
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
			v := l.nodes[s].prev
			p.bury(p.hash(l.nodes[v].e.key), ghostMain)
			return v
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

// The causes of an eviction the ghost history remembers, in a slot's low 2
// bits (0: an empty slot).
const (
	ghostWindow = 1 // a candidate from the window, refused by the main part
	ghostMain   = 2 // the main part's victim
)

// bury remembers that the key of hash h was evicted, and why, in the slot
// its hash chooses: a direct-mapped table, where a newer eviction replaces
// an older one, so that the history holds about as many evictions as the
// table has slots.
func (p *tinyLFU[K, V]) bury(h uint64, cause uint32) {
	s := &p.ghost[(h>>8)&p.ghostMask]
	p.ghosts[*s&3]--
	*s = uint32(h>>32)&^3 | cause
	p.ghosts[cause]++
}

// recall moves the window if the key of hash h, missed, is in the ghost
// history, and forgets it there. A key the main part refused widens the
// window; one the main part evicted narrows it. Each step is 1 entry, or
// the ratio of the other cause's slots to this one's if larger, as ARC
// weighs its two ghost lists: a hit on the rarer cause moves the window
// further.
func (p *tinyLFU[K, V]) recall(h uint64) {
	s := &p.ghost[(h>>8)&p.ghostMask]
	if *s == 0 || *s&^3 != uint32(h>>32)&^3 {
		return
	}
	cause := *s & 3
	p.ghosts[cause]--
	*s = 0
	w, m := float64(p.ghosts[ghostWindow]), float64(p.ghosts[ghostMain])
	if cause == ghostWindow {
		p.resizeTo(min(p.wmax+int(max(1, m/max(w, 1))), p.max))
	} else {
		p.resizeTo(max(p.wmax-int(max(1, w/max(m, 1))), 1))
	}
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
