package memo

import (
	"context"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/gomemo/memo/internal/trace"
)

const benchKeys = 1 << 16

// BenchmarkHit measures a cache hit: the LRU core's Get and a memoized call,
// on a pre-filled cache.
func BenchmarkHit(b *testing.B) {
	keys := trace.Zipf(benchKeys, 1024, trace.Seed)
	b.Run("LRU.Get", func(b *testing.B) {
		c := NewLRU[int, int](1024, nil)
		for i := range 1024 {
			c.Add(i, i)
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			c.Get(keys[i%benchKeys])
		}
	})
	b.Run("Memoize", func(b *testing.B) {
		f, _ := Memoize(func(n int) int { return n }, MaxSize(1024))
		for i := range 1024 {
			f(i)
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			f(keys[i%benchKeys])
		}
	})
	b.Run("MemoizeCtx", func(b *testing.B) {
		f, _ := MemoizeCtx(func(_ context.Context, n int) (int, error) { return n, nil }, MaxSize(1024))
		ctx := context.Background()
		for i := range 1024 {
			f(ctx, i)
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			f(ctx, keys[i%benchKeys])
		}
	})
}

// filled returns the identity on ints memoized with opts, called once for
// each of the keys 0 to 1023, which the hit benchmarks draw from.
func filled(opts ...Option) func(int) int {
	f, _ := Memoize(func(n int) int { return n }, opts...)
	for i := range 1024 {
		f(i)
	}
	return f
}

// BenchmarkHitEstimateSizes measures what EstimateSizes adds to a hit: the
// hits of BenchmarkHit's Memoize, with the option off and on, for a bounded
// cache (one mark) and an Unbounded one (nine), run one after the other so
// that benchstat -col /sizes compares them.
func BenchmarkHitEstimateSizes(b *testing.B) {
	keys := trace.Zipf(benchKeys, 1024, trace.Seed)
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"MaxSize/sizes=off", []Option{MaxSize(1024)}},
		{"MaxSize/sizes=on", []Option{MaxSize(1024), EstimateSizes(0)}},
		{"Unbounded/sizes=off", []Option{Unbounded()}},
		{"Unbounded/sizes=on", []Option{Unbounded(), EstimateSizes(0)}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f := filled(tc.opts...)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				f(keys[i%benchKeys])
			}
		})
	}
}

// BenchmarkEstimateSizesMemory reports the live heap EstimateSizes(0) adds to
// a cache of 1000 entries once a stream of 1M distinct keys has filled its
// sample, per key of the sample (B/followed-key) and in all (MB). Nothing is
// timed: run it with -benchtime=1x.
func BenchmarkEstimateSizesMemory(b *testing.B) {
	keys := make([]int, 2_000_000)
	for i := range keys {
		keys[i] = int(mix(uint64(i)) % 1_000_000)
	}
	live := func(opts ...Option) int64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		f, c := Memoize(func(k int) int { return k }, append([]Option{MaxSize(1000)}, opts...)...)
		for _, k := range keys {
			f(k)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(c)
		runtime.KeepAlive(keys) // alive at both readings, so that it is in neither difference
		return int64(after.HeapAlloc) - int64(before.HeapAlloc)
	}
	added := float64(live(EstimateSizes(0)) - live())
	for b.Loop() {
	}
	b.ReportMetric(added/defaultBudget, "B/followed-key")
	b.ReportMetric(added/1e6, "MB")
}

// BenchmarkHitParallel measures hits from all cores at once on one cache,
// plain and sharded.
func BenchmarkHitParallel(b *testing.B) {
	keys := trace.Zipf(benchKeys, 1024, trace.Seed)
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"Memoize", []Option{MaxSize(1024)}},
		{"Memoize/Shards(16)", []Option{MaxSize(1024), Shards(16)}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f := filled(tc.opts...)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := rand.IntN(benchKeys)
				for pb.Next() {
					f(keys[i%benchKeys])
					i++
				}
			})
		})
	}
}

// BenchmarkGetOrCompute measures a memoized function on a Zipf stream whose
// key space is 16 times the cache, so misses and evictions are common.
func BenchmarkGetOrCompute(b *testing.B) {
	const size = 4096
	keys := trace.Zipf(benchKeys, 16*size, trace.Seed)
	f, c := Memoize(func(n int) int { return n }, MaxSize(size))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f(keys[i%benchKeys])
	}
	b.ReportMetric(c.CacheInfo().HitRatio(), "hit-ratio")
}

// BenchmarkPolicy measures what WTinyLFU costs against the default LRU: a
// hit (as BenchmarkHit's Memoize) and a get-or-compute (as
// BenchmarkGetOrCompute), for benchstat -col /policy.
func BenchmarkPolicy(b *testing.B) {
	const size = 4096
	hits := trace.Zipf(benchKeys, 1024, trace.Seed)
	mixed := trace.Zipf(benchKeys, 16*size, trace.Seed)
	for _, p := range []struct {
		name string
		opts []Option
	}{{"policy=LRU", nil}, {"policy=WTinyLFU", []Option{WTinyLFU()}}} {
		b.Run("Hit/"+p.name, func(b *testing.B) {
			f := filled(append([]Option{MaxSize(1024)}, p.opts...)...)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				f(hits[i%benchKeys])
			}
		})
		b.Run("GetOrCompute/"+p.name, func(b *testing.B) {
			f, c := Memoize(func(n int) int { return n }, append([]Option{MaxSize(size)}, p.opts...)...)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				f(mixed[i%benchKeys])
			}
			b.ReportMetric(c.CacheInfo().HitRatio(), "hit-ratio")
		})
	}
}

// BenchmarkLRUAddEvict measures Add on a full LRU core, each one evicting.
func BenchmarkLRUAddEvict(b *testing.B) {
	c := NewLRU[int, int](1024, nil)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Add(i, i)
	}
}

// BenchmarkGetOrComputeTTL is BenchmarkGetOrCompute for a cache whose entries
// expire (after an hour, so within the benchmark they are evicted, never
// expired): every eviction also takes the entry out of the expiry order.
func BenchmarkGetOrComputeTTL(b *testing.B) {
	const size = 4096
	keys := trace.Zipf(benchKeys, 16*size, trace.Seed)
	f, c := Memoize(func(n int) int { return n }, MaxSize(size), TTL(time.Hour))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f(keys[i%benchKeys])
	}
	b.ReportMetric(c.CacheInfo().HitRatio(), "hit-ratio")
}

// BenchmarkKeys compares KeyOf's exact keys with HashKeyOf's fixed-size ones,
// on a small argument list and on a million-element slice: time per key, and
// (bytes-per-key) the size of the key an entry keeps.
func BenchmarkKeys(b *testing.B) {
	big := make([]int, 1_000_000)
	for i := range big {
		big[i] = i
	}
	for _, a := range []struct {
		name string
		args []any
	}{{"small", []any{42, "name"}}, {"1M-ints", []any{big}}} {
		b.Run("KeyOf/"+a.name, func(b *testing.B) {
			key, _ := KeyOf(a.args...)
			b.ReportMetric(float64(len(key)), "bytes-per-key")
			for b.Loop() {
				KeyOf(a.args...)
			}
		})
		b.Run("HashKeyOf/"+a.name, func(b *testing.B) {
			b.ReportMetric(float64(len(KeyHash{})), "bytes-per-key")
			for b.Loop() {
				HashKeyOf(a.args...)
			}
		})
	}
}

// BenchmarkStoreHit measures a call answered by a store in memory (memStore),
// with a value of 300 bytes: the tier's own cost, without a network or a
// disk, with and without a Secret.
func BenchmarkStoreHit(b *testing.B) {
	value := make([]byte, 300)
	for _, secret := range [][]byte{nil, []byte("a secret of at least 16 bytes")} {
		name := "plain"
		if secret != nil {
			name = "secret"
		}
		b.Run(name, func(b *testing.B) {
			st := newMemStore()
			f, c := Memoize(func(int) []byte { return value }, MaxSize(1),
				Share(Sharing{Store: st, Name: "bench", Secret: secret, Poll: time.Hour}))
			defer c.Close()
			for k := range 100 {
				f(k)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if len(f(i%100)) != len(value) {
					b.Fatal("wrong value")
				}
			}
		})
	}
}
