// Package await is the tests' wait for a condition that another goroutine,
// a ticker or another process makes true: the root module's tests and those
// of the stores share it.
package await

import (
	"testing"
	"time"
)

// Timeout bounds every wait, so that a condition that never comes fails the
// test instead of hanging it.
const Timeout = 10 * time.Second

// Soon fails t, saying msg, unless cond holds within Timeout. It polls every
// millisecond, for conditions that wait on a ticker or whose check does work
// (a call).
func Soon(t testing.TB, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not so after %v: %s", Timeout, msg)
		}
		time.Sleep(time.Millisecond)
	}
}
