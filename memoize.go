package memo

import (
	"context"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
)

// nilArg is the panic of constructor given a nil function for its argument
// arg.
func nilArg(constructor, arg string) string {
	return "memo: " + constructor + " was given a nil " + arg
}

// funcName returns the name of fn, without its package path, for messages.
func funcName(fn any) string {
	name := runtime.FuncForPC(reflect.ValueOf(fn).Pointer()).Name()
	return name[strings.LastIndexByte(name, '/')+1:]
}

// The arguments a constructor may be given nil.
const (
	argFn  = "function to memoize (fn)"
	argKey = "key function (key)"
)

// newCache builds the cache of a memoized function: the facade and its
// shards.
func newCache[K comparable, V any](fn func(context.Context, K) (V, error), opts []Option) *Cache[K, V] {
	cfg := configure(opts)
	p := cfg.Parameters
	c := &Cache[K, V]{
		fn:          fn,
		params:      p,
		off:         p.MaxSize == 0 && !p.Unbounded && !p.SingleFlight,
		check:       mayPanicOnEqual(reflect.TypeFor[K]()),
		slots:       numberSlots[K](p.Typed),
		expireAfter: expirer[V](&cfg),
		weigher:     weigher[K, V](&cfg),
		clock:       cfg.clock,
	}
	c.timed = p.TTL > 0 || p.Window > 0 || p.ExpireAfterAccess > 0 || p.CacheErrors > 0 || c.expireAfter != nil
	c.observe = logged(observer[K, V](&cfg), cfg.logger)
	c.plain = !c.off && !c.check && c.slots == nil && !c.timed
	if c.timed {
		c.base = c.clock()
	}
	n := p.Shards
	if c.off {
		n = 1 // only counts misses
	}
	c.shards = make([]*shard[K, V], n)
	var hash func(K) uint64 // the shards' mixHash, for EstimateSizes and WTinyLFU
	if n > 1 {
		c.hash = shardHash[K]() // chooses the shard
	}
	var followed *atomic.Int64 // the keys EstimateSizes follows, in all the shards
	if p.EstimateSizes > 0 || p.WTinyLFU {
		hash = mixHash[K]()
	}
	if p.EstimateSizes > 0 {
		followed = new(atomic.Int64)
	}
	for i := range c.shards {
		max := share(p.MaxSize, n, i) // 0 when unbounded
		s := &c.first
		if i > 0 {
			s = new(shard[K, V])
		}
		if c.weigher != nil {
			s.l.wt = &weights{max: share(p.MaxWeight, n, i)}
		}
		if p.EstimateSizes > 0 && !c.off && !p.SingleFlight {
			s.l.sz = newSizer[K, V](max, p.MaxSize/n, n, p.EstimateSizes, hash, followed)
		}
		if p.WTinyLFU && max > 0 {
			s.l.pol = newTinyLFU[K, V](max, hash)
		}
		s.init(c, max)
		c.shards[i] = s
	}
	c.sharded = n > 1
	if cfg.sharing != nil {
		t := newTier[K, V](*cfg.sharing) // checked even if unused
		if !c.off {
			c.tier = t
		}
	}
	c.extra = c.tier != nil || c.expireAfter != nil || c.weigher != nil || p.SingleFlight
	c.bare = !c.extra && c.observe == nil && p.TTL == 0 && p.Window == 0 && p.ExpireAfterAccess == 0
	if t := c.tier; t != nil {
		t.apply(c)
		go t.poll(c)
	}
	return c
}

// share returns shard i's share of total, split between n shards as evenly
// as whole numbers allow.
func share(total, n, i int) int {
	if i < total%n {
		return total/n + 1
	}
	return total / n
}

// Memoize returns a function that behaves like fn but remembers its results,
// and the Cache behind it. By default the cache holds the DefaultMaxSize most
// recently used results; see MaxSize and Unbounded.
//
// Concurrent calls for a key that is not cached run fn once; the other
// callers wait for that execution and share its result. fn never runs while
// the cache's lock is held, so it may call the memoized function for other
// keys, as a recursive function does. If fn calls the memoized function with
// its own key (or a(1) calls b(1), which calls a(1)) it waits for itself
// forever, as sync.Once does. A function memoized with MemoizeCtx (or
// another constructor of functions that take a context) and called with the
// context it was given fails at once instead, with an error wrapping
// ErrCycle that names the calls; to find such cycles while testing, memoize
// with MemoizeCtx and pass the context down.
//
// A hit on a fresh value takes no lock: goroutines reading the cache on
// many cores do not wait for one another. It notes its use in a buffer of
// the processor it runs on, and whoever takes the lock next (a miss, Put,
// Forget, Clear) makes the moves noted, in order, before anything reads or
// changes the recency order. Calls made one after another, from one
// goroutine or several, see exactly LRU's order. Under concurrency the
// buffers of different processors are applied one after another, not in
// the order their hits came, the moves of hits that come while a full
// buffer waits for the lock are dropped, and while processors hit at once
// an LRU cache makes one move in four; the hits are counted all the same.
//
// If fn panics, nothing is cached, and every caller waiting on that execution
// panics with a *PanicError holding the original value and stack. A panic
// that no caller is left to receive (in a StaleWhileRevalidate refresh, or
// in an execution whose callers all gave up through their contexts) is never
// dropped: it goes to the observer as a PanicLost event (see Observe), or,
// without one, it is raised again in the goroutine memo started for that
// execution, so it ends the program as any unrecovered panic does, as
// singleflight's DoChan does. A key that holds an uncomparable value makes the
// returned function panic with an error wrapping ErrNotComparable, before fn
// runs.
func Memoize[K comparable, V any](fn func(K) V, opts ...Option) (func(K) V, *Cache[K, V]) {
	if fn == nil {
		panic(nilArg("Memoize", argFn))
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
		panic(nilArg("MemoizeErr", argFn))
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
//
// Callers that share an execution share its context's values, which are
// those of the caller that started it: a result computed with one caller's
// credentials, tenant or trace ID answers every caller of that key. If the
// result depends on such a value, make the value an argument (as the example
// of Memoize2Ctx does with a tenant), so that it is part of the key; if it
// must not be shared at all, do not memoize the function.
//
// A call made with the context fn was given, for an execution that fn runs
// in (fn calls itself with its own key, or a(1) calls b(1), which calls
// a(1)), would wait for itself: it fails at once instead, with an error
// wrapping ErrCycle that names the calls.
func MemoizeCtx[K comparable, V any](fn func(context.Context, K) (V, error), opts ...Option) (func(context.Context, K) (V, error), *Cache[K, V]) {
	if fn == nil {
		panic(nilArg("MemoizeCtx", argFn))
	}
	c := newCache(fn, opts)
	c.traced, c.name = true, funcName(fn)
	return func(ctx context.Context, k K) (V, error) { return c.do(ctx, ctx.Done(), k, c.fn) }, c
}

// Args2 is the key of a memoized function of two arguments.
type Args2[A, B comparable] struct {
	A A
	B B
}

// Args3 is the key of a memoized function of three arguments.
type Args3[A, B, C comparable] struct {
	A A
	B B
	C C
}

// Memoize2 is Memoize for a function of two arguments, cached under the pair.
func Memoize2[A, B comparable, V any](fn func(A, B) V, opts ...Option) (func(A, B) V, *Cache[Args2[A, B], V]) {
	if fn == nil {
		panic(nilArg("Memoize2", argFn))
	}
	f, c := Memoize(func(k Args2[A, B]) V { return fn(k.A, k.B) }, opts...)
	return func(a A, b B) V { return f(Args2[A, B]{a, b}) }, c
}

// Memoize2Err is MemoizeErr for a function of two arguments.
func Memoize2Err[A, B comparable, V any](fn func(A, B) (V, error), opts ...Option) (func(A, B) (V, error), *Cache[Args2[A, B], V]) {
	if fn == nil {
		panic(nilArg("Memoize2Err", argFn))
	}
	f, c := MemoizeErr(func(k Args2[A, B]) (V, error) { return fn(k.A, k.B) }, opts...)
	return func(a A, b B) (V, error) { return f(Args2[A, B]{a, b}) }, c
}

// Memoize2Ctx is MemoizeCtx for a function of two arguments.
func Memoize2Ctx[A, B comparable, V any](fn func(context.Context, A, B) (V, error), opts ...Option) (func(context.Context, A, B) (V, error), *Cache[Args2[A, B], V]) {
	if fn == nil {
		panic(nilArg("Memoize2Ctx", argFn))
	}
	f, c := MemoizeCtx(func(ctx context.Context, k Args2[A, B]) (V, error) { return fn(ctx, k.A, k.B) }, opts...)
	c.name = funcName(fn)
	return func(ctx context.Context, a A, b B) (V, error) { return f(ctx, Args2[A, B]{a, b}) }, c
}

// Memoize3 is Memoize for a function of three arguments, cached under the
// triple.
func Memoize3[A, B, C comparable, V any](fn func(A, B, C) V, opts ...Option) (func(A, B, C) V, *Cache[Args3[A, B, C], V]) {
	if fn == nil {
		panic(nilArg("Memoize3", argFn))
	}
	f, c := Memoize(func(k Args3[A, B, C]) V { return fn(k.A, k.B, k.C) }, opts...)
	return func(a A, b B, cc C) V { return f(Args3[A, B, C]{a, b, cc}) }, c
}

// Memoize3Err is MemoizeErr for a function of three arguments.
func Memoize3Err[A, B, C comparable, V any](fn func(A, B, C) (V, error), opts ...Option) (func(A, B, C) (V, error), *Cache[Args3[A, B, C], V]) {
	if fn == nil {
		panic(nilArg("Memoize3Err", argFn))
	}
	f, c := MemoizeErr(func(k Args3[A, B, C]) (V, error) { return fn(k.A, k.B, k.C) }, opts...)
	return func(a A, b B, cc C) (V, error) { return f(Args3[A, B, C]{a, b, cc}) }, c
}

// Memoize3Ctx is MemoizeCtx for a function of three arguments.
func Memoize3Ctx[A, B, C comparable, V any](fn func(context.Context, A, B, C) (V, error), opts ...Option) (func(context.Context, A, B, C) (V, error), *Cache[Args3[A, B, C], V]) {
	if fn == nil {
		panic(nilArg("Memoize3Ctx", argFn))
	}
	f, c := MemoizeCtx(func(ctx context.Context, k Args3[A, B, C]) (V, error) { return fn(ctx, k.A, k.B, k.C) }, opts...)
	c.name = funcName(fn)
	return func(ctx context.Context, a A, b B, cc C) (V, error) { return f(ctx, Args3[A, B, C]{a, b, cc}) }, c
}

// MemoizeKeyed is MemoizeErr for a function whose argument need not be
// comparable, such as a slice, a map or a struct holding them: results are
// cached under the key that key returns for the argument. KeyOf builds such
// keys from any arguments. If key fails, its error is returned, fn is not
// called, and nothing is counted or cached. The Cache's Unwrapped returns nil,
// since its keys cannot be turned back into arguments.
func MemoizeKeyed[A any, K comparable, V any](fn func(A) (V, error), key func(A) (K, error), opts ...Option) (func(A) (V, error), *Cache[K, V]) {
	if fn == nil {
		panic(nilArg("MemoizeKeyed", argFn))
	}
	if key == nil {
		panic(nilArg("MemoizeKeyed", argKey))
	}
	c := newCache[K, V](nil, opts)
	exec := func(_ context.Context, a A) (V, error) { return fn(a) }
	return func(a A) (V, error) { return keyed(c, context.Background(), nil, a, key, exec) }, c
}

// MemoizeKeyedCtx is MemoizeKeyed for a function that takes a context, with
// the context semantics of MemoizeCtx.
func MemoizeKeyedCtx[A any, K comparable, V any](fn func(context.Context, A) (V, error), key func(A) (K, error), opts ...Option) (func(context.Context, A) (V, error), *Cache[K, V]) {
	if fn == nil {
		panic(nilArg("MemoizeKeyedCtx", argFn))
	}
	if key == nil {
		panic(nilArg("MemoizeKeyedCtx", argKey))
	}
	c := newCache[K, V](nil, opts)
	c.traced, c.name = true, funcName(fn)
	return func(ctx context.Context, a A) (V, error) { return keyed(c, ctx, ctx.Done(), a, key, fn) }, c
}

func keyed[K comparable, V, A any](c *Cache[K, V], ctx context.Context, ctxDone <-chan struct{}, a A, key func(A) (K, error), fn func(context.Context, A) (V, error)) (V, error) {
	k, err := key(a)
	if err != nil {
		var zero V
		return zero, err
	}
	if c.slots != nil {
		k, _ = c.normalize(k)
	}
	return doArg(c, ctx, ctxDone, k, a, fn)
}
