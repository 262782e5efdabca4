// Command pipeline runs a three-stage pipeline: a reader emits log records,
// workers enrich each with an expensive lookup of its client address, and a
// writer prints a summary. Records repeat addresses, so the lookup is
// memoized: duplicate keys are folded before the expensive work fans out,
// including duplicates that are in flight at the same moment.
package main

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomemo/memo"
)

type record struct {
	addr    string
	country string
}

func main() {
	var lookups atomic.Int32
	country, cache := memo.Memoize(func(addr string) string {
		lookups.Add(1)
		time.Sleep(20 * time.Millisecond) // an expensive geolocation lookup
		switch addr[:3] {
		case "10.":
			return "internal"
		case "81.":
			return "FR"
		default:
			return "US"
		}
	})

	// Stage 1: the reader.
	addrs := []string{"10.0.0.1", "81.2.69.160", "8.8.8.8", "10.0.0.2", "81.2.69.160", "8.8.8.8"}
	in := make(chan record)
	go func() {
		for i := range 600 {
			in <- record{addr: addrs[i%len(addrs)]}
		}
		close(in)
	}()

	// Stage 2: workers enrich the records.
	out := make(chan record)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for r := range in {
				r.country = country(r.addr)
				out <- r
			}
		})
	}
	go func() { wg.Wait(); close(out) }()

	// Stage 3: the writer.
	perCountry := map[string]int{}
	for r := range out {
		perCountry[r.country]++
	}
	names := make([]string, 0, len(perCountry))
	for c := range perCountry {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, c := range names {
		fmt.Printf("%-8s %d records\n", c, perCountry[c])
	}
	fmt.Printf("600 records, %d distinct addresses, %d lookups run\n", cache.CacheInfo().CurrSize, lookups.Load())
}
