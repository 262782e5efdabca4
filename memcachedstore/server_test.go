package memcachedstore

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/gomemo/memo/internal/holdtest"
)

// server is a memcached started by a test.
type server struct {
	addr string
	cmd  *exec.Cmd
}

// notInstalled says how to install memcached.
const notInstalled = "memcached is not installed: apt-get install memcached (Debian, Ubuntu; memo's ./test.sh does it when run as root), brew install memcached (macOS)"

// launch starts a memcached on a free loopback port, with extra arguments
// appended, and waits until it answers.
func launch(extra ...string) (*server, error) {
	path, err := exec.LookPath("memcached")
	if err != nil {
		return nil, errors.New(notInstalled)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &server{addr: "127.0.0.1:" + strconv.Itoa(port)}
	// -U 0: no UDP; -u root: memcached refuses to run as root otherwise.
	args := append([]string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-u", "root"}, extra...)
	s.cmd = exec.Command(path, args...)
	s.cmd.Stderr = os.Stderr
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	c := memcache.New(s.addr)
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); c.Ping() != nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			s.kill()
			return nil, fmt.Errorf("memcached on %s did not answer within 10s", s.addr)
		}
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
	if s.cmd == nil {
		return
	}
	syscall.Kill(s.cmd.Process.Pid, syscall.SIGCONT)
	syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL)
	s.cmd.Wait()
	s.cmd = nil
}

// signal sends sig to the server.
func (s *server) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(s.cmd.Process.Pid, sig); err != nil {
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
