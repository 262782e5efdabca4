// Command multiprocess is the article's hybrid pipeline, in Go: the main
// process folds duplicate inputs with a memoized canonicalisation step, fans
// the distinct work out to worker OS processes (this program, started again
// as a worker), and the workers keep their results in a shared tier, a
// SQLite file, so that a worker that meets a key another worker computed,
// or a second run of the whole pipeline, does no work again.
//
//	go run .            # computes, and prints what each worker did
//	go run .            # again: every result comes from the disk
//	go run . -clear     # empties the shared cache first
//
// The shared cache lives in a directory under the user's cache directory
// (see -dir), where it outlives the checkout: a run from a new clone finds
// what an earlier run from another one stored. The program says so when it
// starts, and where the file is.
//
// Goroutines or processes? In Go, goroutines are the right tool for almost
// all parallel work: they share memory, one memoized function serves them
// all, and the runtime spreads them over every core, so the global
// interpreter lock that sends Python programs to process pools does not
// exist here. Separate processes are right when the work must be isolated
// (code that may crash, leak or need its own limits), when it runs as
// separate programs or on separate machines (a pre-forked server, a batch
// job scheduled as several tasks), or when results must outlive the
// process. Those are the cases where a per-process cache stops being
// enough, and where memo's shared tiers (disk here, Redis across machines)
// come in.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/gomemo/memo"
	"github.com/gomemo/memo/sqlite"
)

// profile is the expensive step: a stand-in for looking a customer up,
// scoring them, rendering their report. It hashes the address 200,000
// times over.
func profile(email string) string {
	sum := sha256.Sum256([]byte(email))
	for range 200_000 {
		sum = sha256.Sum256(sum[:])
	}
	return hex.EncodeToString(sum[:6])
}

// canonical folds the forms one address takes in the input.
func canonical(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// input is what the pipeline reads: 600 records, 40 distinct addresses
// written in different forms.
func input() []string {
	var records []string
	for i := range 600 {
		email := fmt.Sprintf("user%d@example.com", i%40)
		switch i % 3 {
		case 1:
			email = strings.ToUpper(email)
		case 2:
			email = "  " + email + " "
		}
		records = append(records, email)
	}
	return records
}

func main() {
	home, err := os.UserCacheDir()
	if err != nil {
		home = os.TempDir()
	}
	dir := flag.String("dir", filepath.Join(home, "memo-example-multiprocess"), "where the shared cache keeps its database")
	workers := flag.Int("workers", 4, "worker processes")
	clear := flag.Bool("clear", false, "empty the shared cache first")
	worker := flag.Bool("worker", false, "run as a worker (the main process starts them)")
	flag.Parse()

	_, err = os.Stat(filepath.Join(*dir, "memo.db")) // the store's file, see sqlite.Open
	earlier := err == nil
	st, err := sqlite.Open(*dir, sqlite.Options{MaxBytes: 16 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	sharing := memo.Share(memo.Sharing{Store: st, Name: "profile"})
	if *worker {
		work(sharing)
		return
	}
	if earlier {
		fmt.Printf("the shared cache is %s, made by an earlier run (-clear empties it, -dir puts it elsewhere)\n", st.Path())
	} else {
		fmt.Printf("the shared cache is %s, new (-dir puts it elsewhere)\n", st.Path())
	}
	if *clear {
		_, c := memo.Memoize(profile, sharing)
		c.Clear()
		c.Close()
		fmt.Println("cleared the shared cache")
	}

	// Fold duplicates in the main process, with a local cache.
	canon, cc := memo.Memoize(canonical)
	var distinct []string
	seen := map[string]bool{}
	records := input()
	for _, r := range records {
		if k := canon(r); !seen[k] {
			seen[k] = true
			distinct = append(distinct, k)
		}
	}
	fmt.Printf("%d records, %d distinct addresses (canonicalisation: %v)\n", len(records), len(distinct), cc.CacheInfo())

	// Fan the distinct work out to the workers, one share each, and more:
	// every worker also gets its neighbour's share, so workers meet keys
	// another worker computed.
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	var wg sync.WaitGroup
	reports := make([]string, *workers)
	for w := range *workers {
		var keys []string
		for i, k := range distinct {
			if i%*workers == w || i%*workers == (w+1)%*workers {
				keys = append(keys, k)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(self, "-worker", "-dir", *dir)
			cmd.Stdin = strings.NewReader(strings.Join(keys, "\n") + "\n")
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err != nil {
				log.Fatalf("worker %d: %v", w, err)
			}
			reports[w] = strings.TrimSpace(string(out))
		}()
	}
	wg.Wait()
	total, calls := 0, 0
	for w, r := range reports {
		var n, executions, fromDisk int
		fmt.Sscan(r, &n, &executions, &fromDisk)
		total += executions
		calls += n
		fmt.Printf("worker %d: %d keys, %d executions, %d from the shared cache\n", w, n, executions, fromDisk)
	}
	fmt.Printf("%d executions in all for %d distinct addresses, %d calls: %d saved by the shared cache\n",
		total, len(distinct), calls, calls-total)
}

// work is a worker: it profiles the addresses on its standard input and
// reports the numbers of calls, executions and results from the shared
// cache.
func work(sharing memo.Option) {
	executions := 0
	var mu sync.Mutex
	f, c := memo.Memoize(func(email string) string {
		mu.Lock()
		executions++
		mu.Unlock()
		return profile(email)
	}, sharing)
	defer c.Close()
	calls := 0
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if k := in.Text(); k != "" {
			f(k)
			calls++
		}
	}
	fmt.Println(calls, executions, c.CacheInfo().StoreHits+c.CacheInfo().StoreWaits)
}
