package memo

import (
	"math/bits"
	"runtime"
	"sync/atomic"
	"unsafe"
)

// ConcurrentReads lets hits read without taking the cache's lock, so that
// goroutines reading the same cache on several cores do not queue behind
// one another: a hit finds its entry in an index that readers search without
// locking, and notes the use of the entry in a buffer that its goroutine
// mostly has to itself; whoever holds the lock next applies the notes to the
// recency order. Misses, and every change to the entries and their order,
// still take the lock.
//
// Hits, misses and every other counter stay exact, and so do Forget, Put and
// Clear: once one returns, no call made after it gets a value it removed or
// replaced. The
// recency order becomes approximate: the hits of different goroutines are
// applied one buffer at a time, not in the order they happened, and the
// moves of hits that come while a full buffer waits for the lock are dropped
// (the hits themselves are counted). Without the option, the order is
// exactly LRU's.
//
// The price: a new entry allocates one small object (the index's copy of its
// key and value), the index more than doubles the memory an entry takes, and
// each shard keeps 2 KiB of buffers per core. A hit from one goroutine, and
// a miss, cost more than without the option; the README gives the figures.
//
// An entry past its expiry is never read without the lock: the call takes
// the lock and goes on as without the option (a stale value, a refresh, a
// new execution). The option cannot be combined with WTinyLFU or
// EstimateSizes, which need every hit in order. With MaxSize 0 (caching off)
// or SingleFlight, it does nothing.
func ConcurrentReads() Option {
	return func(c *config) { c.ConcurrentReads = true }
}

// readIndex is the part of a list that hits read without the list's lock
// (see ConcurrentReads). The list's lock holder changes it; any goroutine
// reads it.
//
// The protocol, beside the shard's (shard.go):
//   - table points to a table of chains; a chain is a linked list of
//     readEntry, each immutable once published. The lock holder never changes
//     an entry another goroutine may see: it publishes a new chain (copying
//     the entries before the one it removes or replaces) with one atomic
//     store, and grows the table (rehash) by building a new one and storing
//     its pointer. A reader loads the table, then a chain, and follows it: it
//     sees the chain before or after a change, never a partial one, and the
//     atomic loads order its reads after the writes that made the entries.
//     A reader reads the table as it was when it loaded it: it may return an
//     entry removed since, by a removal that began after the read did, and
//     a reader that finds nothing takes the lock and looks again there. A
//     table replaced by a bigger one is never changed again.
//   - held[i] says whether node i of the list holds an entry of the index;
//     only the lock holder reads or writes it, and the fields other than
//     table, salt and the stripes.
//   - A hit takes a ticket in its goroutine's stripe (taken), and, if the
//     ticket is within the stripe, notes its entry's node there. The lock
//     holder applies a stripe's notes in ticket order, to the nodes still
//     held, and adds its tickets to counted, then zeroes them (drain): every
//     list operation that reads or changes the order drains every stripe
//     first (list.flush), and the hit that takes a stripe's last slot, or
//     every stripeLen-th ticket past it, drains that stripe itself if the
//     lock is free. A ticket taken as a drain zeroes the count may be noted
//     after it: the next drain applies that note, or another ticket's
//     overwrites it. Either way the recency order stays a valid order of the
//     nodes held, and every hit is counted once.
type readIndex[K comparable, V any] struct {
	table   atomic.Pointer[readTable[K, V]]
	hash    func(K) uint64
	shift   uint8         // 64 - log2(len(stripes))
	salt    atomic.Uint64 // mixed into the choice of stripes; changed when two goroutines meet in one
	stripes []readStripe
	held    []bool // per node of the list: whether it holds an entry of the index
	counted uint64 // the tickets drained since the counters were last reset
}

// A readStripe holds the hits of the goroutines that map to it: a ticket
// count and the nodes of the first stripeLen tickets' entries. It is 8 cache
// lines long, so that stripes do not share lines.
type readStripe struct {
	taken atomic.Uint64
	noted [stripeLen]atomic.Int32
}

// stripeLen is how many hits a stripe notes between drains.
const stripeLen = 126

// readTable is one version of the index's hash table.
type readTable[K comparable, V any] struct {
	chains []atomic.Pointer[readEntry[K, V]]
	n      int // entries
}

// readEntry is the index's copy of an entry of the list, in node node, fresh
// until at (as the list's expiries say; math.MaxInt64 if it never expires).
type readEntry[K comparable, V any] struct {
	key  K
	val  V
	at   int64
	node int32
	next *readEntry[K, V]
}

// newReadIndex returns an index whose keys are hashed with hash, to be
// emptied by its list's init.
func newReadIndex[K comparable, V any](hash func(K) uint64) *readIndex[K, V] {
	n := 4 * runtime.GOMAXPROCS(0)
	n = 1 << bits.Len(uint(n-1)) // a power of two: a stripe is chosen by a product's top bits
	return &readIndex[K, V]{
		hash:    hash,
		shift:   uint8(64 - bits.TrailingZeros(uint(n))),
		stripes: make([]readStripe, n),
	}
}

// init empties the index, for an emptied list that has room for n nodes.
func (x *readIndex[K, V]) init(n int) {
	x.table.Store(&readTable[K, V]{chains: make([]atomic.Pointer[readEntry[K, V]], 16)})
	x.held = make([]bool, n)
}

// grow makes room for n nodes.
func (x *readIndex[K, V]) grow(n int) {
	x.held = extend(x.held, n)
}

// chain returns the chain of t that holds k's entry, if any: chosen by the
// low bits of the hash folded onto itself, so that they depend on its high
// bits too (shardHash multiplies integers, whose low bits alone would map
// keys that are multiples of 2^n to few chains).
func (x *readIndex[K, V]) chain(t *readTable[K, V], k K) *atomic.Pointer[readEntry[K, V]] {
	h := x.hash(k)
	return &t.chains[(h^h>>32)&uint64(len(t.chains)-1)]
}

// get returns the entry of k, or nil. It takes no lock.
func (x *readIndex[K, V]) get(k K) *readEntry[K, V] {
	for e := x.chain(x.table.Load(), k).Load(); e != nil; e = e.next {
		if e.key == k {
			return e
		}
	}
	return nil
}

// stripe returns the calling goroutine's stripe, chosen by where its stack
// is and by salt, which it returns too: a goroutine keeps to one stripe
// (unless its stack moves or salt changes), and goroutines running at once
// mostly use different ones. Goroutine stacks are at least 2 KiB apart,
// which the shift by 11 keeps.
func (x *readIndex[K, V]) stripe() (*readStripe, uint64) {
	var here byte
	a := uint64(uintptr(unsafe.Pointer(&here))) >> 11
	salt := x.salt.Load()
	// An odd multiplier of its own for each salt: a sum would keep every
	// two goroutines' stripes as far apart as before.
	return &x.stripes[(a*0x9E3779B97F4A7C15*(2*salt+1))>>x.shift], salt
}

// hit counts a hit on e and notes it in the calling goroutine's stripe, if
// the stripe has room. It returns the stripe if its notes are due to be
// applied, else nil. It takes no lock.
//
// A ticket is taken by compare-and-swap, which fails when another goroutine
// took one in the same stripe at the same moment: goroutines running at once
// share the stripe, and its lines go back and forth between their cores on
// every hit. The hit then changes salt (once for all the goroutines that
// saw the same salt fail), which moves every goroutine to another stripe,
// most likely apart.
func (x *readIndex[K, V]) hit(e *readEntry[K, V]) *readStripe {
	st, salt := x.stripe()
	t := st.taken.Load()
	if !st.taken.CompareAndSwap(t, t+1) {
		x.salt.CompareAndSwap(salt, salt+1)
		t = st.taken.Add(1) - 1
	}
	if t < stripeLen {
		st.noted[t].Store(e.node)
	}
	if t%stripeLen == stripeLen-1 {
		return st
	}
	return nil
}

// drain applies the moves noted in st, in ticket order, and counts its
// tickets as hits. The list's lock must be held.
func (x *readIndex[K, V]) drain(l *list[K, V], st *readStripe) {
	if st.taken.Load() == 0 {
		return // not written, so that an idle stripe's line is not taken from its cores
	}
	n := st.taken.Swap(0)
	x.counted += n
	for i := range min(n, stripeLen) {
		// A note taken before a Clear may name a node the emptied list
		// has no room for yet.
		if j := st.noted[i].Load(); int(j) < len(x.held) && x.held[j] {
			l.promote(j)
		}
	}
}

// drainAll drains every stripe. The list's lock must be held.
func (x *readIndex[K, V]) drainAll(l *list[K, V]) {
	for i := range x.stripes {
		x.drain(l, &x.stripes[i])
	}
}

// hits returns the hits counted since the counters were last reset, drained
// or not. The list's lock must be held.
func (x *readIndex[K, V]) hits() uint64 {
	n := x.counted
	for i := range x.stripes {
		n += x.stripes[i].taken.Load()
	}
	return n
}

// resetHits zeroes the hits counted. The list's lock must be held, and the
// stripes drained.
func (x *readIndex[K, V]) resetHits() {
	x.counted = 0
}

// put makes v, in node i and fresh until at, the entry of k. The list's
// lock must be held.
func (x *readIndex[K, V]) put(k K, v V, i int32, at int64) {
	t := x.table.Load()
	c := x.chain(t, k)
	rest, found := without(c.Load(), k)
	e := &readEntry[K, V]{key: k, val: v, at: at, node: i, next: rest}
	c.Store(e)
	x.held[i] = true
	if !found {
		t.n++
		if 2*t.n > len(t.chains) {
			x.rehash(t)
		}
	}
}

// del removes the entry of k, held in node i. The list's lock must be held.
func (x *readIndex[K, V]) del(k K, i int32) {
	x.held[i] = false
	t := x.table.Load()
	c := x.chain(t, k)
	if rest, found := without(c.Load(), k); found {
		c.Store(rest)
		t.n--
	}
}

// without returns the chain from e without k's entry, copying the entries
// before it, and whether there was one.
func without[K comparable, V any](e *readEntry[K, V], k K) (*readEntry[K, V], bool) {
	if e == nil {
		return nil, false
	}
	if e.key == k {
		return e.next, true
	}
	rest, found := without(e.next, k)
	if !found {
		return e, false
	}
	c := *e
	c.next = rest
	return &c, true
}

// rehash publishes a table with 4 times the chains, holding copies of t's
// entries (t's own stay as they are for the readers still in it).
func (x *readIndex[K, V]) rehash(t *readTable[K, V]) {
	nt := &readTable[K, V]{chains: make([]atomic.Pointer[readEntry[K, V]], 4*len(t.chains)), n: t.n}
	for i := range t.chains {
		for e := t.chains[i].Load(); e != nil; e = e.next {
			c := x.chain(nt, e.key)
			ne := *e
			ne.next = c.Load()
			c.Store(&ne)
		}
	}
	x.table.Store(nt)
}
