package memcachedstore_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/gomemo/memo"
	"github.com/gomemo/memo/memcachedstore"
)

// memcachedAddr is the address of the memcached the Example uses: one that
// TestMain starts for it.
var memcachedAddr string

// TestMain starts a memcached for the Example, on a free port, and stops it
// after the tests.
func TestMain(m *testing.M) {
	path, err := exec.LookPath("memcached")
	if err != nil {
		fmt.Fprintln(os.Stderr, "memcached is not installed: apt-get install memcached (Debian, Ubuntu; memo's ./test.sh does it when run as root), brew install memcached (macOS)")
		os.Exit(1)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	memcachedAddr = "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(path, "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-u", "root")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	c := memcache.New(memcachedAddr)
	for deadline := time.Now().Add(10 * time.Second); c.Ping() != nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "memcached on %s did not answer within 10s\n", memcachedAddr)
			cmd.Process.Kill()
			os.Exit(1)
		}
	}
	c.Close()
	code := m.Run()
	cmd.Process.Kill()
	cmd.Wait()
	os.Exit(code)
}

// Two processes, each with its own cache, share a function's results
// through memcached: what one computes, the other finds.
func Example() {
	client := memcache.New(memcachedAddr) // the fleet's servers, such as "10.0.0.1:11211", "10.0.0.2:11211"
	client.Timeout = 200 * time.Millisecond
	defer client.Close()
	st, err := memcachedstore.New(client, memcachedstore.Options{})
	if err != nil {
		panic(err)
	}
	var runs atomic.Int64
	square := func(n int) int {
		runs.Add(1)
		return n * n
	}
	sharing := memo.Sharing{Store: st, Name: "square"}
	inA, a := memo.Memoize(square, memo.Share(sharing)) // in one process
	defer a.Close()
	inB, b := memo.Memoize(square, memo.Share(sharing)) // in another
	defer b.Close()

	fmt.Println(inA(12), inB(12))
	fmt.Println("executions:", runs.Load())
	fmt.Println("found in memcached by b:", b.CacheInfo().StoreHits)
	// Output:
	// 144 144
	// executions: 1
	// found in memcached by b: 1
}
