package memo_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomemo/memo"
	"github.com/gomemo/memo/storetest"
)

// The tests' Store in memory passes the contract that memo's other tests
// rely on it for. Its stores share nothing, so each subtest gets one store,
// standing for every process.
func TestMemStoreContract(t *testing.T) {
	st := memo.NewMemStore()
	storetest.Run(t, func(*testing.T) memo.Store { return st })
}

// broken are stores that each break one rule of the contract, by the rule
// and the subtest that must catch it.
var broken = map[string]struct {
	catches string
	store   func(memo.Store) memo.Store
}{
	"Unlease by anyone":        {"Lease/unlease", func(s memo.Store) memo.Store { return anyUnlease{s, new(sync.Mutex), map[[2]string]string{}} }},
	"no renewal":               {"Lease/renewed", func(s memo.Store) memo.Store { return noRenewal{s} }},
	"a Clear is no change":     {"Changes/clear", func(s memo.Store) memo.Store { return clearUnseen{s} }},
	"namespaces merged":        {"Namespaces/apart", func(s memo.Store) memo.Store { return oneNamespace{s} }},
	"an ended context ignored": {"Context/ended", func(s memo.Store) memo.Store { return noContext{s} }},
	"expired values served":    {"Expiry/past", func(s memo.Store) memo.Store { return noExpiry{s} }},
	"a Set replaces no expiry": {"Set/replaces", func(s memo.Store) memo.Store { return stickyExpiry{s} }},
	"deletions of others only": {"Changes/deletions", func(s memo.Store) memo.Store { return otherDeletions{s} }},
	"no read limit":            {"Get/read limit", func(s memo.Store) memo.Store { return noReadLimit{s} }},
}

type noReadLimit struct{ memo.Store }

func (s noReadLimit) Get(ctx context.Context, ns, key string) ([]byte, time.Time, bool, error) {
	return s.Store.Get(noValues{ctx}, ns, key)
}

// noValues is a context without values, ReadLimit's included.
type noValues struct{ context.Context }

func (noValues) Value(any) any { return nil }

// anyUnlease ends the lease on a key whichever token asks.
type anyUnlease struct {
	memo.Store
	mu      *sync.Mutex
	holders map[[2]string]string
}

func (s anyUnlease) Lease(ctx context.Context, ns, key, token string, d time.Duration) (bool, error) {
	got, err := s.Store.Lease(ctx, ns, key, token, d)
	if got {
		s.mu.Lock()
		s.holders[[2]string{ns, key}] = token
		s.mu.Unlock()
	}
	return got, err
}

func (s anyUnlease) Unlease(ctx context.Context, ns, key, _ string) error {
	s.mu.Lock()
	token := s.holders[[2]string{ns, key}]
	s.mu.Unlock()
	return s.Store.Unlease(ctx, ns, key, token)
}

type noRenewal struct{ memo.Store }

func (s noRenewal) Lease(ctx context.Context, ns, key, token string, d time.Duration) (bool, error) {
	if got, err := s.Store.Lease(ctx, ns, key, token+"?", time.Nanosecond); err != nil || !got {
		return false, err // held, by anyone
	}
	time.Sleep(time.Millisecond)
	return s.Store.Lease(ctx, ns, key, token, d)
}

type clearUnseen struct{ memo.Store }

func (s clearUnseen) Changes(ctx context.Context, ns string, cursor uint64) ([]string, bool, uint64, error) {
	keys, _, next, err := s.Store.Changes(ctx, ns, cursor)
	return keys, false, next, err
}

type oneNamespace struct{ memo.Store }

func (s oneNamespace) Get(ctx context.Context, _, key string) ([]byte, time.Time, bool, error) {
	return s.Store.Get(ctx, "", key)
}

func (s oneNamespace) Set(ctx context.Context, _, key string, v []byte, exp time.Time) error {
	return s.Store.Set(ctx, "", key, v, exp)
}

type noContext struct{ memo.Store }

func (s noContext) Delete(_ context.Context, ns, key string) error {
	return s.Store.Delete(context.Background(), ns, key)
}

type noExpiry struct{ memo.Store }

func (s noExpiry) Set(ctx context.Context, ns, key string, v []byte, _ time.Time) error {
	return s.Store.Set(ctx, ns, key, v, time.Time{})
}

type stickyExpiry struct{ memo.Store }

func (s stickyExpiry) Set(ctx context.Context, ns, key string, v []byte, exp time.Time) error {
	if _, old, found, _ := s.Store.Get(ctx, ns, key); found && exp.IsZero() {
		exp = old
	}
	return s.Store.Set(ctx, ns, key, v, exp)
}

type otherDeletions struct{ memo.Store }

func (s otherDeletions) Changes(ctx context.Context, ns string, cursor uint64) ([]string, bool, uint64, error) {
	keys, all, next, err := s.Store.Changes(ctx, ns, cursor)
	if len(keys) > 0 {
		keys = keys[1:]
	}
	return keys, all, next, err
}

// Each broken store fails the suite, at the subtest for the rule it breaks:
// the suite can fail. Each runs in a child process (this test, run again by
// the test binary), as a failing subtest fails its parent.
func TestContractCatchesBrokenStores(t *testing.T) {
	if name := os.Getenv("MEMO_BROKEN_STORE"); name != "" {
		b := broken[name]
		st := b.store(memo.NewMemStore())
		storetest.Run(t, func(*testing.T) memo.Store { return st })
		return
	}
	for name, b := range broken {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestContractCatchesBrokenStores$", "-test.v")
			cmd.Env = append(os.Environ(), "MEMO_BROKEN_STORE="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a store with %s:\n%s", name, out)
			}
			want := "--- FAIL: TestContractCatchesBrokenStores/" + strings.ReplaceAll(b.catches, " ", "_") + " "
			if !strings.Contains(string(out), want) {
				t.Fatalf("the suite failed a store with %s, but not at %s:\n%s", name, b.catches, out)
			}
		})
	}
}
