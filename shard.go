package memo

import (
	"context"
	"math"
	"sync"
)

// shard is one independently locked part of a Cache: its entries, its
// executions in progress and its counters.
//
// The lock protocol. mu guards every field but c and max, which are set when
// the shard is built and never change, and the parts of l that hits read and
// write without the lock: its index and its stripes (index.go and reads.go
// state their protocols; list.read is the hit). mu is held for bookkeeping
// only, never while user code runs (the function, the clock, the observer),
// so every path that takes it releases it before calling out, and a function
// may call its own memoized function for other keys. Events for the
// observer are noted in pending while mu is held and delivered after it is
// released: sections that may note one end with unlock (observe.go); only
// hits and drains, which note none, release mu directly. Operations on the
// whole cache (CacheInfo, Clear) lock every shard, in order.
//
// Whenever mu is free:
//   - l.lookup(k) is a ref: an entry of l (fresh, or expired but not yet
//     dropped), a mark of an execution in progress for k (markOf(f) for
//     flights[f]), or none. An execution refreshing a stale entry in the
//     background has no mark; refreshing[k] names it instead, while the
//     entry is held and after it goes, so that later calls join it (see
//     joinRefresh for when it may then be abandoned).
//   - flights[f] is a registered execution: the only one that may store a
//     result for its key, and only while it is registered. Clear, Forget and
//     the last of its callers giving up unregister it, as its own end does;
//     after that its result still reaches its callers but is never stored,
//     and the key is free for a new execution. A registration is never
//     renewed: an index in flights is reused only for another execution.
//   - a call record in spares is referenced by nobody. An execution run in
//     its caller's goroutine returns its record there when it ends, unless
//     another caller joined it (its done channel was made) and may still
//     read it.
//   - st counts what happened since the last Clear, which bumps gen; an
//     execution that began under another gen adds nothing to st. The hits
//     made without the lock are counted in l's stripes instead, until a
//     drain adds them up there too (CacheInfo adds both).
type shard[K comparable, V any] struct {
	mu         sync.Mutex
	l          list[K, V]
	st         stats
	errs       *list[K, error] // cached errors, with CacheErrors
	refreshing map[K]int32     // key -> flight of a stale entry's refresh
	flights    []*call[V]      // flights[0] is never used; idle lists the other free indices
	idle       []int32
	spares     []*call[V]    // call records no longer used, for executions to come
	gen        uint64        // how many times Clear has run
	pending    []Event[K, V] // events to deliver once mu is released (observe.go)

	c   *Cache[K, V] // settings, read without the lock
	max int          // this shard's share of MaxSize; 0 when unbounded
}

// init makes s an empty shard of c holding at most max entries.
func (s *shard[K, V]) init(c *Cache[K, V], max int) {
	s.c, s.max = c, max
	if p := c.params; p.TTL > 0 || p.Window > 0 || p.ExpireAfterAccess > 0 || c.expireAfter != nil {
		s.l.exp = &expiries{grace: int64(p.StaleWhileRevalidate), slide: int64(p.ExpireAfterAccess),
			ahead: int64(p.RefreshAhead), jitter: int64(p.RefreshJitter)}
	}
	s.l.hits = newStripes()
	s.l.init(max)
	if c.params.CacheErrors > 0 {
		s.errs = &list[K, error]{exp: &expiries{}}
		s.errs.init(max)
	}
}

// get answers a call for k at now: from the cache, or by joining or starting
// an execution of fn.
func (s *shard[K, V]) get(ctx context.Context, ctxDone <-chan struct{}, k K, now int64, fn func(context.Context, K) (V, error)) (V, error) {
	v, r, hit := s.find(k, now)
	if hit {
		return v, nil
	}
	return s.miss(ctx, ctxDone, k, r, now, fn)
}

// find looks k up at now. If it finds a fresh value, it counts a hit and
// returns it with hit set, without the lock if it can. Otherwise it returns
// with mu held, so that the miss is handled under the same lock, and r is
// what l holds for k.
func (s *shard[K, V]) find(k K, now int64) (v V, r ref, hit bool) {
	if v, ok := s.l.read(&s.mu, k, now); ok {
		return v, r, true
	}
	s.mu.Lock()
	r = s.l.lookup(k)
	if i, ok := r.entry(); ok && (s.l.exp == nil || s.l.fresh(s.l.nodes[i].e, now, false)) {
		s.l.touch(i)
		s.st.hits++
		v = s.l.value(i)
		s.mu.Unlock()
		return v, r, true
	}
	return v, r, false
}

// miss is a call's slow path, entered with mu held: r is what l holds
// for k, a mark, nothing, or (where entries expire) an entry that is no
// longer fresh. The call gets a stale value or a cached error, or joins the
// execution in progress for k, or starts one.
func (s *shard[K, V]) miss(ctx context.Context, ctxDone <-chan struct{}, k K, r ref, now int64, fn func(context.Context, K) (V, error)) (V, error) {
	if s.c.timed {
		var v V
		var err error
		var answered bool
		if v, r, answered, err = s.expired(ctx, k, r, now, fn); answered {
			return v, err
		}
	}
	// A caller whose context has ended does not join: it would give up at
	// once. It counts a miss instead, and execute returns ctx's error.
	if f, ok := s.inFlight(k, r); ok && !ended(ctxDone) {
		cl := s.flights[f]
		gen := s.join(cl)
		s.unlock()
		if err := s.cyclic(ctx, k, cl, gen); err != nil {
			var zero V
			return zero, err
		}
		return s.wait(ctxDone, ctx, k, cl)
	}
	s.st.misses++
	return s.execute(ctx, ctxDone, k, fn, true)
}

// join adds a caller, counted as a hit, to cl, the execution in progress for
// its key, with s.mu held, and returns the generation of the counters it
// counted in.
func (s *shard[K, V]) join(cl *call[V]) (gen uint64) {
	s.joinRefresh(cl)
	s.st.hits++
	s.st.coalesced++
	cl.waiters++
	if cl.done == nil {
		cl.done = make(chan struct{})
	}
	return s.gen
}

// cyclic checks, without s.mu, that the caller who joined cl, the execution
// for k, in counters of generation gen, does not wait for an execution it
// runs in. If it would, it takes the caller off cl, counted as a miss, and
// returns an error wrapping ErrCycle.
func (s *shard[K, V]) cyclic(ctx context.Context, k K, cl *call[V], gen uint64) error {
	if !s.c.traced {
		return nil
	}
	// Looked for outside the lock: a Context's Value is the user's code.
	err := cycle(ctx, s.c, k)
	if err != nil {
		s.mu.Lock()
		if gen == s.gen {
			s.st.hits--
			s.st.coalesced--
			s.st.misses++
		}
		s.leave(k, cl)
	}
	return err
}

// inFlight returns the execution in progress for k, given r, what l
// holds for k: its mark's, or a refresh whose stale entry has gone.
func (s *shard[K, V]) inFlight(k K, r ref) (int32, bool) {
	if f, ok := r.flight(); ok {
		return f, true
	}
	if r == 0 {
		return s.refreshOf(k)
	}
	return 0, false
}

// bypass runs fn for a call that cannot use the cache: caching is off, or k
// is not equal to itself. It counts a miss, stores nothing, and honours the
// caller's context as a miss does.
func (s *shard[K, V]) bypass(ctx context.Context, ctxDone <-chan struct{}, k K, fn func(context.Context, K) (V, error)) (V, error) {
	s.mu.Lock()
	s.st.misses++
	return s.execute(ctx, ctxDone, k, fn, false)
}

// settle stores the outcome of cl, the execution registered for k until now,
// with mu held: in place of k's mark, or, for a refresh, over the stale entry
// if it is still held.
func (s *shard[K, V]) settle(k K, cl *call[V], failed bool, now, wall int64) {
	if cl.refresh {
		s.settleRefresh(k, cl, failed, now, wall)
		return
	}
	switch {
	case !failed && s.c.bare:
		// Most caches' case, kept apart as do's fast path is: storing is
		// the list's fill and nothing more.
		if _, evicted := s.l.fill(cl.mark.(*entry[K, V]), cl.val, math.MaxInt64); evicted {
			s.st.evictions++
		}
	case !failed && (!s.c.extra || s.keeps(cl)):
		s.storeResult(k, cl, now, wall, true)
	case cl.err != nil && cl.panicked == nil && s.errs != nil:
		// (An error returned before the clock panicked is not cached: the
		// execution's outcome is the panic.)
		s.l.unmark(k)
		store(s, s.errs, k, cl.err, now, addSat(now, int64(s.c.params.CacheErrors)), nil, nil)
	default:
		s.l.unmark(k)
	}
}

// keeps reports whether cl's value is to be kept: not for SingleFlight, nor
// when ExpireAfter says so or MaxWeight finds it too heavy.
func (s *shard[K, V]) keeps(cl *call[V]) bool {
	return cl.life >= 0 && !s.c.params.SingleFlight && s.fits(cl.weight)
}

// storeResult stores cl's value under k at now (wall on the wall clock), in
// place of its mark if marked, with its expiry and weight.
func (s *shard[K, V]) storeResult(k K, cl *call[V], now, wall int64, marked bool) {
	at := int64(math.MaxInt64)
	if s.l.exp != nil {
		at = s.c.expiryAt(now, wall, cl.until, cl.life)
	}
	var mark *entry[K, V]
	if marked {
		mark = cl.mark.(*entry[K, V])
	}
	s.storeValue(k, cl.val, now, at, cl.weight, mark)
}

// storeValue stores v, of weight w, under k at now to expire at at, in
// place of mark if not nil, as store does, noting what leaves to make room.
func (s *shard[K, V]) storeValue(k K, v V, now, at int64, w int, mark *entry[K, V]) {
	if old, evicted := store(s, &s.l, k, v, now, at, mark, s.noter(Expired)); evicted {
		s.note(Evicted, old.key, old.val)
	}
	if s.l.wt != nil {
		s.weighed(k, w)
	}
}

// store adds v under k to l, which is s.l or s.errs, in place of k's mark
// if mark, the entry holding it, is not nil, and returns the entry evicted to make room, if one was. It drops
// expired entries first (passing each to expired, if not nil), so that none
// of them outlives a live entry evicted for room.
func store[K comparable, V, T any](s *shard[K, V], l *list[K, T], k K, v T, now, at int64, mark *entry[K, T], expired func(K, T)) (old *entry[K, T], evicted bool) {
	if l.exp != nil {
		s.st.expirations += uint64(l.purge(now, expired))
	}
	if mark != nil {
		old, evicted = l.fill(mark, v, at)
	} else {
		old, evicted = l.add(k, v, at)
	}
	if evicted {
		s.st.evictions++
	}
	return old, evicted
}

// peek is Cache.Peek for a key of this shard.
func (s *shard[K, V]) peek(k K, now int64) (v V, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, held := s.l.lookup(k).entry()
	if !held || (s.l.exp != nil && !s.l.exp.servable(s.l.expiry(i), now)) {
		return v, false
	}
	return s.l.value(i), true
}

// put is Cache.Put for a key of this shard: v, of weight w, stored at now,
// to expire at at, over whatever k had; an execution in progress for k is
// released, so that its older result is not stored over v. An entry of k
// that can still be served is Replaced, and for EstimateSizes the Put is a
// hit on it; one that cannot is left to store's purge, which drops it as
// Expired, and the Put is a miss, as a call would be.
func (s *shard[K, V]) put(k K, v V, now, at int64, w int) {
	s.mu.Lock()
	defer s.unlock()
	s.releaseRefresh(k)
	r := s.l.lookup(k)
	if i, held := r.entry(); held {
		if s.l.exp == nil || s.l.exp.servable(s.l.expiry(i), now) {
			s.note(Replaced, k, s.l.value(i))
			if s.l.sz != nil {
				s.l.touch(i) // counted by the sizer as a call's hit is
			}
		}
	} else if f, running := r.flight(); running {
		s.release(k, s.flights[f])
	}
	if s.errs != nil {
		s.errs.remove(k)
	}
	s.storeValue(k, v, now, at, w, nil)
}

// forget is Cache.Forget for a key of this shard.
func (s *shard[K, V]) forget(k K, now int64) bool {
	s.mu.Lock()
	defer s.unlock()
	s.releaseRefresh(k)
	ok := false
	r := s.l.lookup(k)
	if i, held := r.entry(); held {
		ok = s.l.exp == nil || s.l.exp.servable(s.l.expiry(i), now)
		v := s.l.removeAt(i)
		if ok {
			s.note(Forgotten, k, v)
		} else {
			s.st.expirations++
			s.note(Expired, k, v)
		}
	} else if f, running := r.flight(); running {
		s.release(k, s.flights[f])
	}
	if s.errs != nil {
		if j, held := s.errs.lookup(k).entry(); held {
			if now < s.errs.exp.at[j] {
				ok = true
			} else {
				s.st.expirations++
			}
			s.errs.removeAt(j)
		}
	}
	return ok
}

// reset empties the shard for Clear at now, with mu held: what has expired
// is dropped as such first (Expired, counted in expirations), as Forget
// would, and the rest is Cleared. Only a Clear of this process resets the
// counters (and starts a new generation of them); one read from the store
// leaves them.
func (s *shard[K, V]) reset(now int64, counters bool) {
	s.purge(now)
	if s.c.observe != nil {
		for k, v := range s.l.all() {
			s.note(Cleared, k, v)
		}
	}
	if !counters {
		s.l.flush() // so that the sizer and the policy count the hits noted
	}
	s.l.init(s.max)
	if s.errs != nil {
		s.errs.init(s.max)
	}
	clear(s.flights)
	s.flights, s.idle = s.flights[:0], s.idle[:0]
	s.refreshing = nil
	if counters {
		// After the new index: a hit that found an entry in the old one
		// and counts after this is looked up again (see stripes).
		s.l.hits.reset()
		s.st = stats{}
		s.gen++
		if s.l.sz != nil {
			s.l.sz.reset()
		}
		if s.l.pol != nil {
			s.l.pol.reset()
		}
	}
}
