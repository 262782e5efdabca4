// Command sizeerror measures how far the estimates of EstimateSizes are from
// the truth: it replays the oltp and gli traces and the Zipf stream of the
// get-or-compute benchmark through memoized functions with EstimateSizes(0),
// each cache with the random sampling hash every cache gets, and compares
// every estimate of SizeAdvice with the hit ratio of an exact LRU of that
// size replaying the same calls. For each stream and MaxSize it prints the
// largest error of each cache, sorted, and their median and maximum.
//
//	go run ./cmd/sizeerror -caches 20 > size-error.txt
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/gomemo/memo"
	"github.com/gomemo/memo/internal/trace"
)

// exact replays keys through an exact LRU of size entries (0: unbounded)
// and returns its hit ratio.
func exact(keys []int, size int) float64 {
	hits := 0
	if size == 0 {
		seen := map[int]bool{}
		for _, k := range keys {
			if seen[k] {
				hits++
			}
			seen[k] = true
		}
		return float64(hits) / float64(len(keys))
	}
	l := memo.NewLRU[int, struct{}](size, nil)
	for _, k := range keys {
		if _, ok := l.Get(k); ok {
			hits++
		} else {
			l.Add(k, struct{}{})
		}
	}
	return float64(hits) / float64(len(keys))
}

// worstError replays keys through a new memoized function of MaxSize size
// with EstimateSizes(0) and returns the largest difference between one of
// its estimates and the exact hit ratio at that size (exact caches them).
func worstError(keys []int, size int, exactAt map[int]float64) float64 {
	f, c := memo.Memoize(func(k int) int { return k }, memo.MaxSize(size), memo.EstimateSizes(0))
	for _, k := range keys {
		f(k)
	}
	worst := 0.0
	for _, e := range c.SizeAdvice().Sizes {
		x, ok := exactAt[e.Size]
		if !ok {
			x = exact(keys, e.Size)
			exactAt[e.Size] = x
		}
		worst = max(worst, math.Abs(x-e.HitRatio))
	}
	return worst
}

func main() {
	dir := flag.String("traces", "../testdata/traces", "directory of oltp.gz and gli.gz")
	caches := flag.Int("caches", 20, "caches (sampling hashes) per stream and size")
	flag.Parse()
	type stream struct {
		name  string
		keys  []int
		sizes []int
	}
	var streams []stream
	for _, name := range []string{"oltp", "gli"} {
		keys, err := trace.Read(filepath.Join(*dir, name+".gz"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "sizeerror:", err)
			os.Exit(1)
		}
		streams = append(streams, stream{name, keys, []int{250, 500, 1000, 2000}})
	}
	streams = append(streams, stream{"zipf", trace.GetOrCompute(),
		[]int{trace.GetOrComputeSize / 4, trace.GetOrComputeSize}})

	start := time.Now()
	fmt.Printf("# (in benchmarks) go run ./cmd/sizeerror -caches %d > size-error.txt; %s\n\n", *caches, runtime.Version())
	fmt.Printf("The largest error of the estimates of EstimateSizes(0), over every size SizeAdvice reports, for each of %d caches (each with its own random sampling hash), against exact LRU replays.\n\n", *caches)
	fmt.Println("| stream | MaxSize | median | worst | each cache's, sorted |")
	fmt.Println("|---|---:|---:|---:|---|")
	for _, st := range streams {
		exactAt := map[int]float64{}
		var all []float64
		for _, size := range st.sizes {
			errs := make([]float64, *caches)
			for i := range errs {
				errs[i] = worstError(st.keys, size, exactAt)
			}
			slices.Sort(errs)
			all = append(all, errs...)
			each := ""
			for i, e := range errs {
				if i > 0 {
					each += " "
				}
				each += fmt.Sprintf("%.4f", e)
			}
			fmt.Printf("| %s | %d | %.4f | %.4f | %s |\n", st.name, size, median(errs), errs[len(errs)-1], each)
		}
		slices.Sort(all)
		fmt.Printf("| %s | all | %.4f | %.4f | |\n", st.name, median(all), all[len(all)-1])
	}
	fmt.Fprintf(os.Stderr, "sizeerror: %v\n", time.Since(start).Round(time.Second))
}

// median returns the median of sorted.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}
