package memo

import (
	"math/bits"
	"sync/atomic"
	"unsafe"
)

// entry is one key of a list: its value, in node ref of the list, or a mark
// of the list's owner (see list).
//
// An entry holding a value never changes it: a new value for the key is a
// new entry. The key, the value and (in a timed entry) the expiry are
// written before ref becomes positive, so a hit that loads ref and finds it
// positive may read them without the list's lock. ref is written after the
// entry is published, once: a mark (negative) becomes a value (fill). The
// expiry is written after, by hits, only under ExpireAfterAccess, and only
// later (see list.fresh). An entry the list drops keeps its ref:
// a hit that found it in the index just before may still return its value,
// as it would have a moment earlier (its note then names a node that may
// hold another entry, which costs that entry's recency, not correctness).
type entry[K comparable, V any] struct {
	key K
	val V
	ref atomic.Int32 // > 0: the node holding the value; < 0: a mark
}

// timed is the entry of a list whose entries expire: an entry, which the
// index points to, followed by when its value stops being fresh. A list
// with expiries allocates every entry as a timed one (list.entry), so the
// expiry of any of its entries is found past it (list.at), and a list
// without them does not pay for the field.
type timed[K comparable, V any] struct {
	entry[K, V]
	at atomic.Int64
}

// setAt sets t's expiry before t holds a value readers can see (ref > 0):
// a plain store, ordered by the publication of ref, as setRef's.
func (t *timed[K, V]) setAt(at int64) { *(*int64)(unsafe.Pointer(&t.at)) = at }

// setRef sets the ref of e, which no other goroutine can see yet: a plain
// store (publishing e orders it), where ref.Store would cost a full
// barrier.
func (e *entry[K, V]) setRef(r int32) { *(*int32)(unsafe.Pointer(&e.ref)) = r }

// index maps a list's keys to their entries: a hash table that its list's
// lock holder changes and that hits search without the lock.
//
// The protocol, beside the shard's (shard.go) and the list's:
//   - tab points to the current table, an array of slots searched by linear
//     probing from a slot chosen by the key's hash. A slot holds an entry or
//     nil, and is read and written atomically. Only the lock holder writes
//     the current table; a table replaced by a bigger one (grow) or an empty
//     one (clear) is never written again, so a reader that loaded it before
//     the change finishes its search in a consistent, older table. (The
//     generations of the stripes keep such a search from counting a hit
//     after a Clear.)
//   - An entry is inserted by storing its pointer in the first empty slot of
//     its probe sequence. Removing one moves back over its slot the entries
//     after it that the hole would cut off from their first slot (del), so
//     no tombstones build up. A reader racing with a removal may thus miss
//     an entry that is present; a lookup that finds nothing without the
//     lock is repeated with it.
//   - The table is at most half full, so a search ends after a probe or two.
type index[K comparable, V any] struct {
	tab  atomic.Pointer[table[K, V]]
	hash func(K) uint64
	word bool // K is an 8-byte integer, which of hashes itself inline
	n    int  // entries held, marks included
}

// table is one array of an index's slots.
type table[K comparable, V any] struct {
	slots []atomic.Pointer[entry[K, V]]
	shift uint8 // 64 - log2(len(slots))
}

// minSlots is the size of an empty index's table.
const minSlots = 8

// newTable returns an empty table of n slots, a power of two.
func newTable[K comparable, V any](n int) *table[K, V] {
	return &table[K, V]{slots: make([]atomic.Pointer[entry[K, V]], n), shift: uint8(64 - bits.TrailingZeros(uint(n)))}
}

// home returns the first slot of the probe sequence of a key of hash h. The
// hash is multiplied again, so that keys of one shard, which a sharded cache
// chooses by the hash's top bits, spread over every slot.
func (t *table[K, V]) home(h uint64) uint64 { return (h * 0xD6E8FEB86659FD93) >> t.shift }

// init empties the index, choosing its hash if it has none.
func (x *index[K, V]) init() {
	if x.hash == nil {
		x.hash = shardHash[K]()
		x.word = wordKey[K]()
	}
	x.tab.Store(newTable[K, V](minSlots))
	x.n = 0
}

// of returns the hash of k: shardHash's, computed inline for 8-byte
// integers, whose hash is one multiplication, so that a hit on such a key
// makes no call to hash it.
func (x *index[K, V]) of(k K) uint64 {
	if x.word {
		return wordHash(k)
	}
	return x.hash(k)
}

// get returns k's entry, or nil. It takes no lock; see index for what a
// search racing with the lock holder may find.
func (x *index[K, V]) get(k K) *entry[K, V] {
	t := x.tab.Load()
	mask := uint64(len(t.slots) - 1)
	for i := t.home(x.of(k)); ; i = (i + 1) & mask {
		e := t.slots[i].Load()
		if e == nil || e.key == k {
			return e
		}
	}
}

// slot returns the slot of the current table holding e, which it must hold.
// The list's lock must be held.
func (x *index[K, V]) slot(e *entry[K, V]) (*table[K, V], uint64) {
	t := x.tab.Load()
	mask := uint64(len(t.slots) - 1)
	i := t.home(x.of(e.key))
	for t.slots[i].Load() != e {
		i = (i + 1) & mask
	}
	return t, i
}

// add inserts e, whose key has no entry. The list's lock must be held.
func (x *index[K, V]) add(e *entry[K, V]) {
	t := x.tab.Load()
	if 2*(x.n+1) > len(t.slots) {
		t = x.grow(t)
	}
	put(t, x.of(e.key), e)
	x.n++
}

// put stores e in the first empty slot of its probe sequence in t.
func put[K comparable, V any](t *table[K, V], h uint64, e *entry[K, V]) {
	mask := uint64(len(t.slots) - 1)
	i := t.home(h)
	for t.slots[i].Load() != nil {
		i = (i + 1) & mask
	}
	t.slots[i].Store(e)
}

// replace puts e in place of old, an entry of the same key. The list's lock
// must be held.
func (x *index[K, V]) replace(old, e *entry[K, V]) {
	t, i := x.slot(old)
	t.slots[i].Store(e)
}

// del removes e, which the index holds. The list's lock must be held.
func (x *index[K, V]) del(e *entry[K, V]) {
	t, hole := x.slot(e)
	mask := uint64(len(t.slots) - 1)
	// Move back, over the hole, each entry of the run after it that the
	// hole would cut off from its first slot: one whose first slot is not
	// between the hole and it. An entry moved is in both slots until its old
	// one is overwritten or, at the end, emptied, so a reader finds it in
	// one or the other unless a later move overwrites the slot it reaches.
	for i := (hole + 1) & mask; ; i = (i + 1) & mask {
		f := t.slots[i].Load()
		if f == nil {
			break
		}
		if home := t.home(x.of(f.key)); (i-home)&mask >= (i-hole)&mask {
			t.slots[hole].Store(f)
			hole = i
		}
	}
	t.slots[hole].Store(nil)
	x.n--
}

// grow publishes a table with twice the slots of t, holding its entries,
// and returns it.
func (x *index[K, V]) grow(t *table[K, V]) *table[K, V] {
	nt := newTable[K, V](2 * len(t.slots))
	for i := range t.slots {
		if e := t.slots[i].Load(); e != nil {
			put(nt, x.of(e.key), e)
		}
	}
	x.tab.Store(nt)
	return nt
}
