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

// countedStore is a memStore that counts its Gets.
type countedStore struct {
	*memStore
	gets atomic.Int64
}

func (s *countedStore) Get(ctx context.Context, ns, key string) ([]byte, time.Time, bool, error) {
	s.gets.Add(1)
	return s.memStore.Get(ctx, ns, key)
}

// batchStore is a countedStore that is a BatchGetter, counting its
// GetBatch calls.
type batchStore struct {
	countedStore
	batches atomic.Int64
}

func (s *batchStore) GetBatch(ctx context.Context, ns string, keys []string) ([]Lookup, error) {
	s.batches.Add(1)
	out := make([]Lookup, len(keys))
	for i, k := range keys {
		v, exp, found, err := s.memStore.Get(ctx, ns, k)
		if err != nil {
			return nil, err
		}
		out[i] = Lookup{v, exp, found}
	}
	return out, nil
}

// batchProcess memoizes a batcher as a process sharing st.
// Its poller reads the store's deletions every poll.
func batchProcess(t *testing.T, st Store, poll time.Duration) (*batcher, *Batch[int, int], *Cache[int, int]) {
	bf := newBatcher()
	b, c := MemoizeBatch(bf.fn, Share(Sharing{Store: st, Name: "squares", Poll: poll, Timeout: 200 * time.Millisecond}))
	t.Cleanup(c.Close)
	return bf, b, c
}

// TestBatchShared: the keys a batch computes are looked up in the store in
// one GetBatch (or one Get each, concurrently, from a store that is not a
// BatchGetter), and the function runs for the others only, whose values
// are written for the other processes.
func TestBatchShared(t *testing.T) {
	ctx := context.Background()
	for _, batched := range []bool{true, false} {
		name := map[bool]string{true: "BatchGetter", false: "Get per key"}[batched]
		t.Run(name, func(t *testing.T) {
			bs := &batchStore{countedStore: countedStore{memStore: newMemStore()}}
			var st Store = &bs.countedStore
			if batched {
				st = bs
			}
			_, a, _ := batchProcess(t, st, 10*time.Millisecond)
			got, err := a.Get(ctx, []int{1, 2, 3})
			require.NoError(t, err)
			assert.Equal(t, squares(1, 2, 3), got)
			assert.Equal(t, int64(3), bs.sets.Load())

			bs.gets.Store(0)
			bs.batches.Store(0)
			bf, b, cb := batchProcess(t, st, 10*time.Millisecond)
			got, err = b.Get(ctx, []int{1, 2, 3, 4})
			require.NoError(t, err)
			assert.Equal(t, squares(1, 2, 3, 4), got)
			assert.Equal(t, [][]int{{4}}, bf.recorded(), "only the key the store lacks is computed")
			if batched {
				assert.Equal(t, int64(1), bs.batches.Load(), "one round trip")
				assert.Equal(t, int64(0), bs.gets.Load())
			} else {
				assert.Equal(t, int64(4), bs.gets.Load())
			}
			ci := cb.CacheInfo()
			assert.Equal(t, 3, ci.StoreHits)
			assert.Equal(t, 1, ci.StoreMisses)
			assert.Equal(t, 4, ci.Misses, "in memory, every key was a miss")
			v, err := b.Call(ctx, 2)
			require.NoError(t, err)
			assert.Equal(t, 4, v, "kept in memory")
		})
	}
}

// TestBatchSharedDamagedValues: values read by a batch are checked as a
// single read checks them: damaged ones are misses, counted as store
// errors, and recomputed.
func TestBatchSharedDamagedValues(t *testing.T) {
	ctx := context.Background()
	bs := &batchStore{countedStore: countedStore{memStore: newMemStore()}}
	_, a, _ := batchProcess(t, bs, 10*time.Millisecond)
	_, err := a.Get(ctx, []int{1, 2})
	require.NoError(t, err)
	bs.damage(func(b []byte) []byte { b[len(b)-1] ^= 1; return b })
	bf, b, cb := batchProcess(t, bs, 10*time.Millisecond)
	got, err := b.Get(ctx, []int{1, 2})
	require.NoError(t, err)
	assert.Equal(t, squares(1, 2), got)
	assert.Equal(t, [][]int{{1, 2}}, bf.recorded())
	assert.Equal(t, 2, cb.CacheInfo().StoreErrors)
	assert.Equal(t, 0, cb.CacheInfo().StoreHits)
}

// TestBatchSharedStoreFails: a store that fails never fails a batch: its
// keys are computed, and the failure counted once.
func TestBatchSharedStoreFails(t *testing.T) {
	ctx := context.Background()
	bs := &batchStore{countedStore: countedStore{memStore: newMemStore()}}
	bf, b, c := batchProcess(t, bs, time.Hour) // no poller's failures
	down := errors.New("down")
	bs.fail.Store(&down)
	got, err := b.Get(ctx, []int{1, 2})
	require.NoError(t, err)
	assert.Equal(t, squares(1, 2), got)
	assert.Equal(t, [][]int{{1, 2}}, bf.recorded())
	assert.Equal(t, 1, c.CacheInfo().StoreErrors, "one failed round trip; the writes are skipped while the store is paused")
}
