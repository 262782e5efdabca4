package memcachedstore

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/gomemo/memo/internal/holdtest"
	"github.com/gomemo/memo/internal/testserver"
)

// server is a memcached started by a test.
type server struct {
	addr string
	proc *testserver.Process
}

// notInstalled says how to install memcached.
const notInstalled = "memcached is not installed: apt-get install memcached (Debian, Ubuntu; memo's ./test.sh does it when run as root), brew install memcached (macOS)"

// launch starts a memcached on a free loopback port, with extra arguments
// appended, and waits until it answers.
func launch(extra ...string) (*server, error) {
	port, err := testserver.FreePort()
	if err != nil {
		return nil, err
	}
	s := &server{addr: "127.0.0.1:" + strconv.Itoa(port)}
	// -U 0: no UDP; -u root: memcached refuses to run as root otherwise.
	args := append([]string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-u", "root"}, extra...)
	c := memcache.New(s.addr)
	defer c.Close()
	if s.proc, err = testserver.Start("memcached", args, func() bool { return c.Ping() == nil }, notInstalled); err != nil {
		return nil, err
	}
	return s, nil
}

// startServer starts a memcached for a test (see launch), and kills it when
// the test ends. It fails the test, saying how to install it, if memcached
// cannot be found.
func startServer(t testing.TB, extra ...string) *server {
	t.Helper()
	s, err := launch(extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.kill)
	return s
}

// TestMain starts a memcached for the Example, which finds it in
// MEMCACHED_SERVERS, and stops it after the tests.
//
// With MEMO_MEMCACHED_CHILD=hold, the binary is instead holdtest's holder on
// the memcached at MEMO_MEMCACHED_ADDR.
func TestMain(m *testing.M) {
	if os.Getenv("MEMO_MEMCACHED_CHILD") == "hold" {
		st, err := New(memcache.New(os.Getenv("MEMO_MEMCACHED_ADDR")), Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		holdtest.Holder(st)
		os.Exit(0)
	}
	s, err := launch()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("MEMCACHED_SERVERS", s.addr)
	code := m.Run()
	s.kill()
	os.Exit(code)
}

// kill kills the server with SIGKILL, paused or not, and waits until it is
// gone.
func (s *server) kill() {
	s.proc.Kill()
	s.proc = nil
}

// signal sends sig to the server.
func (s *server) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := s.proc.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// client returns a client of servers, closed when the test ends.
func client(t testing.TB, servers ...*server) *memcache.Client {
	var addrs []string
	for _, s := range servers {
		addrs = append(addrs, s.addr)
	}
	c := memcache.New(addrs...)
	t.Cleanup(func() { c.Close() })
	return c
}
