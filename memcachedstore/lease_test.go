package memcachedstore

import (
	"os"
	"os/exec"
	"testing"

	"github.com/gomemo/memo/internal/holdtest"
)

// holderProcess runs this test binary as holdtest's holder on the memcached at addr.
func holderProcess(addr string) holdtest.Start {
	return func(env ...string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(append(os.Environ(), "MEMO_MEMCACHED_CHILD=hold", "MEMO_MEMCACHED_ADDR="+addr), env...)
		return cmd
	}
}

func TestKilledHolderTakenOver(t *testing.T) {
	srv := startServer(t)
	took := holdtest.Killed(t, newStore(t, srv), holderProcess(srv.addr))
	t.Logf("after kill -9 of the process holding the key, another process computed it %v later (default Lease 2s)", took)
}

func TestLongExecutionRunsOnce(t *testing.T) {
	srv := startServer(t)
	holdtest.Long(t, newStore(t, srv), holderProcess(srv.addr))
}
