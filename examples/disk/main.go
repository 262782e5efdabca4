// Command disk is slow the first time it runs and instant the second: its
// memoized function keeps its results on disk, in a SQLite file that every
// run (and every process running at once) shares.
//
//	go run .          # computes, and stores the results
//	go run .          # answers from the disk
//	go run . -clear   # empties the cache, then computes again
//
// The results live in a directory under the user's cache directory (see
// -dir), where they outlive the checkout: a run from a new clone finds what
// an earlier run from another one stored. The program says so when it
// starts, and where the file is; deleting that directory empties the cache
// too.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/gomemo/memo"
	"github.com/gomemo/memo/sqlite"
)

// stretch hashes word five million times over, as password hashing does: a
// computation that takes a noticeable time on purpose.
func stretch(word string) string {
	sum := sha256.Sum256([]byte(word))
	for range 5_000_000 {
		sum = sha256.Sum256(sum[:])
	}
	return hex.EncodeToString(sum[:8])
}

func main() {
	home, err := os.UserCacheDir()
	if err != nil {
		home = os.TempDir()
	}
	dir := flag.String("dir", filepath.Join(home, "memo-example-disk"), "where the cache keeps its database")
	clear := flag.Bool("clear", false, "empty the cache first")
	flag.Parse()

	_, err = os.Stat(filepath.Join(*dir, "memo.db")) // the store's file, see sqlite.Open
	earlier := err == nil
	st, err := sqlite.Open(*dir, sqlite.Options{MaxBytes: 16 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	if earlier {
		fmt.Printf("the cache is %s, made by an earlier run (-clear empties it, -dir puts it elsewhere)\n", st.Path())
	} else {
		fmt.Printf("the cache is %s, new (-dir puts it elsewhere)\n", st.Path())
	}
	// Name ties the stored results to this function; bump Version when its
	// results change meaning, and the old ones are ignored.
	hash, cache := memo.Memoize(stretch, memo.Share(memo.Sharing{Store: st, Name: "stretch", Version: 1}))
	defer cache.Close()
	if *clear {
		cache.Clear()
		fmt.Println("cleared the cache")
	}

	start := time.Now()
	for _, word := range []string{"memo", "lru_cache", "sqlite", "redis"} {
		t := time.Now()
		fmt.Printf("%-10s %s  (%v)\n", word, hash(word), time.Since(t).Round(10*time.Microsecond))
	}
	ci := cache.CacheInfo()
	fmt.Printf("took %v: %d computed, %d from the disk", time.Since(start).Round(time.Millisecond),
		ci.StoreMisses, ci.StoreHits)
	if ci.StoreHits > 0 {
		fmt.Print(", stored there by an earlier run")
	}
	fmt.Printf("\nrun with -clear, or delete %s, to empty the cache\n", *dir)
}
