package memo

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

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

// call is one execution of the function for one key. Its fields other than
// done and waiters are written by the executing goroutine before done is
// closed and read by the callers after.
type call[V any] struct {
	done    chan struct{} // made when someone needs to wait; closed at the end
	waiters int           // callers still waiting, the executing one included
	cancel  context.CancelFunc
	flight  int32  // its index in shard.flights while it is registered
	gen     uint64 // shard.gen when it started
	refresh bool   // a background refresh of a stale value
	self    bool   // a refresh that counts itself among waiters (see joinRefresh)
	wrote   bool   // the value was written to the store
	until   int64  // for a value from the store, its expiry there (see tier.load)
	life    int64  // from ExpireAfter: how long the value stays fresh; < 0: not cached
	weight  int    // from MaxWeight's function
	mark    any    // the *entry[K, V] marking its key in the shard's list, while registered
	ending[V]
}

// ending is how an execution ended, as its callers receive it.
type ending[V any] struct {
	val      V
	err      error
	panicked *PanicError
	goexit   bool
}

// epoch anchors the readings ExecTime is measured with: time.Since of a time
// that has a monotonic reading reads the clock once, time.Now twice.
var epoch = time.Now()

// markOf is the mark in a shard's index of the execution flights[f].
func markOf(f int32) ref { return ref(-f) }

// flight returns the index in flights of the execution r marks, and whether
// r is a mark.
func (r ref) flight() (int32, bool) { return int32(-r), r < 0 }

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
// s.mu held, and returns the result. If shared, the execution is registered
// as k's, for other callers to join and for its result to be stored. A caller
// whose context has ended gets its error, and nothing runs.
func (s *shard[K, V]) execute(ctx context.Context, ctxDone <-chan struct{}, k K, fn func(context.Context, K) (V, error), shared bool) (V, error) {
	if ended(ctxDone) {
		s.unlock()
		var zero V
		return zero, ctx.Err()
	}
	if ctxDone == nil {
		// Nobody can stop waiting for this execution before it ends, since
		// later callers who give up leave this one waiting: run fn here.
		cl := s.spare()
		if shared {
			cl.mark = s.l.mark(k, markOf(s.register(cl)))
		}
		s.unlock()
		if s.c.traced && shared {
			ctx = &execCtx[K, V]{ctx, s.c, k}
		}
		var out ending[V]
		s.run(ctx, k, fn, cl, shared, &out)
		return out.result()
	}
	cl := &call[V]{waiters: 1, done: make(chan struct{}), gen: s.gen}
	if shared {
		cl.mark = s.l.mark(k, markOf(s.register(cl)))
	}
	// fn keeps ctx's values but not its cancellation, which belongs to this
	// caller alone; cl.cancel fires when the last caller gives up.
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cl.cancel = cancel
	s.unlock()
	if s.c.traced && shared {
		fctx = &execCtx[K, V]{fctx, s.c, k}
	}
	go s.run(fctx, k, fn, cl, shared, nil)
	return s.wait(ctxDone, ctx, k, cl)
}

// spare returns a call for an execution run by its caller, with s.mu held,
// reusing one if it can, so that a miss allocates no call record.
func (s *shard[K, V]) spare() *call[V] {
	var cl *call[V]
	if n := len(s.spares); n > 0 {
		cl = s.spares[n-1]
		s.spares[n-1] = nil
		s.spares = s.spares[:n-1]
	} else {
		cl = new(call[V])
	}
	cl.waiters = 1
	cl.gen = s.gen
	return cl
}

// register makes cl the execution in progress for its key and returns its
// index in s.flights, for the key's mark.
func (s *shard[K, V]) register(cl *call[V]) int32 {
	if n := len(s.idle); n > 0 {
		cl.flight = s.idle[n-1]
		s.idle = s.idle[:n-1]
		s.flights[cl.flight] = cl
		return cl.flight
	}
	if len(s.flights) == 0 {
		s.flights = append(s.flights, nil) // index 0: a mark is never 0
	}
	cl.flight = int32(len(s.flights))
	s.flights = append(s.flights, cl)
	return cl.flight
}

// registered reports whether cl is still the execution in progress for its
// key: Clear, Forget and the last caller giving up end that, and then cl's
// result is not stored.
func (s *shard[K, V]) registered(cl *call[V]) bool {
	return int(cl.flight) < len(s.flights) && s.flights[cl.flight] == cl
}

// unregister ends cl's registration; the caller deals with its key's mark.
func (s *shard[K, V]) unregister(cl *call[V]) {
	s.flights[cl.flight] = nil
	s.idle = append(s.idle, cl.flight)
}

// release ends the registration of cl, the execution in progress for k,
// and drops what leads calls to it: k's mark or, for a refresh, its entry in
// refreshing. Its result will not be stored, and later calls start afresh.
func (s *shard[K, V]) release(k K, cl *call[V]) {
	s.unregister(cl)
	if cl.refresh {
		delete(s.refreshing, k)
	} else {
		s.l.unmark(k)
	}
}

// wait waits for cl to end, or for ctxDone, whichever comes first.
func (s *shard[K, V]) wait(ctxDone <-chan struct{}, ctx context.Context, k K, cl *call[V]) (V, error) {
	select {
	case <-cl.done:
		return cl.result()
	case <-ctxDone:
	}
	s.mu.Lock()
	if ended(cl.done) {
		// The execution ended as the context did: take its result, so that
		// a panic is not left without a caller to receive it.
		s.unlock()
		return cl.result()
	}
	s.leave(k, cl)
	var zero V
	return zero, ctx.Err()
}

// leave takes a caller off cl, the execution for k, with s.mu held, and
// releases the lock. The last caller to leave abandons the execution: later
// callers must not join one whose context is cancelled, so they start afresh.
func (s *shard[K, V]) leave(k K, cl *call[V]) {
	cl.waiters--
	abandoned := cl.waiters == 0
	if abandoned && s.registered(cl) {
		s.release(k, cl)
	}
	s.unlock()
	if abandoned && cl.cancel != nil {
		cl.cancel()
	}
}

// ErrCycle is wrapped by the error of a call that would wait for its own
// execution: a function that calls itself with its own key, or a(1) calling
// b(1) calling a(1), through a context passed down (see MemoizeCtx). Without
// a context to follow, such a call waits forever, as sync.Once does.
var ErrCycle = errors.New("memo: a call would wait for its own execution")

// execCtx is the context an execution's function runs in: the context it was
// given, carrying the execution, so that a call made with it can tell that
// it would wait for an execution it runs in (see cycle).
type execCtx[K comparable, V any] struct {
	context.Context
	c *Cache[K, V]
	k K
}

// chainKey is the context key under which an execCtx answers with itself.
type chainKey struct{}

// Value answers chainKey with f, and every other key as f's context does.
func (f *execCtx[K, V]) Value(key any) any {
	if _, ok := key.(chainKey); ok {
		return f
	}
	return f.Context.Value(key)
}

// outer returns the context f wraps.
func (f *execCtx[K, V]) outer() context.Context { return f.Context }

// is reports whether f is the execution for k in c.
func (f *execCtx[K, V]) is(c any, k any) bool { return any(f.c) == c && any(f.k) == k }

// String names f's call, as the memoized function's name and its key.
func (f *execCtx[K, V]) String() string { return fmt.Sprintf("%s(%v)", f.c.name, f.k) }

// execution is an execCtx of any key and value types.
type execution interface {
	outer() context.Context
	is(c, k any) bool
	String() string
}

// cycle returns an error wrapping ErrCycle if the execution for k in c is
// among those ctx runs in, naming the calls from it to this one.
func cycle[K comparable, V any](ctx context.Context, c *Cache[K, V], k K) error {
	var calls []string
	for v := ctx.Value(chainKey{}); v != nil; {
		e := v.(execution)
		calls = append(calls, e.String())
		if e.is(c, k) {
			slices.Reverse(calls)
			calls = append(calls, calls[0])
			return fmt.Errorf("%w: %s", ErrCycle, strings.Join(calls, " -> "))
		}
		v = e.outer().Value(chainKey{})
	}
	return nil
}

// run executes fn for k and records the outcome in cl, turning a panic or a
// runtime.Goexit in fn into a recorded outcome so that the lock is released,
// the waiters are woken and nothing is cached. If shared, cl was registered
// as the execution for k. out, if not nil, receives the ending for the
// caller who runs fn itself, and cl may then be reused (see finish).
//
// A panic that no caller receives (a refresh nobody joined, an execution
// every caller gave up on) goes to the observer (see Observe). Without one it
// is raised again in run's goroutine, which memo started and nothing
// recovers, so it ends the program as a panic in any goroutine does, with the
// original value and stack in its message.
func (s *shard[K, V]) run(ctx context.Context, k K, fn func(context.Context, K) (V, error), cl *call[V], shared bool, out *ending[V]) {
	var start, took time.Duration
	if s.c.params.MeasureExecTime {
		start = time.Since(epoch)
	}
	var now, wall int64
	returned := false
	defer func() {
		// Reached after a return, a panic, or runtime.Goexit, which cannot
		// be recovered (recover returns nil) and goes on unwinding after this.
		if !returned {
			if r := recover(); r != nil {
				cl.panicked = &PanicError{Value: r, Stack: debug.Stack()}
			} else {
				cl.goexit = true
			}
		}
		if s.c.params.MeasureExecTime {
			took = time.Since(epoch) - start
		}
		if lost := s.finish(k, cl, shared, now, wall, took, out); lost != nil {
			panic(lost)
		}
	}()
	if shared && s.c.extra {
		s.runExtra(ctx, k, fn, cl)
	} else {
		cl.val, cl.err = fn(ctx, k)
	}
	if shared && s.c.timed {
		// Read here, where a panicking clock is the execution's panic: its
		// callers receive it and the key is released.
		now, wall = s.c.stamp()
	}
	returned = true
}

// runExtra is run's call of fn for a cache with a shared store, ExpireAfter
// or MaxWeight: through the store, and with the value's life and weight
// recorded. It runs where run recovers panics: a panic in the user's
// functions here is the execution's.
func (s *shard[K, V]) runExtra(ctx context.Context, k K, fn func(context.Context, K) (V, error), cl *call[V]) {
	if t := s.c.tier; t != nil {
		cl.val, cl.until, cl.life, cl.wrote, cl.err = t.load(s.c, ctx, k, fn)
	} else if cl.val, cl.err = fn(ctx, k); cl.err == nil {
		cl.life = s.c.lifeOf(cl.val)
	}
	if cl.err == nil && s.c.weigher != nil {
		cl.weight = s.c.weigh(k, cl.val)
	}
}

// finish records the end of cl's execution, stores a successful result unless
// the key was forgotten or the cache cleared meanwhile, and wakes the waiters.
// It copies the ending to out, if not nil; then, if nobody joined, nobody
// else has seen cl, and it is kept for another execution. A panic that no
// caller will receive goes to the observer as PanicLost, or, without one, is
// returned.
func (s *shard[K, V]) finish(k K, cl *call[V], shared bool, now, wall int64, took time.Duration, out *ending[V]) (lost *PanicError) {
	failed := cl.err != nil || cl.panicked != nil || cl.goexit
	s.mu.Lock()
	if cl.gen == s.gen {
		// An execution that began before a Clear counts in the counters
		// that Clear reset, not in the new ones.
		s.st.execTime += took
		if failed {
			s.st.errors++
		}
	}
	// A result written to the store after its key was forgotten or the
	// cache cleared is taken back out, once the lock is released.
	retract := cl.wrote
	if shared && s.registered(cl) {
		s.unregister(cl)
		s.settle(k, cl, failed, now, wall)
		retract = false
	}
	if out == nil {
		callers := cl.waiters
		if cl.self {
			callers-- // the refresh's own count
		}
		if callers == 0 && cl.panicked != nil {
			if s.c.observe != nil {
				s.pending = append(s.pending, Event[K, V]{Kind: PanicLost, Key: k, Panic: cl.panicked})
			} else {
				lost = cl.panicked
			}
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
			s.spares = append(s.spares, cl)
		}
	}
	s.unlock()
	if cancel != nil {
		cancel()
	}
	if retract {
		s.c.tier.forget(s.c, k)
	}
	return lost
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
