// Command hitratio replays public cache traces, the Zipf stream of the
// get-or-compute benchmark and the synthetic traces of internal/trace
// (Synthetics: each stresses WTinyLFU's adaptive window from one side)
// through memo (LRU and WTinyLFU) and the other Go caches, and prints their hit ratios as a Markdown table, then how many
// entries otter held on average.
//
//	go run ./cmd/hitratio > hitratio.md
//
// Every cache is used as a memoizer would use it: a lookup, and on a miss
// the value stored (otter: its loader Get; ristretto: Set, then Wait, so
// that the next lookup sees it). ristretto counts entries, not bytes
// (IgnoreInternalCost). otter and ristretto apply some of their bookkeeping
// from buffers in other goroutines, so their figures may move a little from
// run to run. otter's evictions, run there by default, lag behind its
// insertions, so it holds more entries than its MaximumSize meanwhile (the
// second table says how many); it also runs with a synchronous Executor,
// which keeps it to its bound. memo's WTinyLFU seeds its sketch's hash at
// random, so its figures move too. Each figure is the median of -runs
// replays.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/gomemo/memo"
	"github.com/gomemo/memo/internal/trace"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/maypok86/otter/v2"
)

// contender replays keys through a cache of size entries and returns its
// hit ratio.
type contender struct {
	name   string
	replay func(keys []int, size int) float64
}

var contenders = []contender{
	{"memo LRU", memoized()},
	{"memo WTinyLFU", memoized(memo.WTinyLFU())},
	{"golang-lru v2", func(keys []int, size int) float64 {
		c, err := lru.New[int, int](size)
		if err != nil {
			panic(err)
		}
		hits := 0
		for _, k := range keys {
			if _, ok := c.Get(k); ok {
				hits++
			} else {
				c.Add(k, k)
			}
		}
		return float64(hits) / float64(len(keys))
	}},
	{"otter v2", func(keys []int, size int) float64 {
		hits, _ := otterReplay(keys, size, nil, false)
		return hits
	}},
	{"otter v2, synchronous", func(keys []int, size int) float64 {
		hits, _ := otterReplay(keys, size, func(fn func()) { fn() }, false)
		return hits
	}},
	{"ristretto v2", func(keys []int, size int) float64 {
		c, err := ristretto.NewCache(&ristretto.Config[int, int]{
			NumCounters: int64(10 * size), MaxCost: int64(size), BufferItems: 64, IgnoreInternalCost: true,
		})
		if err != nil {
			panic(err)
		}
		defer c.Close()
		hits := 0
		for _, k := range keys {
			if _, ok := c.Get(k); ok {
				hits++
			} else {
				c.Set(k, k, 1)
				c.Wait()
			}
		}
		return float64(hits) / float64(len(keys))
	}},
}

// otterReplay replays keys through otter with MaximumSize size and executor
// (nil: otter's default, which runs its maintenance in other goroutines;
// synchronous: on the calling goroutine, so that eviction keeps up with
// every insertion). It returns the hit ratio and, if held, the mean of the
// entries otter held after each call (EstimatedSize), else 0.
func otterReplay(keys []int, size int, executor func(func()), held bool) (ratio, mean float64) {
	c := otter.Must(&otter.Options[int, int]{MaximumSize: size, Executor: executor})
	defer c.StopAllGoroutines()
	misses, sum := 0, 0
	loader := otter.LoaderFunc[int, int](func(_ context.Context, k int) (int, error) { misses++; return k, nil })
	ctx := context.Background()
	for _, k := range keys {
		if _, err := c.Get(ctx, k, loader); err != nil {
			panic(err)
		}
		if held {
			sum += c.EstimatedSize()
		}
	}
	return 1 - float64(misses)/float64(len(keys)), float64(sum) / float64(len(keys))
}

// memoized replays keys through a memoized function with opts and a MaxSize.
func memoized(opts ...memo.Option) func(keys []int, size int) float64 {
	return func(keys []int, size int) float64 {
		f, c := memo.Memoize(func(k int) int { return k }, append([]memo.Option{memo.MaxSize(size)}, opts...)...)
		for _, k := range keys {
			f(k)
		}
		return c.CacheInfo().HitRatio()
	}
}

func main() {
	dir := flag.String("traces", "../testdata/traces", "directory of oltp.gz and gli.gz")
	runs := flag.Int("runs", 3, "replays per figure; the median is printed")
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
			fmt.Fprintln(os.Stderr, "hitratio:", err)
			os.Exit(1)
		}
		streams = append(streams, stream{name, keys, []int{250, 500, 1000, 2000}})
	}
	streams = append(streams, stream{"Zipf 1.01, 64K keys", trace.GetOrCompute(),
		[]int{trace.GetOrComputeSize / 4, trace.GetOrComputeSize}})
	for _, s := range trace.Synthetics() {
		streams = append(streams, stream{s.Name, s.Keys(), s.Sizes})
	}

	fmt.Print("| trace | entries |")
	for _, c := range contenders {
		fmt.Printf(" %s |", c.name)
	}
	fmt.Print("\n|---|---|")
	for range contenders {
		fmt.Print("---|")
	}
	fmt.Println()
	sums := make([]float64, len(contenders))
	rows := 0
	for _, st := range streams {
		for _, size := range st.sizes {
			fmt.Printf("| %s | %d |", st.name, size)
			for i, c := range contenders {
				var got []float64
				for range *runs {
					got = append(got, c.replay(st.keys, size))
				}
				slices.Sort(got)
				r := got[len(got)/2]
				sums[i] += r
				fmt.Printf(" %.3f |", r)
			}
			fmt.Println()
			rows++
		}
	}
	fmt.Print("| mean | |")
	for i := range contenders {
		fmt.Printf(" %.3f |", sums[i]/float64(rows))
	}
	fmt.Println()

	// otter's default maintenance runs behind the calls, so it holds more
	// entries than MaximumSize until it catches up.
	fmt.Print("\nEntries otter v2 held with its default executor, the mean over a replay of the entries it held after each call (EstimatedSize), median of the replays:\n\n")
	fmt.Println("| trace | entries | otter v2 held | otter v2, synchronous, held |")
	fmt.Println("|---|---|---|---|")
	for _, st := range streams {
		for _, size := range st.sizes {
			fmt.Printf("| %s | %d |", st.name, size)
			for _, executor := range []func(func()){nil, func(fn func()) { fn() }} {
				var got []float64
				for range *runs {
					_, held := otterReplay(st.keys, size, executor, true)
					got = append(got, held)
				}
				slices.Sort(got)
				fmt.Printf(" %.0f |", got[len(got)/2])
			}
			fmt.Println()
		}
	}
}
