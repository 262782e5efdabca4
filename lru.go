package memo

import (
	"fmt"
	"iter"
	"math"
	"reflect"
	"sync"
	"unsafe"
)

// list is the unsynchronised LRU core shared by LRU and the memoized
// functions: an index from keys to entries (index.go), and the recency order
// of the entries. Its nodes live in one slice and link to each other by int32
// index: one allocation for the order instead of one per entry, and nothing
// inside it for the garbage collector to chase but the entries.
//
// nodes[0] is the sentinel: nodes[0].next is the most recently used entry and
// nodes[0].prev the least recently used, so linking never has to branch on an
// empty list. Freed slots are chained through next, starting at free. Under
// WTinyLFU (pol), nodes 0, 1 and 2 are the sentinels of the policy's window,
// probation and protected segments, and the policy chooses which entry an
// insertion evicts (policy.go).
//
// The list's owner guards it with a lock, which every method but read
// needs. A hit that read takes without the lock does not move its node: it
// notes the move in its processor's stripe (reads.go), and the lock holder
// makes the moves noted, in order, before anything reads or changes the
// order (flush). A hit made with the lock held (touch) flushes, then moves
// its node. Without concurrent hits, the order is then exactly what moving
// on every hit would give.
//
// The list's owner may also keep in the index keys the list does not hold,
// each with a mark: a negative ref of the owner's, which the list never
// reads (a shard marks the keys it is computing; see shard). Marks are not
// entries: len does not count them and eviction never meets them. Storing a
// marked key fills its mark's entry. They let one lookup serve both the list
// and its owner.
type list[K comparable, V any] struct {
	idx   index[K, V]
	nodes []node[K, V]
	free  int32
	max   int            // most entries held; 0 means no bound
	marks int            // how many entries of idx are marks
	exp   *expiries      // when entries expire, if they do (ttl.go)
	hits  *stripes       // the hits read noted, if the list is read without its lock (reads.go)
	wt    *weights       // the entries' weights, if bounded by weight (weight.go)
	sz    *sizer[K, V]   // follows the order for EstimateSizes (sizes.go)
	pol   *tinyLFU[K, V] // chooses the evictions under WTinyLFU (policy.go); nil for LRU
}

// ref is what an entry's ref holds for its key: ref(i) > 0 for a value in
// node i, or a negative mark of the owner's; lookup gives 0 for a key that
// has neither.
type ref int32

// entry returns the node of the entry r refers to, and whether r is one.
func (r ref) entry() (int32, bool) { return int32(r), r > 0 }

type node[K comparable, V any] struct {
	e          *entry[K, V] // nil for a free node or a sentinel
	prev, next int32
}

// maxEntries is the most entries int32 indices can address (slot 0 is the
// sentinel).
const maxEntries = math.MaxInt32 - 1

// init empties the list and sets its bound, keeping its expiry and weight
// settings. It leaves the stripes: their owner drains or resets them first.
func (l *list[K, V]) init(max int) {
	l.max = max
	l.idx.init()
	l.nodes = make([]node[K, V], l.sentinels(), l.sentinels()+min(max, 16))
	for i := range l.nodes {
		l.nodes[i].prev, l.nodes[i].next = int32(i), int32(i)
	}
	l.free = 0
	l.marks = 0
	if l.exp != nil {
		l.exp.init(cap(l.nodes))
	}
	if l.wt != nil {
		l.wt.init(cap(l.nodes))
	}
	if l.sz != nil {
		l.sz.init(cap(l.nodes))
	}
	if l.pol != nil {
		l.pol.init(cap(l.nodes))
	}
}

// sentinels returns how many sentinel nodes the list has: one, or one per
// segment under WTinyLFU.
func (l *list[K, V]) sentinels() int {
	if l.pol != nil {
		return segments
	}
	return 1
}

func (l *list[K, V]) len() int { return l.idx.n - l.marks }

// lookup returns what the list holds for k: an entry's node, a mark, or 0.
func (l *list[K, V]) lookup(k K) ref {
	if e := l.idx.get(k); e != nil {
		return ref(e.ref.Load())
	}
	return 0
}

// value returns the value in node i.
func (l *list[K, V]) value(i int32) V { return l.nodes[i].e.val }

// entry returns a new entry of k holding v, to expire at at if the list has
// expiries.
func (l *list[K, V]) entry(k K, v V, at int64) *entry[K, V] {
	if l.exp == nil {
		return &entry[K, V]{key: k, val: v}
	}
	t := &timed[K, V]{entry: entry[K, V]{key: k, val: v}}
	t.setAt(at)
	return &t.entry
}

// at returns when the value of e, an entry of the list, stops being fresh.
func (l *list[K, V]) at(e *entry[K, V]) int64 {
	if l.exp == nil {
		return math.MaxInt64
	}
	return (*timed[K, V])(unsafe.Pointer(e)).at.Load()
}

// mark records m < 0 for k, which the list does not hold, and returns the
// entry that holds it.
func (l *list[K, V]) mark(k K, m ref) *entry[K, V] {
	var zero V
	e := l.entry(k, zero, 0)
	e.setRef(int32(m))
	l.idx.add(e)
	l.marks++
	return e
}

// unmark drops k's mark.
func (l *list[K, V]) unmark(k K) {
	l.idx.del(l.idx.get(k))
	l.marks--
}

// fill replaces the mark that e holds with v, as add does, but without
// looking its key up in the list.
func (l *list[K, V]) fill(e *entry[K, V], v V, at int64) (old *entry[K, V], evicted bool) {
	e.val = v
	if l.exp != nil {
		(*timed[K, V])(unsafe.Pointer(e)).setAt(at)
	}
	old, evicted = l.insert(e, false) // counts the mark out of len while it makes room
	l.marks--
	return old, evicted
}

// touch makes node i the most recently used, for a hit made with the lock
// held.
func (l *list[K, V]) touch(i int32) {
	l.flush()
	l.apply([]int32{i})
}

// flush makes the moves noted by hits without the lock, oldest first. Every
// method that reads the order or unlinks a node calls it first.
func (l *list[K, V]) flush() {
	if l.hits != nil {
		for i := range l.hits.s {
			l.drain(&l.hits.s[i])
		}
	}
}

// apply makes the moves of hits on the nodes noted, in order, skipping
// nodes that hold no entry (a hit noted without the lock may name a node
// since emptied).
func (l *list[K, V]) apply(noted []int32) {
	for _, i := range noted {
		switch {
		case int(i) >= len(l.nodes) || l.nodes[i].e == nil:
		case l.pol != nil:
			l.pol.hit(l, i)
		case l.sz != nil:
			l.sz.hit(l, i)
		default:
			l.promote(0, i)
		}
	}
}

// promote moves node i to the front of the list of sentinel s, which holds
// it. The common case, a node already in front, costs one comparison.
func (l *list[K, V]) promote(s, i int32) {
	nodes := l.nodes
	root := &nodes[s]
	if root.next == i {
		return
	}
	// unlink and linkFront, fused: one load of the slice, fewer bounds checks.
	n := &nodes[i]
	nodes[n.prev].next = n.next
	nodes[n.next].prev = n.prev
	first := root.next
	n.prev, n.next = s, first
	nodes[first].prev = i
	root.next = i
}

func (l *list[K, V]) unlink(i int32) {
	n := &l.nodes[i]
	l.nodes[n.prev].next = n.next
	l.nodes[n.next].prev = n.prev
}

// linkFront links node i at the front of the list of sentinel s.
func (l *list[K, V]) linkFront(s, i int32) {
	first := l.nodes[s].next
	n := &l.nodes[i]
	n.prev, n.next = s, first
	l.nodes[first].prev = i
	l.nodes[s].next = i
}

// add stores v under k as the most recently used entry, expiring at at if
// the list has expiries, in place of any value or mark k had. When the list
// is full, the least recently used entry makes room and is returned. k must
// be equal to itself (see selfEqual).
func (l *list[K, V]) add(k K, v V, at int64) (old *entry[K, V], evicted bool) {
	e := l.idx.get(k)
	if e == nil {
		return l.insert(l.entry(k, v, at), true)
	}
	i, held := ref(e.ref.Load()).entry()
	if !held {
		return l.fill(e, v, at)
	}
	// A new entry: readers may be reading the old one's value.
	l.flush()
	ne := l.entry(k, v, at)
	ne.setRef(i)
	l.nodes[i].e = ne
	l.idx.replace(e, ne)
	switch {
	case l.pol != nil:
		l.pol.front(l, i)
	case l.sz != nil:
		l.sz.front(l, i)
		l.promote(0, i)
	default:
		l.promote(0, i)
	}
	if l.exp != nil {
		l.exp.unlink(i)
		l.exp.push(i, at)
	}
	return nil, false
}

// insert links e, the entry of a key that has no value, as the most
// recently used, and publishes it: into the index if add, else it is there
// already, as a mark (which the caller counts out).
func (l *list[K, V]) insert(e *entry[K, V], add bool) (old *entry[K, V], evicted bool) {
	l.flush()
	if l.sz != nil {
		l.sz.missed(e.key)
	}
	var i int32
	switch {
	case l.max > 0 && l.len() >= l.max:
		// Reuse the least recently used slot (the policy's victim) in
		// place: no allocation for the order in the steady state of a full
		// cache.
		i = l.nodes[0].prev
		if l.pol != nil {
			i = l.pol.victim(l)
		}
		old, evicted = l.nodes[i].e, true
		l.detach(i)
		if l.sz != nil {
			l.sz.evicted(old.key)
		}
	case l.free != 0:
		i = l.free
		l.free = l.nodes[i].next
	default:
		if len(l.nodes) == cap(l.nodes) {
			l.grow()
		}
		i = int32(len(l.nodes))
		l.nodes = l.nodes[:i+1]
	}
	l.nodes[i].e = e
	if add {
		e.setRef(i)
		l.idx.add(e)
	}
	switch {
	case l.pol != nil:
		l.pol.inserted(l, i, e.key)
	case l.sz != nil:
		l.linkFront(0, i)
		l.sz.pushed(l, i)
	default:
		l.linkFront(0, i)
	}
	if l.exp != nil {
		l.exp.push(i, l.at(e))
	}
	if !add {
		e.ref.Store(i) // last: readers may now read the value
	}
	return old, evicted
}

// detach takes node i out of the index, the recency list and the expiry
// order.
func (l *list[K, V]) detach(i int32) {
	l.idx.del(l.nodes[i].e)
	if l.sz != nil {
		l.sz.removing(l, i)
	}
	if l.pol != nil {
		l.pol.removing(i)
	}
	l.unlink(i)
	if l.exp != nil {
		l.exp.unlink(i)
	}
	if l.wt != nil {
		l.wt.set(i, 0)
	}
}

// grow makes room for more nodes, doubling the slice but never past the
// bound, so a full cache carries no spare capacity.
func (l *list[K, V]) grow() {
	n := 2 * cap(l.nodes)
	if l.max > 0 {
		n = min(n, l.max+l.sentinels())
	}
	if n > maxEntries+1 {
		if cap(l.nodes) > maxEntries {
			panic("memo: more entries than one cache can index")
		}
		n = maxEntries + 1
	}
	nodes := make([]node[K, V], len(l.nodes), n)
	copy(nodes, l.nodes)
	l.nodes = nodes
	if l.exp != nil {
		l.exp.grow(n)
	}
	if l.wt != nil {
		l.wt.grow(n)
	}
	if l.sz != nil {
		l.sz.grow(n)
	}
	if l.pol != nil {
		l.pol.grow(n)
	}
}

// extend returns s lengthened with zero values to n elements, for the
// per-node slices kept beside the nodes when grow makes room for n.
func extend[T any](s []T, n int) []T { return append(s, make([]T, n-len(s))...) }

// remove deletes k and returns its value.
func (l *list[K, V]) remove(k K) (v V, ok bool) {
	i, ok := l.lookup(k).entry()
	if !ok {
		return v, false
	}
	return l.removeAt(i), true
}

// removeAt deletes node i and returns its value.
func (l *list[K, V]) removeAt(i int32) V {
	l.flush()
	v := l.nodes[i].e.val
	l.detach(i)
	// Free the slot so the list does not keep the entry alive.
	l.nodes[i] = node[K, V]{next: l.free}
	l.free = i
	return v
}

// removeOldest deletes the least recently used entry (of the window, under
// WTinyLFU, which neither LRU nor MaxWeight, its callers, use).
func (l *list[K, V]) removeOldest() (old *entry[K, V], ok bool) {
	l.flush()
	i := l.nodes[0].prev
	if i == 0 {
		return nil, false
	}
	old = l.nodes[i].e
	l.removeAt(i)
	return old, true
}

// all yields the entries from most to least recently used (under WTinyLFU,
// the window's, then the protected segment's, then the probation's).
func (l *list[K, V]) all() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		l.flush()
		for _, s := range l.order() {
			for i := l.nodes[s].next; i != s; i = l.nodes[i].next {
				if e := l.nodes[i].e; !yield(e.key, e.val) {
					return
				}
			}
		}
	}
}

// order returns the sentinels of the list's segments, in the order all
// walks them.
func (l *list[K, V]) order() []int32 {
	if l.pol != nil {
		return policyOrder
	}
	return lruOrder
}

// The orders of order, made once.
var (
	lruOrder    = []int32{0}
	policyOrder = []int32{window, protected, probation}
)

// appendKeys appends the keys of the list's entries and marks to ks, in no
// order, and returns the result.
func (l *list[K, V]) appendKeys(ks []K) []K {
	t := l.idx.tab.Load()
	for i := range t.slots {
		if e := t.slots[i].Load(); e != nil {
			ks = append(ks, e.key)
		}
	}
	return ks
}

// keys returns the keys in the order of all.
func (l *list[K, V]) keys() []K {
	ks := make([]K, 0, l.len())
	for k := range l.all() {
		ks = append(ks, k)
	}
	return ks
}

// LRU is a fixed-size map that, when full, drops the least recently used
// entry to make room for a new one. It is safe for concurrent use by multiple
// goroutines. The zero value is not usable: create one with NewLRU.
//
// Keys that are not equal to themselves, such as a float NaN or an interface
// holding one, are never stored: Add ignores them and Get reports them absent.
// A key holding a value == cannot compare, such as a slice in an interface,
// makes every method that takes a key panic with an error wrapping
// ErrNotComparable, before the lock is taken.
//
// For code ported from hashicorp/golang-lru/v2: the methods of the same name
// behave the same, with these deliberate differences. Keys and Values list
// entries from the most to the least recently used (golang-lru: the
// reverse). Remove returns the value removed, not only whether there was
// one. Clear is golang-lru's Purge. NewLRU panics on a size it cannot hold
// instead of returning an error. The eviction callback is called after the
// lock is released, so it may use the cache.
type LRU[K comparable, V any] struct {
	mu      sync.Mutex
	l       list[K, V]
	onEvict func(K, V)
	check   bool // K holds an interface, so == may panic; see selfEqual
}

// NewLRU returns an empty LRU that holds at most size entries. If onEvict is
// not nil, it is called with every entry that leaves the cache, whatever the
// reason: dropped to make room (Add, ContainsOrAdd, PeekOrAdd, Resize), or
// removed (Remove, RemoveOldest, Clear), as golang-lru calls its callback;
// it is called after the cache's lock is released, in the order the entries
// left. NewLRU panics if size is not positive.
func NewLRU[K comparable, V any](size int, onEvict func(key K, value V)) *LRU[K, V] {
	if size <= 0 || size > maxEntries {
		panic(fmt.Sprintf("memo: NewLRU size must be between 1 and %d, got %d", maxEntries, size))
	}
	c := &LRU[K, V]{onEvict: onEvict, check: mayPanicOnEqual(reflect.TypeFor[K]())}
	c.l.hits = newStripes()
	c.l.init(size)
	return c
}

// Get returns the value stored under k and marks it most recently used. A
// Get that finds its key takes no lock (see list.read).
func (c *LRU[K, V]) Get(k K) (v V, ok bool) {
	if !c.storable(k) {
		return v, false
	}
	if v, ok := c.l.read(&c.mu, k, 0); ok {
		return v, true
	}
	c.mu.Lock()
	i, ok := c.l.lookup(k).entry()
	if ok {
		c.l.touch(i)
		v = c.l.value(i)
	}
	c.mu.Unlock()
	return v, ok
}

// Peek returns the value stored under k without changing its recency.
func (c *LRU[K, V]) Peek(k K) (v V, ok bool) {
	if !c.storable(k) {
		return v, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.l.lookup(k).entry()
	if !ok {
		return v, false
	}
	return c.l.value(i), true
}

// Add stores v under k as the most recently used entry, replacing any value
// k had. It reports whether an entry was evicted to make room.
func (c *LRU[K, V]) Add(k K, v V) (evicted bool) {
	if !c.storable(k) {
		return false
	}
	c.mu.Lock()
	old, evicted := c.l.add(k, v, 0)
	c.mu.Unlock()
	if evicted && c.onEvict != nil {
		c.onEvict(old.key, old.val)
	}
	return evicted
}

// Remove deletes k and returns the value it had, if any.
func (c *LRU[K, V]) Remove(k K) (v V, ok bool) {
	if !c.storable(k) {
		return v, false
	}
	c.mu.Lock()
	v, ok = c.l.remove(k)
	c.mu.Unlock()
	if ok && c.onEvict != nil {
		c.onEvict(k, v)
	}
	return v, ok
}

// Contains reports whether k is in the cache, without changing its recency.
func (c *LRU[K, V]) Contains(k K) bool {
	_, ok := c.Peek(k)
	return ok
}

// ContainsOrAdd adds v under k unless k is in the cache, in one step. It
// reports whether k was there (then nothing changes, recency included), and
// whether adding evicted an entry.
func (c *LRU[K, V]) ContainsOrAdd(k K, v V) (ok, evicted bool) {
	_, ok, evicted = c.PeekOrAdd(k, v)
	return ok, evicted
}

// PeekOrAdd returns the value under k if there is one, without changing its
// recency; otherwise it adds v under k, in the same step, and reports
// whether that evicted an entry.
func (c *LRU[K, V]) PeekOrAdd(k K, v V) (previous V, ok, evicted bool) {
	if !c.storable(k) {
		return previous, false, false
	}
	c.mu.Lock()
	if i, held := c.l.lookup(k).entry(); held {
		previous = c.l.value(i)
		c.mu.Unlock()
		return previous, true, false
	}
	old, evicted := c.l.add(k, v, 0)
	c.mu.Unlock()
	if evicted && c.onEvict != nil {
		c.onEvict(old.key, old.val)
	}
	return previous, false, evicted
}

// GetOldest returns the least recently used entry, without changing its
// recency.
func (c *LRU[K, V]) GetOldest() (k K, v V, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.l.flush()
	if i := c.l.nodes[0].prev; i != 0 {
		e := c.l.nodes[i].e
		return e.key, e.val, true
	}
	return k, v, false
}

// RemoveOldest removes the least recently used entry and returns it.
func (c *LRU[K, V]) RemoveOldest() (k K, v V, ok bool) {
	c.mu.Lock()
	old, ok := c.l.removeOldest()
	c.mu.Unlock()
	if !ok {
		return k, v, false
	}
	if c.onEvict != nil {
		c.onEvict(old.key, old.val)
	}
	return old.key, old.val, true
}

// Values returns the values from the most to the least recently used.
func (c *LRU[K, V]) Values() []V {
	c.mu.Lock()
	defer c.mu.Unlock()
	vs := make([]V, 0, c.l.len())
	for _, v := range c.l.all() {
		vs = append(vs, v)
	}
	return vs
}

// Len returns the number of entries in the cache.
func (c *LRU[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.l.len()
}

// Cap returns the most entries the cache holds.
func (c *LRU[K, V]) Cap() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.l.max
}

// Keys returns the keys from most to least recently used.
func (c *LRU[K, V]) Keys() []K {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.l.keys()
}

// Clear deletes every entry and releases the memory they held, passing each
// to the eviction callback, from the most to the least recently used.
func (c *LRU[K, V]) Clear() {
	c.mu.Lock()
	var gone []*entry[K, V]
	if c.onEvict != nil {
		c.l.flush()
		for i := c.l.nodes[0].next; i != 0; i = c.l.nodes[i].next {
			gone = append(gone, c.l.nodes[i].e)
		}
	}
	c.l.hits.reset()
	c.l.init(c.l.max)
	c.mu.Unlock()
	for _, e := range gone {
		c.onEvict(e.key, e.val)
	}
}

// Resize changes the most entries the cache holds, evicting the least
// recently used entries that no longer fit, and returns how many it evicted.
// Resize panics if size is not positive.
func (c *LRU[K, V]) Resize(size int) (evicted int) {
	if size <= 0 || size > maxEntries {
		panic(fmt.Sprintf("memo: Resize size must be between 1 and %d, got %d", maxEntries, size))
	}
	c.mu.Lock()
	var gone []*entry[K, V]
	for c.l.len() > size {
		old, _ := c.l.removeOldest()
		gone = append(gone, old)
	}
	c.l.max = size
	c.mu.Unlock()
	if c.onEvict != nil {
		for _, e := range gone {
			c.onEvict(e.key, e.val)
		}
	}
	return len(gone)
}

// storable reports whether k can be a map key of this cache: false for keys
// not equal to themselves. It panics, before any lock is taken, with a memo
// error when k holds a value that cannot be compared at all.
func (c *LRU[K, V]) storable(k K) bool {
	if c.check {
		ok, err := selfEqual(k)
		if err != nil {
			panic(err)
		}
		return ok
	}
	return k == k
}
