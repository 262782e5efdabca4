// Package memo remembers the results of functions, as Python's
// functools.lru_cache does: wrap a function once with Memoize (or one of its
// siblings for errors, contexts, several arguments and uncomparable
// arguments), call the result as before, and repeated calls with equal
// arguments are answered from a cache of the most recently used results.
//
// Beyond lru_cache, concurrent calls for one key run the function once,
// callers can give up through their context, a panic reaches every waiting
// caller without wedging the cache, Clear and Forget are free of races with
// calls in progress, and results can expire (TTL, Window).
//
// memo is not for functions whose side effects matter (a hit skips the call),
// nor for results that callers modify (every caller shares one value), nor
// for results that must always be current unless they expire.
package memo

import (
	"context"
	"hash/maphash"
	"math/bits"
	"reflect"
	"sync"
	"time"
	"unsafe"
)

// Cache is the cache behind a memoized function, returned next to the
// function by Memoize and its siblings. It is safe for
// concurrent use by multiple goroutines. The zero value is not usable.
type Cache[K comparable, V any] struct {
	mu   sync.Mutex
	l    list[K, V]
	errs *list[K, error] // cached errors, with CacheErrors
	st   stats

	// flights are the executions in progress, found through the marks they
	// leave in l.items: -f stands for flights[f]. flights[0] is never used,
	// and idle lists the other free indices.
	flights []*call[V]
	idle    []int32
	spares  []*call[V] // calls no longer used, for executions to come
	gen     uint64     // how many times Clear has run; an execution notes it

	fn     func(context.Context, K) (V, error)
	params Parameters
	off    bool      // MaxSize 0: caching is off
	check  bool      // K holds an interface, so == may panic; see selfEqual
	slots  []uintptr // where K holds empty interfaces whose numbers normalize rewrites
	timed  bool      // something expires, so calls read the clock
	plain  bool      // none of the above, nor sharded: do's fast path applies
	split  bool      // sharded, and keys need no checks to choose their part
	clock  func() time.Time
	base   time.Time // the clock's reading at construction; times are nanoseconds since

	parts []*Cache[K, V] // with Shards: the parts, each a cache of its own
	hash  func(K) uint64 // chooses the part for a key
}

// outcome is what find learnt of a key.
type outcome uint8

const (
	found    outcome = iota // a fresh value is cached
	missing                 // nothing fresh is cached; c.mu is held
	uncached                // the call cannot use the cache
	badKey                  // the key cannot be compared
)

// do answers one call: from the cache if it can, else by joining or starting
// an execution of fn. ctxDone is ctx.Done(), fetched by the caller outside
// the lock.
func (c *Cache[K, V]) do(ctx context.Context, ctxDone <-chan struct{}, k K, fn func(context.Context, K) (V, error)) (V, error) {
	if c.split {
		c = c.shard(k) // a part, which may take the fast path
	}
	if c.plain && k == k {
		// The fast path, kept apart from doAny's checks: an unsharded cache
		// whose entries do not expire, with a key of a concrete type. It
		// repeats find's lookup without the checks, because find is too big
		// for the compiler to inline and this path is what most calls take.
		c.mu.Lock()
		i := c.l.items[k]
		if i > 0 {
			c.l.touch(i)
			c.st.hits++
			v := c.l.nodes[i].val
			c.mu.Unlock()
			return v, nil
		}
		return c.miss(ctx, ctxDone, k, i, 0, fn)
	}
	return c.doAny(ctx, ctxDone, k, fn)
}

// doAny is do for every cache and key.
func (c *Cache[K, V]) doAny(ctx context.Context, ctxDone <-chan struct{}, k K, fn func(context.Context, K) (V, error)) (V, error) {
	if c.slots != nil {
		if nk, changed := c.normalize(k); changed {
			// Cache under the normalised key, but run fn on k itself.
			return doArg(c, ctx, ctxDone, nk, k, fn)
		}
	}
	c = c.shard(k)
	v, i, now, out, err := c.find(k)
	switch out {
	case missing:
		return c.miss(ctx, ctxDone, k, i, now, fn)
	case uncached:
		return c.bypass(ctx, ctxDone, k, fn)
	}
	return v, err
}

// doArg is do for a call whose function takes an argument other than the
// key. The closure binding the argument is made only if fn is to run.
func doArg[K comparable, V, A any](c *Cache[K, V], ctx context.Context, ctxDone <-chan struct{}, k K, a A, fn func(context.Context, A) (V, error)) (V, error) {
	c = c.shard(k)
	v, i, now, out, err := c.find(k)
	if out == found || out == badKey {
		return v, err
	}
	exec := func(ctx context.Context, _ K) (V, error) { return fn(ctx, a) }
	if out == uncached {
		return c.bypass(ctx, ctxDone, k, exec)
	}
	return c.miss(ctx, ctxDone, k, i, now, exec)
}

// shard returns the part of a sharded cache that holds k, or c itself.
func (c *Cache[K, V]) shard(k K) *Cache[K, V] {
	if c.parts == nil {
		return c
	}
	if c.check {
		if _, err := selfEqual(k); err != nil {
			return c // cannot be hashed; c's find reports it
		}
	}
	// Map the hash onto [0, len(parts)) by multiplication, not division.
	i, _ := bits.Mul64(c.hash(k), uint64(len(c.parts)))
	return c.parts[i]
}

// partHash returns the hash that spreads keys of type K over the parts of a
// sharded cache. Integer keys are mixed by one multiplication, cheaper than
// maphash; other keys use maphash.
func partHash[K comparable]() func(K) uint64 {
	const golden = 0x9E3779B97F4A7C15 // 2^64 divided by the golden ratio: spreads consecutive keys
	t := reflect.TypeFor[K]()
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		switch t.Size() {
		case 8:
			return func(k K) uint64 { return *(*uint64)(unsafe.Pointer(&k)) * golden }
		case 4:
			return func(k K) uint64 { return uint64(*(*uint32)(unsafe.Pointer(&k))) * golden }
		case 2:
			return func(k K) uint64 { return uint64(*(*uint16)(unsafe.Pointer(&k))) * golden }
		case 1:
			return func(k K) uint64 { return uint64(*(*uint8)(unsafe.Pointer(&k))) * golden }
		}
	}
	seed := maphash.MakeSeed()
	return func(k K) uint64 { return maphash.Comparable(seed, k) }
}

// each returns the parts of a sharded cache, or c alone.
func (c *Cache[K, V]) each() []*Cache[K, V] {
	if c.parts == nil {
		return []*Cache[K, V]{c}
	}
	return c.parts
}

// find looks k up, counting a hit if it finds a fresh value. On missing it
// returns with c.mu held, so that the miss is handled under the same lock,
// and i is what c.l.items holds for k (0 for nothing).
func (c *Cache[K, V]) find(k K) (v V, i int32, now int64, out outcome, err error) {
	if c.off {
		return v, 0, 0, uncached, nil
	}
	if c.check {
		ok, err := selfEqual(k)
		if err != nil {
			return v, 0, 0, badKey, err
		}
		if !ok {
			return v, 0, 0, uncached, nil
		}
	} else if k != k {
		return v, 0, 0, uncached, nil
	}
	if c.timed {
		now, _ = c.stamp()
	}
	c.mu.Lock()
	i = c.l.items[k]
	if i > 0 && (c.l.exp == nil || now < c.l.exp.at[i]) {
		c.l.touch(i)
		c.st.hits++
		v = c.l.nodes[i].val
		c.mu.Unlock()
		return v, i, now, found, nil
	}
	return v, i, now, missing, nil
}

// miss is do's slow path, entered with c.mu held. i is what c.l.items holds
// for k: 0 for nothing, a mark for an execution in progress, or (for a cache
// whose entries expire) an entry that is no longer fresh.
func (c *Cache[K, V]) miss(ctx context.Context, ctxDone <-chan struct{}, k K, i int32, now int64, fn func(context.Context, K) (V, error)) (V, error) {
	if c.timed {
		var v V
		var err error
		var answered bool
		if v, i, answered, err = c.lookupExpired(ctx, k, i, now, fn); answered {
			return v, err
		}
	}
	if i < 0 && !ended(ctxDone) {
		// A caller whose context has ended does not join: it would give up
		// at once. It counts a miss instead, below, and gets ctx's error.
		cl := c.flights[-i]
		c.st.hits++
		c.st.coalesced++
		cl.waiters++
		if cl.done == nil {
			cl.done = make(chan struct{})
		}
		c.mu.Unlock()
		return c.wait(ctxDone, ctx, k, cl)
	}
	c.st.misses++
	return c.execute(ctx, ctxDone, k, fn, true)
}

// bypass runs fn for a call that cannot use the cache: caching is off, or k
// is not equal to itself. It counts a miss, stores nothing, and honours the
// caller's context as a miss does.
func (c *Cache[K, V]) bypass(ctx context.Context, ctxDone <-chan struct{}, k K, fn func(context.Context, K) (V, error)) (V, error) {
	c.mu.Lock()
	c.st.misses++
	return c.execute(ctx, ctxDone, k, fn, false)
}

// settle stores the outcome of cl, the execution registered for k until now,
// in place of k's mark, with c.mu held. A refresh has no mark while the stale
// entry it refreshes is held (detach leaves one when the entry goes).
func (c *Cache[K, V]) settle(k K, cl *call[V], failed bool, now, wall int64) {
	if cl.refresh {
		if i := c.l.items[k]; i > 0 {
			c.l.exp.refresh[i] = 0
			if !failed {
				store(c, &c.l, k, cl.val, now, c.valueExpiry(now, wall), false)
			}
			return // a failed refresh leaves the stale value until its grace ends
		}
	}
	switch {
	case !failed:
		store(c, &c.l, k, cl.val, now, c.valueExpiry(now, wall), true)
	case cl.err != nil && cl.panicked == nil && c.errs != nil && !cl.refresh:
		// (An error returned before the clock panicked is not cached: the
		// execution's outcome is the panic.)
		c.l.unmark(k)
		store(c, c.errs, k, cl.err, now, addSat(now, int64(c.params.CacheErrors)), false)
	default:
		c.l.unmark(k)
	}
}

// store adds v under k to l, which is c.l or c.errs, in place of k's mark if
// marked. It drops expired entries first, so that none of them outlives a
// live entry evicted for room.
func store[K comparable, V, T any](c *Cache[K, V], l *list[K, T], k K, v T, now, at int64, marked bool) {
	if l.exp != nil {
		c.st.expirations += uint64(l.purge(now))
	}
	var evicted bool
	if marked {
		_, evicted = l.fill(k, v, at)
	} else {
		_, evicted = l.add(k, v, at)
	}
	if evicted {
		c.st.evictions++
	}
}

// CacheInfo returns a consistent snapshot of the cache's counters and size.
// CurrSize does not count expired entries, except stale ones still within
// their StaleWhileRevalidate grace.
func (c *Cache[K, V]) CacheInfo() CacheInfo {
	var now int64
	if c.timed {
		now, _ = c.stamp()
	}
	parts := c.each()
	for _, p := range parts {
		p.mu.Lock()
	}
	ci := CacheInfo{MaxSize: c.params.MaxSize, Unbounded: c.params.Unbounded}
	for _, p := range parts {
		p.purge(now)
		ci.Hits += p.st.hits
		ci.Misses += p.st.misses
		ci.CurrSize += p.l.len()
		ci.Evictions += p.st.evictions
		ci.Coalesced += p.st.coalesced
		ci.Errors += p.st.errors
		ci.ExecTime += p.st.execTime
		ci.Expirations += p.st.expirations
	}
	for _, p := range parts {
		p.mu.Unlock()
	}
	return ci
}

// Parameters returns the cache's settings.
func (c *Cache[K, V]) Parameters() Parameters { return c.params }

// Clear empties the cache and resets its counters, in one step that
// CacheInfo never sees half done, even in a sharded cache. Executions in
// progress finish for their callers, but their results are not stored, their
// errors and times are not counted, and later calls for their keys start new
// executions.
func (c *Cache[K, V]) Clear() {
	parts := c.each()
	for _, p := range parts {
		p.mu.Lock()
	}
	for _, p := range parts {
		p.l.init(p.params.MaxSize)
		if p.errs != nil {
			p.errs.init(p.params.MaxSize)
		}
		clear(p.flights)
		p.flights, p.idle = p.flights[:0], p.idle[:0]
		p.st = stats{}
		p.gen++
	}
	for _, p := range parts {
		p.mu.Unlock()
	}
}

// Forget drops the cached result (or cached error) for k, if any, and
// reports whether there was one a call could have been answered with. An
// entry past its expiry (and past its grace, with StaleWhileRevalidate)
// counts as none, whether or not the cache still held it. An
// execution for k in progress finishes for its callers, but its result is
// not stored, and later calls start a new execution.
func (c *Cache[K, V]) Forget(k K) bool {
	if c.off {
		return false
	}
	if c.slots != nil {
		k, _ = c.normalize(k)
	}
	if ok, err := selfEqual(k); !ok || err != nil {
		return false
	}
	c = c.shard(k)
	var now int64
	if c.timed {
		now, _ = c.stamp()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	i := c.l.items[k]
	ok := i > 0 && (c.l.exp == nil || c.l.exp.servable(c.l.exp.at[i], now))
	if i > 0 {
		if e := c.l.exp; e != nil && e.refresh[i] != 0 {
			c.unregister(c.flights[e.refresh[i]])
			e.refresh[i] = 0
		}
		c.l.removeAt(i)
		if !ok {
			c.st.expirations++
		}
	} else if i < 0 {
		c.unregister(c.flights[-i])
		c.l.unmark(k)
	}
	if c.errs != nil {
		if j, held := c.errs.items[k]; held {
			if now < c.errs.exp.at[j] {
				ok = true
			} else {
				c.st.expirations++
			}
			c.errs.removeAt(j)
		}
	}
	return ok
}

// Unwrapped returns the original function in the form that takes a context
// and returns an error. Calling it touches neither the cache nor its
// counters. For a function memoized with Memoize it always returns a nil
// error; for one memoized with MemoizeErr it ignores the context.
func (c *Cache[K, V]) Unwrapped() func(context.Context, K) (V, error) { return c.fn }
