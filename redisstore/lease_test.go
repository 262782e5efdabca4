package redisstore

import (
	"os"
	"os/exec"
	"testing"

	"github.com/gomemo/memo/internal/holdtest"
	"github.com/gomemo/memo/redisstore/redistest"
)

// holder starts this test binary as a holdtest.Holder on the Redis at addr.
func holder(addr string) holdtest.Start {
	return func(env ...string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(append(os.Environ(), "MEMO_REDIS_CHILD=hold", "MEMO_REDIS_ADDR="+addr), env...)
		return cmd
	}
}

func TestKilledHolderTakenOver(t *testing.T) {
	srv := redistest.Start(t)
	took := holdtest.Killed(t, newStore(t, srv.Client(t)), holder(srv.Addr()))
	t.Logf("after kill -9 of the process holding the key, another process computed it %v later (default Lease 2s)", took)
}

func TestLongExecutionRunsOnce(t *testing.T) {
	srv := redistest.Start(t)
	holdtest.Long(t, newStore(t, srv.Client(t)), holder(srv.Addr()))
}
