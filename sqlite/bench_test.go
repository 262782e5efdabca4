package sqlite

import (
	"testing"

	"github.com/gomemo/memo"
)

// BenchmarkHit compares what a call answered from memory costs with one
// answered from the disk: the local cache holds one entry, and the keys
// cycle over 1000 that are all on disk, so every call misses in memory and
// hits in the store.
func BenchmarkHit(b *testing.B) {
	const keys = 1000
	value := expected(7) // a few hundred bytes
	b.Run("memory", func(b *testing.B) {
		f, c := memo.Memoize(func(k int) string { return value }, memo.MaxSize(keys))
		defer c.Close()
		for k := range keys {
			f(k)
		}
		k := 0
		for b.Loop() {
			f(k)
			k = (k + 1) % keys
		}
	})
	b.Run("disk", func(b *testing.B) {
		st, err := Open(b.TempDir(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		sh := memo.Sharing{Store: st, Name: "bench"}
		f, c := memo.Memoize(func(k int) string { return value }, memo.MaxSize(1), memo.Share(sh))
		defer c.Close()
		for k := range keys {
			f(k)
		}
		before := c.CacheInfo()
		k := 0
		for b.Loop() {
			f(k)
			k = (k + 1) % keys
		}
		after := c.CacheInfo()
		if hits := after.StoreHits - before.StoreHits; hits != b.N {
			b.Fatalf("%d store hits in %d calls", hits, b.N)
		}
	})
}
