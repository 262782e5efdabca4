package memo

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// deniedStore is a memStore that signals each Lease it refuses, because
// another token holds the lease.
type deniedStore struct {
	*memStore
	denied chan struct{}
}

func (s *deniedStore) Lease(ctx context.Context, ns, key, token string, d time.Duration) (bool, error) {
	ok, err := s.memStore.Lease(ctx, ns, key, token, d)
	if err == nil && !ok {
		select {
		case s.denied <- struct{}{}:
		default:
		}
	}
	return ok, err
}

// leaseProcess memoizes bf as a process sharing st, with lease for Lease
// (the default if 0).
func leaseProcess(t *testing.T, st Store, bf *batcher, lease time.Duration) (*Batch[int, int], *Cache[int, int]) {
	b, c := MemoizeBatch(bf.fn, Share(Sharing{Store: st, Name: "squares", Lease: lease, Poll: time.Hour, Timeout: time.Hour}))
	t.Cleanup(c.Close)
	return b, c
}

// entered waits for bf's next call and returns its keys.
func entered(t *testing.T, bf *batcher) []int {
	t.Helper()
	select {
	case keys := <-bf.entered:
		return keys
	case <-time.After(timeout):
		t.Fatal("the batch function was not called")
		return nil
	}
}

// waitDenied waits for n refused Leases.
func waitDenied(t *testing.T, st *deniedStore, n int) {
	t.Helper()
	for range n {
		select {
		case <-st.denied:
		case <-time.After(timeout):
			t.Fatal("no refused lease")
		}
	}
}

// TestBatchLeaseOverlappingBatches: two processes' batches that overlap
// compute each key once: the second computes the key it holds the lease of
// at once, waits for those the first is computing, and gets their values
// from the store.
func TestBatchLeaseOverlappingBatches(t *testing.T) {
	ctx := context.Background()
	st := &deniedStore{newMemStore(), make(chan struct{}, 100)}
	bfA, bfB := newBatcher(2), newBatcher()
	a, _ := leaseProcess(t, st, bfA, 0)
	b, cb := leaseProcess(t, st, bfB, 0)
	gotA, gotB := make(chan map[int]int, 1), make(chan map[int]int, 1)
	go func() { m, _ := a.Get(ctx, []int{1, 2, 3}); gotA <- m }()
	assert.Equal(t, []int{1, 2, 3}, entered(t, bfA))
	go func() { m, _ := b.Get(ctx, []int{2, 3, 4}); gotB <- m }()
	assert.Equal(t, []int{4}, entered(t, bfB), "b computes only the key whose lease it took")
	waitDenied(t, st, 3) // 2 and 3 refused once, then again as b waits
	select {
	case <-gotB:
		t.Fatal("b returned before a stored the keys it waits for")
	default:
	}
	close(bfA.release)
	within(t, timeout, func() {
		assert.Equal(t, squares(1, 2, 3), <-gotA)
		assert.Equal(t, squares(2, 3, 4), <-gotB)
	})
	assert.Equal(t, [][]int{{1, 2, 3}}, bfA.recorded())
	assert.Equal(t, [][]int{{4}}, bfB.recorded(), "b never computed a's keys")
	assert.Equal(t, 2, cb.CacheInfo().StoreWaits)
}

// TestBatchLeaseEachKeyOnce: many overlapping batches in two processes
// sharing one store compute each key once in all.
func TestBatchLeaseEachKeyOnce(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	var counts [64]atomic.Int64
	fn := func(ctx context.Context, keys []int) (map[int]int, error) {
		m := map[int]int{}
		for _, k := range keys {
			counts[k].Add(1)
			m[k] = k * k
		}
		time.Sleep(time.Millisecond) // long enough for the batches to overlap
		return m, nil
	}
	var bs []*Batch[int, int]
	for range 2 {
		b, c := MemoizeBatch(fn, Share(Sharing{Store: st, Name: "squares", Poll: time.Hour, Timeout: time.Hour}))
		t.Cleanup(c.Close)
		bs = append(bs, b)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			<-start
			for range 10 {
				lo := r.IntN(len(counts) - 8)
				keys := []int{lo, lo + 3, lo + 1, lo + 7, lo + 2}
				got, err := bs[g%2].Get(ctx, keys)
				assert.NoError(t, err)
				for _, k := range keys {
					assert.Equal(t, k*k, got[k])
				}
			}
		}()
	}
	within(t, timeout, func() { close(start); wg.Wait() })
	for k := range counts {
		assert.LessOrEqual(t, counts[k].Load(), int64(1), "key %d computed more than once", k)
	}
}

// TestBatchLeaseWaitsForCall: a batch waits for the key a single call of
// another process is computing, and the reverse.
func TestBatchLeaseWaitsForCall(t *testing.T) {
	ctx := context.Background()
	t.Run("batch waits for call", func(t *testing.T) {
		st := &deniedStore{newMemStore(), make(chan struct{}, 100)}
		bfA, bfB := newBatcher(2), newBatcher()
		a, _ := leaseProcess(t, st, bfA, 0)
		b, _ := leaseProcess(t, st, bfB, 0)
		gotA, gotB := make(chan int, 1), make(chan map[int]int, 1)
		go func() { v, _ := a.Call(ctx, 2); gotA <- v }()
		assert.Equal(t, []int{2}, entered(t, bfA))
		go func() { m, _ := b.Get(ctx, []int{1, 2}); gotB <- m }()
		assert.Equal(t, []int{1}, entered(t, bfB))
		waitDenied(t, st, 2) // b is waiting for 2
		close(bfA.release)
		within(t, timeout, func() {
			assert.Equal(t, 4, <-gotA)
			assert.Equal(t, squares(1, 2), <-gotB)
		})
		assert.Equal(t, [][]int{{1}}, bfB.recorded())
	})
	t.Run("call waits for batch", func(t *testing.T) {
		st := &deniedStore{newMemStore(), make(chan struct{}, 100)}
		bfA, bfB := newBatcher(2), newBatcher()
		a, _ := leaseProcess(t, st, bfA, 0)
		b, cb := leaseProcess(t, st, bfB, 0)
		gotA, gotB := make(chan map[int]int, 1), make(chan int, 1)
		go func() { m, _ := a.Get(ctx, []int{1, 2}); gotA <- m }()
		assert.Equal(t, []int{1, 2}, entered(t, bfA))
		go func() { v, _ := b.Call(ctx, 2); gotB <- v }()
		waitDenied(t, st, 2) // b's call is waiting for 2
		close(bfA.release)
		within(t, timeout, func() {
			assert.Equal(t, squares(1, 2), <-gotA)
			assert.Equal(t, 4, <-gotB)
		})
		assert.Empty(t, bfB.recorded(), "b's call took a's value")
		assert.Equal(t, 1, cb.CacheInfo().StoreWaits)
	})
}

// TestBatchLeaseTakenOver: a batch waiting for a key whose holder stops
// renewing its lease (a process that died) takes the lease over and
// computes the key, in a second call of the batch function.
func TestBatchLeaseTakenOver(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	clk := newFakeClock(t0)
	st.now = clk.Now
	w := watchLeases(st)
	bfA, bfB := newBatcher(1), newBatcher()
	defer close(bfA.release)
	a, _ := leaseProcess(t, st, bfA, 40*time.Millisecond)
	b, _ := leaseProcess(t, st, bfB, 40*time.Millisecond)
	go a.Get(ctx, []int{1})
	assert.Equal(t, []int{1}, entered(t, bfA))
	w.wait(t)
	// a's renewals no longer reach the store, as if it had died.
	lost := func(context.Context) error { return errors.New("unreachable") }
	w.then.Store(&lost)
	w.wait(t)
	gotB := make(chan map[int]int, 1)
	go func() { m, _ := b.Get(ctx, []int{1, 2}); gotB <- m }()
	assert.Equal(t, []int{2}, entered(t, bfB))
	clk.Advance(41 * time.Millisecond) // past a's last renewal's lease
	within(t, timeout, func() { assert.Equal(t, squares(1, 2), <-gotB) })
	assert.Equal(t, [][]int{{2}, {1}}, bfB.recorded(), "the key taken over is computed in a second call")
}

// TestBatchLeaseStoreFails: a store whose Lease fails does not fail a
// batch: its keys are computed without a lease, and the failure counted.
func TestBatchLeaseStoreFails(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	down := func(context.Context, string) error { return errors.New("down") }
	st.onLease.Store(&down)
	bf := newBatcher()
	b, c := leaseProcess(t, st, bf, 0)
	var got map[int]int
	var err error
	within(t, timeout, func() { got, err = b.Get(ctx, []int{1, 2}) })
	require.NoError(t, err)
	assert.Equal(t, squares(1, 2), got)
	assert.Equal(t, [][]int{{1, 2}}, bf.recorded())
	assert.Positive(t, c.CacheInfo().StoreErrors)
}
