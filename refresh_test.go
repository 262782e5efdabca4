package memo

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests of RefreshAhead.

// idle reports whether no refresh runs in c's first shard.
func idle[K comparable, V any](c *Cache[K, V]) bool {
	s := c.shards[0]
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.refreshing) == 0
}

// versioned returns a function whose n-th execution returns n, and the
// count of its executions.
func versioned() (func(int) int, *atomic.Int32) {
	var runs atomic.Int32
	return func(int) int { return int(runs.Add(1)) }, &runs
}

func TestRefreshAheadReplacesBeforeExpiry(t *testing.T) {
	clk := newFakeClock(t0)
	fn, runs := versioned()
	f, c := Memoize(fn, TTL(10*time.Second), RefreshAhead(2*time.Second, 0), Clock(clk.Now))
	assert.Equal(t, 1, f(0))
	clk.Advance(8*time.Second - time.Nanosecond)
	assert.Equal(t, 1, f(0))
	assert.Equal(t, int32(1), runs.Load(), "more than 2s left: no refresh")
	clk.Advance(time.Nanosecond) // 8s: 2s left
	assert.Equal(t, 1, f(0), "the hit that starts the refresh gets the value it found")
	within(t, timeout, func() { eventually(func() bool { v, _ := c.Peek(0); return v == 2 }) })
	clk.Advance(9 * time.Second) // 17s: the refresh stored at 8s, so fresh until 18s
	assert.Equal(t, 2, f(0))
	ci := c.CacheInfo()
	assert.Equal(t, counts{Hits: 3, Misses: 1}, countsOf(ci), "the callers never missed")
}

func TestRefreshAheadSingleFlight(t *testing.T) {
	clk := newFakeClock(t0)
	g := newGate()
	f, c := MemoizeErr(g.fn, TTL(10*time.Second), RefreshAhead(5*time.Second, 0), Clock(clk.Now))
	go func() { <-g.started; g.release <- struct{}{} }()
	within(t, timeout, func() { f(1) })
	clk.Advance(6 * time.Second)
	within(t, timeout, func() {
		for range 5 {
			v, err := f(1)
			require.NoError(t, err)
			assert.Equal(t, 10, v, "served at once while the refresh waits")
		}
		<-g.started // the refresh
	})
	assert.Equal(t, int32(2), g.runs.Load(), "one refresh for five hits")
	close(g.release)
	within(t, timeout, func() { eventually(func() bool { return idle(c) }) })
	assert.Equal(t, counts{Hits: 5, Misses: 1}, countsOf(c.CacheInfo()))
}

func TestRefreshAheadFailureKeepsValue(t *testing.T) {
	clk := newFakeClock(t0)
	var runs atomic.Int32
	f, c := MemoizeErr(func(int) (int, error) {
		if runs.Add(1) > 1 {
			return 0, errors.New("upstream down")
		}
		return 7, nil
	}, TTL(10*time.Second), RefreshAhead(3*time.Second, 0), Clock(clk.Now))
	f(1)
	clk.Advance(8 * time.Second)
	v, err := f(1)
	require.NoError(t, err)
	assert.Equal(t, 7, v)
	within(t, timeout, func() { eventually(func() bool { return c.CacheInfo().Errors == 1 }) })
	clk.Advance(2*time.Second - time.Nanosecond)
	v, err = f(1)
	require.NoError(t, err)
	assert.Equal(t, 7, v, "the old value until it expires")
	within(t, timeout, func() { eventually(func() bool { return c.CacheInfo().Errors == 2 }) })
	assert.Equal(t, int32(3), runs.Load(), "the next hit in the window tried again")
	clk.Advance(time.Nanosecond)
	_, err = f(1)
	assert.Error(t, err, "expired: the call is a miss and runs the function")
}

func TestRefreshAheadContext(t *testing.T) {
	clk := newFakeClock(t0)
	type ctxKey struct{}
	type seenCtx struct {
		value any
		err   error
	}
	seen := make(chan seenCtx, 2)
	proceed := make(chan struct{})
	f, _ := MemoizeCtx(func(ctx context.Context, n int) (int, error) {
		if ctx.Value(ctxKey{}) != nil {
			<-proceed // the refresh: until the caller has cancelled its context
		}
		seen <- seenCtx{ctx.Value(ctxKey{}), ctx.Err()}
		return n, nil
	},
		TTL(10*time.Second), RefreshAhead(time.Second, 0), Clock(clk.Now))
	f(context.Background(), 1)
	<-seen
	clk.Advance(9 * time.Second)
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "trace-1"))
	_, err := f(ctx, 1)
	require.NoError(t, err)
	cancel()
	close(proceed)
	within(t, timeout, func() {
		got := <-seen
		assert.Equal(t, "trace-1", got.value, "the caller's values")
		assert.NoError(t, got.err, "not the caller's cancellation")
	})
}

// Jitter moves each hit's threshold earlier by a random part of it: at 1s
// from the expiry, with ahead 2s and jitter 2s, about half the hits refresh.
func TestRefreshAheadJitter(t *testing.T) {
	clk := newFakeClock(t0)
	fn, runs := versioned()
	f, c := Memoize(fn, TTL(10*time.Second), RefreshAhead(2*time.Second, 2*time.Second), Clock(clk.Now), Unbounded())
	const keys = 400
	for k := range keys {
		f(k)
	}
	clk.Advance(9 * time.Second)
	for k := range keys {
		f(k)
	}
	within(t, timeout, func() { eventually(func() bool { return idle(c) }) })
	refreshed := int(runs.Load()) - keys
	assert.Greater(t, refreshed, keys/5, "jitter refreshed too few: %d of %d", refreshed, keys)
	assert.Less(t, refreshed, keys*4/5, "jitter refreshed too many: %d of %d", refreshed, keys)
}

func TestRefreshAheadOptions(t *testing.T) {
	id := func(n int) int { return n }
	_, c := Memoize(id, RefreshAhead(time.Second, 0))
	assert.Zero(t, c.Parameters().RefreshAhead, "nothing expires, so nothing is refreshed")
	_, c = Memoize(id, TTL(time.Minute), RefreshAhead(time.Second, time.Second/2))
	assert.Equal(t, time.Second, c.Parameters().RefreshAhead)
	assert.Equal(t, time.Second/2, c.Parameters().RefreshJitter)
	assert.PanicsWithValue(t, "memo: RefreshAhead must not be negative, got -1s", func() { Memoize(id, TTL(time.Minute), RefreshAhead(-time.Second, 0)) })
	assert.PanicsWithValue(t, "memo: RefreshAhead's jitter (2s) must not be longer than ahead (1s)", func() { Memoize(id, TTL(time.Minute), RefreshAhead(time.Second, 2*time.Second)) })
	assert.PanicsWithValue(t, "memo: RefreshAhead cannot be combined with ExpireAfterAccess, whose entries in use do not come near their expiry",
		func() { Memoize(id, ExpireAfterAccess(time.Minute), RefreshAhead(time.Second, 0)) })
}
