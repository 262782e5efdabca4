package memo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// memoFib returns a memoized recursive Fibonacci that recurses through the
// cache, as the functools documentation's example does.
func memoFib(opts ...Option) (func(int) int, *Cache[int, int]) {
	var fib func(int) int
	fib, c := Memoize(func(n int) int {
		if n < 2 {
			return n
		}
		return fib(n-1) + fib(n-2)
	}, opts...)
	return fib, c
}

func TestFibVectors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"default", nil},
		{"128", []Option{MaxSize(128)}},
		{"unbounded", []Option{Unbounded()}},
	} {
		t.Run(tc.name+"/0..15", func(t *testing.T) {
			fib, c := memoFib(tc.opts...)
			got := 0
			for n := range 16 {
				got = fib(n)
			}
			assert.Equal(t, 610, got)
			ci := c.CacheInfo()
			assert.Equal(t, [3]any{28, 16, 16}, [3]any{ci.Hits, ci.Misses, ci.CurrSize})
		})
	}
	t.Run("20/maxsize2", func(t *testing.T) {
		fib, c := memoFib(MaxSize(2))
		assert.Equal(t, 6765, fib(20))
		ci := c.CacheInfo()
		assert.Equal(t, [3]any{344, 1657, 2}, [3]any{ci.Hits, ci.Misses, ci.CurrSize})
		assert.Equal(t, 1655, ci.Evictions)
		c.Clear()
		assert.Equal(t, "CacheInfo(hits=0, misses=0, maxsize=2, currsize=0)", c.CacheInfo().String())
		assert.Equal(t, CacheInfo{MaxSize: 2}, c.CacheInfo())
	})
	t.Run("20/maxsize0", func(t *testing.T) {
		fib, c := memoFib(MaxSize(0))
		assert.Equal(t, 6765, fib(20))
		ci := c.CacheInfo()
		assert.Equal(t, [3]any{0, 21891, 0}, [3]any{ci.Hits, ci.Misses, ci.CurrSize})
	})
}

func TestLRUOrderVector(t *testing.T) {
	f, c := Memoize(func(n int) int { return n }, MaxSize(2))
	var got []string
	for _, k := range []int{1, 2, 1, 3, 1, 2, 3} {
		before := c.CacheInfo().Hits
		f(k)
		if c.CacheInfo().Hits > before {
			got = append(got, "hit")
		} else {
			got = append(got, "miss")
		}
	}
	assert.Equal(t, []string{"miss", "miss", "hit", "miss", "hit", "miss", "miss"}, got)
}

func TestSizes(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		want Parameters
		str  string
	}{
		{"default", nil, Parameters{MaxSize: 128, Shards: 1}, "maxsize=128"},
		{"positive", []Option{MaxSize(5)}, Parameters{MaxSize: 5, Shards: 1}, "maxsize=5"},
		{"zero", []Option{MaxSize(0)}, Parameters{MaxSize: 0, Shards: 1}, "maxsize=0"},
		{"negative", []Option{MaxSize(-3)}, Parameters{MaxSize: 0, Shards: 1}, "maxsize=0"},
		{"unbounded", []Option{Unbounded()}, Parameters{Unbounded: true, Shards: 1}, "maxsize=unbounded"},
		{"last wins: unbounded", []Option{MaxSize(5), Unbounded()}, Parameters{Unbounded: true, Shards: 1}, "maxsize=unbounded"},
		{"last wins: size", []Option{Unbounded(), MaxSize(5)}, Parameters{MaxSize: 5, Shards: 1}, "maxsize=5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c := Memoize(func(n int) int { return n }, tc.opts...)
			assert.Equal(t, tc.want, c.Parameters())
			ci := c.CacheInfo()
			assert.Equal(t, tc.want.MaxSize, ci.MaxSize)
			assert.Equal(t, tc.want.Unbounded, ci.Unbounded)
			assert.Contains(t, ci.String(), tc.str)
		})
	}
	assert.PanicsWithValue(t, "memo: Memoize was given a nil function to memoize (fn)", func() { Memoize[int, int](nil) })
	assert.PanicsWithValue(t, "memo: MemoizeErr was given a nil function to memoize (fn)", func() { MemoizeErr[int, int](nil) })
	assert.PanicsWithValue(t, "memo: MemoizeCtx was given a nil function to memoize (fn)", func() { MemoizeCtx[int, int](nil) })
}

func TestBoundedEvictsLeastRecent(t *testing.T) {
	var runs []int
	f, c := Memoize(func(n int) int { runs = append(runs, n); return n }, MaxSize(3))
	for _, k := range []int{1, 2, 3, 1, 4, 2, 1} {
		f(k)
	}
	// 4 evicts 2 (1 was refreshed); 2 then evicts 3.
	assert.Equal(t, []int{1, 2, 3, 4, 2}, runs)
	ci := c.CacheInfo()
	assert.Equal(t, 3, ci.CurrSize)
	assert.Equal(t, 2, ci.Evictions)
}

func TestUnboundedNeverEvicts(t *testing.T) {
	f, c := Memoize(func(n int) int { return n }, Unbounded())
	for i := range 10 * DefaultMaxSize {
		f(i)
	}
	ci := c.CacheInfo()
	assert.Equal(t, 10*DefaultMaxSize, ci.CurrSize)
	assert.Zero(t, ci.Evictions)
}

func TestSizeZeroBuildsNoKey(t *testing.T) {
	runs := 0
	f, c := Memoize(func(k any) int { runs++; return len(k.([]int)) }, MaxSize(0))
	assert.Equal(t, 2, f([]int{1, 2}), "a size-0 cache never compares keys")
	assert.Equal(t, 2, f([]int{1, 2}))
	assert.Equal(t, 2, runs)
	assert.False(t, c.Forget([]int{1}))
	assert.Equal(t, CacheInfo{Misses: 2}, c.CacheInfo())
}

func TestErrorsNotCached(t *testing.T) {
	boom := errors.New("boom")
	runs := 0
	f, c := MemoizeErr(func(n int) (int, error) {
		runs++
		if runs == 1 {
			return 0, boom
		}
		return n * 2, nil
	})
	_, err := f(4)
	require.ErrorIs(t, err, boom)
	assert.Equal(t, 0, c.CacheInfo().CurrSize)
	v, err := f(4)
	require.NoError(t, err)
	assert.Equal(t, 8, v)
	v, err = f(4)
	require.NoError(t, err)
	assert.Equal(t, 8, v)
	assert.Equal(t, 2, runs)
	ci := c.CacheInfo()
	assert.Equal(t, counts{Hits: 1, Misses: 2, Errors: 1}, countsOf(ci))
}

func TestNaNKeysBypass(t *testing.T) {
	runs := 0
	f, c := Memoize(func(x float64) float64 { runs++; return x }, MaxSize(4))
	for range 10 {
		assert.True(t, math.IsNaN(f(math.NaN())))
	}
	assert.Equal(t, 10, runs)
	ci := c.CacheInfo()
	assert.Equal(t, [3]any{0, 10, 0}, [3]any{ci.Hits, ci.Misses, ci.CurrSize})
	assert.Zero(t, c.shards[0].l.idx.n)
	assert.Zero(t, c.shards[0].l.marks, "no execution is left registered")

	g, cg := Memoize(func(x any) any { return x }, MaxSize(4))
	g(math.NaN())
	g(struct{ X any }{math.NaN()})
	assert.Equal(t, 0, cg.CacheInfo().CurrSize)
	assert.Zero(t, cg.shards[0].l.idx.n)
}

func TestUncomparableKey(t *testing.T) {
	runs := 0
	f, c := MemoizeErr(func(k any) (int, error) { runs++; return 1, nil })
	_, err := f(map[string]int{})
	require.ErrorIs(t, err, ErrNotComparable)
	assert.Contains(t, err.Error(), "map[string]int")
	_, err = f(struct{ A any }{[]int{1}})
	require.ErrorIs(t, err, ErrNotComparable)
	assert.Zero(t, runs)
	assert.Equal(t, CacheInfo{MaxSize: DefaultMaxSize}, c.CacheInfo(), "no trace in the stats")
	assert.False(t, c.Forget([]int{1}))

	g, cg := Memoize(func(k any) int { return 1 })
	within(t, timeout, func() {
		defer func() {
			err, _ := recover().(error)
			assert.ErrorIs(t, err, ErrNotComparable)
			assert.Equal(t, 1, g("fine"), "no lock left held")
			assert.Equal(t, 1, cg.CacheInfo().Misses)
		}()
		g([]byte("x"))
	})
}

func TestRecursionAcrossFunctions(t *testing.T) {
	double, dc := Memoize(func(n int) int { return 2 * n })
	var sumDoubles func(int) int
	sumDoubles, sc := Memoize(func(n int) int {
		if n == 0 {
			return 0
		}
		return double(n) + sumDoubles(n-1)
	})
	within(t, timeout, func() {
		assert.Equal(t, 110, sumDoubles(10))
		assert.Equal(t, 110, sumDoubles(10))
	})
	assert.Equal(t, 10, dc.CacheInfo().Misses)
	assert.Equal(t, 1, sc.CacheInfo().Hits)
}

func TestUnwrapped(t *testing.T) {
	runs := 0
	f, c := Memoize(func(n int) int { runs++; return n + 1 })
	f(1)
	before := c.CacheInfo()
	v, err := c.Unwrapped()(context.Background(), 1)
	require.NoError(t, err)
	assert.Equal(t, 2, v)
	v, _ = c.Unwrapped()(context.Background(), 7)
	assert.Equal(t, 8, v)
	assert.Equal(t, 3, runs)
	assert.Equal(t, before, c.CacheInfo())
}

func TestForget(t *testing.T) {
	runs := 0
	f, c := Memoize(func(n int) int { runs++; return n })
	f(1)
	f(2)
	assert.True(t, c.Forget(1))
	assert.False(t, c.Forget(1))
	assert.False(t, c.Forget(3))
	f(1)
	f(2)
	assert.Equal(t, 3, runs)
	assert.Equal(t, 2, c.CacheInfo().CurrSize)
}

func TestClearResets(t *testing.T) {
	boom := errors.New("boom")
	f, c := MemoizeErr(func(n int) (int, error) {
		if n < 0 {
			return 0, boom
		}
		return n, nil
	}, MaxSize(2), MeasureExecTime())
	for _, k := range []int{1, 1, 2, 3, -1} {
		f(k)
	}
	ci := c.CacheInfo()
	assert.NotZero(t, ci.Hits)
	assert.NotZero(t, ci.Evictions)
	assert.NotZero(t, ci.Errors)
	assert.NotZero(t, ci.ExecTime)
	c.Clear()
	assert.Equal(t, CacheInfo{MaxSize: 2}, c.CacheInfo())
	f(1)
	assert.Equal(t, 1, c.CacheInfo().Misses)
}

func TestSingleFlight(t *testing.T) {
	g := newGate()
	f, c := MemoizeErr(g.fn)
	const n = 8
	results := make(chan int, n+1)
	within(t, timeout, func() {
		go func() { v, _ := f(3); results <- v }()
		<-g.started
		for range n {
			go func() { v, _ := f(3); results <- v }()
		}
		eventually(func() bool { return c.CacheInfo().Coalesced == n })
		close(g.release)
		for range n + 1 {
			assert.Equal(t, 30, <-results)
		}
	})
	assert.Equal(t, int32(1), g.runs.Load())
	ci := c.CacheInfo()
	assert.Equal(t, counts{Hits: n, Misses: 1, Coalesced: n}, countsOf(ci))
	assert.Equal(t, 1, ci.CurrSize)
}

func TestDifferentKeysDoNotWait(t *testing.T) {
	g := newGate()
	slow, _ := MemoizeErr(func(k int) (int, error) {
		if k == 1 {
			return g.fn(k)
		}
		return k, nil
	})
	within(t, timeout, func() {
		done := make(chan struct{})
		go func() { slow(1); close(done) }()
		<-g.started
		v, err := slow(2) // key 1 is still executing
		assert.NoError(t, err)
		assert.Equal(t, 2, v)
		close(g.release)
		<-done
	})
}

func TestSharedError(t *testing.T) {
	boom := errors.New("boom")
	release := make(chan struct{})
	var runs atomic.Int32
	f, c := MemoizeErr(func(k int) (int, error) {
		if runs.Add(1) == 1 {
			<-release
			return 0, boom
		}
		return k, nil
	})
	errs := make(chan error, 4)
	within(t, timeout, func() {
		for range 4 {
			go func() { _, err := f(1); errs <- err }()
		}
		eventually(func() bool { return c.CacheInfo().Coalesced == 3 })
		close(release)
		for range 4 {
			assert.ErrorIs(t, <-errs, boom)
		}
		v, err := f(1)
		assert.NoError(t, err)
		assert.Equal(t, 1, v)
	})
	assert.Equal(t, int32(2), runs.Load())
	assert.Equal(t, 1, c.CacheInfo().Errors)
}

func explode(release chan struct{}) int {
	<-release
	panic("kaboom")
}

func TestPanicReachesEveryCaller(t *testing.T) {
	release := make(chan struct{})
	var runs atomic.Int32
	f, c := Memoize(func(k int) int {
		if runs.Add(1) == 1 {
			return explode(release)
		}
		return k
	})
	const n = 4
	panics := make(chan any, n)
	within(t, timeout, func() {
		for range n {
			go func() {
				defer func() { panics <- recover() }()
				f(1)
			}()
		}
		eventually(func() bool { return c.CacheInfo().Coalesced == n-1 })
		close(release)
		for range n {
			p, ok := (<-panics).(*PanicError)
			if assert.True(t, ok, "each caller panics with a *PanicError") {
				assert.Equal(t, "kaboom", p.Value)
				assert.Contains(t, string(p.Stack), "memo.explode", "the stack is the panicking goroutine's")
				assert.Contains(t, p.Error(), "memo: memoized function panicked: kaboom")
			}
		}
		assert.Equal(t, 1, f(1), "the next call retries")
	})
	ci := c.CacheInfo()
	assert.Equal(t, 1, ci.Errors)
	assert.Equal(t, 1, ci.CurrSize)
	assert.Equal(t, int32(2), runs.Load())
}

func TestPanicErrorUnwrap(t *testing.T) {
	sentinel := errors.New("inner")
	f, _ := MemoizeErr(func(int) (int, error) { panic(sentinel) })
	p := func() (p any) {
		defer func() { p = recover() }()
		f(1)
		return nil
	}()
	assert.ErrorIs(t, p.(error), sentinel)
}

func TestGoexit(t *testing.T) {
	release := make(chan struct{})
	var runs atomic.Int32
	f, c := Memoize(func(k int) int {
		if runs.Add(1) == 1 {
			<-release
			runtime.Goexit()
		}
		return k
	})
	exited := make(chan bool, 2)
	within(t, timeout, func() {
		for range 2 {
			go func() {
				returned := false
				defer func() { exited <- !returned }()
				f(1)
				returned = true
			}()
		}
		eventually(func() bool { return c.CacheInfo().Coalesced == 1 })
		close(release)
		assert.True(t, <-exited)
		assert.True(t, <-exited)
		assert.Equal(t, 1, f(1))
	})
	assert.Equal(t, 1, c.CacheInfo().Errors)
}

type ctxKey struct{}

func TestContextWaiterGivesUp(t *testing.T) {
	started, release := make(chan context.Context, 1), make(chan struct{})
	f, c := MemoizeCtx(func(ctx context.Context, k int) (int, error) {
		started <- ctx
		<-release
		return k, ctx.Err()
	})
	within(t, timeout, func() {
		ctxA, cancelA := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "a"))
		ctxB, cancelB := context.WithCancel(context.Background())
		defer cancelB()
		resA, resB := make(chan error, 1), make(chan int, 1)
		go func() { _, err := f(ctxA, 1); resA <- err }()
		fctx := <-started
		assert.Equal(t, "a", fctx.Value(ctxKey{}), "fn sees the starting caller's values")
		go func() { v, _ := f(ctxB, 1); resB <- v }()
		eventually(func() bool { return c.CacheInfo().Coalesced == 1 })

		cancelA() // the caller who started the execution gives up
		assert.ErrorIs(t, <-resA, context.Canceled)
		assert.NoError(t, fctx.Err(), "B still waits, so fn's context lives")

		close(release)
		assert.Equal(t, 1, <-resB)
	})
	assert.Equal(t, 1, c.CacheInfo().CurrSize)
}

func TestContextAllGiveUp(t *testing.T) {
	var runs atomic.Int32
	started := make(chan context.Context, 2)
	f, c := MemoizeCtx(func(ctx context.Context, k int) (int, error) {
		if runs.Add(1) == 1 {
			started <- ctx
			<-ctx.Done()
			return 0, ctx.Err()
		}
		return k, nil
	})
	within(t, timeout, func() {
		ctxA, cancelA := context.WithCancel(context.Background())
		ctxB, cancelB := context.WithTimeout(context.Background(), time.Hour)
		res := make(chan error, 2)
		go func() { _, err := f(ctxA, 1); res <- err }()
		fctx := <-started
		go func() { _, err := f(ctxB, 1); res <- err }()
		eventually(func() bool { return c.CacheInfo().Coalesced == 1 })
		cancelB()
		assert.ErrorIs(t, <-res, context.Canceled)
		assert.NoError(t, fctx.Err())
		cancelA()
		assert.ErrorIs(t, <-res, context.Canceled)
		<-fctx.Done() // cancelled now that nobody waits

		// A new caller does not join the abandoned execution.
		v, err := f(context.Background(), 1)
		assert.NoError(t, err)
		assert.Equal(t, 1, v)
	})
	assert.Equal(t, int32(2), runs.Load())
}

func TestContextWhereFnRuns(t *testing.T) {
	stacks := make(chan string, 1)
	f, _ := MemoizeCtx(func(ctx context.Context, k int) (int, error) {
		stacks <- string(debug.Stack())
		return k, nil
	})
	within(t, timeout, func() {
		_, err := f(context.Background(), 1)
		assert.NoError(t, err)
		assert.Contains(t, <-stacks, "memo.within", "a context that cannot end: fn runs in the caller's goroutine")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, err = f(ctx, 2)
		assert.NoError(t, err)
		assert.NotContains(t, <-stacks, "memo.within", "a context that can end: fn runs in a goroutine of its own")
	})
}

func TestClearDuringExecution(t *testing.T) {
	for _, tc := range []struct {
		name       string
		invalidate func(c *Cache[int, int])
	}{
		{"Clear", func(c *Cache[int, int]) { c.Clear() }},
		{"Forget", func(c *Cache[int, int]) { c.Forget(1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Each execution waits for a release of its own, so the test
			// chooses which one ends first.
			var runs atomic.Int32
			started, release := make(chan struct{}, 2), [2]chan struct{}{make(chan struct{}), make(chan struct{})}
			f, c := MemoizeErr(func(k int) (int, error) {
				n := runs.Add(1)
				started <- struct{}{}
				<-release[n-1]
				return k * int(n), nil
			})
			within(t, timeout, func() {
				res := make(chan int, 2)
				go func() { v, _ := f(1); res <- v }()
				<-started
				tc.invalidate(c)
				// A call after the invalidation starts its own execution.
				go func() { v, _ := f(1); res <- v }()
				<-started
				close(release[0])
				assert.Equal(t, 1, <-res, "the earlier caller still gets its result")
				assert.Equal(t, 0, c.CacheInfo().CurrSize, "but it is not stored")
				close(release[1])
				assert.Equal(t, 2, <-res)
			})
			assert.Equal(t, int32(2), runs.Load())
			assert.Equal(t, 1, c.CacheInfo().CurrSize, "the later execution is stored")
		})
	}
}

// TestConcurrentCounting hammers one cache from many goroutines and checks
// the invariants: hits + misses == calls, every answer right, the size bound
// kept.
func TestConcurrentCounting(t *testing.T) {
	f, c := MemoizeErr(func(k int) (int, error) {
		if k%7 == 0 {
			return 0, fmt.Errorf("k=%d", k)
		}
		return k * k, nil
	}, MaxSize(16))
	const goroutines, calls = 8, 3000
	hammer(t, goroutines, 60*time.Second, 9, func(g int, rng *rand.Rand) {
		for i := range calls {
			k := rng.IntN(40)
			v, err := f(k)
			if k%7 == 0 {
				assert.Error(t, err)
			} else if v != k*k {
				t.Errorf("f(%d) = %d, want %d", k, v, k*k)
			}
			if g == 0 && i%500 == 0 {
				c.Forget(k)
			}
		}
	})
	ci := c.CacheInfo()
	assert.Equal(t, goroutines*calls, ci.Hits+ci.Misses)
	assert.LessOrEqual(t, ci.CurrSize, 16)
	assert.LessOrEqual(t, ci.Coalesced, ci.Hits)
}

func TestHitAllocatesNothing(t *testing.T) {
	f, _ := Memoize(func(n int) int { return n })
	fe, _ := MemoizeErr(func(s string) (int, error) { return len(s), nil })
	fc, _ := MemoizeCtx(func(_ context.Context, n int) (int, error) { return n, nil })
	fa, _ := Memoize(func(k any) int { return 1 })
	f(1)
	fe("key")
	fc(context.Background(), 1)
	fa(1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for name, hit := range map[string]func(){
		"Memoize":        func() { f(1) },
		"MemoizeErr":     func() { fe("key") },
		"MemoizeCtx":     func() { fc(context.Background(), 1) },
		"MemoizeCtx/ctx": func() { fc(ctx, 1) },
		"Memoize/any":    func() { fa(1) },
	} {
		assert.Zero(t, testing.AllocsPerRun(1000, hit), name)
	}
}

func TestContextEndedBeforeMiss(t *testing.T) {
	runs := 0
	f, c := MemoizeCtx(func(ctx context.Context, k int) (int, error) { runs++; return k, nil })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 20 {
		_, err := f(ctx, 1)
		require.ErrorIs(t, err, context.Canceled)
	}
	assert.Zero(t, runs, "fn is not started for a caller who has already given up")
	ci := c.CacheInfo()
	assert.Equal(t, [3]any{0, 20, 0}, [3]any{ci.Hits, ci.Misses, ci.CurrSize})
	assert.Zero(t, c.shards[0].l.marks, "no execution is left registered")
}

func TestContextPanicInGoroutine(t *testing.T) {
	release := make(chan struct{})
	f, c := MemoizeCtx(func(ctx context.Context, k int) (int, error) {
		<-release
		panic(fmt.Sprintf("bad key %d", k))
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	panics := make(chan any, 2)
	within(t, timeout, func() {
		for range 2 {
			go func() {
				defer func() { panics <- recover() }()
				f(ctx, 5)
			}()
		}
		eventually(func() bool { return c.CacheInfo().Coalesced == 1 })
		close(release)
		for range 2 {
			p, ok := (<-panics).(*PanicError)
			if assert.True(t, ok) {
				assert.Equal(t, "bad key 5", p.Value)
			}
		}
	})
	assert.Equal(t, 0, c.CacheInfo().CurrSize)
	assert.Equal(t, 1, c.CacheInfo().Errors)
}

// TestMissAllocatesOnce: a miss that stores its result allocates one object,
// the entry that hits read without the lock; nothing else, also when it
// evicts.
func TestMissAllocatesOnce(t *testing.T) {
	f, c := Memoize(func(n int) int { return n }, MaxSize(128))
	fe, _ := MemoizeErr(func(n int) (int, error) { return n, nil }, MaxSize(128))
	for i := range 256 {
		f(i)
		fe(i)
	}
	k := 0
	// Keys cycle through twice the cache: every call misses and evicts.
	assert.Equal(t, 2.0, testing.AllocsPerRun(1000, func() { f(k % 256); fe(k % 256); k++ }))
	assert.Zero(t, c.CacheInfo().Hits)

	// A MemoizeCtx miss allocates once more: the context its function runs
	// in, which carries the execution (see ErrCycle).
	fc, _ := MemoizeCtx(func(_ context.Context, n int) (int, error) { return n, nil }, MaxSize(128))
	ctx := context.Background()
	assert.Equal(t, 2.0, testing.AllocsPerRun(1000, func() { fc(ctx, 1000+k%256); k++ }))

	// Calls that cannot use the cache run fn the same way.
	off, _ := Memoize(func(n int) int { return n }, MaxSize(0))
	nan, _ := Memoize(func(x float64) float64 { return x })
	assert.Zero(t, testing.AllocsPerRun(1000, func() { off(1); nan(math.NaN()) }))
}

// TestStress mixes everything at once, from many goroutines: contexts that
// end at random, Forget and Clear, expiry with stale-while-revalidate on a
// moving clock, errors and panics. Each answer must be right or an error
// that was due, the bound must hold, and nothing may deadlock or leak.
func TestStress(t *testing.T) {
	defer goleak.VerifyNone(t)
	clk := newFakeClock(t0)
	f, c := MemoizeCtx(func(ctx context.Context, k int) (int, error) {
		switch {
		case k%11 == 0:
			return 0, fmt.Errorf("k=%d", k)
		case k%13 == 0:
			panic(k)
		case k%5 == 0:
			select { // a slow key, for callers to give up on
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
		return 2 * k, nil
	}, MaxSize(8), TTL(time.Second), StaleWhileRevalidate(time.Second), CacheErrors(time.Second), Clock(clk.Now))

	const goroutines, calls = 6, 3000
	hammer(t, goroutines, 60*time.Second, 11, func(_ int, rng *rand.Rand) {
		for range calls {
			k := rng.IntN(30)
			switch rng.IntN(50) {
			case 0:
				c.Clear()
			case 1:
				c.Forget(k)
			case 2:
				clk.Advance(time.Duration(rng.IntN(1500)) * time.Millisecond)
			}
			ctx, cancel := context.WithCancel(context.Background())
			if rng.IntN(4) == 0 {
				cancel()
			}
			v, err := func() (v int, err error) {
				defer func() {
					if p := recover(); p != nil {
						if _, ok := p.(*PanicError); !ok || k%13 != 0 || k%11 == 0 {
							t.Errorf("f(%d) panicked with %v", k, p)
						}
						err = errors.New("panicked")
					}
				}()
				return f(ctx, k)
			}()
			cancel()
			if err == nil && v != 2*k {
				t.Errorf("f(%d) = %d, want %d", k, v, 2*k)
			}
			if ci := c.CacheInfo(); ci.CurrSize > 8 {
				t.Errorf("CurrSize %d > MaxSize 8", ci.CurrSize)
			}
		}
	})
}

// TestBypassHonoursContext: calls that bypass the cache (size 0, NaN keys)
// keep MemoizeCtx's promise: an ended context starts nothing, and a caller
// whose context ends while the function runs stops waiting at once.
func TestBypassHonoursContext(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  float64
		opts []Option
	}{
		{"MaxSize(0)", 1, []Option{MaxSize(0)}},
		{"NaN key", math.NaN(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			var runs atomic.Int32
			var blocking atomic.Bool
			started, release := make(chan struct{}), make(chan struct{})
			f, c := MemoizeCtx(func(context.Context, float64) (int, error) {
				runs.Add(1)
				if blocking.Load() {
					close(started)
					<-release
				}
				return 1, nil
			}, tc.opts...)
			ended, cancel := context.WithCancel(context.Background())
			cancel()
			_, err := f(ended, tc.key)
			assert.ErrorIs(t, err, context.Canceled)
			assert.Zero(t, runs.Load(), "nothing runs for an ended context")

			blocking.Store(true)
			ctx, cancel := context.WithCancel(context.Background())
			within(t, timeout, func() {
				res := make(chan error)
				go func() { _, err := f(ctx, tc.key); res <- err }()
				<-started
				cancel()
				select {
				case err := <-res:
					assert.ErrorIs(t, err, context.Canceled)
				case <-time.After(time.Second):
					t.Error("the caller still waits for fn after its context ended")
					close(release)
					<-res
					return
				}
				close(release)
			})
			assert.Equal(t, CacheInfo{Misses: 2, MaxSize: c.Parameters().MaxSize}, c.CacheInfo())
		})
	}
}

// TestEndedContextDoesNotJoin: a call whose context has already ended finds
// nothing cached while an execution runs: it gets the context's error, counts
// as a miss (not a hit, since it gets no value), and leaves the execution to
// its callers.
func TestEndedContextDoesNotJoin(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	f, c := MemoizeCtx(func(context.Context, int) (int, error) {
		close(started)
		<-release
		return 7, nil
	})
	within(t, timeout, func() {
		res := make(chan int)
		go func() { v, _ := f(context.Background(), 1); res <- v }()
		<-started
		ended, cancel := context.WithCancel(context.Background())
		cancel()
		for range 50 { // a join would let the result race the error
			if _, err := f(ended, 1); !assert.ErrorIs(t, err, context.Canceled) {
				break
			}
		}
		ci := c.CacheInfo()
		assert.Equal(t, counts{Misses: 51}, countsOf(ci), "no hit, no join")
		close(release)
		assert.Equal(t, 7, <-res)
		v, err := f(ended, 1)
		assert.NoError(t, err, "a hit is answered even from an ended context")
		assert.Equal(t, 7, v)
	})
}

// TestClearDuringExecutionCountsNothing: an execution that began before Clear
// adds neither its error nor its time to the counters Clear reset.
func TestClearDuringExecutionCountsNothing(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	f, c := MemoizeErr(func(int) (int, error) {
		close(started)
		<-release
		return 0, errors.New("failed")
	}, MeasureExecTime())
	within(t, timeout, func() {
		res := make(chan error)
		go func() { _, err := f(1); res <- err }()
		<-started
		c.Clear()
		close(release)
		assert.EqualError(t, <-res, "failed")
	})
	ci := c.CacheInfo()
	assert.Zero(t, ci.Errors, "errors: not more than the misses since Clear")
	assert.Zero(t, ci.ExecTime)
	assert.Zero(t, ci.Misses)
}

// unreceivedPanicChild names the scenario a child process of
// TestUnreceivedPanicEndsTheProgram runs.
const unreceivedPanicChild = "MEMO_UNRECEIVED_PANIC"

// TestUnreceivedPanicEndsTheProgram: a panic that no caller receives is not
// dropped: it ends the program, with the original value and stack. Each case
// runs in a child process, this test binary run again.
func TestUnreceivedPanicEndsTheProgram(t *testing.T) {
	if scenario := os.Getenv(unreceivedPanicChild); scenario != "" {
		unreceivedPanic(scenario)
		fmt.Println("survived")
		return
	}
	for _, scenario := range []string{"refresh", "abandoned"} {
		t.Run(scenario, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestUnreceivedPanicEndsTheProgram$", "-test.count=1")
			cmd.Env = append(os.Environ(), unreceivedPanicChild+"="+scenario)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "the child survived the panic:\n%s", out)
			assert.NotEqual(t, -1, exit.ExitCode(), "the child did not exit by itself:\n%s", out)
			assert.Contains(t, string(out), "panic: memo: memoized function panicked: "+scenario+" bug")
			assert.Contains(t, string(out), "unreceivedPanic", "the original stack is in the message")
		})
	}
}

// unreceivedPanic makes the memoized function panic where no caller waits,
// then gives the panic a moment to end the process.
func unreceivedPanic(scenario string) {
	release := make(chan struct{})
	switch scenario {
	case "refresh":
		clk := newFakeClock(t0)
		var runs atomic.Int32
		f, _ := Memoize(func(int) int {
			if runs.Add(1) > 1 {
				panic("refresh bug")
			}
			return 1
		}, TTL(time.Second), StaleWhileRevalidate(time.Hour), Clock(clk.Now))
		f(1)
		clk.Advance(2 * time.Second)
		f(1) // stale: answered at once, refreshed in the background
	case "abandoned":
		started := make(chan struct{})
		f, _ := MemoizeCtx(func(context.Context, int) (int, error) {
			close(started)
			<-release
			panic("abandoned bug")
		})
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-started; cancel() }()
		f(ctx, 1) // gives up
	}
	close(release)
	time.Sleep(2 * time.Second)
}

// TestForgetExpired: Forget reports only what a call could have been
// answered with, whether or not the expired entry was still held.
func TestForgetExpired(t *testing.T) {
	clk := newFakeClock(t0)
	fail := true
	f, c := MemoizeErr(func(k string) (int, error) {
		if fail && k == "err" {
			return 0, errors.New("no")
		}
		return 1, nil
	}, TTL(10*time.Second), StaleWhileRevalidate(5*time.Second), CacheErrors(time.Second), Clock(clk.Now))
	f("fresh")
	f("stale")
	f("gone")
	f("err")
	clk.Advance(12 * time.Second) // stale and gone within grace, err expired
	assert.False(t, c.Forget("err"), "an expired error")
	assert.True(t, c.Forget("stale"), "a stale value is still served")
	clk.Advance(4 * time.Second) // gone past its grace, still held
	assert.False(t, c.Forget("gone"))
	assert.False(t, c.Forget("never"))
	assert.Zero(t, c.CacheInfo().CurrSize)
}
