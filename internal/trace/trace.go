// Package trace generates the key traces of every benchmark: memo's own (in
// the root module), the side-by-side ones of the benchmarks module, and the
// Python script that replays them, so that every contender, in either
// language, sees exactly the same keys in the same order.
package trace

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
)

// Parameters of the Zipf distribution of every trace: the skew commonly used
// to model cache traffic.
const (
	ZipfS = 1.01
	ZipfV = 1
	Seed  = 1 // fixed, so that every run and every language replays the same keys
)

// Workload sizes.
const (
	// HitSpace is the key space of the hit workloads; every cache holds
	// all of it, so every lookup is a hit.
	HitSpace = 1024
	// HitLargeSpace is the key space of the large hit workloads, whose
	// entries do not all fit in a core's caches.
	HitLargeSpace = 1 << 16
	// HitLen is the length of the hit traces.
	HitLen = 1 << 20

	// GetOrComputeSize is the cache size of the get-or-compute workload.
	GetOrComputeSize = 4096
	// SpaceFactor is how much larger the key space of a get-or-compute
	// workload is than its cache.
	SpaceFactor = 16
	// GetOrComputeLen is the length of the get-or-compute trace.
	GetOrComputeLen = 1 << 20
)

// Zipf returns n keys in [0, space) drawn from a Zipf distribution with
// s=ZipfS and v=ZipfV: key 0 is the most frequent. The same arguments always
// give the same keys.
func Zipf(n int, space uint64, seed uint64) []int {
	z := rand.NewZipf(rand.New(rand.NewPCG(seed, seed)), ZipfS, ZipfV, space-1)
	keys := make([]int, n)
	for i := range keys {
		keys[i] = int(z.Uint64())
	}
	return keys
}

// Hit returns the trace of the hit workloads: HitLen keys in [0, HitSpace).
func Hit() []int { return Zipf(HitLen, HitSpace, Seed) }

// HitLarge returns the trace of the large hit workloads: HitLen keys in
// [0, HitLargeSpace).
func HitLarge() []int { return Zipf(HitLen, HitLargeSpace, Seed) }

// GetOrCompute returns the trace of the get-or-compute workload:
// GetOrComputeLen keys over SpaceFactor times GetOrComputeSize keys.
func GetOrCompute() []int {
	return Zipf(GetOrComputeLen, SpaceFactor*GetOrComputeSize, Seed)
}

// SizedLen is the length of the get-or-compute trace for a cache of size
// entries: at least 1<<20 keys, and at least the key space (SpaceFactor times
// size). A shorter trace would hold fewer distinct keys than a large cache:
// 1<<20 draws over 16M keys give only about 0.4M distinct keys, so a 1M-entry
// cache would stop missing after one pass and measure nothing but hits.
func SizedLen(size int) int { return max(1<<20, SpaceFactor*size) }

// Sized returns the get-or-compute trace for a cache of size entries.
func Sized(size int) []int {
	return Zipf(SizedLen(size), uint64(SpaceFactor*size), Seed)
}

// Write writes keys as consecutive little-endian signed 64-bit integers, with
// no header: the file's length gives the count.
func Write(w io.Writer, keys []int) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	var buf [8]byte
	for _, k := range keys {
		binary.LittleEndian.PutUint64(buf[:], uint64(int64(k)))
		if _, err := bw.Write(buf[:]); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// Read reads a gzip-compressed text trace of the root module's
// testdata/traces (see its README): one key per line, or "start count
// ignored id" lines, each covering the keys start to start+count-1.
func Read(path string) ([]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var keys []int
	sc := bufio.NewScanner(z)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		start, err := strconv.Atoi(fields[0])
		count := 1
		if err == nil && len(fields) >= 2 {
			count, err = strconv.Atoi(fields[1])
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		for i := range count {
			keys = append(keys, start+i)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}
