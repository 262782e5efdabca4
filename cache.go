// Package memo remembers the results of functions, as Python's
// functools.lru_cache does: wrap a function once with Memoize (or one of its
// siblings for errors, contexts, several arguments and uncomparable
// arguments), call the result as before, and repeated calls with equal
// arguments are answered from a cache of the most recently used results.
//
// Beyond lru_cache, concurrent calls for one key run the function once,
// callers can give up through their context, a panic reaches every waiting
// caller without wedging the cache, Clear and Forget are free of races with
// calls in progress, results can expire (TTL, Window), and everything that
// happens inside a cache can be watched through one function (Observe). A
// cache can estimate the hit ratio it would have at other sizes from its own
// traffic (EstimateSizes), and evict by frequency as well as recency where
// exact LRU keeps too little (WTinyLFU). A hit takes no lock, so goroutines
// reading one cache on many cores do not queue behind one another.
//
// A cache can also share its results with other processes through a Store
// (Share): on one machine through a SQLite file (module
// github.com/gomemo/memo/sqlite), across machines through Redis (module
// github.com/gomemo/memo/redisstore). A key is then computed once between
// them, and a store that fails never fails a call.
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
	"sync/atomic"
	"time"
	"unsafe"
)

// Cache is the cache behind a memoized function, returned next to the
// function by Memoize and its siblings. It is safe for concurrent use by
// multiple goroutines. The zero value is not usable.
type Cache[K comparable, V any] struct {
	// A Cache holds only what is fixed when it is built (the function, its
	// settings, how keys are checked and normalised, its shards), so it is
	// read without a lock. The entries, the executions in progress and the
	// counters live in its shards (shard.go), each guarded by a mutex of its
	// own; an unsharded cache has one.

	first shard[K, V] // held in place, so the fast path finds it without a load

	fn          func(context.Context, K) (V, error)
	params      Parameters
	off         bool      // MaxSize 0: caching is off
	check       bool      // K holds an interface, so == may panic; see selfEqual
	slots       []uintptr // where K holds empty interfaces whose numbers normalize rewrites
	timed       bool      // something expires, so calls read the clock
	plain       bool      // none of the above: do's fast path applies
	sharded     bool      // more than one shard: hash chooses
	clock       func() time.Time
	base        time.Time             // the clock's reading at construction; times are nanoseconds since
	observe     func(Event[K, V])     // see Observe; nil without
	traced      bool                  // fn takes a context: executions carry their link (ErrCycle)
	extra       bool                  // tier, expireAfter, weigher or SingleFlight: see runExtra, keeps
	bare        bool                  // no extra, observer or expiry: a result is stored by the list alone (settle)
	name        string                // fn's name, for ErrCycle
	expireAfter func(V) time.Duration // see ExpireAfter; nil without
	weigher     func(K, V) int        // see MaxWeight; nil without

	hash   func(K) uint64 // chooses the shard of a key; nil for one shard
	shards []*shard[K, V] // at least one; shards[0] is &first
	tier   *tier[K, V]    // the shared store (store.go); nil without Share
}

// outcome is what admit decides for a key.
type outcome uint8

const (
	usable   outcome = iota // the call goes through the cache
	uncached                // the call cannot use the cache: it runs fn
	badKey                  // the key cannot be compared
)

// do answers one call: from the cache if it can, else by joining or starting
// an execution of fn. ctxDone is ctx.Done(), fetched by the caller outside
// the lock.
func (c *Cache[K, V]) do(ctx context.Context, ctxDone <-chan struct{}, k K, fn func(context.Context, K) (V, error)) (V, error) {
	// The fast path, kept apart from doAny's checks: entries that do not
	// expire, and a key of a concrete type. It repeats find without the
	// expiry check, because find is too big for the compiler to inline and
	// this path is what most calls take. Choosing the shard first, as here,
	// lets the compiler save the arguments once rather than on both paths.
	s := &c.first
	if c.sharded {
		if !c.plain {
			return c.doAny(ctx, ctxDone, k, fn)
		}
		s = c.pick(k)
	}
	if c.plain && k == k {
		if v, ok := s.l.read(&s.mu, k, 0); ok {
			return v, nil
		}
		s.mu.Lock()
		r := s.l.lookup(k)
		if i, ok := r.entry(); ok {
			s.l.touch(i)
			s.st.hits++
			v := s.l.value(i)
			s.mu.Unlock()
			return v, nil
		}
		return s.miss(ctx, ctxDone, k, r, 0, fn)
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
	s, out, err := c.admit(k)
	switch out {
	case badKey:
		var zero V
		return zero, err
	case uncached:
		return s.bypass(ctx, ctxDone, k, fn)
	}
	return s.get(ctx, ctxDone, k, c.now(), fn)
}

// doArg is do for a call whose function takes an argument other than the
// key. The closure binding the argument is made only if fn is to run.
func doArg[K comparable, V, A any](c *Cache[K, V], ctx context.Context, ctxDone <-chan struct{}, k K, a A, fn func(context.Context, A) (V, error)) (V, error) {
	s, out, err := c.admit(k)
	if out == badKey {
		var zero V
		return zero, err
	}
	if out == uncached {
		return s.bypass(ctx, ctxDone, k, bind[K](fn, a))
	}
	now := c.now()
	v, r, hit := s.find(k, now)
	if hit {
		return v, nil
	}
	return s.miss(ctx, ctxDone, k, r, now, bind[K](fn, a))
}

// bind returns fn bound to the argument a, in the form an execution runs.
func bind[K, V, A any](fn func(context.Context, A) (V, error), a A) func(context.Context, K) (V, error) {
	return func(ctx context.Context, _ K) (V, error) { return fn(ctx, a) }
}

// admit checks k and returns the shard that holds it. A cache that is off,
// and a key that is not equal to itself (a NaN), make the call bypass the
// cache; a key that == cannot compare is refused with an error wrapping
// ErrNotComparable.
func (c *Cache[K, V]) admit(k K) (*shard[K, V], outcome, error) {
	if c.off {
		return &c.first, uncached, nil
	}
	if c.check {
		ok, err := selfEqual(k)
		if err != nil {
			return nil, badKey, err
		}
		if !ok {
			return &c.first, uncached, nil
		}
	} else if k != k {
		return &c.first, uncached, nil
	}
	return c.shard(k), usable, nil
}

// shard returns the shard that holds k, which must be equal to itself.
func (c *Cache[K, V]) shard(k K) *shard[K, V] {
	if !c.sharded {
		return &c.first
	}
	return c.pick(k)
}

// pick chooses the shard of k by its hash, for a sharded cache.
func (c *Cache[K, V]) pick(k K) *shard[K, V] {
	// Map the hash onto [0, len(shards)) by multiplication, not division.
	i, _ := bits.Mul64(c.hash(k), uint64(len(c.shards)))
	return c.shards[i]
}

// shardHash returns the hash that spreads keys of type K over the shards of a
// sharded cache. Integer keys are mixed by one multiplication, cheaper than
// maphash; other keys use maphash.
func shardHash[K comparable]() func(K) uint64 {
	t := reflect.TypeFor[K]()
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		switch t.Size() {
		case 8:
			return wordHash[K]
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

// golden is 2^64 divided by the golden ratio: multiplying by it spreads
// consecutive keys.
const golden = 0x9E3779B97F4A7C15

// wordHash is shardHash's hash of a key of an 8-byte integer type (see
// wordKey), which callers on hot paths call directly, where a call through
// the func value could not be inlined.
func wordHash[K comparable](k K) uint64 { return *(*uint64)(unsafe.Pointer(&k)) * golden }

// wordKey reports whether K is an 8-byte integer, whose shardHash is
// wordHash.
func wordKey[K comparable]() bool {
	switch t := reflect.TypeFor[K](); t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Uint, reflect.Uint64, reflect.Uintptr:
		return t.Size() == 8
	}
	return false
}

// mixHash returns a hash of keys whose every bit depends on every bit of the
// key, with a random seed, for the keys EstimateSizes follows and the
// frequencies WTinyLFU counts: shardHash's, salted and mixed. (Alone, the
// shards' multiplicative hash of an integer maps 0, often the most frequent
// key, to 0, which EstimateSizes would always follow.)
func mixHash[K comparable]() func(K) uint64 {
	salt := maphash.Comparable(maphash.MakeSeed(), 0)
	if wordKey[K]() { // shardHash's multiplication inline: one call per hash, not two
		return func(k K) uint64 { return mix(wordHash(k) + salt) }
	}
	h := shardHash[K]()
	return func(k K) uint64 { return mix(h(k) + salt) }
}

// mix is splitmix64's finalizer: every bit of x moves every bit of the
// result.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// CacheInfo returns a consistent snapshot of the cache's counters and size,
// taken with every shard locked. CurrSize does not count expired entries,
// except stale ones still within their StaleWhileRevalidate grace.
func (c *Cache[K, V]) CacheInfo() CacheInfo {
	now := c.now()
	c.lockAll()
	defer c.unlockAll()
	var total stats
	size, weight := 0, 0
	for _, s := range c.shards {
		s.purge(now)
		total.add(s.st)
		total.hits += s.l.hits.counted()
		size += s.l.len()
		if s.l.wt != nil {
			weight += s.l.wt.total
		}
	}
	info := total.info(c.params, size)
	info.Weight = weight
	if t := c.tier; t != nil {
		info.StoreHits = count(t.hits.Load())
		info.StoreMisses = count(t.misses.Load())
		info.StoreWaits = count(t.waits.Load())
		info.StoreErrors = count(t.errors.Load())
		info.StoreRejected = count(t.rejected.Load())
	}
	return info
}

// lockAll locks every shard, in order, for the operations on the whole cache
// that must be seen as one step; unlockAll releases them.
func (c *Cache[K, V]) lockAll() {
	for _, s := range c.shards {
		s.mu.Lock()
	}
}

// unlockAll releases every shard locked by lockAll, then delivers the events
// noted meanwhile, shard by shard.
func (c *Cache[K, V]) unlockAll() {
	var events []Event[K, V]
	for _, s := range c.shards {
		events = append(events, s.pending...)
		s.pending = nil
		s.mu.Unlock()
	}
	c.deliver(events)
}

// Parameters returns the cache's settings.
func (c *Cache[K, V]) Parameters() Parameters { return c.params }

// Clear empties the cache and resets its counters, in one step that
// CacheInfo never sees half done, even in a sharded cache. Executions in
// progress finish for their callers, but their results are not stored, their
// errors and times are not counted, and later calls for their keys start new
// executions. A shared cache (see Share) also clears its namespace in the
// store; the other processes drop what they hold in memory when they next
// read the store's deletions (Sharing.Poll), and executions of this process
// that wrote the store while the Clear ran take their results back out. The
// Clear does not come back to this process through the store: given a store
// that answers, what it computes after Clear returns stays, in its memory and
// in the store.
func (c *Cache[K, V]) Clear() {
	c.clearLocal(true, nil)
	if t := c.tier; t != nil {
		for _, n := range []*atomic.Uint64{&t.hits, &t.misses, &t.waits, &t.errors} {
			n.Store(0)
		}
		t.clear(c)
	}
}

// clearLocal empties every shard, resetting the counters too if counters,
// unless skip, if not nil, reports true with every shard locked.
func (c *Cache[K, V]) clearLocal(counters bool, skip func() bool) {
	now := c.now()
	c.lockAll()
	defer c.unlockAll()
	if skip != nil && skip() {
		return
	}
	for _, s := range c.shards {
		s.reset(now, counters)
	}
}

// Forget drops the cached result (or cached error) for k, if any, and
// reports whether there was one a call could have been answered with. An
// entry past its expiry (and past its grace, with StaleWhileRevalidate)
// counts as none, whether or not the cache still held it. An execution for k
// in progress finishes for its callers, but its result is not stored, and
// later calls start a new execution. A shared cache (see Share) also deletes
// k from the store, and the other processes drop it from memory when they
// next read the store's deletions (Sharing.Poll).
func (c *Cache[K, V]) Forget(k K) bool {
	if c.slots != nil {
		k, _ = c.normalize(k)
	}
	if _, out, _ := c.admit(k); out != usable {
		return false
	}
	found := c.shard(k).forget(k, c.now())
	if c.tier != nil {
		c.tier.forget(c, k)
	}
	return found
}

// forgetEncoded forgets, in this process only, the keys whose store keys are
// among keys: deletions another process made in the store.
func (c *Cache[K, V]) forgetEncoded(keys []string) {
	gone := make(map[string]bool, len(keys))
	for _, k := range keys {
		gone[k] = true
	}
	// Copy the keys out, to encode them without a lock held: encoding may
	// call MarshalBinary methods.
	var held []K
	for _, s := range c.shards {
		s.mu.Lock()
		held = s.l.appendKeys(held)
		if s.errs != nil {
			held = s.errs.appendKeys(held)
		}
		s.mu.Unlock()
	}
	for _, k := range held {
		if key, err := c.tier.key(k); err == nil && gone[key.store] {
			c.shard(k).forget(k, c.now())
		}
	}
}

// Close stops the goroutine that a shared cache (see Share) runs to read the
// deletions other processes make in the store, and waits for it to return.
// The memoized function still works after Close, with the store, but no
// longer hears of other processes' Forget and Clear. Close does not close
// the Store, which its owner closes after every cache using it. Close does
// nothing for a cache that is not shared, and may be called more than once.
func (c *Cache[K, V]) Close() {
	if c.tier != nil {
		c.tier.close()
	}
}

// Unwrapped returns the original function in the form that takes a context
// and returns an error. Calling it touches neither the cache nor its
// counters. For a function memoized with Memoize it always returns a nil
// error; for one memoized with MemoizeErr it ignores the context.
func (c *Cache[K, V]) Unwrapped() func(context.Context, K) (V, error) { return c.fn }
