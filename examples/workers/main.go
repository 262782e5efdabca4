// Command workers shares one memoized function among a pool of goroutines,
// the Go form of a thread pool: however many workers ask for the same key at
// once, the function runs once for it and the others wait for that result.
package main

import (
	"fmt"
	"sync"
	"time"

	"github.com/gomemo/memo"
)

func main() {
	var mu sync.Mutex
	runs := map[string]int{}
	profile, cache := memo.MemoizeErr(func(user string) (string, error) {
		mu.Lock()
		runs[user]++
		mu.Unlock()
		time.Sleep(50 * time.Millisecond) // a slow lookup
		return "profile of " + user, nil
	})

	users := []string{"ada", "grace", "linus", "ken", "rob"}
	jobs := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for u := range jobs {
				if _, err := profile(u); err != nil {
					panic(err)
				}
			}
		})
	}
	for i := range 100 {
		jobs <- users[i%len(users)]
	}
	close(jobs)
	wg.Wait()

	for _, u := range users {
		fmt.Printf("%-6s ran %d time(s)\n", u, runs[u])
	}
	ci := cache.CacheInfo()
	fmt.Printf("100 calls from 8 workers: %d executions, %d hits (%d of them waited for a running execution)\n",
		ci.Misses, ci.Hits, ci.Coalesced)
}
