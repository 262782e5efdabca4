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
	"fmt"
	"hash/maphash"
	"math/bits"
	"reflect"
	"runtime"
	"runtime/debug"
	"sync"
	"time"
	"unsafe"
)

// DefaultMaxSize is the size of a cache built without MaxSize or Unbounded,
// the same default as Python's functools.lru_cache.
const DefaultMaxSize = 128

// Option configures a memoized function: MaxSize, Unbounded, Shards, TTL,
// Window, StaleWhileRevalidate, CacheErrors, Clock, Typed, MeasureExecTime.
type Option func(*config)

type config struct {
	Parameters
	clock func() time.Time
}

// MaxSize bounds the cache to n entries, evicting the least recently used
// entry when full. A size of 0 or less turns caching off: every call runs the
// function and counts as a miss, and the size is reported as 0. MaxSize
// panics if n is larger than a cache can index (2^31-2). Of MaxSize and
// Unbounded, the last given wins.
func MaxSize(n int) Option {
	if n > maxEntries {
		panic(fmt.Sprintf("memo: MaxSize(%d) is larger than the %d entries a cache can index; use Unbounded()", n, maxEntries))
	}
	return func(c *config) { c.MaxSize, c.Unbounded = max(n, 0), false }
}

// Unbounded lets the cache grow without limit: nothing is ever evicted. Of
// MaxSize and Unbounded, the last given wins.
func Unbounded() Option {
	return func(c *config) { c.MaxSize, c.Unbounded = 0, true }
}

// Shards splits the cache into n parts, each with its own lock, chosen by a
// hash of the key, so that goroutines on many cores rarely wait for one
// another. The price: eviction is least-recently-used within each part, which
// holds an equal share of MaxSize, not across the whole cache. CacheInfo
// still reports the whole. Shards panics if n is less than 1; the cache's
// constructor panics if a positive MaxSize is smaller than n.
func Shards(n int) Option {
	if n < 1 {
		panic(fmt.Sprintf("memo: Shards must be at least 1, got %d", n))
	}
	return func(c *config) { c.Shards = n }
}

// MeasureExecTime makes the cache time every execution of the function and
// add it up in CacheInfo.ExecTime. It is off by default because reading the
// clock twice per miss can cost more than the rest of a miss's bookkeeping.
func MeasureExecTime() Option {
	return func(c *config) { c.MeasureExecTime = true }
}

// Parameters are a cache's settings as configured, normalised: a negative
// MaxSize reads 0.
type Parameters struct {
	// MaxSize is the most entries the cache holds; 0 when Unbounded, and 0
	// when caching is off.
	MaxSize int
	// Unbounded reports that the cache has no size limit.
	Unbounded bool
	// TTL is how long a stored value stays fresh; 0 when values do not
	// expire one by one.
	TTL time.Duration
	// Window is the length of the wall-clock windows at whose end values
	// expire together; 0 when values do not expire by window.
	Window time.Duration
	// StaleWhileRevalidate is how long past its expiry a value may still be
	// served while it is refreshed in the background.
	StaleWhileRevalidate time.Duration
	// ErrorTTL is how long an error is cached; 0 when errors are not.
	ErrorTTL time.Duration
	// Typed reports that keys holding numbers of different types are kept
	// apart even when the numbers are equal.
	Typed bool
	// Shards is the number of independently locked parts; 1 when the cache
	// is not sharded.
	Shards int
	// MeasureExecTime reports that executions are timed for
	// CacheInfo.ExecTime.
	MeasureExecTime bool
}

// PanicError is the value every caller of an execution panics with when the
// memoized function panicked during that execution.
type PanicError struct {
	// Value is what the function passed to panic.
	Value any
	// Stack is the stack of the goroutine that panicked, at the panic.
	Stack []byte
}

// Error describes the panic and includes the original stack.
func (p *PanicError) Error() string {
	return fmt.Sprintf("memo: memoized function panicked: %v\n\n%s", p.Value, p.Stack)
}

// Unwrap returns the panic value if it is an error, so errors.Is and
// errors.As see through a PanicError.
func (p *PanicError) Unwrap() error {
	err, _ := p.Value.(error)
	return err
}

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

// call is one execution of the function for one key. Its fields other than
// done and waiters are written by the executing goroutine before done is
// closed and read by the callers after.
type call[V any] struct {
	done    chan struct{} // made when someone needs to wait; closed at the end
	waiters int           // callers still waiting, the executing one included
	cancel  context.CancelFunc
	flight  int32  // its index in Cache.flights while it is registered
	gen     uint64 // Cache.gen when it started
	refresh bool   // a background refresh of a stale value
	ending[V]
}

// ending is how an execution ended.
type ending[V any] struct {
	val      V
	err      error
	panicked *PanicError
	goexit   bool
}

// epoch anchors the readings ExecTime is measured with: time.Since of a time
// that has a monotonic reading reads the clock once, time.Now twice.
var epoch = time.Now()

// nilFunc is the panic of a constructor given a nil function.
const nilFunc = "memo: the function to memoize is nil"

func newCache[K comparable, V any](fn func(context.Context, K) (V, error), opts []Option) *Cache[K, V] {
	cfg := config{Parameters: Parameters{MaxSize: DefaultMaxSize, Shards: 1}, clock: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	p := cfg.Parameters
	if p.StaleWhileRevalidate > 0 && p.TTL == 0 && p.Window == 0 {
		panic("memo: StaleWhileRevalidate needs TTL or Window")
	}
	n := p.Shards
	if n > 1 && !p.Unbounded && p.MaxSize > 0 && p.MaxSize < n {
		panic(fmt.Sprintf("memo: Shards(%d) needs MaxSize of at least %d, got %d", n, n, p.MaxSize))
	}
	c := build(fn, p, cfg.clock)
	if n > 1 && !c.off {
		c.hash = partHash[K]()
		c.parts = make([]*Cache[K, V], n)
		for i := range c.parts {
			pp := p
			if !p.Unbounded {
				pp.MaxSize = p.MaxSize / n
				if i < p.MaxSize%n {
					pp.MaxSize++
				}
			}
			part := build(fn, pp, cfg.clock)
			part.base = c.base
			part.slots = nil // keys are normalised before a part is chosen
			c.parts[i] = part
		}
	}
	if c.parts != nil {
		c.plain, c.split = false, !c.check
	}
	return c
}

// build makes one unsharded cache.
func build[K comparable, V any](fn func(context.Context, K) (V, error), p Parameters, clock func() time.Time) *Cache[K, V] {
	c := &Cache[K, V]{
		fn:     fn,
		params: p,
		off:    p.MaxSize == 0 && !p.Unbounded,
		check:  mayPanicOnEqual(reflect.TypeFor[K]()),
		slots:  numberSlots[K](p.Typed),
		timed:  p.TTL > 0 || p.Window > 0 || p.ErrorTTL > 0,
		clock:  clock,
	}
	c.plain = !c.off && !c.check && c.slots == nil && !c.timed
	if p.TTL > 0 || p.Window > 0 {
		c.l.exp = &expiries{grace: int64(p.StaleWhileRevalidate)}
	}
	c.l.init(p.MaxSize)
	if p.ErrorTTL > 0 {
		c.errs = &list[K, error]{exp: &expiries{}}
		c.errs.init(p.MaxSize)
	}
	if c.timed {
		c.base = c.clock()
	}
	return c
}

// Memoize returns a function that behaves like fn but remembers its results,
// and the Cache behind it. By default the cache holds the DefaultMaxSize most
// recently used results; see MaxSize and Unbounded.
//
// Concurrent calls for a key that is not cached run fn once; the other
// callers wait for that execution and share its result. fn never runs while
// the cache's lock is held, so it may call the memoized function for other
// keys, as a recursive function does. If fn calls the memoized function with
// its own key it waits for itself forever, as sync.Once does.
//
// If fn panics, nothing is cached, and every caller waiting on that execution
// panics with a *PanicError holding the original value and stack. A panic
// that no caller is left to receive (in a StaleWhileRevalidate refresh, or
// in an execution whose callers all gave up through their contexts) is
// raised again in the goroutine memo started for that execution, so it ends
// the program as any unrecovered panic does, as singleflight's DoChan does;
// it is never dropped. A key that holds an uncomparable value makes the
// returned function panic with an error wrapping ErrNotComparable, before fn
// runs.
func Memoize[K comparable, V any](fn func(K) V, opts ...Option) (func(K) V, *Cache[K, V]) {
	if fn == nil {
		panic(nilFunc)
	}
	c := newCache(func(_ context.Context, k K) (V, error) { return fn(k), nil }, opts)
	return func(k K) V {
		v, err := c.do(context.Background(), nil, k, c.fn)
		if err != nil {
			panic(err)
		}
		return v
	}, c
}

// MemoizeErr is Memoize for a function that can fail. An error is returned to
// every caller of that execution and never cached: the next call runs fn
// again. A key that holds an uncomparable value gives an error wrapping
// ErrNotComparable, and fn is not called.
func MemoizeErr[K comparable, V any](fn func(K) (V, error), opts ...Option) (func(K) (V, error), *Cache[K, V]) {
	if fn == nil {
		panic(nilFunc)
	}
	c := newCache(func(_ context.Context, k K) (V, error) { return fn(k) }, opts)
	return func(k K) (V, error) { return c.do(context.Background(), nil, k, c.fn) }, c
}

// MemoizeCtx is MemoizeErr for a function that takes a context.
//
// A caller whose context ends while it waits for the result stops waiting at
// once and gets the context's error; the execution carries on for the callers
// still waiting. The context fn receives carries the values of the context of
// the call that started the execution, and is cancelled only when every
// caller of that execution has stopped waiting. To let callers stop waiting,
// fn runs in a goroutine of its own, unless the starting caller's context can
// never be cancelled (its Done method returns nil, as context.Background's
// does); then it runs in the caller's goroutine. A call whose context has
// already ended gets the cached value if there is one, as a hit; otherwise it
// gets the context's error at once and counts as a miss, and neither starts
// fn nor joins an execution in progress. Every call honours its context this
// way, including calls that bypass the cache (MaxSize(0), NaN keys). A caller
// that joins an execution counts as a hit when it joins, even if its context
// ends before the result arrives.
func MemoizeCtx[K comparable, V any](fn func(context.Context, K) (V, error), opts ...Option) (func(context.Context, K) (V, error), *Cache[K, V]) {
	if fn == nil {
		panic(nilFunc)
	}
	c := newCache(fn, opts)
	return func(ctx context.Context, k K) (V, error) { return c.do(ctx, ctx.Done(), k, c.fn) }, c
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

// ended reports whether done, a context's Done channel, is closed. A nil
// channel, of a context that can never end, is not; checking that first
// keeps the common case free of a call.
func ended(done <-chan struct{}) bool { return done != nil && closed(done) }

func closed(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// execute runs fn for k on behalf of a caller counted as a miss, entered with
// c.mu held, and returns the result. If shared, the execution is registered
// as k's, for other callers to join and for its result to be stored. A caller
// whose context has ended gets its error, and nothing runs.
func (c *Cache[K, V]) execute(ctx context.Context, ctxDone <-chan struct{}, k K, fn func(context.Context, K) (V, error), shared bool) (V, error) {
	if ended(ctxDone) {
		c.mu.Unlock()
		var zero V
		return zero, ctx.Err()
	}
	if ctxDone == nil {
		// Nobody can stop waiting for this execution before it ends, since
		// later callers who give up leave this one waiting: run fn here.
		cl := c.spare()
		if shared {
			c.l.mark(k, c.register(cl))
		}
		c.mu.Unlock()
		var out ending[V]
		c.run(ctx, k, fn, cl, shared, &out)
		return out.result()
	}
	cl := &call[V]{waiters: 1, done: make(chan struct{}), gen: c.gen}
	if shared {
		c.l.mark(k, c.register(cl))
	}
	// fn keeps ctx's values but not its cancellation, which belongs to this
	// caller alone; cl.cancel fires when the last caller gives up.
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cl.cancel = cancel
	c.mu.Unlock()
	go c.run(fctx, k, fn, cl, shared, nil)
	return c.wait(ctxDone, ctx, k, cl)
}

// spare returns a call for an execution run by its caller, with c.mu held,
// reusing one if it can, so that misses in the steady state allocate nothing.
func (c *Cache[K, V]) spare() *call[V] {
	var cl *call[V]
	if n := len(c.spares); n > 0 {
		cl = c.spares[n-1]
		c.spares[n-1] = nil
		c.spares = c.spares[:n-1]
	} else {
		cl = new(call[V])
	}
	cl.waiters = 1
	cl.gen = c.gen
	return cl
}

// register makes cl the execution in progress for its key and returns its
// index in c.flights, for the key's mark.
func (c *Cache[K, V]) register(cl *call[V]) int32 {
	if n := len(c.idle); n > 0 {
		cl.flight = c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.flights[cl.flight] = cl
		return cl.flight
	}
	if len(c.flights) == 0 {
		c.flights = append(c.flights, nil) // index 0: a mark is never 0
	}
	cl.flight = int32(len(c.flights))
	c.flights = append(c.flights, cl)
	return cl.flight
}

// registered reports whether cl is still the execution in progress for its
// key: Clear, Forget and the last caller giving up end that, and then cl's
// result is not stored.
func (c *Cache[K, V]) registered(cl *call[V]) bool {
	return int(cl.flight) < len(c.flights) && c.flights[cl.flight] == cl
}

// unregister ends cl's registration; the caller deals with its key's mark.
func (c *Cache[K, V]) unregister(cl *call[V]) {
	c.flights[cl.flight] = nil
	c.idle = append(c.idle, cl.flight)
}

// wait waits for cl to end, or for ctxDone, whichever comes first.
func (c *Cache[K, V]) wait(ctxDone <-chan struct{}, ctx context.Context, k K, cl *call[V]) (V, error) {
	select {
	case <-cl.done:
		return cl.result()
	case <-ctxDone:
	}
	c.mu.Lock()
	if ended(cl.done) {
		// The execution ended as the context did: take its result, so that
		// a panic is not left without a caller to receive it.
		c.mu.Unlock()
		return cl.result()
	}
	cl.waiters--
	abandoned := cl.waiters == 0
	if abandoned && c.registered(cl) {
		// Later callers must not join an execution whose context is
		// cancelled: they start afresh. (A refresh is never abandoned: it
		// counts itself as a waiter.)
		c.unregister(cl)
		c.l.unmark(k)
	}
	c.mu.Unlock()
	if abandoned && cl.cancel != nil {
		cl.cancel()
	}
	var zero V
	return zero, ctx.Err()
}

// bypass runs fn for a call that cannot use the cache: caching is off, or k
// is not equal to itself. It counts a miss, stores nothing, and honours the
// caller's context as a miss does.
func (c *Cache[K, V]) bypass(ctx context.Context, ctxDone <-chan struct{}, k K, fn func(context.Context, K) (V, error)) (V, error) {
	c.mu.Lock()
	c.st.misses++
	return c.execute(ctx, ctxDone, k, fn, false)
}

// run executes fn for k and records the outcome in cl, turning a panic or a
// runtime.Goexit in fn into a recorded outcome so that the lock is released,
// the waiters are woken and nothing is cached. If shared, cl was registered
// as the execution for k. out, if not nil, receives the ending for the
// caller who runs fn itself, and cl may then be reused (see finish).
//
// A panic that no caller receives (a refresh nobody joined, an execution
// every caller gave up on) is raised again in run's goroutine, which memo
// started and nothing recovers, so it ends the program as a panic in any
// goroutine does, with the original value and stack in its message.
func (c *Cache[K, V]) run(ctx context.Context, k K, fn func(context.Context, K) (V, error), cl *call[V], shared bool, out *ending[V]) {
	var start, took time.Duration
	if c.params.MeasureExecTime {
		start = time.Since(epoch)
	}
	var now, wall int64
	returned := false
	defer func() {
		// Reached after a return, a recovered panic, or runtime.Goexit (which
		// cannot be recovered and goes on unwinding after this).
		if !returned && cl.panicked == nil {
			cl.goexit = true
		}
		if c.params.MeasureExecTime {
			took = time.Since(epoch) - start
		}
		if lost := c.finish(k, cl, shared, now, wall, took, out); lost != nil {
			panic(lost)
		}
	}()
	func() {
		defer func() {
			if !returned {
				if r := recover(); r != nil {
					cl.panicked = &PanicError{Value: r, Stack: debug.Stack()}
				}
			}
		}()
		cl.val, cl.err = fn(ctx, k)
		if shared && c.timed {
			// Read here, where a panicking clock is the execution's panic:
			// its callers receive it and the key is released.
			now, wall = c.stamp()
		}
		returned = true
	}()
}

// finish records the end of cl's execution, stores a successful result unless
// the key was forgotten or the cache cleared meanwhile, and wakes the waiters.
// It copies the ending to out, if not nil; then, if nobody joined, nobody
// else has seen cl, and it is kept for another execution. It returns cl's
// panic if no caller will receive it.
func (c *Cache[K, V]) finish(k K, cl *call[V], shared bool, now, wall int64, took time.Duration, out *ending[V]) (lost *PanicError) {
	failed := cl.err != nil || cl.panicked != nil || cl.goexit
	c.mu.Lock()
	if cl.gen == c.gen {
		// An execution that began before a Clear counts in the counters
		// that Clear reset, not in the new ones.
		c.st.execTime += took
		if failed {
			c.st.errors++
		}
	}
	if shared && c.registered(cl) {
		c.unregister(cl)
		c.settle(k, cl, failed, now, wall)
	}
	if out == nil {
		callers := cl.waiters
		if cl.refresh {
			callers-- // the refresh's own count
		}
		if callers == 0 {
			lost = cl.panicked
		}
	}
	cancel := cl.cancel
	if cl.done != nil {
		close(cl.done)
	}
	if out != nil {
		*out = cl.ending
		if cl.done == nil {
			*cl = call[V]{}
			c.spares = append(c.spares, cl)
		}
	}
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return lost
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
		store(c, c.errs, k, cl.err, now, addSat(now, int64(c.params.ErrorTTL)), false)
	default:
		c.l.unmark(k)
	}
}

// result hands a finished execution's ending to one caller.
func (o *ending[V]) result() (V, error) {
	if o.panicked != nil {
		panic(o.panicked)
	}
	if o.goexit {
		runtime.Goexit()
	}
	return o.val, o.err
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
