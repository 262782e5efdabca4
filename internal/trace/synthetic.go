package trace

import (
	"math"
	"math/bits"
	"math/rand/v2"
)

// Synthetic is a generated trace built to stress one side of an adaptive
// policy, with the cache sizes it is replayed at.
type Synthetic struct {
	Name  string
	Sizes []int
	Keys  func() []int // the same keys on every call
}

// Synthetics returns the generated traces of the hit-ratio comparisons
// (benchmarks/hitratio.md) and of the policy's tests, each from a fixed
// seed.
func Synthetics() []Synthetic {
	return []Synthetic{
		{"drift", []int{250, 500, 1000, 2000}, func() []int { return Drift(1<<20, Seed) }},
		{"phases", []int{250, 500, 1000, 2000}, func() []int { return Phases(1<<21, Seed) }},
		{"scan in hot set", []int{250, 500, 1000, 2000}, func() []int { return ScanInHot(1<<20, Seed) }},
		{"disk", []int{25000, 50000, 100000, 200000}, func() []int { return Disk(1<<22, Seed) }},
		{"lookups", []int{100, 250, 1000, 2000}, func() []int { return Lookups(1<<18, Seed) }},
	}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x5eed)) }

// Drift returns n keys from a working set that drifts slowly: a Zipf
// distribution over 8,192 ranks whose rank r is the key base+r, base moving
// one key every 16 calls. New keys come in hot and cool as the set moves on,
// so recent use predicts the next better than counts do.
func Drift(n int, seed uint64) []int {
	rng := newRand(seed)
	z := rand.NewZipf(rng, ZipfS, ZipfV, 8191)
	keys := make([]int, n)
	for i := range keys {
		keys[i] = i/16 + int(z.Uint64())
	}
	return keys
}

// apart is where the keys that no Zipf draw gives begin: 1<<40 on a 64-bit
// platform, 1<<24 on a 32-bit one, both above every Zipf key of these traces.
const apart = 1 << (bits.UintSize/2 + 8)

// Phases returns n keys in phases of 1<<17 calls that alternate between
// recency and frequency: a recency phase is the Lookups shape (keys used
// twice a few calls apart, or once), a frequency phase draws from a fixed
// Zipf distribution over 32,768 keys (the same hot keys in every frequency
// phase).
func Phases(n int, seed uint64) []int {
	const phase = 1 << 17
	rng := newRand(seed)
	z := rand.NewZipf(rng, ZipfS, ZipfV, 1<<15-1)
	keys := make([]int, 0, n)
	next := apart // the recency phases' new keys, apart from the Zipf keys
	for len(keys) < n {
		m := min(phase, n-len(keys))
		if len(keys)/phase%2 == 0 {
			rec := lookups(m, 0.5, 400, next, rng)
			next += m
			keys = append(keys, rec...)
			continue
		}
		for range m {
			keys = append(keys, int(z.Uint64()))
		}
	}
	return keys
}

// ScanInHot returns n keys drawn from a Zipf distribution over 65,536 keys,
// but for a scan of n/4 keys used once each in the middle of the trace.
func ScanInHot(n int, seed uint64) []int {
	rng := newRand(seed)
	z := rand.NewZipf(rng, ZipfS, ZipfV, 1<<16-1)
	keys := make([]int, n)
	for i := range keys {
		if i >= 3*n/8 && i < 5*n/8 {
			keys[i] = apart + i
		} else {
			keys[i] = int(z.Uint64())
		}
	}
	return keys
}

// Disk returns n keys shaped like a disk's block trace, whose LRU hit ratio
// climbs steeply with the cache's size: 30% of the calls re-read the block
// read 40,000 to 300,000 calls before (so most re-reads find it only in a
// cache of 100,000 entries or more), 25% draw from a Zipf distribution over
// 500,000 blocks (skew 0.9; what frequency keeps), the rest read new blocks.
func Disk(n int, seed uint64) []int {
	return DiskShape{Gap: 40_000, Span: 260_000, Reread: 0.30, Zipf: 0.25}.Keys(n, seed)
}

// DiskShape describes a disk-like trace: the share of calls that re-read
// the block read Gap to Gap+Span calls before, the share that draw from a
// Zipf distribution over 500,000 blocks (skew 0.9), and new blocks for the
// rest.
type DiskShape struct {
	Gap, Span    int
	Reread, Zipf float64
}

// Keys returns n keys of the shape.
func (d DiskShape) Keys(n int, seed uint64) []int {
	rng := newRand(seed)
	const space = 500_000
	z := zipf(rng, 0.9, space)
	keys := make([]int, n)
	next := apart
	for i := range keys {
		switch u := rng.Float64(); {
		case u < d.Reread && i >= d.Gap:
			keys[i] = keys[i-d.Gap-rng.IntN(min(i-d.Gap, d.Span)+1)]
		case u < d.Reread+d.Zipf:
			keys[i] = z()
		default:
			keys[i] = next
			next++
		}
	}
	return keys
}

// Lookups returns n keys shaped like a service's lookups: half the keys are
// used once, the other half twice, the second use 1 to 50 calls after the
// first. Exact LRU hits all it can (1/3) with 100 entries.
func Lookups(n int, seed uint64) []int {
	return lookups(n, 0.5, 50, 0, newRand(seed))
}

// lookups returns n keys from first on, of which the share twice are used
// a second time 1 to gap calls after the first.
func lookups(n int, twice float64, gap int, first int, rng *rand.Rand) []int {
	keys := make([]int, n)
	due := make([]int, n+gap+1) // due[i]: the key whose second use is at call i, plus one
	next := first
	for i := range keys {
		if due[i] != 0 {
			keys[i] = due[i] - 1
			continue
		}
		keys[i] = next
		if rng.Float64() < twice {
			j := i + 1 + rng.IntN(gap)
			for due[j] != 0 {
				j++
			}
			if j < len(due) {
				due[j] = next + 1
			}
		}
		next++
	}
	return keys
}

// zipf returns a function drawing keys in [0, space) with P(k) proportional
// to 1/(k+1)^s, for s < 1 as well (rand.Zipf needs s > 1), by inverting the
// continuous approximation of the distribution's CDF.
func zipf(rng *rand.Rand, s float64, space int) func() int {
	// The CDF of x^-s on [1, space+1], normalized: F(x) = (x^(1-s) - 1) / (N^(1-s) - 1).
	e := 1 - s
	top := math.Pow(float64(space+1), e) - 1
	return func() int {
		x := math.Pow(rng.Float64()*top+1, 1/e)
		return min(int(x)-1, space-1)
	}
}
