package sqlite

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gomemo/memo/internal/holdtest"
)

// holder starts this test binary as a holdtest.Holder on the store in dir.
func holder(dir string) holdtest.Start {
	return func(env ...string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$", dir)
		cmd.Env = append(append(os.Environ(), "MEMO_SQLITE_CHILD=hold"), env...)
		return cmd
	}
}

func TestKilledHolderTakenOver(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	took := holdtest.Killed(t, open(t, dir, Options{}), holder(dir))
	t.Logf("after kill -9 of the process holding the key, another process computed it %v later (default Lease 2s)", took)
}

func TestLongExecutionRunsOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	holdtest.Long(t, open(t, dir, Options{}), holder(dir))
}
