package memo

import "context"

// Reading and writing a cache directly, without its function: what users of
// golang-lru and otter reach for to test, warm or write through a cache.

// Peek returns the value a call for k would be answered with now, if the
// cache holds one (a fresh value, or a stale one within its
// StaleWhileRevalidate grace), without running the function, without
// counting a hit or a miss, and without changing the entry's recency. It
// looks in this process's memory only, not in a shared store, and reports
// no cached error. A key that cannot be cached (NaN, uncomparable, a cache
// of size 0) is never found.
func (c *Cache[K, V]) Peek(k K) (v V, ok bool) {
	s, k, ok := c.locate(k)
	if !ok {
		return v, false
	}
	return s.peek(k, c.now())
}

// Contains reports whether Peek would find k.
func (c *Cache[K, V]) Contains(k K) bool {
	_, ok := c.Peek(k)
	return ok
}

// Len returns the number of entries, as CacheInfo's CurrSize does, without
// taking a snapshot of the counters.
func (c *Cache[K, V]) Len() int {
	now := c.now()
	n := 0
	for _, s := range c.shards {
		s.mu.Lock()
		if c.timed {
			s.purge(now)
		}
		n += s.l.len()
		s.unlock()
	}
	return n
}

// Put stores v under k as if a call had computed it, without running the
// function: to warm a cache at start-up, or to write a new value through
// after an update. It reports whether it stored v; a key that cannot be
// cached (NaN, uncomparable, a cache of size 0 or SingleFlight) is not, nor
// a value that ExpireAfter says not to cache or that MaxWeight finds too
// heavy.
//
// The entry obeys the size bound, expiry (from now, with ExpireAfter asked
// about v) and invalidation as a computed one does; an entry k had is
// replaced (reported to Observe as Replaced). An execution in progress for k
// finishes for its callers, but its result is not stored: the value Put,
// the newer, stays. Put and Clear are each one step: a Put before a Clear is
// cleared, one after it stays. A shared cache (see Share) also writes v to
// the store, after deleting what the store held for k, so that the other
// processes drop their copies within Sharing.Poll; it tries even while the
// store is paused after a failure, and reports a failure as a StoreFailed
// event, as Forget does.
func (c *Cache[K, V]) Put(k K, v V) bool {
	s, k, life, w, ok := c.storable(k, v)
	if !ok {
		return false
	}
	var now, wall int64
	if c.timed {
		now, wall = c.stamp()
	}
	s.put(k, v, now, c.expiryAt(now, wall, 0, life), w)
	if t := c.tier; t != nil {
		t.forget(c, k)
		if key, err := t.key(k); err == nil {
			t.put(c, context.Background(), k, key, v, life)
		}
	}
	return true
}

// storable returns what Put and Load need to store v under k: k's shard, k
// normalised, v's life (see lifeOf) and weight; ok is false if v is not to
// be stored: k cannot be cached, every call runs (SingleFlight), v's life is
// negative, or v weighs more than the shard holds. It runs the user's code
// (ExpireAfter's function, the weigher), so the caller holds no lock.
func (c *Cache[K, V]) storable(k K, v V) (s *shard[K, V], key K, life int64, w int, ok bool) {
	s, k, ok = c.locate(k)
	if !ok || c.params.SingleFlight {
		return nil, k, 0, 0, false
	}
	if life = c.lifeOf(v); life < 0 {
		return nil, k, 0, 0, false
	}
	if c.weigher != nil {
		if w = c.weigh(k, v); !s.fits(w) {
			return nil, k, 0, 0, false
		}
	}
	return s, k, life, w, true
}

// locate returns the shard of k, and k normalised, if k can be cached.
func (c *Cache[K, V]) locate(k K) (*shard[K, V], K, bool) {
	if c.slots != nil {
		k, _ = c.normalize(k)
	}
	s, out, _ := c.admit(k)
	return s, k, out == usable
}
