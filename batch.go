package memo

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNotReturned is the error of a key that a batch function (see
// MemoizeBatch) was given and returned no value for, with a nil error.
var ErrNotReturned = errors.New("memo: the batch function returned no value for the key")

// errUnequal is the error of a key not equal to itself in a batch call: no
// map can hold its value.
var errUnequal = errors.New("memo: the key is not equal to itself (a NaN), so the batch function's map cannot hold its value")

// Batch is a memoized batch function, made by MemoizeBatch: Get answers
// many keys in one call, Call one key. It is safe for concurrent use by
// multiple goroutines.
type Batch[K comparable, V any] struct {
	c  *Cache[K, V]
	fn func(context.Context, []K) (map[K]V, error)
}

// MemoizeBatch memoizes fn, a function that computes the values of many
// keys in one call, such as a database query with an IN list, and returns
// it as a Batch, and the Cache behind it. The cache holds one entry per key,
// with every option of MemoizeCtx, Share included.
//
// Batch.Get answers each key it is given from the cache if it can, and calls
// fn once with the keys it cannot. Each key has one execution at a time, as
// in MemoizeCtx: a key that another call (Get or Call) is computing is
// joined, not computed again, and a key that a Get is computing is joined
// by the calls for it that come meanwhile. Each key counts in CacheInfo as
// one call: a hit if it is answered from the cache or joins an execution, a
// miss if this Get computes it; a key given twice to one Get counts once.
//
// fn is given distinct keys, and its map answers them: a key it leaves out
// fails with ErrNotReturned, and keys it adds are ignored. An error from fn
// fails every key it was given, and its map is ignored. A failure is the
// failing key's own: the other keys of the call are cached and returned
// (see Batch.Get), and the next call for a failed key computes it again. If
// fn panics, nothing of that execution is cached, and every caller of every
// key it was computing panics with a *PanicError, as in MemoizeCtx.
//
// fn runs as MemoizeCtx's function does: with the values of the context of
// the Get that starts it, in that Get's goroutine if its context can never
// be cancelled and in a goroutine of its own otherwise, and cancelled only
// when every caller of every key it computes has stopped waiting. A call
// made with fn's context for a key fn is computing fails with ErrCycle.
//
// In a shared cache (see Share), the keys a Get computes are first looked
// up in the store, all in one round trip if the store is a BatchGetter and
// with one Get per key, concurrently, otherwise; fn is called for the keys
// the store does not have, and their values are written to the store, at
// once if it is a BatchSetter and with one Set per key otherwise. A
// batch execution takes no lease in the store, so another process may
// compute one of its keys at the same time; Call takes leases as MemoizeCtx
// does. A stale key under StaleWhileRevalidate is refreshed alone, by fn
// given that one key.
func MemoizeBatch[K comparable, V any](fn func(context.Context, []K) (map[K]V, error), opts ...Option) (*Batch[K, V], *Cache[K, V]) {
	if fn == nil {
		panic(nilArg("MemoizeBatch", argFn))
	}
	b := &Batch[K, V]{fn: fn}
	b.c = newCache(b.one, opts)
	b.c.traced, b.c.name = true, funcName(fn)
	return b, b.c
}

// one is fn for one key, as a single execution runs it.
func (b *Batch[K, V]) one(ctx context.Context, k K) (V, error) {
	m, err := b.fn(ctx, []K{k})
	if err != nil {
		var zero V
		return zero, err
	}
	v, ok := m[k]
	if !ok {
		return v, ErrNotReturned
	}
	return v, nil
}

// Call returns the value of one key, as the function MemoizeCtx returns
// would, sharing Get's cache and executions: fn is called with this key
// alone if it has to run.
func (b *Batch[K, V]) Call(ctx context.Context, k K) (V, error) {
	return b.c.do(ctx, ctx.Done(), k, b.c.fn)
}

// BatchError is the error of a Batch.Get some of whose keys failed. The
// keys that did not fail are in the map Get returns.
type BatchError[K comparable] struct {
	// Errs maps each key that failed to its error.
	Errs map[K]error
	keys []K // Errs' keys, in the order Get was given them
}

// Error names how many keys failed, and the first of them, in the order
// Get was given them, with its error.
func (e *BatchError[K]) Error() string {
	k := e.keys[0]
	if len(e.keys) == 1 {
		return fmt.Sprintf("memo: key %v failed: %v", k, e.Errs[k])
	}
	return fmt.Sprintf("memo: %d keys failed, the first %v: %v", len(e.keys), k, e.Errs[k])
}

// Unwrap returns the errors of the keys, so errors.Is and errors.As look
// at each.
func (e *BatchError[K]) Unwrap() []error {
	errs := make([]error, len(e.keys))
	for i, k := range e.keys {
		errs[i] = e.Errs[k]
	}
	return errs
}

// want is one distinct key of a Get, and how it is answered.
type want[K comparable, V any] struct {
	k      K // the cache's key
	arg    K // the key fn is given: the first the caller gave for k (see normalize)
	s      *shard[K, V]
	cl     *call[V] // the execution it waits for; nil when answered
	shared bool     // cl is registered for k (false in a cache that is off)
	val    V        // its answer, when cl is nil
	err    error    // its error, when cl is nil or its caller gave up on cl
	over   bool     // cl has ended: written and read by run alone
}

// Get returns the values of keys: a map holding every key given that did
// not fail. If some keys failed, it also returns a *BatchError that maps
// each of them to its error: ErrNotReturned, fn's error, ErrCycle, or,
// for the keys still being computed when ctx ends, ctx's error. A key of a
// value that cannot be compared fails the whole call with an error wrapping
// ErrNotComparable before anything is looked up or counted; a key not
// equal to itself (a NaN) fails alone, as no map can hold its value.
//
// With ctx already ended, Get answers the keys it can from the cache and
// fails the others at once, starting and joining nothing. If any key's
// execution panicked, Get panics with its *PanicError once every key is
// answered.
func (b *Batch[K, V]) Get(ctx context.Context, keys []K) (map[K]V, error) {
	c := b.c
	ctxDone := ctx.Done()
	out := make(map[K]V, len(keys))
	if c.plain {
		// As do's fast path: the hits first, without a lock; the keys
		// below from the first that is not a hit on, so that a key given
		// twice is counted once.
		missed := false
		for i, k := range keys {
			if _, dup := out[k]; dup {
				continue
			}
			if k == k {
				s := c.shard(k)
				if v, ok := s.l.read(&s.mu, k, 0); ok {
					out[k] = v
					continue
				}
			}
			rest := make([]K, 0, len(keys)-i)
			for _, k := range keys[i:] {
				if _, dup := out[k]; !dup {
					rest = append(rest, k)
				}
			}
			keys, missed = rest, true
			break
		}
		if !missed {
			return out, nil
		}
	}
	ws := make([]want[K, V], 0, len(keys))
	of := make([]int, len(keys)) // keys[i] is answered by ws[of[i]]
	seen := make(map[K]int, len(keys))
	for i, k := range keys {
		nk := k
		if c.slots != nil {
			nk, _ = c.normalize(k)
		}
		s, out, err := c.admit(nk)
		switch {
		case out == badKey:
			return nil, fmt.Errorf("memo: Batch.Get: key %d of %d: %w", i, len(keys), err)
		case out == uncached && !c.off:
			err = errUnequal
		default:
			if j, ok := seen[nk]; ok {
				of[i] = j
				continue
			}
			seen[nk] = len(ws)
		}
		of[i] = len(ws)
		ws = append(ws, want[K, V]{k: nk, arg: k, s: s, err: err})
	}

	var own []*want[K, V]
	var fctx context.Context
	var live *atomic.Int64
	var cancel context.CancelFunc
	now := c.now()
	for i := range ws {
		w := &ws[i]
		if w.err != nil {
			w.s.mu.Lock()
			w.s.st.misses++
			w.s.unlock()
			continue
		}
		if !b.find(ctx, ctxDone, w, now) {
			continue
		}
		// This call computes w: a miss, counted in find, with w.s.mu held.
		cl := &call[V]{waiters: 1, done: make(chan struct{}), gen: w.s.gen}
		if ctxDone != nil {
			if fctx == nil {
				// As in execute: fn keeps ctx's values, and is cancelled
				// when the callers of all its keys have given up.
				fctx, cancel = context.WithCancel(context.WithoutCancel(ctx))
				live = new(atomic.Int64)
			}
			live.Add(1)
			fired := new(atomic.Bool)
			cl.cancel = func() {
				if fired.CompareAndSwap(false, true) && live.Add(-1) == 0 {
					cancel()
				}
			}
		}
		if w.shared {
			cl.mark = w.s.l.mark(w.k, markOf(w.s.register(cl)))
		}
		w.s.unlock()
		w.cl = cl
		own = append(own, w)
	}
	if len(own) > 0 {
		if ctxDone == nil {
			b.run(ctx, own)
		} else {
			go b.run(fctx, own)
		}
	}
	return b.collect(ctx, ctxDone, keys, ws, of, out)
}

// find answers w from the cache at now if it can (a hit, or an error or a
// stale value kept for its key), or makes it join the execution in progress
// for its key, and reports false. Otherwise it counts a miss, and, unless
// ctx has ended, which fails w, reports true with w.s.mu held, for the
// caller to start w's execution.
func (b *Batch[K, V]) find(ctx context.Context, ctxDone <-chan struct{}, w *want[K, V], now int64) bool {
	c, s := b.c, w.s
	if c.off {
		s.mu.Lock()
	} else {
		v, r, hit := s.find(w.k, now)
		if hit {
			w.val = v
			return false
		}
		if c.timed {
			fn := c.fn
			if w.arg != w.k {
				fn = bind[K](c.fn, w.arg)
			}
			var answered bool
			if w.val, r, answered, w.err = s.expired(ctx, w.k, r, now, fn); answered {
				return false
			}
		}
		if f, ok := s.inFlight(w.k, r); ok && !ended(ctxDone) {
			cl := s.flights[f]
			gen := s.join(cl)
			s.unlock()
			if w.err = s.cyclic(ctx, w.k, cl, gen); w.err == nil {
				w.cl = cl
			}
			return false
		}
		w.shared = true
	}
	s.st.misses++
	if ended(ctxDone) {
		s.unlock()
		w.err = ctx.Err()
		return false
	}
	return true
}

// collect waits for the executions of ws, or for ctxDone, and returns what
// Get returns for keys, adding their values to out.
func (b *Batch[K, V]) collect(ctx context.Context, ctxDone <-chan struct{}, keys []K, ws []want[K, V], of []int, out map[K]V) (map[K]V, error) {
	gaveUp := false
	for i := range ws {
		w := &ws[i]
		if w.cl == nil {
			continue
		}
		if !gaveUp {
			select {
			case <-w.cl.done:
				continue
			case <-ctxDone:
				gaveUp = true
			}
		}
		// As in wait: a result that came as ctx ended is taken.
		w.s.mu.Lock()
		if ended(w.cl.done) {
			w.s.unlock()
			continue
		}
		w.s.leave(w.k, w.cl)
		w.err = ctx.Err() // (not w.cl = nil: run reads it)
	}
	for i := range ws {
		if w := &ws[i]; w.err == nil && w.cl != nil && w.cl.panicked != nil {
			panic(w.cl.panicked)
		}
	}
	for i := range ws {
		if w := &ws[i]; w.err == nil && w.cl != nil && w.cl.goexit {
			runtime.Goexit()
		}
	}
	var failed *BatchError[K]
	for i, k := range keys {
		w := &ws[of[i]]
		v, err := w.val, w.err
		if err == nil && w.cl != nil {
			v, err = w.cl.val, w.cl.err
		}
		if err == nil {
			out[k] = v
			continue
		}
		if failed == nil {
			failed = &BatchError[K]{Errs: map[K]error{}}
		}
		if _, dup := failed.Errs[k]; !dup {
			failed.keys = append(failed.keys, k)
		}
		failed.Errs[k] = err
	}
	if failed != nil {
		return out, failed
	}
	return out, nil
}

// run is the execution of ws, the keys one Get computes, each registered
// as its key's execution (unless the cache is off): it answers the keys it
// can from the store, calls fn once for the others, and ends each key's
// execution as run does one key's, with finish. fn's panic or Goexit, or
// one in the user's code run here (codec, clock, ExpireAfter, MaxWeight), is
// the outcome of every key not yet ended.
func (b *Batch[K, V]) run(ctx context.Context, ws []*want[K, V]) {
	c := b.c
	var start time.Duration
	if c.params.MeasureExecTime {
		start = time.Since(epoch)
	}
	left := ws // the keys not yet ended
	var now, wall int64
	returned := false
	defer func() {
		if !returned {
			var pe *PanicError // one for every key, as the callers of one execution share one
			if p := recover(); p != nil {
				pe = &PanicError{Value: p, Stack: debug.Stack()}
			}
			for _, w := range left {
				if w.over {
					continue
				}
				if pe != nil {
					w.cl.panicked = pe
				} else {
					w.cl.goexit = true
				}
			}
		}
		var took time.Duration
		if c.params.MeasureExecTime && len(left) > 0 {
			took = (time.Since(epoch) - start) / time.Duration(len(left))
		}
		var lost *PanicError
		for _, w := range left {
			if p := w.end(now, wall, took); p != nil && lost == nil {
				lost = p
			}
		}
		if lost != nil {
			panic(lost)
		}
	}()
	t := c.tier
	var keys []storeKey // the store's keys of left, with a tier
	if t != nil {
		left, keys = b.fromStore(ctx, left)
	}
	if len(left) == 0 {
		returned = true
		return
	}
	args := make([]K, len(left))
	for i, w := range left {
		args[i] = w.arg
	}
	fctx := ctx
	if c.traced {
		fctx = &batchCtx[K, V]{ctx, c, args}
	}
	m, err := b.fn(fctx, args)
	for _, w := range left {
		cl := w.cl
		v, ok := m[w.arg]
		switch {
		case err != nil:
			cl.err = err
		case !ok:
			cl.err = ErrNotReturned
		default:
			cl.val = v
			if w.shared && c.extra {
				cl.life = c.lifeOf(v)
				if c.weigher != nil {
					cl.weight = c.weigh(w.k, v)
				}
			}
		}
	}
	if t != nil && err == nil && !t.paused() {
		b.toStore(ctx, left, keys)
	}
	if c.timed {
		now, wall = c.stamp()
	}
	returned = true
}

// fromStore ends the executions of the keys of ws that the store holds,
// and fails those the store cannot hold, and returns the others, with their
// store keys.
func (b *Batch[K, V]) fromStore(ctx context.Context, ws []*want[K, V]) (left []*want[K, V], keys []storeKey) {
	c, t := b.c, b.c.tier
	var ks []K
	for _, w := range ws {
		key, err := t.key(w.k)
		if err != nil {
			w.cl.err = err
			w.end(0, 0, 0)
			continue
		}
		left, keys, ks = append(left, w), append(keys, key), append(ks, w.k)
	}
	if len(left) == 0 || t.paused() {
		return left, keys
	}
	vs, until, ok := t.getBatch(c, ctx, ks, keys)
	var now, wall int64
	if c.timed && slices.Contains(ok, true) {
		now, wall = c.stamp()
	}
	n := 0
	for i, w := range left {
		if !ok[i] {
			t.misses.Add(1)
			left[n], keys[n] = w, keys[i]
			n++
			continue
		}
		t.hits.Add(1)
		w.cl.val, w.cl.until = vs[i], until[i]
		w.end(now, wall, 0)
	}
	return left[:n], keys[:n]
}

// end ends w's execution, unless it has ended, with finish; took is its
// share of the time the batch took.
func (w *want[K, V]) end(now, wall int64, took time.Duration) *PanicError {
	if w.over {
		return nil
	}
	w.over = true
	return w.s.finish(w.k, w.cl, w.shared, now, wall, took, nil)
}

// toStore writes the values fn returned for ws, whose store keys are keys,
// to the store, as put does each: with one SetBatch if the store is a
// BatchSetter, else with one put per key, concurrently.
func (b *Batch[K, V]) toStore(ctx context.Context, ws []*want[K, V], keys []storeKey) {
	c, t := b.c, b.c.tier
	bs, batched := t.Store.(BatchSetter)
	if !batched {
		each(len(ws), func(i int) {
			if cl := ws[i].cl; cl.err == nil {
				cl.wrote = t.put(c, ctx, ws[i].k, keys[i], cl.val, cl.life)
			}
		})
		return
	}
	var entries []Entry
	var written []*call[V]
	for i, w := range ws {
		if w.cl.err != nil {
			continue
		}
		if v, exp, ok := t.framed(c, w.k, keys[i], w.cl.val, w.cl.life); ok {
			entries = append(entries, Entry{keys[i].store, v, exp})
			written = append(written, w.cl)
		}
	}
	if len(entries) == 0 {
		return
	}
	err := t.op(context.WithoutCancel(ctx), func(ctx context.Context) error {
		return bs.SetBatch(ctx, t.ns, entries)
	})
	if err != nil {
		t.fail(c, ws[0].k, err) // one failure, reported with the first key
	}
	for _, cl := range written {
		// Even after an error, as some may be written: what is written
		// after a key is forgotten is then taken out (see finish).
		cl.wrote = true
	}
}

// getBatch looks ks, whose store keys are keys, up in the store, and checks
// and decodes what it finds as get does: with one GetBatch if the store is a
// BatchGetter, else with one get per key, concurrently. It returns each
// key's value and its expiry in the store, and whether it was found.
func (t *tier[K, V]) getBatch(c *Cache[K, V], ctx context.Context, ks []K, keys []storeKey) (vs []V, until []int64, ok []bool) {
	vs, until, ok = make([]V, len(ks)), make([]int64, len(ks)), make([]bool, len(ks))
	bg, batched := t.Store.(BatchGetter)
	if !batched {
		each(len(ks), func(i int) { vs[i], until[i], ok[i], _ = t.get(c, ctx, ks[i], keys[i]) })
		return vs, until, ok
	}
	names := make([]string, len(keys))
	for i, key := range keys {
		names[i] = key.store
	}
	var found []Lookup
	err := t.op(ctx, func(ctx context.Context) (err error) {
		ctx = context.WithValue(ctx, readLimitKey{}, t.MaxValue+sealedLen)
		found, err = bg.GetBatch(ctx, t.ns, names)
		if err == nil && len(found) != len(names) {
			err = fmt.Errorf("memo: the store's GetBatch returned %d lookups for %d keys", len(found), len(names))
		}
		return err
	})
	if err != nil {
		if ctx.Err() == nil {
			t.fail(c, ks[0], err) // one failure, of the first key's lookup
		}
		return vs, until, ok
	}
	for i, f := range found {
		if f.Found {
			vs[i], until[i], ok[i] = t.open(c, ks[i], keys[i], f.Value, f.Expires)
		}
	}
	return vs, until, ok
}

// maxEach is the most goroutines each runs at once.
const maxEach = 16

// each calls f(i) for every i in [0, n), on up to maxEach goroutines at
// once, and returns when all have returned. A panic in f is raised again in
// each's caller, once the others have returned.
func each(n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var raised any
	for range min(n, maxEach) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					mu.Lock()
					if raised == nil {
						raised = p
					}
					mu.Unlock()
				}
			}()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		}()
	}
	wg.Wait()
	if raised != nil {
		panic(raised)
	}
}

// batchCtx is the context a batch execution's function runs in, carrying
// the execution, as execCtx carries one key's (see cycle).
type batchCtx[K comparable, V any] struct {
	context.Context
	c    *Cache[K, V]
	keys []K
}

// Value answers chainKey with f, and every other key as f's context does.
func (f *batchCtx[K, V]) Value(key any) any {
	if _, ok := key.(chainKey); ok {
		return f
	}
	return f.Context.Value(key)
}

// outer returns the context f wraps.
func (f *batchCtx[K, V]) outer() context.Context { return f.Context }

// is reports whether f computes k in c.
func (f *batchCtx[K, V]) is(c any, k any) bool {
	if any(f.c) != c {
		return false
	}
	key, ok := k.(K)
	return ok && slices.Contains(f.keys, key)
}

// String names f's call, as the function's name and its keys.
func (f *batchCtx[K, V]) String() string { return fmt.Sprintf("%s(%v)", f.c.name, f.keys) }
