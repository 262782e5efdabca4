package tiers

import (
	"context"
	"testing"

	"github.com/gomemo/memo"
	"github.com/gomemo/memo/redisstore"
	"github.com/gomemo/memo/redisstore/redistest"
	"github.com/gomemo/memo/sqlite"
)

// perBatch is how many keys one operation of BenchmarkBatch asks for.
const perBatch = 100

// BenchmarkBatch measures one batch call for perBatch keys (batch) against
// perBatch calls of the memoized function (single), each tier with every
// key cached there before the timer starts: in memory, then with a cache
// of one entry in memory, so that every key is read from the store (the
// batch in one round trip, the single calls in one each). An operation is
// perBatch keys, the windows of the same 1000 keys in turn.
//
//	cd benchmarks && go test -run '^$' -bench Batch -count 5 ./tiers
func BenchmarkBatch(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	batchFn := func(_ context.Context, ks []int) (map[int]string, error) {
		m := make(map[int]string, len(ks))
		for _, k := range ks {
			m[k] = value
		}
		return m, nil
	}
	single := func(int) string { return value }
	windows := make([][]int, keys/perBatch)
	for i := range windows {
		for k := range perBatch {
			windows[i] = append(windows[i], i*perBatch+k)
		}
	}
	tiers := []struct {
		name  string
		store func(b *testing.B) memo.Store
	}{
		{"memory", nil},
		{"disk", func(b *testing.B) memo.Store {
			st, err := sqlite.Open(b.TempDir(), sqlite.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			return st
		}},
		{"redis", func(b *testing.B) memo.Store {
			st, err := redisstore.New(srv.Client(b), redisstore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			return st
		}},
	}
	for _, tier := range tiers {
		opts := func(b *testing.B, st memo.Store, name string) []memo.Option {
			if st == nil {
				return []memo.Option{memo.MaxSize(keys)}
			}
			return []memo.Option{memo.MaxSize(1), memo.Share(memo.Sharing{Store: st, Name: name})}
		}
		open := func(b *testing.B) memo.Store {
			if tier.store == nil {
				return nil
			}
			return tier.store(b)
		}
		b.Run(tier.name+"/batch", func(b *testing.B) {
			st := open(b)
			g, c := memo.MemoizeBatch(batchFn, opts(b, st, "batch")...)
			defer c.Close()
			for _, w := range windows {
				g.Get(ctx, w)
			}
			if tier.store != nil {
				// Another process's cache: nothing in memory, all in the store.
				c.Close()
				g, c = memo.MemoizeBatch(batchFn, opts(b, st, "batch")...)
				defer c.Close()
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				got, err := g.Get(ctx, windows[i])
				if err != nil || len(got) != perBatch {
					b.Fatal("wrong values", err)
				}
				i = (i + 1) % len(windows)
			}
			if tier.store != nil && c.CacheInfo().StoreMisses != 0 {
				b.Fatal("a key was not in the store")
			}
		})
		b.Run(tier.name+"/single", func(b *testing.B) {
			f, c := memo.Memoize(single, opts(b, open(b), "single")...)
			defer c.Close()
			for k := range keys {
				f(k)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				for _, k := range windows[i] {
					if f(k) != value {
						b.Fatal("wrong value")
					}
				}
				i = (i + 1) % len(windows)
			}
		})
	}
}
