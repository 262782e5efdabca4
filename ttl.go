package memo

import (
	"context"
	"math"
	"math/rand/v2"
	"unsafe"
)

// expiries records when each entry of a list expires. The entries are kept
// in a binary min-heap on their expiry, so the next one to expire is always
// at the root, whatever order they were stored in: results of concurrent
// executions arrive in any order, a clock given with Clock may step back,
// and the soonest expiry must still be found first. Storing the newest entry
// costs one comparison in the common case (its expiry is the latest);
// removing an entry costs a path of the heap.
type expiries struct {
	at     []int64 // parallel to list.nodes: when each entry expires
	slot   []int32 // parallel to list.nodes: where each entry is in heap
	heap   []int32 // node indices, heap[0] the soonest to expire
	grace  int64   // how long past at an entry may still be served stale
	slide  int64   // ExpireAfterAccess: a hit moves its entry's expiry to now+slide
	ahead  int64   // RefreshAhead: a hit this close to the expiry refreshes (see fresh)
	jitter int64   // RefreshAhead's jitter
}

func (e *expiries) init(n int) {
	e.at = make([]int64, n)
	e.slot = make([]int32, n)
	e.heap = make([]int32, 0, n)
}

func (e *expiries) grow(n int) {
	e.at = extend(e.at, n)
	e.slot = extend(e.slot, n)
	heap := make([]int32, len(e.heap), n)
	copy(heap, e.heap)
	e.heap = heap
}

// push adds node i, which is in no heap yet, expiring at at.
func (e *expiries) push(i int32, at int64) {
	e.at[i] = at
	e.heap = append(e.heap, i)
	e.up(len(e.heap) - 1)
}

// unlink takes node i out of the heap.
func (e *expiries) unlink(i int32) {
	h := e.heap
	s, last := int(e.slot[i]), len(h)-1
	if s != last {
		h[s] = h[last]
		e.slot[h[s]] = int32(s)
	}
	e.heap = h[:last]
	if s != last && !e.up(s) {
		e.down(s)
	}
}

// up moves the entry at heap position s towards the root while it expires
// sooner than its parent, and reports whether it moved.
func (e *expiries) up(s int) bool {
	h, at := e.heap, e.at
	i := h[s]
	from := s
	for s > 0 {
		p := (s - 1) / 2
		if at[h[p]] <= at[i] {
			break
		}
		h[s] = h[p]
		e.slot[h[s]] = int32(s)
		s = p
	}
	h[s] = i
	e.slot[i] = int32(s)
	return s != from
}

// down moves the entry at heap position s away from the root while a child
// expires sooner.
func (e *expiries) down(s int) {
	h, at := e.heap, e.at
	i, n := h[s], len(h)
	for {
		c := 2*s + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && at[h[r]] < at[h[c]] {
			c = r
		}
		if at[i] <= at[h[c]] {
			break
		}
		h[s] = h[c]
		e.slot[h[s]] = int32(s)
		s = c
	}
	h[s] = i
	e.slot[i] = int32(s)
}

// servable reports whether an entry expiring at at can still be served at
// now, stale or not.
func (e *expiries) servable(at, now int64) bool { return now < addSat(at, e.grace) }

// purge drops every entry that can no longer be served at now, passing each
// to gone if it is not nil, and returns how many it dropped.
func (l *list[K, V]) purge(now int64, gone func(K, V)) (n int) {
	for e := l.exp; len(e.heap) > 0; n++ {
		i := e.heap[0]
		if e.servable(l.expiry(i), now) {
			if e.heap[0] != i {
				n-- // hits had moved i's expiry: it went down the heap
				continue
			}
			break
		}
		k := l.nodes[i].e.key
		v := l.removeAt(i)
		if gone != nil {
			gone(k, v)
		}
	}
	return n
}

// addSat returns a+b for b >= 0, or math.MaxInt64 where that overflows: an
// expiry too far away to represent never comes.
func addSat(a, b int64) int64 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxInt64
}

// stamp reads the clock once: now is nanoseconds since the cache was built
// (monotonic when the clock is), wall is Unix nanoseconds.
func (c *Cache[K, V]) stamp() (now, wall int64) {
	t := c.clock()
	return int64(t.Sub(c.base)), t.UnixNano()
}

// lifeOf returns v's life, as ExpireAfter's function tells it: the duration
// itself if positive, 0 for the cache's TTL or Window (and without
// ExpireAfter), -1 for not cached.
func (c *Cache[K, V]) lifeOf(v V) int64 {
	if c.expireAfter == nil {
		return 0
	}
	return max(int64(c.expireAfter(v)), -1)
}

// expiryAt returns when a value stored at now (wall on the wall clock)
// expires: life after now if life is positive (see ExpireAfter), else by TTL
// or Window, else never (math.MaxInt64); and no later than until, where
// until (the value's expiry in a shared store, on the wall clock) is
// positive.
func (c *Cache[K, V]) expiryAt(now, wall, until, life int64) int64 {
	at := int64(math.MaxInt64)
	switch w := int64(c.params.Window); {
	case life > 0:
		at = addSat(now, life)
	case w > 0:
		into := wall % w
		if into < 0 {
			into += w // windows before the epoch start at multiples of w too
		}
		at = addSat(now, w-into)
	case c.params.TTL > 0:
		at = addSat(now, int64(c.params.TTL))
	case c.params.ExpireAfterAccess > 0:
		at = addSat(now, int64(c.params.ExpireAfterAccess))
	}
	if until > 0 {
		if left := until - wall; left > 0 {
			at = min(at, addSat(now, left))
		} else {
			at = now // expired there already
		}
	}
	return at
}

// now reads the clock for a call, if anything expires: nanoseconds since
// the cache was built.
func (c *Cache[K, V]) now() int64 {
	if !c.timed {
		return 0
	}
	now, _ := c.stamp()
	return now
}

// expired answers, with s.mu held, a call whose key has a stale value, a
// value due for a refresh ahead of its expiry (see fresh), or a cached error; it then releases the lock and reports true. Otherwise it
// drops what has expired for k and leaves the call to join or start an
// execution; r is what s.l holds for k, and it returns what it holds
// after.
func (s *shard[K, V]) expired(ctx context.Context, k K, r ref, now int64, fn func(context.Context, K) (V, error)) (v V, after ref, answered bool, err error) {
	if i, ok := r.entry(); ok { // present but not fresh, or due for a refresh ahead
		e := s.l.exp
		if e.servable(s.l.expiry(i), now) {
			v = s.l.value(i)
			s.l.touch(i)
			s.st.hits++
			var cl *call[V]
			var fctx context.Context
			if _, running := s.refreshing[k]; !running {
				// While its stale entry may be served, the refresh counts
				// itself as a waiter, so that it is never abandoned; see
				// joinRefresh for after.
				cl = &call[V]{waiters: 1, refresh: true, self: true, gen: s.gen}
				fctx, cl.cancel = context.WithCancel(context.WithoutCancel(ctx))
				if s.refreshing == nil {
					s.refreshing = make(map[K]int32)
				}
				s.refreshing[k] = s.register(cl)
			}
			s.unlock()
			if cl != nil {
				go s.run(fctx, k, fn, cl, true, nil)
			}
			return v, r, true, nil
		}
		s.note(Expired, k, s.l.removeAt(i)) // a refresh still running is found in refreshing
		s.st.expirations++
		r = 0
	}
	if s.errs != nil {
		if j, ok := s.errs.lookup(k).entry(); ok {
			if now < s.errs.exp.at[j] {
				s.errs.touch(j)
				s.st.hits++
				err = s.errs.value(j)
				s.unlock()
				return v, r, true, err
			}
			s.errs.removeAt(j)
			s.st.expirations++
		}
	}
	return v, r, false, nil
}

// refreshOf returns the execution refreshing k's stale entry, if one runs.
func (s *shard[K, V]) refreshOf(k K) (int32, bool) {
	if len(s.refreshing) == 0 {
		return 0, false
	}
	f, ok := s.refreshing[k]
	return f, ok
}

// releaseRefresh releases the refresh of k in progress, if one runs (see
// release): its result will not be stored.
func (s *shard[K, V]) releaseRefresh(k K) {
	if f, ok := s.refreshOf(k); ok {
		s.release(k, s.flights[f])
	}
}

// joinRefresh readies cl, a refresh whose stale entry has gone, for a caller
// to join, with s.mu held. From the first such caller on, the refresh no
// longer counts itself: it lives for its callers, as any execution does, and
// is abandoned (cancelled, its result not stored) when they all give up, so
// that a refresh that hangs does not hold its key forever.
func (s *shard[K, V]) joinRefresh(cl *call[V]) {
	if cl.self {
		cl.self = false
		cl.waiters--
	}
}

// settleRefresh stores the outcome of cl, the refresh of k's stale entry,
// with s.mu held: a new value over the stale one, if it is still held and
// within its grace (Replaced); past its grace, store's purge drops it first
// (Expired). A failed refresh leaves the stale value until its grace ends.
func (s *shard[K, V]) settleRefresh(k K, cl *call[V], failed bool, now, wall int64) {
	delete(s.refreshing, k)
	if failed {
		return
	}
	if !s.keeps(cl) {
		return // the stale value stays until its grace ends
	}
	if i, held := s.l.lookup(k).entry(); held && s.l.exp.servable(s.l.expiry(i), now) {
		s.note(Replaced, k, s.l.value(i))
	}
	s.storeResult(k, cl, now, wall, false)
}

// purge drops every expired entry, with s.mu held, and returns how many.
func (s *shard[K, V]) purge(now int64) int {
	n := 0
	if s.l.exp != nil {
		n += s.l.purge(now, s.noter(Expired))
	}
	if s.errs != nil {
		n += s.errs.purge(now, nil)
	}
	s.st.expirations += uint64(n)
	return n
}

// PurgeExpired drops every expired entry now and returns how many it
// dropped. Expired entries are also dropped as the cache is used, so calling
// it is never needed for correctness; it returns their memory sooner.
func (c *Cache[K, V]) PurgeExpired() int {
	if !c.timed {
		return 0
	}
	now := c.now()
	n := 0
	for _, s := range c.shards {
		s.mu.Lock()
		n += s.purge(now)
		s.unlock()
	}
	return n
}

// slack is the fraction of ExpireAfterAccess's d by which a hit may leave an
// entry's expiry short of now+d rather than write it (see fresh).
const slack = 1024

// fresh reports whether e, an entry of l, which has expiries, is fresh at
// now, and not so near its expiry that a hit on it must start a refresh
// (RefreshAhead): such a hit takes the lock and is answered by
// shard.expired, as a stale one is. The lock-free hit draws the jitter
// (draw); the lock holder it then comes to does not draw again, so that one
// hit is one draw. Under ExpireAfterAccess it also counts
// now as a use of e: it moves
// e's expiry to now+slide. It takes no lock and allocates nothing: the
// expiry in e only ever moves later, by compare-and-swap, so a hit racing
// with another keeps the later of the two; the lock holder brings the heap's
// copy up to it when it looks (expiry), so the heap's is never later than
// e's. The move is skipped when it would be less than slide/slack, so that
// hits on a hot entry from many cores do not all write its cache line.
func (l *list[K, V]) fresh(e *entry[K, V], now int64, draw bool) bool {
	t := (*timed[K, V])(unsafe.Pointer(e))
	at := t.at.Load()
	if now >= at {
		return false
	}
	if a := l.exp.ahead; a != 0 {
		if j := l.exp.jitter; j > 0 && draw {
			a -= rand.Int64N(j)
		}
		if at-now <= a {
			return false
		}
	}
	if s := l.exp.slide; s != 0 {
		for next := addSat(now, s); next-at >= s/slack && next > at; at = t.at.Load() {
			if t.at.CompareAndSwap(at, next) {
				break
			}
		}
	}
	return true
}

// expiry returns when node i stops being fresh, with the lock held. Under
// ExpireAfterAccess, hits move an entry's expiry without the lock (fresh);
// expiry first brings the heap's copy up to it.
func (l *list[K, V]) expiry(i int32) int64 {
	e := l.exp
	if e.slide != 0 {
		if at := l.at(l.nodes[i].e); at > e.at[i] {
			e.at[i] = at
			e.down(int(e.slot[i]))
		}
	}
	return e.at[i]
}
