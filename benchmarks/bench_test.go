// Package benchmarks compares memo with other Go caches on the same key
// traces, in the same run. It is a module of its own so that the other caches
// never become dependencies of memo itself.
//
// Contenders, in every workload:
//
//	memo-LRU      memo.NewLRU: the mutex-guarded LRU core (Get, then Add on a miss)
//	memo-Memoize  memo.Memoize: the memoized function, counters and single-flight included
//	memo-Memoize-Shards16  the same with memo.Shards(16), in the hit workloads
//	memo-WTinyLFU memo.Memoize with memo.WTinyLFU(), in the hit workloads, BenchmarkBytesPerEntry and cmd/hitratio
//	memo-EstimateSizes     memo.Memoize with memo.EstimateSizes(0), in the hit workloads
//	golang-lru    hashicorp/golang-lru/v2 lru.New (Get, then Add on a miss)
//	otter         maypok86/otter/v2: GetIfPresent for hits, the loader Get for get-or-compute
//	ristretto     dgraph-io/ristretto/v2 (Get, then Set on a miss); TinyLFU admission, not LRU
//	map           a bare map[int]int, no lock: a floor, unbounded, never evicts
//	mutex-map     a map[int]int behind a sync.Mutex: the floor for any locked cache
//
// Keys and values are int. Every trace comes from package trace, which
// lru_cache_bench.py replays through Python's functools.lru_cache.
package benchmarks

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/gomemo/memo"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/maypok86/otter/v2"

	"github.com/gomemo/memo/internal/trace"
)

// Traces are built once per process and shared by every contender and every
// -count repetition; they are never timed.
var (
	hitTrace          = sync.OnceValue(trace.Hit)
	hitLargeTrace     = sync.OnceValue(trace.HitLarge)
	getOrComputeTrace = sync.OnceValue(trace.GetOrCompute)
	sizedTraces       sync.Map // size -> func() []int
)

func sizedTrace(size int) []int {
	f, _ := sizedTraces.LoadOrStore(size, sync.OnceValue(func() []int { return trace.Sized(size) }))
	return f.(func() []int)()
}

// sink keeps the values read in a benchmark alive, so that no lookup can be
// optimised away.
var sink atomic.Int64

// compute is the function being memoized: cheap, so that the benchmarks
// measure the caches and not the work they save.
func compute(k int) int { return k }

// newRistretto builds a ristretto cache holding size entries of cost 1, with
// the 10x counters its documentation recommends. IgnoreInternalCost makes the
// cost of an entry 1 rather than 1 plus ristretto's own estimate of its bytes,
// so that MaxCost counts entries as the other caches' sizes do.
func newRistretto(size int) *ristretto.Cache[int, int] {
	c, err := ristretto.NewCache(&ristretto.Config[int, int]{
		NumCounters:        int64(10 * size),
		MaxCost:            int64(size),
		BufferItems:        64,
		IgnoreInternalCost: true,
	})
	if err != nil {
		panic(err)
	}
	return c
}

// fillRistretto stores keys [0, n) and waits until ristretto has applied
// them. Set hands its item to a buffer that a background goroutine drains; a
// full buffer drops the item and Set returns false, so dropped Sets are
// retried after a Wait.
func fillRistretto(c *ristretto.Cache[int, int], n int) {
	for k := 0; k < n; k++ {
		for !c.Set(k, k, 1) {
			c.Wait()
		}
	}
	c.Wait()
}

func newOtter(size int) *otter.Cache[int, int] {
	return otter.Must(&otter.Options[int, int]{MaximumSize: size})
}

// mutexMap is the locked floor: a map and a mutex, nothing else.
type mutexMap struct {
	mu sync.Mutex
	m  map[int]int
}

func (c *mutexMap) get(k int) (int, bool) {
	c.mu.Lock()
	v, ok := c.m[k]
	c.mu.Unlock()
	return v, ok
}

func (c *mutexMap) set(k, v int) {
	c.mu.Lock()
	c.m[k] = v
	c.mu.Unlock()
}

// hitContenders returns, for each contender, a function that builds a cache
// holding every key in [0, space) and returns a lookup for it plus a cleanup.
// Every lookup of the hit workloads must find its key; checkHits verifies it
// before timing.
type hitContender struct {
	name  string
	build func(space int) (get func(int) (int, bool), cleanup func())
}

var hitContenders = []hitContender{
	{"memo-LRU", func(space int) (func(int) (int, bool), func()) {
		c := memo.NewLRU[int, int](space, nil)
		for k := range space {
			c.Add(k, k)
		}
		return c.Get, func() {}
	}},
	{"memo-Memoize", func(space int) (func(int) (int, bool), func()) {
		f, _ := memo.Memoize(compute, memo.MaxSize(space))
		for k := range space {
			f(k)
		}
		return func(k int) (int, bool) { return f(k), true }, func() {}
	}},
	{"memo-WTinyLFU", func(space int) (func(int) (int, bool), func()) {
		f, _ := memo.Memoize(compute, memo.MaxSize(space), memo.WTinyLFU())
		for k := range space {
			f(k)
		}
		return func(k int) (int, bool) { return f(k), true }, func() {}
	}},
	{"memo-EstimateSizes", func(space int) (func(int) (int, bool), func()) {
		f, _ := memo.Memoize(compute, memo.MaxSize(space), memo.EstimateSizes(0))
		for k := range space {
			f(k)
		}
		return func(k int) (int, bool) { return f(k), true }, func() {}
	}},
	{"memo-Memoize-Shards16", func(space int) (func(int) (int, bool), func()) {
		f, _ := memo.Memoize(compute, memo.MaxSize(space), memo.Shards(16))
		for k := range space {
			f(k)
		}
		return func(k int) (int, bool) { return f(k), true }, func() {}
	}},
	{"golang-lru", func(space int) (func(int) (int, bool), func()) {
		c, err := lru.New[int, int](space)
		if err != nil {
			panic(err)
		}
		for k := range space {
			c.Add(k, k)
		}
		return c.Get, func() {}
	}},
	{"otter", func(space int) (func(int) (int, bool), func()) {
		c := newOtter(space)
		for k := range space {
			c.Set(k, k)
		}
		c.CleanUp()
		return c.GetIfPresent, func() { c.StopAllGoroutines() }
	}},
	{"ristretto", func(space int) (func(int) (int, bool), func()) {
		c := newRistretto(space)
		fillRistretto(c, space)
		return c.Get, c.Close
	}},
	{"map", func(space int) (func(int) (int, bool), func()) {
		m := make(map[int]int)
		for k := range space {
			m[k] = k
		}
		return func(k int) (int, bool) { v, ok := m[k]; return v, ok }, func() {}
	}},
	{"mutex-map", func(space int) (func(int) (int, bool), func()) {
		c := &mutexMap{m: make(map[int]int)}
		for k := range space {
			c.set(k, k)
		}
		return c.get, func() {}
	}},
}

// checkHits fails the benchmark if the pre-filled cache lacks a key of the
// key space, which would make the hit workload measure misses.
func checkHits(b *testing.B, get func(int) (int, bool), space int) {
	b.Helper()
	for k := range space {
		if v, ok := get(k); !ok || v != k {
			b.Fatalf("key %d not cached after the pre-fill (got %d, %v)", k, v, ok)
		}
	}
}

// BenchmarkHit: a pre-filled cache holding the whole key space (1024 keys),
// read by one goroutine along a Zipf trace. Every lookup is a hit.
//
// The sub-benchmarks call each cache through a func value, the same indirect
// call for every contender, so the comparison is even; memo's own
// micro-benchmarks in the root package call it directly.
func BenchmarkHit(b *testing.B) { hit(b, hitTrace(), trace.HitSpace) }

// BenchmarkHitLarge is BenchmarkHit over 64K keys, whose entries do not all
// fit in a core's caches.
func BenchmarkHitLarge(b *testing.B) { hit(b, hitLargeTrace(), trace.HitLargeSpace) }

// hit runs the hit workload on keys, a trace over [0, space).
func hit(b *testing.B, keys []int, space int) {
	mask := len(keys) - 1 // trace.HitLen is a power of two
	for _, ct := range hitContenders {
		b.Run(ct.name, func(b *testing.B) {
			get, cleanup := ct.build(space)
			defer cleanup()
			checkHits(b, get, space)
			b.ReportAllocs()
			sum := 0
			for i := 0; b.Loop(); i++ {
				v, _ := get(keys[i&mask])
				sum += v
			}
			sink.Add(int64(sum))
		})
	}
}

// BenchmarkHitParallel is BenchmarkHit with b.RunParallel: every goroutine
// reads the same cache, each starting at its own offset of the shared trace.
// The bare map is read without a lock, which is safe because nothing writes
// it while the goroutines run.
func BenchmarkHitParallel(b *testing.B) { hitParallel(b, hitTrace(), trace.HitSpace, 1) }

// BenchmarkHitParallelMany is BenchmarkHitParallel with 8 goroutines per
// core, as a server running many requests at once has: goroutines holding a
// lock are then descheduled while others wait for it.
func BenchmarkHitParallelMany(b *testing.B) { hitParallel(b, hitTrace(), trace.HitSpace, 8) }

// BenchmarkHitParallelLarge is BenchmarkHitParallel over 64K keys.
func BenchmarkHitParallelLarge(b *testing.B) {
	hitParallel(b, hitLargeTrace(), trace.HitLargeSpace, 1)
}

// BenchmarkHitParallelManyLarge is BenchmarkHitParallelMany over 64K keys.
func BenchmarkHitParallelManyLarge(b *testing.B) {
	hitParallel(b, hitLargeTrace(), trace.HitLargeSpace, 8)
}

// hitParallel runs the parallel hit workload on keys, a trace over
// [0, space), with parallelism goroutines per core (b.SetParallelism).
func hitParallel(b *testing.B, keys []int, space, parallelism int) {
	mask := len(keys) - 1
	for _, ct := range hitContenders {
		b.Run(ct.name, func(b *testing.B) {
			get, cleanup := ct.build(space)
			defer cleanup()
			checkHits(b, get, space)
			var goroutines atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(parallelism)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				// Offsets spread the goroutines over the trace, so that they
				// do not read the same key at the same moment.
				i := int(goroutines.Add(1)) * 104729
				sum := 0
				for pb.Next() {
					v, _ := get(keys[i&mask])
					sum += v
					i++
				}
				sink.Add(int64(sum))
			})
		})
	}
}

// A getOrComputer is one contender of the get-or-compute workloads: get
// returns the value of a key, computing and storing it on a miss; misses
// reports how many calls so far have computed. cleanup releases the cache.
type getOrComputer struct {
	get     func(int) int
	misses  func() uint64
	cleanup func()
}

type gocContender struct {
	name  string
	build func(size int) getOrComputer
}

// getThenAdd is the get-or-compute of a cache with Get and Add methods: Get,
// then on a miss compute and Add, counting the misses.
func getThenAdd(get func(int) (int, bool), add func(int, int) bool) getOrComputer {
	var misses uint64
	return getOrComputer{
		get: func(k int) int {
			v, ok := get(k)
			if !ok {
				misses++
				v = compute(k)
				add(k, v)
			}
			return v
		},
		misses:  func() uint64 { return misses },
		cleanup: func() {},
	}
}

// Every contender but memo-Memoize and otter counts its misses in the
// benchmark's own miss branch; memo-Memoize reports them in CacheInfo and
// otter's are the calls of its loader.
var gocContenders = []gocContender{
	{"memo-LRU", func(size int) getOrComputer {
		c := memo.NewLRU[int, int](size, nil)
		return getThenAdd(c.Get, c.Add)
	}},
	{"memo-Memoize", func(size int) getOrComputer {
		f, c := memo.Memoize(compute, memo.MaxSize(size))
		return getOrComputer{
			get:     f,
			misses:  func() uint64 { return uint64(c.CacheInfo().Misses) },
			cleanup: func() {},
		}
	}},
	{"golang-lru", func(size int) getOrComputer {
		c, err := lru.New[int, int](size)
		if err != nil {
			panic(err)
		}
		return getThenAdd(c.Get, c.Add)
	}},
	{"otter", func(size int) getOrComputer {
		c := newOtter(size)
		var misses uint64
		// Built once: the loader is an interface value, and converting the
		// closure on every call would measure the conversion too.
		var loader otter.Loader[int, int] = otter.LoaderFunc[int, int](func(_ context.Context, k int) (int, error) {
			misses++
			return compute(k), nil
		})
		ctx := context.Background()
		return getOrComputer{
			get: func(k int) int {
				v, err := c.Get(ctx, k, loader)
				if err != nil {
					panic(err)
				}
				return v
			},
			misses:  func() uint64 { return misses },
			cleanup: func() { c.StopAllGoroutines() },
		}
	}},
	{"ristretto", func(size int) getOrComputer {
		c := newRistretto(size)
		var misses uint64
		return getOrComputer{
			get: func(k int) int {
				v, ok := c.Get(k)
				if !ok {
					misses++
					v = compute(k)
					c.Set(k, v, 1)
				}
				return v
			},
			misses:  func() uint64 { return misses },
			cleanup: c.Close,
		}
	}},
	{"map", func(int) getOrComputer {
		// Unbounded: it never evicts, so once the warm-up has covered the
		// whole trace it never misses either. It is the floor, not a cache
		// of the same size.
		m := make(map[int]int)
		var misses uint64
		return getOrComputer{
			get: func(k int) int {
				v, ok := m[k]
				if !ok {
					misses++
					v = compute(k)
					m[k] = v
				}
				return v
			},
			misses:  func() uint64 { return misses },
			cleanup: func() {},
		}
	}},
	{"mutex-map", func(int) getOrComputer {
		c := &mutexMap{m: make(map[int]int)}
		var misses uint64
		return getOrComputer{
			get: func(k int) int {
				v, ok := c.get(k)
				if !ok {
					misses++
					v = compute(k)
					c.set(k, v)
				}
				return v
			},
			misses:  func() uint64 { return misses },
			cleanup: func() {},
		}
	}},
}

// warmLen is how many keys of a trace warm a cache of size entries before
// timing: the whole trace up to 1<<20 keys, and four times the cache beyond,
// which is enough to fill it (4M draws over 16M keys hold about 1.1M distinct
// keys) without spending most of the run warming 1M-entry caches up.
func warmLen(size, traceLen int) int { return min(traceLen, max(1<<20, 4*size)) }

// runGetOrCompute times one contender on keys. An untimed warm-up over the
// first warmLen keys fills the cache first, so the timed run measures the
// steady state rather than a cold start; the timed calls carry on along the
// trace from there, wrapping around at its end. The hit ratio reported is
// that of the timed calls alone.
func runGetOrCompute(b *testing.B, ct gocContender, size int, keys []int) {
	c := ct.build(size)
	defer c.cleanup()
	n := len(keys)
	warm := warmLen(size, n)
	sum := 0
	for _, k := range keys[:warm] {
		sum += c.get(k)
	}
	missesBefore := c.misses()
	b.ReportAllocs()
	calls := 0
	i := warm % n
	for b.Loop() {
		sum += c.get(keys[i])
		if i++; i == n {
			i = 0
		}
		calls++
	}
	misses := c.misses() - missesBefore
	b.ReportMetric(1-float64(misses)/float64(calls), "hit-ratio")
	sink.Add(int64(sum))
}

// BenchmarkGetOrCompute: a Zipf trace over a key space 16 times the cache
// (4096 entries, 65536 keys). A miss computes v = k and stores it, evicting
// when the cache is full.
func BenchmarkGetOrCompute(b *testing.B) {
	keys := getOrComputeTrace()
	for _, ct := range gocContenders {
		b.Run(ct.name, func(b *testing.B) {
			runGetOrCompute(b, ct, trace.GetOrComputeSize, keys)
		})
	}
}

// BenchmarkGetOrComputeSize is BenchmarkGetOrCompute at several cache sizes,
// the key space always 16 times the cache. At 1M entries the trace is 16M
// keys long (see trace.SizedLen) and the warm-up covers its first 4M keys,
// a second or two per contender.
func BenchmarkGetOrComputeSize(b *testing.B) {
	for _, size := range []int{1 << 10, 1 << 16, 1 << 20} {
		keys := sizedTrace(size)
		for _, ct := range gocContenders {
			b.Run(fmt.Sprintf("size=%s/%s", sizeName(size), ct.name), func(b *testing.B) {
				runGetOrCompute(b, ct, size, keys)
			})
		}
		// The largest traces and caches are garbage now; do not let them
		// inflate the heap the next size starts with.
		runtime.GC()
	}
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dM", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dK", n>>10)
	}
	return fmt.Sprint(n)
}

// bytesEntries is the number of entries of BenchmarkBytesPerEntry.
const bytesEntries = 1 << 20

// A filler builds a cache, fills it with keys [0, bytesEntries) mapped to
// themselves, and returns it with a function releasing its goroutines (called
// after the measurement).
type filler struct {
	name string
	fill func() (cache any, cleanup func())
}

var fillers = []filler{
	{"memo-LRU", func() (any, func()) {
		c := memo.NewLRU[int, int](bytesEntries, nil)
		for k := range bytesEntries {
			c.Add(k, k)
		}
		return c, func() {}
	}},
	{"memo-Memoize", func() (any, func()) {
		f, c := memo.Memoize(compute, memo.MaxSize(bytesEntries))
		for k := range bytesEntries {
			f(k)
		}
		return c, func() {}
	}},
	{"memo-WTinyLFU", func() (any, func()) {
		f, c := memo.Memoize(compute, memo.MaxSize(bytesEntries), memo.WTinyLFU())
		for k := range bytesEntries {
			f(k)
		}
		return c, func() {}
	}},
	{"golang-lru", func() (any, func()) {
		c, err := lru.New[int, int](bytesEntries)
		if err != nil {
			panic(err)
		}
		for k := range bytesEntries {
			c.Add(k, k)
		}
		return c, func() {}
	}},
	{"otter", func() (any, func()) {
		c := newOtter(bytesEntries)
		for k := range bytesEntries {
			c.Set(k, k)
		}
		c.CleanUp() // apply the buffered writes
		return c, func() { c.StopAllGoroutines() }
	}},
	{"ristretto", func() (any, func()) {
		c := newRistretto(bytesEntries)
		fillRistretto(c, bytesEntries)
		return c, c.Close
	}},
	{"map", func() (any, func()) {
		m := make(map[int]int)
		for k := range bytesEntries {
			m[k] = k
		}
		return m, func() {}
	}},
	{"mutex-map", func() (any, func()) {
		c := &mutexMap{m: make(map[int]int)}
		for k := range bytesEntries {
			c.set(k, k)
		}
		return c, func() {}
	}},
}

// liveHeap returns the bytes of live heap after two collections (the second
// one frees what the first one's finalizers and sweeps left).
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkBytesPerEntry reports the live heap a cache of 1M int->int entries
// holds, per entry, as B/entry.
//
// The heap is measured once per sub-benchmark, before the timed loop, not
// once per iteration: the fill is deterministic, so one measurement is
// exact up to the few hundred bytes other goroutines may allocate meanwhile,
// and doing four collections of a large heap inside every iteration would
// only slow the run down. B/entry therefore does not depend on b.N. The timed
// loop then builds and fills a fresh 1M-entry cache per iteration, so ns/op is
// the time of one whole fill and B/op and allocs/op everything a fill
// allocates, garbage from growing included.
func BenchmarkBytesPerEntry(b *testing.B) {
	for _, f := range fillers {
		b.Run(f.name, func(b *testing.B) {
			before := liveHeap()
			c, cleanup := f.fill()
			after := liveHeap()
			runtime.KeepAlive(c)
			cleanup()
			b.ReportAllocs()
			for b.Loop() {
				c, cleanup := f.fill()
				cleanup()
				runtime.KeepAlive(c)
			}
			b.ReportMetric(float64(int64(after)-int64(before))/bytesEntries, "B/entry")
		})
	}
}
