package sqlite_test

import (
	"fmt"
	"log"
	"os"

	"github.com/gomemo/memo"
	"github.com/gomemo/memo/sqlite"
)

// Two caches on one store stand for two processes, or two runs of one
// program: what one computed, the other reads from the disk.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "memo-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(dir, sqlite.Options{MaxBytes: 64 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	square := func(n int) int {
		fmt.Println("computing", n)
		return n * n
	}
	sharing := memo.Share(memo.Sharing{Store: st, Name: "square"})
	first, c1 := memo.Memoize(square, sharing)
	defer c1.Close()
	second, c2 := memo.Memoize(square, sharing)
	defer c2.Close()

	fmt.Println(first(12))
	fmt.Println(second(12))
	ci := c2.CacheInfo()
	fmt.Printf("second: %d miss in memory, %d hit on disk\n", ci.Misses, ci.StoreHits)
	// Output:
	// computing 12
	// 144
	// 144
	// second: 1 miss in memory, 1 hit on disk
}

// With a Secret, a cache serves only the values that a holder of the secret
// wrote: here another program, without it, has put a wrong value under the
// key first.
func ExampleOpen_secret() {
	dir, err := os.MkdirTemp("", "memo-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(dir, sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	forger, c1 := memo.Memoize(func(n int) int { return -1 }, memo.Share(memo.Sharing{Store: st, Name: "square"}))
	defer c1.Close()
	forger(12)

	secret := []byte("32 random bytes, kept as a password") // in production, from a secret store
	square, c2 := memo.Memoize(func(n int) int {
		fmt.Println("computing", n)
		return n * n
	}, memo.Share(memo.Sharing{Store: st, Name: "square", Secret: secret}))
	defer c2.Close()
	fmt.Println(square(12))
	fmt.Println("rejected:", c2.CacheInfo().StoreRejected)
	// Output:
	// computing 12
	// 144
	// rejected: 1
}
