package memo

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSelfCallIsACycle(t *testing.T) {
	var fact func(context.Context, int) (int, error)
	fact, c := MemoizeCtx(func(ctx context.Context, n int) (int, error) {
		if n <= 1 {
			return 1, nil
		}
		if n == 5 {
			return fact(ctx, 5) // a bug: waits for itself
		}
		r, err := fact(ctx, n-1)
		return n * r, err
	})
	within(t, timeout, func() {
		v, err := fact(context.Background(), 4)
		require.NoError(t, err)
		assert.Equal(t, 24, v, "recursion on other keys is no cycle")
		_, err = fact(context.Background(), 6)
		require.ErrorIs(t, err, ErrCycle)
		assert.Regexp(t, `^memo: a call would wait for its own execution: .*func\d+\(5\) -> .*func\d+\(5\)$`, err.Error())
	})
	assert.Equal(t, 0, c.CacheInfo().Coalesced, "the cyclic call was not counted as a hit")
}

func TestCycleThroughTwoFunctions(t *testing.T) {
	var a, b func(context.Context, int) (int, error)
	a, _ = MemoizeCtx(func(ctx context.Context, n int) (int, error) { return b(ctx, n) })
	b, _ = MemoizeCtx(func(ctx context.Context, n int) (int, error) { return a(ctx, n) })
	// With a context that can end: executions run in goroutines of their own.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	within(t, timeout, func() {
		_, err := a(ctx, 1)
		require.ErrorIs(t, err, ErrCycle)
		assert.Regexp(t, `func\d+\(1\) -> .*func\d+\(1\) -> .*func\d+\(1\)$`, err.Error())
	})
	// The error is the executions' result: nothing is cached, and the next
	// call finds the cycle again.
	within(t, timeout, func() {
		_, err := b(ctx, 1)
		assert.True(t, errors.Is(err, ErrCycle))
	})
}

func TestNoCycleBetweenCallers(t *testing.T) {
	// Two callers of one key, neither inside the other: the second joins
	// the first's execution, as ever.
	g := newGate()
	f, c := MemoizeCtx(func(_ context.Context, k int) (int, error) { return g.fn(k) })
	done := make(chan int, 2)
	for range 2 {
		go func() { v, _ := f(context.Background(), 3); done <- v }()
	}
	<-g.started
	within(t, timeout, func() {
		for c.CacheInfo().Coalesced == 0 {
			time.Sleep(time.Millisecond)
		}
	})
	close(g.release)
	within(t, timeout, func() {
		assert.Equal(t, 30, <-done)
		assert.Equal(t, 30, <-done)
	})
}
