// Package holdtest tests a store across real OS processes, for the stores'
// tests: a process holding a key's lease is killed with kill -9 in the
// middle of a long execution, or lives through an execution many times
// longer than its lease (Killed, Long); a deletion made in one process
// leaves another's memory (Invalidation). A store's test binary doubles as
// the other process's program, running Holder or Watcher when its TestMain
// is told to.
package holdtest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gomemo/memo"
)

// The holder's settings, in its environment.
const (
	envLease = "MEMO_HOLD_LEASE_MS" // Sharing.Lease, 0 for the default
	envFor   = "MEMO_HOLD_FOR_MS"   // how long its execution runs, 0 for until killed
)

// Holder is the holding process: it memoizes a function of one key through
// st, whose execution prints "computing", runs for the time its environment
// says, and returns "holder"; it calls it for key 1 and prints the result.
func Holder(st memo.Store) {
	lease, _ := strconv.Atoi(os.Getenv(envLease))
	run, _ := strconv.Atoi(os.Getenv(envFor))
	f, c := memo.Memoize(func(int) string {
		fmt.Println("computing")
		if run == 0 {
			select {} // until killed
		}
		time.Sleep(time.Duration(run) * time.Millisecond)
		return "holder"
	}, memo.Share(memo.Sharing{Store: st, Name: "hold", Lease: time.Duration(lease) * time.Millisecond}))
	defer c.Close()
	fmt.Println(f(1))
}

// Start returns the command that runs the test binary as the other process
// (a Holder or a Watcher, as the function called says), with env added to
// its environment; given by each store's test.
type Start func(env ...string) *exec.Cmd

// run starts cmd, the other process, and waits for it to print first,
// failing t unless it does within 20s (see next). It returns the process's
// stdin and the lines of its output; the process is killed when t ends.
func run(t testing.TB, cmd *exec.Cmd, first string) (io.WriteCloser, *bufio.Scanner) {
	t.Helper()
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(out)
	if l := next(t, lines); l != first {
		t.Fatalf("the other process printed %q, not %s", l, first)
	}
	return in, lines
}

// started starts a holder and waits for it to be computing.
func started(t testing.TB, start Start, env ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := start(env...)
	_, lines := run(t, cmd, "computing")
	return cmd, lines
}

// call calls key 1 of the function through st as another process would,
// and returns what it got and when its own execution started (the zero
// Time if it did not run), failing t unless it returns within 10s.
func call(t testing.TB, st memo.Store, lease time.Duration) (got string, ran time.Time) {
	t.Helper()
	f, c := memo.Memoize(func(int) string {
		ran = time.Now()
		return "taker"
	}, memo.Share(memo.Sharing{Store: st, Name: "hold", Lease: lease}))
	defer c.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		got = f(1)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the call for the held key did not return within 10s")
	}
	return got, ran
}

// Killed starts a holder with the default Lease, kills it with kill -9
// after it has computed for longer than its lease (so that only renewals
// kept it), and returns how long after the kill another process's call
// started computing the key itself. It fails t if the call did not compute,
// or computed before the holder's renewed lease could have expired.
func Killed(t testing.TB, st memo.Store, start Start) time.Duration {
	t.Helper()
	cmd, _ := started(t, start)
	time.Sleep(2500 * time.Millisecond) // past a lease of 2s, renewed
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	cmd.Wait()
	got, ran := call(t, st, 0)
	if got != "taker" || ran.IsZero() {
		t.Fatalf("the call got %q without computing it", got)
	}
	took := ran.Sub(killed)
	if took < time.Second {
		t.Fatalf("the key was taken over %v after the kill: the killed holder's lease, renewed every 500ms for 2s, was not held", took)
	}
	return took
}

// Long starts a holder whose execution runs for 2.5s under a lease of
// 200ms, calls the key from another process meanwhile, and fails t unless
// that call gets the holder's result without computing it.
func Long(t testing.TB, st memo.Store, start Start) {
	t.Helper()
	cmd, lines := started(t, start, envLease+"=200", envFor+"=2500")
	got, ran := call(t, st, 200*time.Millisecond)
	if !ran.IsZero() || got != "holder" {
		t.Fatalf("the call got %q, computing it itself: %v; the holder, alive, lost its lease", got, !ran.IsZero())
	}
	lines.Scan()
	if lines.Text() != "holder" {
		t.Fatalf("the holder printed %q", lines.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}
