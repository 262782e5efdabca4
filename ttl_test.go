package memo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestTTLExpiresAtExactlyStorePlusTTL(t *testing.T) {
	clk := newFakeClock(t0)
	fn, _ := counted()
	f, c := Memoize(fn, TTL(10*time.Second), Clock(clk.Now))
	assert.Equal(t, 1, f("a"))
	clk.Advance(10*time.Second - time.Nanosecond)
	assert.Equal(t, 1, f("a"), "fresh while now < stored+ttl")
	clk.Advance(time.Nanosecond)
	assert.Equal(t, 2, f("a"), "expired at exactly stored+ttl: recomputed")
	clk.Advance(9 * time.Second)
	assert.Equal(t, 2, f("a"), "the recomputed value got a fresh expiry")
	ci := c.CacheInfo()
	assert.Equal(t, counts{Hits: 2, Misses: 2, Expirations: 1}, countsOf(ci))
}

func TestTTLHitDoesNotExtend(t *testing.T) {
	clk := newFakeClock(t0)
	fn, _ := counted()
	f, c := Memoize(fn, MaxSize(2), TTL(10*time.Second), Clock(clk.Now))
	f("a") // stored at 0
	clk.Advance(time.Second)
	f("b") // stored at 1
	clk.Advance(time.Second)
	f("a") // a hit at 2 makes a most recent...
	clk.Advance(time.Second)
	f("c") // ...so c evicts b, the least recently used
	assert.Equal(t, []string{"c", "a"}, c.shards[0].l.keys())
	clk.Set(t0.Add(10 * time.Second))
	assert.Equal(t, 4, f("a"), "...but a still expires 10s after it was stored")
}

func TestTTLCurrSizeAndPurge(t *testing.T) {
	clk := newFakeClock(t0)
	fn, _ := counted()
	f, c := Memoize(fn, TTL(time.Minute), Clock(clk.Now))
	f("a")
	f("b")
	clk.Advance(30 * time.Second)
	f("c")
	assert.Equal(t, 3, c.CacheInfo().CurrSize)
	clk.Advance(30 * time.Second)
	assert.Equal(t, 1, c.CacheInfo().CurrSize, "expired entries are never counted")
	assert.Equal(t, 2, c.CacheInfo().Expirations)
	assert.Equal(t, 1, c.shards[0].l.len(), "counting them out dropped them")

	clk.Advance(30 * time.Second)
	assert.Equal(t, 1, c.PurgeExpired())
	assert.Zero(t, c.shards[0].l.len())
	assert.Zero(t, c.PurgeExpired())
}

func TestTTLExpiredGoBeforeLiveEvicted(t *testing.T) {
	clk := newFakeClock(t0)
	fn, runs := counted()
	f, c := Memoize(fn, MaxSize(2), TTL(10*time.Second), Clock(clk.Now))
	f("a") // expires at 10
	clk.Advance(5 * time.Second)
	f("b") // expires at 15
	clk.Advance(time.Second)
	f("a") // a most recent, b least recent
	clk.Set(t0.Add(11 * time.Second))
	f("c") // full: a has expired, so it goes, not b
	ci := c.CacheInfo()
	assert.Equal(t, 0, ci.Evictions)
	assert.Equal(t, 1, ci.Expirations)
	before := runs.Load()
	f("b")
	assert.Equal(t, before, runs.Load(), "b, live, was kept")
}

func TestWindowExpiresTogether(t *testing.T) {
	clk := newFakeClock(t0.Add(10 * time.Second)) // 12:00:10
	fn, _ := counted()
	f, c := Memoize(fn, Window(time.Minute), Clock(clk.Now))
	f("early") // stored at 12:00:10
	clk.Set(t0.Add(59 * time.Second))
	f("late") // stored at 12:00:59
	// A second process, started at another time, on the same windows.
	g, _ := Memoize(fn, Window(time.Minute), Clock(clk.Now))
	g("other")
	clk.Set(t0.Add(time.Minute - time.Nanosecond))
	assert.Equal(t, 2, c.CacheInfo().CurrSize, "all fresh until the window ends")
	clk.Set(t0.Add(time.Minute)) // 12:01:00, the window's end
	assert.Equal(t, 0, c.CacheInfo().CurrSize)
	ci := c.CacheInfo()
	assert.Equal(t, 2, ci.Expirations)
	before := g("other")
	assert.Equal(t, before, g("other"))
	assert.Equal(t, 4, before, "the other cache's value expired at the same instant")
}

func TestWindowOldEntriesDoNotLinger(t *testing.T) {
	clk := newFakeClock(t0)
	f, c := Memoize(func(n int) int { return n }, Unbounded(), Window(time.Hour), Clock(clk.Now))
	for i := range 1000 {
		f(i)
	}
	clk.Advance(time.Hour)
	f(-1)
	assert.Equal(t, 1, c.shards[0].l.len(), "storing in a new window drops the old window's entries")
	assert.Equal(t, 1000, c.CacheInfo().Expirations)
}

func TestStaleWhileRevalidate(t *testing.T) {
	defer goleak.VerifyNone(t)
	clk := newFakeClock(t0)
	var runs atomic.Int32
	started, release := make(chan struct{}, 4), make(chan error)
	f, c := MemoizeErr(func(k string) (int, error) {
		n := int(runs.Add(1))
		if n > 1 {
			started <- struct{}{}
			if err := <-release; err != nil {
				return 0, err
			}
		}
		return n, nil
	}, TTL(10*time.Second), StaleWhileRevalidate(5*time.Second), Clock(clk.Now))

	within(t, timeout, func() {
		v, _ := f("k")
		assert.Equal(t, 1, v)
		clk.Set(t0.Add(12 * time.Second)) // expired 2s ago, within grace
		v, _ = f("k")
		assert.Equal(t, 1, v, "the stale value comes back at once")
		<-started
		v, _ = f("k")
		assert.Equal(t, 1, v, "still stale while the refresh runs")
		assert.Equal(t, int32(2), runs.Load(), "one refresh per key at a time")

		release <- errors.New("refresh failed")
		eventually(func() bool { return c.CacheInfo().Errors == 1 })
		v, err := f("k")
		assert.NoError(t, err)
		assert.Equal(t, 1, v, "a failed refresh keeps the stale value")
		<-started // that call started another refresh
		release <- nil
		eventually(func() bool { v, _ := f("k"); return v == 3 })
	})
	clk.Set(t0.Add(12*time.Second + 10*time.Second - time.Nanosecond))
	v, _ := f("k")
	assert.Equal(t, 3, v, "the refreshed value got a fresh expiry")
	ci := c.CacheInfo()
	assert.Equal(t, 1, ci.Misses, "stale hits and refreshes are not misses")
}

func TestStaleWhileRevalidateGraceEnds(t *testing.T) {
	defer goleak.VerifyNone(t)
	clk := newFakeClock(t0)
	fn, _ := counted()
	f, c := Memoize(fn, TTL(10*time.Second), StaleWhileRevalidate(5*time.Second), Clock(clk.Now))
	f("k")
	clk.Set(t0.Add(15 * time.Second)) // expiry + grace: no longer servable
	assert.Equal(t, 2, f("k"), "past the grace period a call waits for a fresh value")
	assert.Equal(t, 1, c.CacheInfo().Expirations)
}

// refreshGates returns a function to memoize that returns how many times it
// has run; every run after the first for key "k" sends its number on started
// and waits for gates[number] to close.
func refreshGates() (fn func(string) (int, error), runs *atomic.Int32, started chan int, gates [4]chan struct{}) {
	runs, started = new(atomic.Int32), make(chan int, len(gates))
	for i := range gates {
		gates[i] = make(chan struct{})
	}
	return func(k string) (int, error) {
		n := int(runs.Add(1))
		if k == "k" && n > 1 {
			started <- n
			<-gates[n]
		}
		return n, nil
	}, runs, started, gates
}

// TestRefreshOutlivesStaleEntry: when the stale entry a refresh is renewing
// goes (its grace ends, or it is evicted) before the refresh returns, later
// calls join the refresh rather than start a second execution, and its result
// is stored.
func TestRefreshOutlivesStaleEntry(t *testing.T) {
	for _, tc := range []struct {
		name string
		drop func(f func(string) (int, error), clk *fakeClock, c *Cache[string, int])
	}{
		{"grace ends", func(_ func(string) (int, error), clk *fakeClock, _ *Cache[string, int]) {
			clk.Set(t0.Add(16 * time.Second)) // the next call finds it past its grace
		}},
		{"purged", func(_ func(string) (int, error), clk *fakeClock, c *Cache[string, int]) {
			clk.Set(t0.Add(16 * time.Second))
			c.PurgeExpired()
		}},
		{"evicted", func(f func(string) (int, error), _ *fakeClock, _ *Cache[string, int]) { f("other") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			clk := newFakeClock(t0)
			fn, runs, started, gates := refreshGates()
			f, c := MemoizeErr(fn, MaxSize(1), TTL(10*time.Second), StaleWhileRevalidate(5*time.Second), Clock(clk.Now))
			within(t, timeout, func() {
				f("k")
				clk.Set(t0.Add(12 * time.Second))
				v, _ := f("k")
				assert.Equal(t, 1, v, "stale")
				assert.Equal(t, 2, <-started, "the refresh runs")
				tc.drop(f, clk, c)
				res := make(chan int)
				go func() { v, _ := f("k"); res <- v }()
				eventually(func() bool { return c.CacheInfo().Coalesced == 1 })
				c.shards[0].mu.Lock()
				held := c.shards[0].l.keys()
				c.shards[0].mu.Unlock()
				assert.NotContains(t, held, "k", "the stale entry is gone")
				close(gates[2])
				assert.Equal(t, 2, <-res, "the call joined the refresh")
			})
			before := runs.Load()
			v, _ := f("k")
			assert.Equal(t, 2, v, "the refresh's result was stored")
			assert.Equal(t, before, runs.Load())
			assert.Zero(t, c.shards[0].l.marks)
		})
	}
}

// TestForgetDuringRefresh: a refresh running when its key is forgotten does
// not store its result, and does not hold up the execution that a later call
// starts.
func TestForgetDuringRefresh(t *testing.T) {
	defer goleak.VerifyNone(t)
	clk := newFakeClock(t0)
	fn, runs, started, gates := refreshGates()
	f, c := MemoizeErr(fn, TTL(10*time.Second), StaleWhileRevalidate(5*time.Second), Clock(clk.Now), MeasureExecTime())
	within(t, timeout, func() {
		f("k")
		clk.Set(t0.Add(12 * time.Second))
		f("k")
		assert.Equal(t, 2, <-started, "the refresh runs")
		assert.True(t, c.Forget("k"))
		res := make(chan int)
		go func() { v, _ := f("k"); res <- v }()
		assert.Equal(t, 3, <-started, "a call after Forget starts its own execution")
		close(gates[2])
		// Only the refresh has returned: ExecTime grows when an execution's
		// outcome has been handled.
		eventually(func() bool { return c.CacheInfo().ExecTime > 0 })
		assert.Zero(t, c.CacheInfo().CurrSize, "the forgotten refresh stored nothing")
		close(gates[3])
		assert.Equal(t, 3, <-res)
	})
	v, _ := f("k")
	assert.Equal(t, 3, v)
	assert.Equal(t, int32(3), runs.Load())
	assert.Equal(t, 1, c.CacheInfo().CurrSize)
}

func TestCacheErrors(t *testing.T) {
	clk := newFakeClock(t0)
	boom := errors.New("boom")
	var runs atomic.Int32
	f, c := MemoizeErr(func(k string) (int, error) {
		if runs.Add(1) <= 2 {
			return 0, boom
		}
		return 7, nil
	}, CacheErrors(5*time.Second), Clock(clk.Now))
	_, err := f("k")
	require.ErrorIs(t, err, boom)
	clk.Advance(5*time.Second - 1)
	_, err = f("k")
	require.ErrorIs(t, err, boom, "the error is served from the cache")
	assert.Equal(t, int32(1), runs.Load())
	assert.Equal(t, 0, c.CacheInfo().CurrSize, "cached errors are not counted as results")

	clk.Advance(1)
	_, err = f("k")
	require.ErrorIs(t, err, boom, "expired: the function ran again")
	assert.Equal(t, int32(2), runs.Load())
	assert.True(t, c.Forget("k"), "Forget drops a cached error")
	v, err := f("k")
	require.NoError(t, err)
	assert.Equal(t, 7, v)
	ci := c.CacheInfo()
	assert.Equal(t, counts{Hits: 1, Misses: 3, Errors: 2, Expirations: 1}, countsOf(ci))
}

func TestTTLWithContextAndSingleFlight(t *testing.T) {
	clk := newFakeClock(t0)
	g := newGate()
	f, c := MemoizeCtx(func(_ context.Context, k int) (int, error) { return g.fn(k) }, TTL(time.Second), Clock(clk.Now))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	within(t, timeout, func() {
		res := make(chan int, 2)
		for range 2 {
			go func() { v, _ := f(ctx, 1); res <- v }()
		}
		<-g.started
		eventually(func() bool { return c.CacheInfo().Coalesced == 1 })
		close(g.release)
		assert.Equal(t, 10, <-res)
		assert.Equal(t, 10, <-res)
	})
	assert.Equal(t, int32(1), g.runs.Load())
}

func TestNoGoroutinesWithoutStaleWhileRevalidate(t *testing.T) {
	defer goleak.VerifyNone(t)
	clk := newFakeClock(t0)
	fn, _ := counted()
	f, _ := Memoize(fn, TTL(time.Second), Clock(clk.Now))
	for i := range 100 {
		f("k")
		clk.Advance(time.Duration(i) * time.Millisecond * 30)
	}
}

func TestTTLHitAllocatesNothing(t *testing.T) {
	f, _ := Memoize(func(n int) int { return n }, TTL(time.Hour))
	f(1)
	assert.Zero(t, testing.AllocsPerRun(1000, func() { f(1) }))
}

// TestExpiryOrderOfConcurrentResults: a result whose execution read the clock
// before another execution stored a later result lands after it; it must
// still expire first, leave CurrSize when it does, and go before any live
// entry is evicted.
func TestExpiryOrderOfConcurrentResults(t *testing.T) {
	clk := newFakeClock(t0)
	var hold atomic.Bool
	read, release := make(chan struct{}), make(chan struct{})
	clock := func() time.Time {
		now := clk.Now()
		if hold.CompareAndSwap(true, false) {
			// This reading is taken; its caller is held before it stores.
			close(read)
			<-release
		}
		return now
	}
	var runs atomic.Int32
	f, c := Memoize(func(k string) int {
		if k == "a" {
			hold.Store(true) // the reading that stores a's result is held
		}
		return int(runs.Add(1))
	}, MaxSize(2), TTL(10*time.Second), Clock(clock))
	within(t, timeout, func() {
		done := make(chan struct{})
		go func() { defer close(done); f("a") }() // reads t0: expires at 10
		<-read
		clk.Advance(5 * time.Second)
		f("b") // expires at 15, stored before a
		close(release)
		<-done
	})
	clk.Set(t0.Add(12 * time.Second)) // a has expired, b has not
	assert.Equal(t, 1, c.CacheInfo().CurrSize, "the expired a is not counted")
	f("c") // full if a were still held: b, least recently used but live, must stay
	before := runs.Load()
	f("b")
	assert.Equal(t, before, runs.Load(), "b is still cached")
	ci := c.CacheInfo()
	assert.Equal(t, 0, ci.Evictions)
	assert.Equal(t, 1, ci.Expirations)
}

// ttlRef is a reference TTL cache for the model test: entries from most to
// least recently used, each with its value and when it expires.
type ttlRef struct {
	size    int
	ttl     int64
	entries []ttlRefEntry
}

type ttlRefEntry struct {
	k, v int
	at   int64
}

func (r *ttlRef) find(k int) int {
	return slices.IndexFunc(r.entries, func(e ttlRefEntry) bool { return e.k == k })
}

// get returns k's value if it is fresh at now, making it most recent.
func (r *ttlRef) get(k int, now int64) (int, bool) {
	i := r.find(k)
	if i < 0 || now >= r.entries[i].at {
		return 0, false
	}
	e := r.entries[i]
	r.entries = slices.Insert(slices.Delete(r.entries, i, i+1), 0, e)
	return e.v, true
}

// purge drops what has expired at now.
func (r *ttlRef) purge(now int64) {
	r.entries = slices.DeleteFunc(r.entries, func(e ttlRefEntry) bool { return now >= e.at })
}

func (r *ttlRef) store(k, v int, now int64) {
	if i := r.find(k); i >= 0 {
		r.entries = slices.Delete(r.entries, i, i+1)
	}
	r.purge(now)
	if len(r.entries) >= r.size {
		r.entries = r.entries[:len(r.entries)-1]
	}
	r.entries = slices.Insert(r.entries, 0, ttlRefEntry{k, v, now + r.ttl})
}

func (r *ttlRef) forget(k int, now int64) bool {
	i := r.find(k)
	if i < 0 {
		return false
	}
	fresh := now < r.entries[i].at
	r.entries = slices.Delete(r.entries, i, i+1)
	return fresh
}

// TestTTLModel runs random sequences of calls, Forget and CacheInfo on a
// clock that jumps forward and back, against the reference: the same calls
// must hit, with the same values, and the sizes must agree.
func TestTTLModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for seq := range longer(300) {
		size, ttl := 1+rng.IntN(6), time.Duration(1+rng.IntN(20))*time.Second
		keySpace := 1 + rng.IntN(3*size)
		clk := newFakeClock(t0)
		var runs int
		f, c := Memoize(func(int) int { runs++; return runs }, MaxSize(size), TTL(ttl), Clock(clk.Now))
		ref := &ttlRef{size: size, ttl: int64(ttl)}
		for op := range 200 {
			now := int64(clk.Now().Sub(t0))
			k := rng.IntN(keySpace)
			switch rng.IntN(8) {
			case 0:
				// Mostly forward, sometimes back, as a wall clock set by NTP.
				clk.Advance(time.Duration(rng.Int64N(int64(3*ttl))) - ttl)
			case 1:
				require.Equal(t, ref.forget(k, now), c.Forget(k), "seq %d op %d Forget(%d) at %v", seq, op, k, now)
			case 2:
				ref.purge(now)
				require.Equal(t, len(ref.entries), c.CacheInfo().CurrSize, "seq %d op %d CurrSize at %v", seq, op, now)
			case 3:
				if rng.IntN(10) == 0 {
					c.Clear()
					ref.entries = nil
				}
			default:
				want, hit := ref.get(k, now)
				if !hit {
					want = runs + 1
					ref.store(k, want, now)
				}
				require.Equal(t, want, f(k), "seq %d op %d f(%d) at %v (hit %v)", seq, op, k, now, hit)
			}
			requireHeap(t, &c.shards[0].l, fmt.Sprintf("seq %d op %d", seq, op))
		}
	}
}

// requireHeap checks the expiry heap of l: one place for each entry, each
// knowing its place, none expiring before its parent.
func requireHeap[K comparable, V any](t *testing.T, l *list[K, V], where string) {
	t.Helper()
	e := l.exp
	require.Len(t, e.heap, l.len(), where)
	for s, i := range e.heap {
		require.Equal(t, int32(s), e.slot[i], where)
		require.Equal(t, ref(i), l.lookup(l.nodes[i].e.key), "%s: a held entry", where)
		if s > 0 {
			require.LessOrEqual(t, e.at[e.heap[(s-1)/2]], e.at[i], "%s: heap order", where)
		}
	}
}

// TestDurationsTooLongToReach: the longest durations are accepted, so they
// must work: an expiry beyond reach never comes.
func TestDurationsTooLongToReach(t *testing.T) {
	const forever = time.Duration(math.MaxInt64)
	later := t0.Add(100 * 365 * 24 * time.Hour)
	t.Run("TTL", func(t *testing.T) {
		clk := newFakeClock(t0)
		fn, runs := counted()
		f, c := Memoize(fn, TTL(forever), Clock(clk.Now))
		clk.Advance(time.Second) // stored after the cache's first reading
		f("k")
		clk.Set(later)
		f("k")
		assert.Equal(t, int32(1), runs.Load(), "still cached a century later")
		assert.Equal(t, 1, c.CacheInfo().CurrSize)
	})
	t.Run("Window", func(t *testing.T) {
		// A window whose end is past the last instant int64 nanoseconds
		// can name (in 2262).
		y2200 := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
		for _, d := range []time.Duration{forever, 5e18} {
			clk := newFakeClock(y2200)
			fn, runs := counted()
			f, _ := Memoize(fn, Window(d), Clock(clk.Now))
			f("k")
			clk.Set(y2200.AddDate(50, 0, 0))
			f("k")
			assert.Equal(t, int32(1), runs.Load(), "Window(%d): the window has not ended", d)
		}
	})
	t.Run("StaleWhileRevalidate", func(t *testing.T) {
		clk := newFakeClock(t0)
		fn, runs := counted()
		f, c := Memoize(fn, TTL(time.Minute), StaleWhileRevalidate(forever), Clock(clk.Now))
		f("k")
		clk.Advance(30 * time.Second)
		f("other") // stores, purging what cannot be served
		assert.Equal(t, 2, c.CacheInfo().CurrSize, "a fresh entry is not purged")
		f("k")
		assert.Equal(t, int32(2), runs.Load(), "k was still cached")
	})
	t.Run("CacheErrors", func(t *testing.T) {
		clk := newFakeClock(t0)
		var runs atomic.Int32
		f, _ := MemoizeErr(func(string) (int, error) { runs.Add(1); return 0, errors.New("no") }, CacheErrors(forever), Clock(clk.Now))
		clk.Advance(time.Second)
		f("k")
		clk.Set(later)
		_, err := f("k")
		assert.EqualError(t, err, "no")
		assert.Equal(t, int32(1), runs.Load(), "the error is still cached")
	})
}

// breakableClock returns clk's Now, made to panic with "clock broke" at the
// reading after each call of breakNext.
func breakableClock(clk *fakeClock) (now func() time.Time, breakNext func()) {
	var broken atomic.Bool
	return func() time.Time {
		if broken.CompareAndSwap(true, false) {
			panic("clock broke")
		}
		return clk.Now()
	}, func() { broken.Store(true) }
}

// TestClockPanicWedgesNothing: a Clock that panics while an execution's
// result is stored makes that execution's callers panic with a *PanicError,
// stores nothing, and leaves the key free for the next call, whether fn ran
// in the caller's goroutine or in its own.
func TestClockPanicWedgesNothing(t *testing.T) {
	clock, breakNext := breakableClock(newFakeClock(t0))
	var runs atomic.Int32
	f, c := MemoizeCtx(func(_ context.Context, k string) (int, error) {
		if runs.Add(1) == 1 {
			breakNext() // the next reading, taken to store this result, panics
		}
		return 7, nil
	}, TTL(time.Minute), Clock(clock))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
	}{{"in the caller's goroutine", context.Background()}, {"in its own goroutine", ctx}} {
		t.Run(tc.name, func(t *testing.T) {
			runs.Store(0)
			within(t, timeout, func() {
				p := func() (p any) {
					defer func() { p = recover() }()
					f(tc.ctx, "k")
					return nil
				}()
				if pe, ok := p.(*PanicError); assert.True(t, ok, "f panicked with %#v, want a *PanicError", p) {
					assert.Equal(t, "clock broke", pe.Value)
				}
				v, err := f(tc.ctx, "k") // must not wait for the first execution
				assert.NoError(t, err)
				assert.Equal(t, 7, v)
			})
			assert.Equal(t, int32(2), runs.Load(), "nothing was stored by the first execution")
			c.Clear()
		})
	}
}

// TestClockPanicCachesNoError: with CacheErrors, an error returned by an
// execution whose clock reading then panics is not cached: the execution's
// outcome is the panic, and a panic is never cached.
func TestClockPanicCachesNoError(t *testing.T) {
	clk := newFakeClock(t0)
	clock, breakNext := breakableClock(clk)
	var runs atomic.Int32
	f, c := MemoizeErr(func(string) (int, error) {
		if runs.Add(1) == 1 {
			breakNext()
		}
		return 0, errors.New("failed")
	}, CacheErrors(time.Hour), Clock(clock))
	clk.Advance(time.Minute)
	p := func() (p any) {
		defer func() { p = recover() }()
		_, _ = f("k")
		return nil
	}()
	assert.IsType(t, &PanicError{}, p)
	_, err := f("k")
	assert.EqualError(t, err, "failed")
	assert.Equal(t, int32(2), runs.Load(), "the first execution's error was not cached")
	assert.Equal(t, 0, c.CacheInfo().Hits)
}

// TestHungRefreshDoesNotHoldItsKey: once its stale entry has gone, a refresh
// lives for the callers who joined it, as any execution does: when they all
// give up, its context is cancelled and the next call starts afresh, instead
// of waiting on a refresh that may never return.
func TestHungRefreshDoesNotHoldItsKey(t *testing.T) {
	clk := newFakeClock(t0)
	var runs atomic.Int32
	refreshEnded := make(chan error, 1)
	f, c := MemoizeCtx(func(ctx context.Context, k string) (int, error) {
		n := int(runs.Add(1))
		if n == 2 { // the refresh hangs until its context ends
			<-ctx.Done()
			refreshEnded <- ctx.Err()
			return 0, ctx.Err()
		}
		return n, nil
	}, TTL(10*time.Second), StaleWhileRevalidate(5*time.Second), Clock(clk.Now))
	bg := context.Background()
	within(t, timeout, func() {
		v, _ := f(bg, "k")
		assert.Equal(t, 1, v)
		clk.Set(t0.Add(12 * time.Second))
		v, _ = f(bg, "k")
		assert.Equal(t, 1, v, "stale, while the refresh starts")
		eventually(func() bool { return runs.Load() == 2 })

		clk.Set(t0.Add(16 * time.Second)) // past the grace: the stale entry goes
		ctx, cancel := context.WithCancel(bg)
		res := make(chan error)
		go func() { _, err := f(ctx, "k"); res <- err }()
		eventually(func() bool { return c.CacheInfo().Coalesced == 1 })
		cancel()
		assert.ErrorIs(t, <-res, context.Canceled)
		assert.ErrorIs(t, <-refreshEnded, context.Canceled, "the abandoned refresh was cancelled")

		v, err := f(bg, "k")
		assert.NoError(t, err)
		assert.Equal(t, 3, v, "a new execution, not the hung refresh")
	})
	assert.Equal(t, 1, c.CacheInfo().Errors, "the abandoned refresh failed with its context's error")
}
