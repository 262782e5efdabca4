// Package redistest starts real redis-servers for tests, on loopback ports,
// the way net/http/httptest starts servers: memo's own tests use it, and so
// can the tests of a program that uses memo's Redis store.
package redistest

import (
	"context"
	"strconv"
	"syscall"
	"testing"

	"github.com/gomemo/memo/internal/testserver"
	"github.com/redis/go-redis/v9"
)

// Server is a redis-server started by Start.
type Server struct {
	tb   testing.TB
	port int
	args []string
	proc *testserver.Process
}

// Start starts a redis-server on a free loopback port, with persistence off
// and extra arguments appended, waits until it answers, and stops it when
// the test ends. It fails the test, saying how to install it, if
// redis-server cannot be found.
func Start(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	return StartAt(tb, FreePort(tb), extra...)
}

// StartAt is Start on a given port.
func StartAt(tb testing.TB, port int, extra ...string) *Server {
	tb.Helper()
	s := &Server{tb: tb, port: port}
	s.args = append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tb.TempDir()}, extra...)
	s.Restart()
	tb.Cleanup(s.Kill)
	return s
}

// FreePort returns a loopback port that nothing listens on.
func FreePort(tb testing.TB) int {
	tb.Helper()
	port, err := testserver.FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	return port
}

// Port returns the server's port.
func (s *Server) Port() int { return s.port }

// Addr returns the server's address, host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Restart starts the server again after Kill, on the same port, and waits
// until it answers.
func (s *Server) Restart() {
	s.tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	answers := func() bool { return c.Ping(context.Background()).Err() == nil }
	p, err := testserver.Start("redis-server", s.args, answers, "redis-server is not installed: apt-get install redis-server (Debian, Ubuntu; memo's ./test.sh does it when run as root), brew install redis (macOS)")
	if err != nil {
		s.tb.Fatal(err)
	}
	s.proc = p
}

// Kill kills the server with SIGKILL, paused or not, and waits until it is
// gone.
func (s *Server) Kill() {
	s.proc.Kill()
	s.proc = nil
}

// Pause stops the server with SIGSTOP: it holds its connections and answers
// nothing until Resume.
func (s *Server) Pause() { s.proc.Signal(syscall.SIGSTOP) }

// Resume lets a paused server go on.
func (s *Server) Resume() { s.proc.Signal(syscall.SIGCONT) }

// Client returns a client of the server that honours context deadlines, as
// memo's Redis store requires, closed when the test ends.
func (s *Server) Client(tb testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	tb.Cleanup(func() { c.Close() })
	return c
}
