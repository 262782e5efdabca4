package memo

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// leaseWatch records the Lease calls of a memStore: the first token to
// call (the holder's) and a signal for each later call with it (a renewal).
type leaseWatch struct {
	mu      sync.Mutex
	holder  string
	renewed chan struct{}
	calls   atomic.Int64 // the holder's renewals
	// then, if set, is run for each renewal, and its error returned.
	then atomic.Pointer[func(ctx context.Context) error]
}

func watchLeases(st *memStore) *leaseWatch {
	w := &leaseWatch{renewed: make(chan struct{}, 1000)}
	f := func(ctx context.Context, token string) error {
		w.mu.Lock()
		if w.holder == "" {
			w.holder = token
		}
		mine := token == w.holder
		w.mu.Unlock()
		if !mine {
			return nil
		}
		if w.calls.Add(1) == 1 {
			return nil // the first: the lease taken
		}
		w.renewed <- struct{}{}
		if then := w.then.Load(); then != nil {
			return (*then)(ctx)
		}
		return nil
	}
	st.onLease.Store(&f)
	return w
}

// wait waits for the holder's next renewal, failing the test after timeout.
func (w *leaseWatch) wait(t *testing.T) {
	t.Helper()
	select {
	case <-w.renewed:
	case <-time.After(timeout):
		t.Fatal("no renewal of the lease")
	}
}

// holderAndWaiter builds two processes of one function on st: a, whose
// executions signal started and block until release is closed, and b, whose
// executions are counted in runs. Lease is short in real time (renewals
// every 10ms); the store's clock, which decides when leases expire, is clk.
func holderAndWaiter(t *testing.T, st *memStore, clk *fakeClock) (a, b func(int) int, cb *Cache[int, int], started, release chan struct{}, runs *atomic.Int64) {
	st.now = clk.Now
	started, release = make(chan struct{}), make(chan struct{})
	runs = new(atomic.Int64)
	sh := Sharing{Store: st, Name: "long", Lease: 40 * time.Millisecond, Timeout: time.Hour, Poll: time.Hour}
	a, ca := Memoize(func(n int) int { close(started); <-release; return n }, Share(sh))
	t.Cleanup(ca.Close)
	b, cb = Memoize(func(n int) int { runs.Add(1); return -n }, Share(sh))
	t.Cleanup(cb.Close)
	return a, b, cb, started, release, runs
}

func TestLeaseRenewedWhileTheExecutionRuns(t *testing.T) {
	st := newMemStore()
	clk := newFakeClock(t0)
	w := watchLeases(st)
	a, b, cb, started, release, runs := holderAndWaiter(t, st, clk)
	got := make(chan int, 2)
	go func() { got <- a(1) }()
	<-started
	go func() { got <- b(1) }()
	// Twelve renewals, the store's clock moved on by 0.9 of the lease after
	// each: 10.8 leases in all, the lease never left to expire.
	for range 12 {
		w.wait(t)
		clk.Advance(36 * time.Millisecond)
	}
	w.wait(t) // b has looked at the lease since the last move
	assert.Zero(t, runs.Load(), "b never computed the key while a renewed its lease")
	assert.Positive(t, cb.CacheInfo().StoreMisses, "b is waiting on a's lease")
	select {
	case v := <-got:
		t.Fatalf("a call returned %d before a's execution ended", v)
	default:
	}
	close(release)
	within(t, timeout, func() {
		assert.Equal(t, 1, <-got)
		assert.Equal(t, 1, <-got, "b got a's result")
	})
	assert.Zero(t, runs.Load())
	assert.Equal(t, 1, cb.CacheInfo().StoreWaits)
}

func TestLeaseTakenOverWhenRenewalsStop(t *testing.T) {
	st := newMemStore()
	clk := newFakeClock(t0)
	w := watchLeases(st)
	a, b, _, started, release, runs := holderAndWaiter(t, st, clk)
	defer close(release)
	go a(1)
	<-started
	w.wait(t)
	// a's renewals no longer reach the store, as if it had died.
	lost := func(context.Context) error { return errors.New("unreachable") }
	w.then.Store(&lost)
	w.wait(t)
	clk.Advance(41 * time.Millisecond) // past a's last renewal's lease
	within(t, timeout, func() { assert.Equal(t, -1, b(1), "b computed the key") })
	assert.Equal(t, int64(1), runs.Load())
}

func TestLeaseRenewalEndsBeforeTheUnlease(t *testing.T) {
	st := newMemStore()
	w := watchLeases(st)
	// A renewal that the store holds up until its context ends, in progress
	// when the execution returns.
	inRenewal := make(chan struct{})
	var once sync.Once
	hold := func(ctx context.Context) error {
		once.Do(func() { close(inRenewal) })
		<-ctx.Done()
		return ctx.Err()
	}
	w.then.Store(&hold)
	sh := Sharing{Store: st, Name: "f", Lease: 40 * time.Millisecond, Timeout: time.Hour, Poll: time.Hour}
	f, c := Memoize(func(n int) int { <-inRenewal; return n }, Share(sh))
	defer c.Close()
	within(t, timeout, func() { assert.Equal(t, 7, f(7)) })
	calls := w.calls.Load()
	st.mu.Lock()
	leases := len(st.leases)
	st.mu.Unlock()
	assert.Zero(t, leases, "the lease was ended after the renewal in progress")
	time.Sleep(50 * time.Millisecond) // five renewal periods
	assert.Equal(t, calls, w.calls.Load(), "no renewal after the execution")
	require.Zero(t, c.CacheInfo().StoreErrors, "the cancelled renewal is not a failure")
}
