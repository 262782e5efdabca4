// Package testserver starts and stops the server programs of memo's tests
// (redis-server, memcached) on loopback ports: one copy of what finding a
// free port, waiting for a new server to answer and killing it take.
package testserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// FreePort returns a loopback port that nothing listens on.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Process is a running server.
type Process struct {
	cmd *exec.Cmd
}

// Start runs the program name with args, its standard error on the test's,
// and waits until answers reports true, trying every 5 ms for up to 10
// seconds. If name cannot be found, the error is missing, which says how to
// install it; if the server does not answer in time, it is killed.
func Start(name string, args []string, answers func() bool, missing string) (*Process, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return nil, errors.New(missing)
	}
	p := &Process{cmd: exec.Command(path, args...)}
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(10 * time.Second); !answers(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			p.Kill()
			return nil, fmt.Errorf("%s %v did not answer within 10s", name, args)
		}
	}
	return p, nil
}

// Kill kills the server with SIGKILL, paused or not, and waits until it is
// gone. A nil or killed Process is left alone.
func (p *Process) Kill() {
	if p == nil || p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGCONT)
	p.cmd.Process.Kill()
	p.cmd.Wait()
	p.cmd = nil
}

// Signal sends sig to the server.
func (p *Process) Signal(sig syscall.Signal) error {
	return p.cmd.Process.Signal(sig)
}
