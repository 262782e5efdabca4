package memo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomemo/memo/internal/await"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// batcher is a batch function of squares for the tests: it records the keys
// of each call, holds a call that has a key in hold until release is
// closed, and tells entered of each call as it starts.
type batcher struct {
	mu      sync.Mutex
	calls   [][]int
	hold    map[int]bool
	release chan struct{}
	entered chan []int
	fail    error
	skip    map[int]bool // keys left out of the result
	panics  bool
}

func newBatcher(hold ...int) *batcher {
	b := &batcher{hold: map[int]bool{}, release: make(chan struct{}), entered: make(chan []int, 100)}
	for _, k := range hold {
		b.hold[k] = true
	}
	return b
}

func (b *batcher) fn(ctx context.Context, keys []int) (map[int]int, error) {
	b.mu.Lock()
	b.calls = append(b.calls, slices.Clone(keys))
	held := slices.ContainsFunc(keys, func(k int) bool { return b.hold[k] })
	b.mu.Unlock()
	b.entered <- slices.Clone(keys)
	if held {
		<-b.release
	}
	if b.panics {
		panic("batch bug")
	}
	if b.fail != nil {
		return nil, b.fail
	}
	m := map[int]int{}
	for _, k := range keys {
		if !b.skip[k] {
			m[k] = k * k
		}
	}
	return m, nil
}

func (b *batcher) recorded() [][]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

// squares returns the map of the squares of keys.
func squares(keys ...int) map[int]int {
	m := map[int]int{}
	for _, k := range keys {
		m[k] = k * k
	}
	return m
}

// coalesced waits until c counts n callers that joined an execution.
func coalesced(t *testing.T, c *Cache[int, int], n int) {
	t.Helper()
	await.Soon(t, func() bool { return c.CacheInfo().Coalesced >= n }, fmt.Sprintf("%d callers joined", n))
}

// TestBatchComputesOnlyMisses: the keys present are answered from memory,
// the function is called once with the distinct keys missing, and every
// distinct key counts one hit or one miss.
func TestBatchComputesOnlyMisses(t *testing.T) {
	ctx := context.Background()
	bf := newBatcher()
	b, c := MemoizeBatch(bf.fn)
	got, err := b.Get(ctx, []int{1, 2})
	require.NoError(t, err)
	assert.Equal(t, squares(1, 2), got)
	got, err = b.Get(ctx, []int{2, 3, 3, 1, 4})
	require.NoError(t, err)
	assert.Equal(t, squares(1, 2, 3, 4), got)
	assert.Equal(t, [][]int{{1, 2}, {3, 4}}, bf.recorded())
	got, err = b.Get(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, got)
	v, err := b.Call(ctx, 4)
	require.NoError(t, err)
	assert.Equal(t, 16, v)
	v, err = b.Call(ctx, 5) // through the function with one key
	require.NoError(t, err)
	assert.Equal(t, 25, v)
	assert.Equal(t, [][]int{{1, 2}, {3, 4}, {5}}, bf.recorded())
	ci := c.CacheInfo()
	assert.Equal(t, 3, ci.Hits)   // 2 and 1 in the second Get, 4 in Call
	assert.Equal(t, 5, ci.Misses) // 1, 2, then 3, 4, then 5
	assert.Equal(t, 5, ci.CurrSize)
}

// TestBatchJoinsSingleCall: a key that a single call is computing is joined
// by a batch, which computes only its other keys.
func TestBatchJoinsSingleCall(t *testing.T) {
	ctx := context.Background()
	bf := newBatcher(2)
	b, c := MemoizeBatch(bf.fn)
	within(t, timeout, func() {
		single := make(chan int)
		go func() {
			v, _ := b.Call(ctx, 2)
			single <- v
		}()
		assert.Equal(t, []int{2}, <-bf.entered)
		batch := make(chan map[int]int)
		go func() {
			got, err := b.Get(ctx, []int{1, 2, 3})
			assert.NoError(t, err)
			batch <- got
		}()
		assert.Equal(t, []int{1, 3}, <-bf.entered)
		coalesced(t, c, 1)
		close(bf.release)
		assert.Equal(t, 4, <-single)
		assert.Equal(t, squares(1, 2, 3), <-batch)
	})
	assert.Equal(t, [][]int{{2}, {1, 3}}, bf.recorded())
	ci := c.CacheInfo()
	assert.Equal(t, 1, ci.Hits)
	assert.Equal(t, 1, ci.Coalesced)
	assert.Equal(t, 3, ci.Misses)
}

// TestSingleCallJoinsBatch: single calls for a key that a batch is computing
// join it, and so does a call of the memoized function from another Get.
func TestSingleCallJoinsBatch(t *testing.T) {
	ctx := context.Background()
	bf := newBatcher(2)
	b, c := MemoizeBatch(bf.fn)
	within(t, timeout, func() {
		batch := make(chan map[int]int)
		go func() {
			got, err := b.Get(ctx, []int{1, 2, 3})
			assert.NoError(t, err)
			batch <- got
		}()
		assert.Equal(t, []int{1, 2, 3}, <-bf.entered)
		singles := make(chan int, 5)
		for range 5 {
			go func() {
				v, err := b.Call(ctx, 2)
				assert.NoError(t, err)
				singles <- v
			}()
		}
		coalesced(t, c, 5)
		close(bf.release)
		for range 5 {
			assert.Equal(t, 4, <-singles)
		}
		assert.Equal(t, squares(1, 2, 3), <-batch)
	})
	assert.Equal(t, [][]int{{1, 2, 3}}, bf.recorded())
	ci := c.CacheInfo()
	assert.Equal(t, 5, ci.Hits)
	assert.Equal(t, 3, ci.Misses)
}

// TestOverlappingBatches: a batch joins the keys another batch is
// computing, and computes the rest.
func TestOverlappingBatches(t *testing.T) {
	ctx := context.Background()
	bf := newBatcher(1, 2)
	b, c := MemoizeBatch(bf.fn)
	within(t, timeout, func() {
		first := make(chan map[int]int)
		go func() {
			got, err := b.Get(ctx, []int{1, 2})
			assert.NoError(t, err)
			first <- got
		}()
		assert.Equal(t, []int{1, 2}, <-bf.entered)
		got, err := b.Get(ctx, []int{3, 4}) // overlaps nothing: not held up
		require.NoError(t, err)
		assert.Equal(t, squares(3, 4), got)
		<-bf.entered
		second := make(chan map[int]int)
		go func() {
			got, err := b.Get(ctx, []int{2, 3, 5})
			assert.NoError(t, err)
			second <- got
		}()
		assert.Equal(t, []int{5}, <-bf.entered)
		coalesced(t, c, 1)
		close(bf.release)
		assert.Equal(t, squares(1, 2), <-first)
		assert.Equal(t, squares(2, 3, 5), <-second)
	})
	assert.Equal(t, [][]int{{1, 2}, {3, 4}, {5}}, bf.recorded())
}

// TestBatchErrors: an error from the function fails every key it was given,
// for every caller of those keys, caches nothing, and leaves the other keys
// of the call answered.
func TestBatchErrors(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	bf := newBatcher(3)
	b, c := MemoizeBatch(bf.fn)
	_, err := b.Get(ctx, []int{1})
	require.NoError(t, err)
	<-bf.entered
	bf.fail = boom
	within(t, timeout, func() {
		single := make(chan error)
		go func() {
			<-bf.entered
			_, err := b.Call(ctx, 3)
			single <- err
		}()
		go func() {
			coalesced(t, c, 1)
			close(bf.release)
		}()
		got, err := b.Get(ctx, []int{1, 2, 3})
		assert.Equal(t, squares(1), got, "the cached key is answered")
		assert.ErrorIs(t, err, boom)
		var be *BatchError[int]
		require.ErrorAs(t, err, &be)
		assert.Equal(t, map[int]error{2: boom, 3: boom}, be.Errs)
		assert.Equal(t, "memo: 2 keys failed, the first 2: boom", err.Error())
		assert.ErrorIs(t, <-single, boom, "a single call joined gets the batch's error")
	})
	assert.Equal(t, 1, c.CacheInfo().CurrSize, "nothing cached")
	bf.fail = nil
	got, err := b.Get(ctx, []int{2, 3})
	require.NoError(t, err)
	assert.Equal(t, squares(2, 3), got)
	assert.Equal(t, []int{2, 3}, bf.recorded()[2], "the failed keys are computed again")
	assert.Equal(t, 2, c.CacheInfo().Errors)
}

// TestBatchKeyNotReturned: a key the function leaves out fails alone, with
// ErrNotReturned, and is not cached; a key it adds is ignored.
func TestBatchKeyNotReturned(t *testing.T) {
	ctx := context.Background()
	bf := newBatcher()
	bf.skip = map[int]bool{2: true}
	b, c := MemoizeBatch(bf.fn)
	got, err := b.Get(ctx, []int{1, 2, 3})
	assert.Equal(t, squares(1, 3), got)
	var be *BatchError[int]
	require.ErrorAs(t, err, &be)
	assert.Equal(t, map[int]error{2: ErrNotReturned}, be.Errs)
	assert.Equal(t, "memo: key 2 failed: "+ErrNotReturned.Error(), err.Error())
	_, err = b.Call(ctx, 2)
	assert.ErrorIs(t, err, ErrNotReturned)
	assert.Equal(t, 2, c.CacheInfo().CurrSize)

	extra, ce := MemoizeBatch(func(_ context.Context, keys []int) (map[int]int, error) {
		return map[int]int{keys[0]: 1, 99: 99}, nil
	})
	_, err = extra.Get(ctx, []int{1})
	require.NoError(t, err)
	assert.Equal(t, 1, ce.CacheInfo().CurrSize, "a key not asked for is not cached")
}

// TestBatchPanic: a panic of the function reaches the batch's caller and
// every caller joined, as a *PanicError, caches nothing, and the next call
// computes the keys again.
func TestBatchPanic(t *testing.T) {
	ctx := context.Background()
	bf := newBatcher(2)
	bf.panics = true
	b, c := MemoizeBatch(bf.fn)
	within(t, timeout, func() {
		joined := make(chan any)
		go func() {
			defer func() { joined <- recover() }()
			<-bf.entered
			b.Call(ctx, 2)
		}()
		go func() {
			coalesced(t, c, 1)
			close(bf.release)
		}()
		var pe *PanicError
		func() {
			defer func() {
				p := recover()
				require.IsType(t, pe, p)
				pe = p.(*PanicError)
			}()
			b.Get(ctx, []int{1, 2})
		}()
		assert.Equal(t, "batch bug", pe.Value)
		assert.Contains(t, string(pe.Stack), "batcher).fn")
		assert.True(t, pe == <-joined, "the joined caller panics with the same *PanicError")
	})
	assert.Equal(t, 0, c.CacheInfo().CurrSize)
	bf.panics = false
	got, err := b.Get(ctx, []int{1, 2})
	require.NoError(t, err)
	assert.Equal(t, squares(1, 2), got)
}

// TestBatchPanicLostIsObserved: a panic of a batch whose callers all gave
// up reaches the observer, once per key.
func TestBatchPanicLostIsObserved(t *testing.T) {
	bf := newBatcher(1)
	bf.panics = true
	var lost atomic.Int64
	b, c := MemoizeBatch(bf.fn, Observe(func(e Event[int, int]) {
		if e.Kind == PanicLost {
			lost.Add(1)
		}
	}))
	ctx, cancel := context.WithCancel(context.Background())
	within(t, timeout, func() {
		go func() {
			<-bf.entered
			cancel()
		}()
		_, err := b.Get(ctx, []int{1, 2})
		assert.ErrorIs(t, err, context.Canceled)
		close(bf.release)
		await.Soon(t, func() bool { return lost.Load() == 2 }, "two keys' panic lost")
	})
	assert.Equal(t, 0, c.CacheInfo().CurrSize)
}

// TestBatchContext: a caller that gives up gets the keys it had and ctx's
// error for the rest, while the execution goes on for the callers still
// waiting; when every caller of its keys has given up, the function's
// context is cancelled.
func TestBatchContext(t *testing.T) {
	bf := newBatcher(2)
	b, c := MemoizeBatch(bf.fn)
	bg := context.Background()
	_, err := b.Get(bg, []int{1})
	require.NoError(t, err)
	<-bf.entered
	within(t, timeout, func() {
		first := make(chan map[int]int)
		go func() {
			got, err := b.Get(bg, []int{2})
			assert.NoError(t, err)
			first <- got
		}()
		<-bf.entered
		ctx, cancel := context.WithCancel(bg)
		go func() {
			coalesced(t, c, 1)
			cancel()
		}()
		got, err := b.Get(ctx, []int{1, 2})
		assert.Equal(t, squares(1), got)
		var be *BatchError[int]
		require.ErrorAs(t, err, &be)
		assert.Equal(t, map[int]error{2: context.Canceled}, be.Errs)
		close(bf.release)
		assert.Equal(t, squares(2), <-first, "the execution went on for its other caller")
	})

	// Already ended: hits answered, misses fail, nothing runs.
	ended, cancel := context.WithCancel(bg)
	cancel()
	got, err := b.Get(ended, []int{1, 7})
	assert.Equal(t, squares(1), got)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Len(t, bf.recorded(), 2)

	// Every caller gone: the function's context ends.
	stopped := make(chan error)
	gb, _ := MemoizeBatch(func(ctx context.Context, keys []int) (map[int]int, error) {
		<-ctx.Done()
		stopped <- ctx.Err()
		return nil, ctx.Err()
	})
	within(t, timeout, func() {
		ctx, cancel := context.WithTimeout(bg, 10*time.Millisecond)
		defer cancel()
		_, err := gb.Get(ctx, []int{1, 2})
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorIs(t, <-stopped, context.Canceled)
	})
}

// TestBatchContextKeptWhileOneKeyIsWanted: the function's context is not
// cancelled while a caller still waits for one of its keys.
func TestBatchContextKeptWhileOneKeyIsWanted(t *testing.T) {
	bg := context.Background()
	release := make(chan struct{})
	entered := make(chan struct{})
	b, c := MemoizeBatch(func(ctx context.Context, keys []int) (map[int]int, error) {
		close(entered)
		<-release
		return squares(keys...), ctx.Err()
	})
	within(t, timeout, func() {
		ctx, cancel := context.WithCancel(bg)
		done := make(chan error)
		go func() {
			_, err := b.Get(ctx, []int{1, 2, 3})
			done <- err
		}()
		<-entered
		joined := make(chan int)
		go func() {
			v, err := b.Call(bg, 3)
			assert.NoError(t, err)
			joined <- v
		}()
		coalesced(t, c, 1)
		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
		close(release)
		assert.Equal(t, 9, <-joined)
	})
}

// TestBatchCycle: a call made with the function's context for a key it is
// computing fails with ErrCycle instead of waiting for itself.
func TestBatchCycle(t *testing.T) {
	var b *Batch[int, int]
	b, _ = MemoizeBatch(func(ctx context.Context, keys []int) (map[int]int, error) {
		if keys[0] == 1 {
			_, err := b.Call(ctx, 2)
			return nil, err
		}
		return squares(keys...), nil
	})
	within(t, timeout, func() {
		_, err := b.Get(context.Background(), []int{1, 2})
		assert.ErrorIs(t, err, ErrCycle)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, err = b.Get(ctx, []int{1, 2}) // fn in a goroutine of its own
		assert.ErrorIs(t, err, ErrCycle)
	})
}

// TestBatchKeys: a key that cannot be compared fails the call before
// anything is counted; a NaN fails alone; numbers that a cache without
// Typed merges are computed once, under the key first given.
func TestBatchKeys(t *testing.T) {
	ctx := context.Background()
	var calls [][]any
	b, c := MemoizeBatch(func(_ context.Context, keys []any) (map[any]string, error) {
		calls = append(calls, keys)
		m := map[any]string{}
		for _, k := range keys {
			m[k] = fmt.Sprintf("%T", k)
		}
		return m, nil
	})
	_, err := b.Get(ctx, []any{1, []int{1}})
	assert.ErrorIs(t, err, ErrNotComparable)
	assert.Contains(t, err.Error(), "key 1 of 2")
	assert.Equal(t, 0, c.CacheInfo().Hits+c.CacheInfo().Misses)
	assert.Empty(t, calls)

	got, err := b.Get(ctx, []any{1, 1.0, math.NaN()})
	var be *BatchError[any]
	require.ErrorAs(t, err, &be)
	assert.Len(t, be.Errs, 1)
	assert.Equal(t, map[any]string{1: "int", 1.0: "int"}, got)
	assert.Equal(t, [][]any{{1}}, calls)
}

// TestBatchCacheOff: with MaxSize(0), every key goes to the function and
// nothing is kept.
func TestBatchCacheOff(t *testing.T) {
	bf := newBatcher()
	b, c := MemoizeBatch(bf.fn, MaxSize(0))
	for range 2 {
		got, err := b.Get(context.Background(), []int{1, 2, 1})
		require.NoError(t, err)
		assert.Equal(t, squares(1, 2), got)
	}
	assert.Equal(t, [][]int{{1, 2}, {1, 2}}, bf.recorded())
	assert.Equal(t, 4, c.CacheInfo().Misses)
}

// TestBatchTTLAndStale: expired keys are computed again by the batch;
// under StaleWhileRevalidate a stale key is answered at once and refreshed
// alone.
func TestBatchTTLAndStale(t *testing.T) {
	ctx := context.Background()
	var now atomic.Int64
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	bf := newBatcher()
	b, _ := MemoizeBatch(bf.fn, TTL(time.Second), Clock(clock))
	_, err := b.Get(ctx, []int{1, 2})
	require.NoError(t, err)
	now.Add(int64(2 * time.Second))
	_, err = b.Get(ctx, []int{2, 3})
	require.NoError(t, err)
	assert.Equal(t, [][]int{{1, 2}, {2, 3}}, bf.recorded())

	sf := newBatcher()
	s, sc := MemoizeBatch(sf.fn, TTL(time.Second), StaleWhileRevalidate(time.Minute), Clock(clock))
	_, err = s.Get(ctx, []int{1, 2})
	require.NoError(t, err)
	<-sf.entered
	now.Add(int64(2 * time.Second))
	got, err := s.Get(ctx, []int{1, 3})
	require.NoError(t, err)
	assert.Equal(t, squares(1, 3), got)
	within(t, timeout, func() {
		calls := [][]int{<-sf.entered, <-sf.entered}
		slices.SortFunc(calls, slices.Compare)
		assert.Equal(t, [][]int{{1}, {3}}, calls, "the batch computed 3; 1 was refreshed alone")
	})
	assert.Equal(t, 3, sc.CacheInfo().Misses) // 1, 2, then 3; the stale 1 is a hit
}

// TestBatchHammer: overlapping batches and single calls on a few keys,
// under -race: every answer is right, no key is ever computed by two
// executions at once, and every key of every call counts one hit or miss.
func TestBatchHammer(t *testing.T) {
	var running [8]atomic.Int32
	var overlap atomic.Bool
	var asked atomic.Int64
	b, c := MemoizeBatch(func(ctx context.Context, keys []int) (map[int]int, error) {
		for _, k := range keys {
			if running[k].Add(1) != 1 {
				overlap.Store(true)
			}
		}
		for range 3 {
			runtime.Gosched()
		}
		for _, k := range keys {
			running[k].Add(-1)
		}
		return squares(keys...), nil
	}, MaxSize(4), Shards(2))
	hammer(t, 8, timeout, 27, func(g int, rng *rand.Rand) {
		for range longer(300) {
			if rng.IntN(3) == 0 {
				k := rng.IntN(8)
				v, err := b.Call(context.Background(), k)
				assert.NoError(t, err)
				assert.Equal(t, k*k, v)
				asked.Add(1)
				continue
			}
			keys := []int{rng.IntN(8), rng.IntN(8), rng.IntN(8)}
			ctx, cancel := context.WithCancel(context.Background())
			got, err := b.Get(ctx, keys)
			cancel()
			assert.NoError(t, err)
			for _, k := range keys {
				assert.Equal(t, k*k, got[k])
			}
			slices.Sort(keys)
			asked.Add(int64(len(slices.Compact(keys))))
		}
	})
	assert.False(t, overlap.Load(), "a key computed by two executions at once")
	ci := c.CacheInfo()
	assert.Equal(t, int(asked.Load()), ci.Hits+ci.Misses)
}
