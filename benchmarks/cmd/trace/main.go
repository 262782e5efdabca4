// Command trace writes the key traces of the Go benchmarks in this module, so
// that another language can replay exactly the same keys.
//
//	go run ./cmd/trace -dir DIR     # writes DIR/hit.bin and DIR/getorcompute.bin
//	go run ./cmd/trace -gomaxprocs  # prints GOMAXPROCS, the suffix go test adds to names
//
// Each file holds the keys as little-endian signed 64-bit integers, with no
// header. The companion lru_cache_bench.py reads them.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/gomemo/memo/internal/trace"
)

func main() {
	dir := flag.String("dir", "", "directory to write hit.bin and getorcompute.bin into")
	procs := flag.Bool("gomaxprocs", false, "print GOMAXPROCS and exit")
	flag.Parse()
	if *procs {
		fmt.Println(runtime.GOMAXPROCS(0))
		return
	}
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "usage: trace -dir DIR | trace -gomaxprocs")
		os.Exit(2)
	}
	files := []struct {
		name string
		keys []int
	}{
		{"hit.bin", trace.Hit()},
		{"getorcompute.bin", trace.GetOrCompute()},
	}
	for _, f := range files {
		if err := write(filepath.Join(*dir, f.name), f.keys); err != nil {
			fmt.Fprintln(os.Stderr, "trace:", err)
			os.Exit(1)
		}
	}
}

func write(path string, keys []int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := trace.Write(f, keys); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
