package redisstore

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomemo/memo"
	"github.com/gomemo/memo/internal/holdtest"
	"github.com/gomemo/memo/redisstore/redistest"
	"github.com/stretchr/testify/require"
)

// loadReport is what a "load" child prints when its stdin closes.
type loadReport struct {
	Calls, Wrong int64
	Info         memo.CacheInfo
}

// loadChild calls a memoized function shared through st from several
// goroutines, on MEMO_REDIS_KEYS keys with a small memory, so that most calls
// read or write Redis, and forgets one key in 50, until its stdin closes.
func loadChild(st *Store) {
	n, _ := strconv.Atoi(os.Getenv("MEMO_REDIS_KEYS"))
	f, c := memo.Memoize(expected, memo.Share(memo.Sharing{Store: st, Name: "load"}), memo.MaxSize(64))
	defer c.Close()
	stop := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stop) }()
	fmt.Println("ready")
	var calls, wrong atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := rand.IntN(n)
				if f(k) != expected(k) {
					wrong.Add(1)
				}
				calls.Add(1)
				if i%50 == 0 {
					c.Forget(k)
				}
			}
		})
	}
	wg.Wait()
	json.NewEncoder(os.Stdout).Encode(loadReport{Calls: calls.Load(), Wrong: wrong.Load(), Info: c.CacheInfo()})
}

// childProc is a process of a multi-process test, started by startChild.
type childProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startChild starts this test binary as a child in role, on the Redis at
// addrs (a server, or a Cluster's masters), with keys keys.
func startChild(t *testing.T, role string, addrs []string, keys int) *childProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MEMO_REDIS_CHILD="+role, "MEMO_REDIS_ADDR="+strings.Join(addrs, ","), "MEMO_REDIS_KEYS="+strconv.Itoa(keys))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ch := &childProc{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	require.Equal(t, "ready", ch.line(t))
	return ch
}

// line returns the child's next line of output, failing the test if there
// is none within timeout.
func (ch *childProc) line(t *testing.T) string {
	t.Helper()
	got := make(chan bool, 1)
	go func() { got <- ch.out.Scan() }()
	select {
	case ok := <-got:
		require.True(t, ok, "the child ended: %v", ch.out.Err())
		return ch.out.Text()
	case <-time.After(timeout):
		t.Fatalf("the child said nothing within %v", timeout)
		return ""
	}
}

func TestInvalidationPushedAcrossProcesses(t *testing.T) {
	t.Run("server", func(t *testing.T) {
		srv := redistest.Start(t)
		holdtest.Invalidation(t, newStore(t, srv.Client(t)), other("watch", srv.Addr()))
	})
	t.Run("cluster", func(t *testing.T) {
		cl := startCluster(t)
		holdtest.Invalidation(t, newStore(t, cl.client(t)), other("watch", cl.addrs()...))
	})
}
