// Package storetest tests a memo.Store against the contract that memo.Store's
// documentation states, method by method: values and their expiry, the
// read limit (memo.ReadLimit), namespaces kept apart, keys and namespaces of
// any bytes, leases and their renewal, the deletions that Changes reports,
// use by many goroutines and by several processes at once, and contexts
// that have ended.
//
// A store for another engine runs it from a test of its own:
//
//	func TestContract(t *testing.T) {
//		srv := startServer(t) // a real server, started for the test
//		storetest.Run(t, func(t *testing.T) memo.Store { return mystore.New(srv.Addr()) })
//	}
//
// The package uses the standard library only, so importing it adds no
// dependency to a module.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomemo/memo"
)

// Suite is the contract's tests and what they need of a store.
type Suite struct {
	// New returns a store for a subtest. Every store it returns during one
	// Run must share its data with the others, as the processes sharing a
	// store do (clients of one server, or handles on one directory): some
	// subtests call New twice, one store standing for each of two
	// processes. The stores need not be empty, as every subtest works in
	// namespaces of its own. New closes what it opens with t.Cleanup.
	// A store must keep at least 200 deletions of a namespace for Changes:
	// the suite deletes that many keys and expects them listed. The suite
	// reads Changes only with cursors that the same store returned, as
	// each process reads its own: the deletions may come from either.
	New func(t *testing.T) memo.Store
	// LoseChanges, if set, makes st lose its record of the deletions in ns
	// made so far, as the store does when it drops old history or its
	// engine evicts it; the subtest Changes/lost then checks that Changes
	// reports all. Without it, that subtest is not run.
	LoseChanges func(t *testing.T, st memo.Store, ns string)
}

// Run runs the contract's tests on the stores newStore returns (see
// Suite.New), each as a subtest of t.
func Run(t *testing.T, newStore func(t *testing.T) memo.Store) {
	Suite{New: newStore}.Run(t)
}

// Run runs the contract's tests on s.New's stores, each as a subtest of t.
func (s Suite) Run(t *testing.T) {
	if s.New == nil {
		t.Fatal("storetest: Suite.New is nil")
	}
	run := fmt.Sprintf("storetest-%x", rand.Uint64())
	tests := []struct {
		name string
		test func(*testing.T, *suite)
	}{
		{"Get/missing", testGetMissing},
		{"Get/read limit", testReadLimit},
		{"Set/values", testValues},
		{"Set/replaces", testReplaces},
		{"Set/another process", testAnotherProcess},
		{"Expiry/kept", testExpiryKept},
		{"Expiry/past", testExpiryPast},
		{"Expiry/passes", testExpiryPasses},
		{"Delete", testDelete},
		{"Clear", testClear},
		{"Namespaces/apart", testNamespacesApart},
		{"Namespaces/joined", testNamespacesJoined},
		{"Bytes/keys", testKeyBytes},
		{"Bytes/namespaces", testNamespaceBytes},
		{"Lease/exclusive", testLeaseExclusive},
		{"Lease/per key", testLeasePerKey},
		{"Lease/expires", testLeaseExpires},
		{"Lease/renewed", testLeaseRenewed},
		{"Lease/unlease", testUnlease},
		{"Changes/cursor 0", testChangesCursorZero},
		{"Changes/deletions", testChangesDeletions},
		{"Changes/quiet", testChangesQuiet},
		{"Changes/clear", testChangesClear},
		{"Changes/many", testChangesMany},
		{"Changes/any bytes", testChangesBytes},
		{"Changes/lost", testChangesLost},
		{"Concurrent/values", testConcurrentValues},
		{"Concurrent/leases", testConcurrentLeases},
		{"Concurrent/deletions", testConcurrentDeletions},
		{"Context/ended", testContextEnded},
	}
	for _, tc := range tests {
		if tc.name == "Changes/lost" && s.LoseChanges == nil {
			t.Log("storetest: Changes/lost not run: Suite.LoseChanges is not set")
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			tc.test(t, &suite{Suite: s, ns: run + "/" + tc.name})
		})
	}
}

// suite is one subtest's view of the Suite: ns is a namespace of its own.
type suite struct {
	Suite
	ns string
}

// timeout bounds every wait of the suite, so that a store that never gets
// there fails instead of hanging.
const timeout = 10 * time.Second

var bg = context.Background()

// get returns Get's answer, failing t on an error.
func get(t *testing.T, st memo.Store, ns, key string) ([]byte, time.Time, bool) {
	t.Helper()
	v, exp, found, err := st.Get(bg, ns, key)
	if err != nil {
		t.Fatalf("Get(%q, %q): %v", ns, key, err)
	}
	return v, exp, found
}

// has fails t unless key in ns holds want (and never expires if exp is the
// zero Time, or expires at exp to the millisecond).
func has(t *testing.T, st memo.Store, ns, key string, want []byte, exp time.Time) {
	t.Helper()
	v, gotExp, found := get(t, st, ns, key)
	switch {
	case !found:
		t.Fatalf("Get(%q, %q) found nothing, want %q", ns, key, short(want))
	case string(v) != string(want):
		t.Fatalf("Get(%q, %q) = %q, want %q", ns, key, short(v), short(want))
	case exp.IsZero() && !gotExp.IsZero():
		t.Fatalf("Get(%q, %q) expires %v, want the zero Time (never)", ns, key, gotExp)
	case !exp.IsZero() && gotExp.UnixMilli() != exp.UnixMilli():
		t.Fatalf("Get(%q, %q) expires %v, want %v (to the millisecond)", ns, key, gotExp, exp)
	}
}

// hasNot fails t if key in ns holds a value.
func hasNot(t *testing.T, st memo.Store, ns, key, why string) {
	t.Helper()
	if v, _, found := get(t, st, ns, key); found {
		t.Fatalf("Get(%q, %q) = %q, want nothing: %s", ns, key, short(v), why)
	}
}

// shorts returns keys, each long one cut short, for messages.
func shorts(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = short([]byte(k))
	}
	return out
}

// short returns b, or its start if it is long, for messages.
func short(b []byte) string {
	if len(b) > 64 {
		return fmt.Sprintf("%s... (%d bytes)", b[:64], len(b))
	}
	return string(b)
}

// set runs Set, failing t on an error.
func set(t *testing.T, st memo.Store, ns, key string, value []byte, exp time.Time) {
	t.Helper()
	if err := st.Set(bg, ns, key, value, exp); err != nil {
		t.Fatalf("Set(%q, %q): %v", ns, key, err)
	}
}

// del runs Delete, failing t on an error.
func del(t *testing.T, st memo.Store, ns, key string) {
	t.Helper()
	if err := st.Delete(bg, ns, key); err != nil {
		t.Fatalf("Delete(%q, %q): %v", ns, key, err)
	}
}

// clear runs Clear, failing t on an error.
func clear(t *testing.T, st memo.Store, ns string) {
	t.Helper()
	if err := st.Clear(bg, ns); err != nil {
		t.Fatalf("Clear(%q): %v", ns, err)
	}
}

// lease runs Lease, failing t on an error.
func lease(t *testing.T, st memo.Store, ns, key, token string, d time.Duration) bool {
	t.Helper()
	got, err := st.Lease(bg, ns, key, token, d)
	if err != nil {
		t.Fatalf("Lease(%q, %q, %q, %v): %v", ns, key, token, d, err)
	}
	return got
}

// leased fails t unless Lease gives want.
func leased(t *testing.T, st memo.Store, ns, key, token string, d time.Duration, want bool, why string) {
	t.Helper()
	if got := lease(t, st, ns, key, token, d); got != want {
		t.Fatalf("Lease(%q, %q, %q, %v) = %v, want %v: %s", ns, key, token, d, got, want, why)
	}
}

// unlease runs Unlease, failing t on an error.
func unlease(t *testing.T, st memo.Store, ns, key, token string) {
	t.Helper()
	if err := st.Unlease(bg, ns, key, token); err != nil {
		t.Fatalf("Unlease(%q, %q, %q): %v", ns, key, token, err)
	}
}

// changes runs Changes, failing t on an error or a cursor of 0.
func changes(t *testing.T, st memo.Store, ns string, cursor uint64) ([]string, bool, uint64) {
	t.Helper()
	keys, all, next, err := st.Changes(bg, ns, cursor)
	if err != nil {
		t.Fatalf("Changes(%q, %d): %v", ns, cursor, err)
	}
	if next == 0 {
		t.Fatalf("Changes(%q, %d) returned the cursor 0, which it never may", ns, cursor)
	}
	return keys, all, next
}

// cursor returns the current cursor of ns.
func cursor(t *testing.T, st memo.Store, ns string) uint64 {
	t.Helper()
	keys, all, next := changes(t, st, ns, 0)
	if len(keys) != 0 || all {
		t.Fatalf("Changes(%q, 0) = %q, all %v; cursor 0 asks for the cursor only: no keys, all false", ns, keys, all)
	}
	return next
}

// deleted fails t unless Changes from c lists every key of want, with all
// false.
func deleted(t *testing.T, st memo.Store, ns string, c uint64, want ...string) uint64 {
	t.Helper()
	keys, all, next := changes(t, st, ns, c)
	if all {
		t.Fatalf("Changes(%q, %d) reported all, want the deletions %q: nothing was cleared or lost", ns, c, shorts(want))
	}
	for _, k := range want {
		if !slices.Contains(keys, k) {
			t.Fatalf("Changes(%q, %d) = %q, missing the deletion of %q", ns, c, shorts(keys), short([]byte(k)))
		}
	}
	return next
}

// within returns when now+d is, to the millisecond.
func within(d time.Duration) time.Time { return time.Now().Add(d).Truncate(time.Millisecond) }

// soon fails t, saying msg, unless cond holds within timeout.
func soon(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not so after %v: %s", timeout, msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testGetMissing(t *testing.T, s *suite) {
	st := s.New(t)
	hasNot(t, st, s.ns, "never set", "nothing was stored")
	hasNot(t, st, s.ns+"/empty", "", "nothing was stored")
}

// testReadLimit checks, through a memoized function (memo alone tells a
// store its ReadLimit), that a value longer than the reading cache accepts
// is refused with ErrValueTooLarge: a miss, recomputed, never served.
func testReadLimit(t *testing.T, s *suite) {
	a, b := s.New(t), s.New(t)
	big := strings.Repeat("x", 10000)
	write, wc := memo.Memoize(func(int) string { return big }, memo.Share(memo.Sharing{Store: a, Name: s.ns}))
	write(1)
	wc.Close()
	var mu sync.Mutex
	var failures []error
	read, rc := memo.Memoize(func(int) string { return "small" },
		memo.Share(memo.Sharing{Store: b, Name: s.ns, MaxValue: 1000}),
		memo.Observe(func(e memo.Event[int, string]) {
			if e.Kind == memo.StoreFailed {
				mu.Lock()
				failures = append(failures, e.Err)
				mu.Unlock()
			}
		}))
	defer rc.Close()
	if v := read(1); v != "small" {
		t.Fatalf("a cache whose MaxValue is 1000 bytes was served the stored value of %d bytes", len(v))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failures) == 0 || !errors.Is(failures[0], memo.ErrValueTooLarge) {
		t.Fatalf("Get of a value of 10000 bytes, with a ReadLimit of about 1000: store failures %v, want one wrapping memo.ErrValueTooLarge", failures)
	}
}

func testValues(t *testing.T, s *suite) {
	st := s.New(t)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	big := []byte(strings.Repeat("0123456789abcdef", 1<<16)) // 1 MiB
	for name, v := range map[string][]byte{
		"text": []byte("value"), "every byte": all, "empty": {}, "1 MiB": big,
	} {
		set(t, st, s.ns, name, v, time.Time{})
		has(t, st, s.ns, name, v, time.Time{})
	}
	// The store keeps its own copy.
	v := []byte("mutable")
	set(t, st, s.ns, "copy", v, time.Time{})
	v[0] = 'M'
	has(t, st, s.ns, "copy", []byte("mutable"), time.Time{})
}

func testReplaces(t *testing.T, s *suite) {
	st := s.New(t)
	exp := within(time.Hour)
	set(t, st, s.ns, "k", []byte("first"), exp)
	set(t, st, s.ns, "k", []byte("second"), time.Time{})
	has(t, st, s.ns, "k", []byte("second"), time.Time{})
	set(t, st, s.ns, "k", []byte("third, much longer than the others"), exp)
	has(t, st, s.ns, "k", []byte("third, much longer than the others"), exp)
	set(t, st, s.ns, "k", []byte("4"), exp.Add(time.Minute))
	has(t, st, s.ns, "k", []byte("4"), exp.Add(time.Minute))
}

func testAnotherProcess(t *testing.T, s *suite) {
	a, b := s.New(t), s.New(t)
	exp := within(time.Hour)
	set(t, a, s.ns, "k", []byte("from a"), exp)
	has(t, b, s.ns, "k", []byte("from a"), exp)
	set(t, b, s.ns, "k", []byte("from b"), time.Time{})
	has(t, a, s.ns, "k", []byte("from b"), time.Time{})
	del(t, a, s.ns, "k")
	hasNot(t, b, s.ns, "k", "another process deleted it")
}

func testExpiryKept(t *testing.T, s *suite) {
	st := s.New(t)
	for name, d := range map[string]time.Duration{
		"minute": time.Minute, "hour": time.Hour, "month": 31 * 24 * time.Hour, "century": 100 * 365 * 24 * time.Hour,
	} {
		exp := within(d)
		set(t, st, s.ns, name, []byte(name), exp)
		has(t, st, s.ns, name, []byte(name), exp)
	}
	// Digits past the millisecond may be dropped, never rounded up past the
	// instant given.
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond).Add(999 * time.Microsecond)
	set(t, st, s.ns, "sub", []byte("v"), exp)
	has(t, st, s.ns, "sub", []byte("v"), exp)
}

func testExpiryPast(t *testing.T, s *suite) {
	st := s.New(t)
	for name, exp := range map[string]time.Time{
		"a second ago": time.Now().Add(-time.Second),
		"a day ago":    time.Now().Add(-24 * time.Hour),
		"1970":         time.UnixMilli(1),
	} {
		set(t, st, s.ns, name, []byte("v"), exp)
		hasNot(t, st, s.ns, name, "it expired before it was set")
	}
	// A live value replaced by one already expired is gone.
	set(t, st, s.ns, "k", []byte("v"), time.Time{})
	set(t, st, s.ns, "k", []byte("v"), time.Now().Add(-time.Second))
	hasNot(t, st, s.ns, "k", "the value that replaced it expired before it was set")
}

func testExpiryPasses(t *testing.T, s *suite) {
	st := s.New(t)
	exp := within(300 * time.Millisecond)
	set(t, st, s.ns, "short", []byte("v"), exp)
	set(t, st, s.ns, "forever", []byte("v"), time.Time{})
	set(t, st, s.ns, "long", []byte("v"), within(time.Hour))
	if time.Now().Before(exp) {
		has(t, st, s.ns, "short", []byte("v"), exp)
	}
	time.Sleep(time.Until(exp) + time.Millisecond)
	hasNot(t, st, s.ns, "short", "its expiry passed")
	if _, _, found := get(t, st, s.ns, "forever"); !found {
		t.Fatal("a value with the zero Time for expiry expired")
	}
	if _, _, found := get(t, st, s.ns, "long"); !found {
		t.Fatal("a value for an hour expired")
	}
}

func testDelete(t *testing.T, s *suite) {
	st := s.New(t)
	set(t, st, s.ns, "a", []byte("a"), time.Time{})
	set(t, st, s.ns, "b", []byte("b"), time.Time{})
	del(t, st, s.ns, "a")
	hasNot(t, st, s.ns, "a", "it was deleted")
	has(t, st, s.ns, "b", []byte("b"), time.Time{})
	del(t, st, s.ns, "a")
	del(t, st, s.ns, "never set")
	set(t, st, s.ns, "a", []byte("again"), time.Time{})
	has(t, st, s.ns, "a", []byte("again"), time.Time{})
}

func testClear(t *testing.T, s *suite) {
	a, b := s.New(t), s.New(t)
	other := s.ns + "/other"
	for i := range 20 {
		set(t, a, s.ns, fmt.Sprint(i), []byte("v"), time.Time{})
	}
	set(t, a, other, "0", []byte("kept"), time.Time{})
	clear(t, a, s.ns)
	for i := range 20 {
		hasNot(t, b, s.ns, fmt.Sprint(i), "its namespace was cleared")
	}
	has(t, b, other, "0", []byte("kept"), time.Time{})
	set(t, b, s.ns, "0", []byte("after"), time.Time{})
	has(t, a, s.ns, "0", []byte("after"), time.Time{})
	has(t, b, s.ns, "0", []byte("after"), time.Time{})
	clear(t, a, s.ns+"/never used")
	clear(t, b, s.ns)
	clear(t, b, s.ns)
	hasNot(t, a, s.ns, "0", "its namespace was cleared twice")
	set(t, a, s.ns, "1", []byte("after two"), time.Time{})
	has(t, b, s.ns, "1", []byte("after two"), time.Time{})
}

func testNamespacesApart(t *testing.T, s *suite) {
	st := s.New(t)
	nss := []string{s.ns + "/a", s.ns + "/b", s.ns + "/a/b", s.ns + "/A"}
	for _, ns := range nss {
		set(t, st, ns, "k", []byte(ns), time.Time{})
	}
	for _, ns := range nss {
		has(t, st, ns, "k", []byte(ns), time.Time{})
	}
	del(t, st, nss[0], "k")
	hasNot(t, st, nss[0], "k", "it was deleted")
	for _, ns := range nss[1:] {
		has(t, st, ns, "k", []byte(ns), time.Time{})
	}
	clear(t, st, nss[1])
	for _, ns := range nss[2:] {
		has(t, st, ns, "k", []byte(ns), time.Time{})
	}
	if !lease(t, st, nss[2], "k", "x", time.Hour) || !lease(t, st, nss[3], "k", "y", time.Hour) {
		t.Fatal("a lease on a key in one namespace held up the same key in another")
	}
}

// joins are pairs of a namespace and a key that naive joinings of the two
// (with a separator, or with the brackets of a hash tag) make one string.
var joins = [][2]string{
	{"a", "b:c"}, {"a:b", "c"}, {"a:", "bc"}, {"a}:v:b", "c"}, {"a", "b}:v:c"},
	{"a/", "b"}, {"a", "/b"}, {"a\x00", "b"}, {"a", "\x00b"}, {"", "ab"}, {"ab", ""},
	{"a*", "b"}, {"a", "*b"}, {"a?", "b"}, {"a[", "b"}, {"a b", "c"}, {"a", "b c"},
	{"a#", "b"}, {"a#64.1", "b"}, {"a%7D:v:b", "c"},
}

func testNamespacesJoined(t *testing.T, s *suite) {
	st := s.New(t)
	for _, j := range joins {
		set(t, st, s.ns+j[0], j[1], []byte(j[0]+"|"+j[1]), time.Time{})
	}
	for _, j := range joins {
		has(t, st, s.ns+j[0], j[1], []byte(j[0]+"|"+j[1]), time.Time{})
	}
	// Clearing one namespace leaves those that are its prefixes or extend it.
	clear(t, st, s.ns+"a")
	for _, j := range joins {
		if j[0] == "a" {
			hasNot(t, st, s.ns+j[0], j[1], "its namespace was cleared")
		} else {
			has(t, st, s.ns+j[0], j[1], []byte(j[0]+"|"+j[1]), time.Time{})
		}
	}
	clear(t, st, s.ns+"a*")
	has(t, st, s.ns+"a?", "b", []byte("a?|b"), time.Time{})
	has(t, st, s.ns+"ab", "", []byte("ab|"), time.Time{})
}

// strange returns keys that stores must keep exactly and apart.
func strange() map[string]string {
	invalid := string([]byte{0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80})
	return map[string]string{
		"empty":        "",
		"NUL":          "\x00",
		"NULs":         "a\x00b\x00",
		"invalid":      invalid,
		"control":      "\r\n\t\x01\x7f",
		"space":        "a key with spaces",
		"unicode":      "ключ 键 🔑",
		"glob":         "*?[a-z]\\",
		"braces":       "}{",
		"long":         strings.Repeat("k", 4096),
		"long binary":  strings.Repeat("\x00\xff", 1024),
		"binary hash":  "h" + string([]byte{0, 1, 2, 0xff, 0x80, ' ', '\n', 0x7f}),
		"near long":    strings.Repeat("k", 4095) + "l",
		"case":         "K",
		"case (lower)": "k",
	}
}

func testKeyBytes(t *testing.T, s *suite) {
	a, b := s.New(t), s.New(t)
	keys := strange()
	for name, key := range keys {
		set(t, a, s.ns, key, []byte(name), time.Time{})
	}
	for name, key := range keys {
		has(t, b, s.ns, key, []byte(name), time.Time{})
	}
	for name, key := range keys {
		if !lease(t, a, s.ns, key, name, time.Hour) {
			t.Fatalf("Lease on the key %q (%s) refused, which no one else holds", short([]byte(key)), name)
		}
	}
	for name, key := range keys {
		del(t, b, s.ns, key)
		hasNot(t, a, s.ns, key, "it was deleted: "+name)
	}
}

func testNamespaceBytes(t *testing.T, s *suite) {
	a, b := s.New(t), s.New(t)
	nss := strange()
	for name, ns := range nss {
		set(t, a, s.ns+ns, "k", []byte(name), time.Time{})
	}
	for name, ns := range nss {
		has(t, b, s.ns+ns, "k", []byte(name), time.Time{})
		// A namespace all its own, no prefix of the suite's.
		set(t, a, ns, s.ns, []byte(name), time.Time{})
		has(t, b, ns, s.ns, []byte(name), time.Time{})
	}
	for name, ns := range nss {
		c := cursor(t, b, s.ns+ns)
		clear(t, a, s.ns+ns)
		if _, all, _ := changes(t, b, s.ns+ns, c); !all {
			t.Fatalf("Changes after the Clear of the namespace %q (%s) did not report all", short([]byte(ns)), name)
		}
		hasNot(t, b, s.ns+ns, "k", "its namespace was cleared: "+name)
		if !lease(t, b, s.ns+ns, "k", "t", time.Hour) {
			t.Fatalf("Lease in the namespace %q (%s) refused, which no one else holds", short([]byte(ns)), name)
		}
	}
}

func testLeaseExclusive(t *testing.T, s *suite) {
	a, b := s.New(t), s.New(t)
	leased(t, a, s.ns, "k", "a", time.Hour, true, "no one holds it")
	leased(t, b, s.ns, "k", "b", time.Hour, false, "a holds it")
	leased(t, a, s.ns, "k", "b", time.Hour, false, "a holds it, whichever process asks")
	leased(t, b, s.ns, "k", "a", time.Hour, true, "a holds it already, whichever process asks")
}

func testLeasePerKey(t *testing.T, s *suite) {
	st := s.New(t)
	leased(t, st, s.ns, "k", "a", time.Hour, true, "no one holds it")
	leased(t, st, s.ns, "k2", "b", time.Hour, true, "a lease is on one key")
	leased(t, st, s.ns+"/2", "k", "b", time.Hour, true, "a lease is in one namespace")
	// Values and leases are apart: a value set, deleted or cleared leaves
	// the lease on its key, and a lease leaves the value.
	set(t, st, s.ns, "k", []byte("v"), time.Time{})
	del(t, st, s.ns, "k")
	clear(t, st, s.ns)
	leased(t, st, s.ns, "k", "b", time.Hour, false, "a holds it still")
	set(t, st, s.ns, "k2", []byte("v"), time.Time{})
	leased(t, st, s.ns, "k2", "c", time.Hour, false, "b holds it")
	has(t, st, s.ns, "k2", []byte("v"), time.Time{})
}

func testLeaseExpires(t *testing.T, s *suite) {
	a, b := s.New(t), s.New(t)
	const d = 200 * time.Millisecond
	start := time.Now()
	leased(t, a, s.ns, "k", "a", d, true, "no one holds it")
	if got := lease(t, b, s.ns, "k", "b", time.Hour); got && time.Since(start) < d {
		t.Fatalf("b got a's lease of %v %v after it was given", d, time.Since(start))
	}
	soon(t, func() bool { return lease(t, b, s.ns, "k", "b", time.Hour) }, "b takes the lease once a's has expired")
	if took := time.Since(start); took < d {
		t.Fatalf("b took a's lease of %v after %v", d, took)
	}
	leased(t, a, s.ns, "k", "a", time.Hour, false, "a's lease expired, and b holds the key now")
}

func testLeaseRenewed(t *testing.T, s *suite) {
	a, b := s.New(t), s.New(t)
	const d = 600 * time.Millisecond
	start := time.Now()
	leased(t, a, s.ns, "k", "a", d, true, "no one holds it")
	time.Sleep(d / 2)
	leased(t, a, s.ns, "k", "a", 3*d, true, "a renews its own lease")
	renewed := time.Now()
	// Past the first lease's end, within the renewed one.
	time.Sleep(time.Until(start.Add(d + d/3)))
	if lease(t, b, s.ns, "k", "b", time.Hour) && time.Since(renewed) < 3*d {
		t.Fatalf("b got a's renewed lease %v after the renewal, which was for %v", time.Since(renewed), 3*d)
	}
	// A renewal may shorten a lease, too.
	leased(t, a, s.ns, "k", "a", 50*time.Millisecond, true, "a renews its own lease")
	soon(t, func() bool { return lease(t, b, s.ns, "k", "b", time.Hour) }, "b takes the lease once a's shortened one has expired")
}

func testUnlease(t *testing.T, s *suite) {
	a, b := s.New(t), s.New(t)
	unlease(t, a, s.ns, "k", "a") // not held: nothing to do
	leased(t, a, s.ns, "k", "a", time.Hour, true, "no one holds it")
	unlease(t, b, s.ns, "k", "b")
	leased(t, b, s.ns, "k", "b", time.Hour, false, "b's Unlease could not end a's lease")
	unlease(t, b, s.ns, "k2", "a")
	leased(t, b, s.ns, "k", "b", time.Hour, false, "a's Unlease of another key left this one")
	unlease(t, b, s.ns+"/2", "k", "a")
	leased(t, b, s.ns, "k", "b", time.Hour, false, "a's Unlease in another namespace left this one")
	unlease(t, b, s.ns, "k", "a") // the token decides, not the process
	leased(t, b, s.ns, "k", "b", time.Hour, true, "a's lease was ended")
	// An expired holder's Unlease leaves the lease of the one who took over.
	leased(t, a, s.ns, "e", "a", 50*time.Millisecond, true, "no one holds it")
	soon(t, func() bool { return lease(t, b, s.ns, "e", "b", time.Hour) }, "b takes the lease once a's has expired")
	unlease(t, a, s.ns, "e", "a")
	leased(t, a, s.ns, "e", "c", time.Hour, false, "a's late Unlease could not end b's lease")
}

func testChangesCursorZero(t *testing.T, s *suite) {
	st := s.New(t)
	cursor(t, st, s.ns+"/fresh")
	del(t, st, s.ns, "a")
	clear(t, st, s.ns)
	c := cursor(t, st, s.ns)
	deleted(t, st, s.ns, c)
	del(t, st, s.ns, "b")
	deleted(t, st, s.ns, c, "b")
}

func testChangesDeletions(t *testing.T, s *suite) {
	a, b := s.New(t), s.New(t)
	c := cursor(t, b, s.ns)
	ca := cursor(t, a, s.ns)
	set(t, a, s.ns, "set", []byte("v"), time.Time{})
	set(t, a, s.ns, "x", []byte("v"), time.Time{})
	del(t, a, s.ns, "x")
	del(t, a, s.ns, "never set")
	del(t, a, s.ns+"/other", "other")
	keys, _, _ := changes(t, b, s.ns, c)
	next := deleted(t, b, s.ns, c, "x", "never set")
	if slices.Contains(keys, "other") || slices.Contains(keys, "set") {
		t.Fatalf("Changes(%q, %d) = %q: a deletion in another namespace, or a Set, is no deletion of this one", s.ns, c, keys)
	}
	// A cursor can be read again, and each process reads the deletions of
	// both with its own cursors.
	deleted(t, b, s.ns, c, "x", "never set")
	del(t, b, s.ns, "y")
	deleted(t, b, s.ns, next, "y")
	deleted(t, b, s.ns, c, "x", "never set", "y")
	deleted(t, a, s.ns, ca, "x", "never set", "y")
}

func testChangesQuiet(t *testing.T, s *suite) {
	st := s.New(t)
	del(t, st, s.ns, "before")
	c := cursor(t, st, s.ns)
	for i := range 3 {
		set(t, st, s.ns, fmt.Sprint(i), []byte("v"), time.Time{})
		get(t, st, s.ns, fmt.Sprint(i))
		lease(t, st, s.ns, fmt.Sprint(i), "t", time.Hour)
		unlease(t, st, s.ns, fmt.Sprint(i), "t")
		del(t, st, s.ns+"/other", fmt.Sprint(i))
		clear(t, st, s.ns+"/other")
		keys, all, next := changes(t, st, s.ns, c)
		if len(keys) != 0 || all {
			t.Fatalf("Changes(%q, %d) = %q, all %v, with nothing deleted in the namespace since", s.ns, c, keys, all)
		}
		c = next
	}
}

func testChangesClear(t *testing.T, s *suite) {
	a, b := s.New(t), s.New(t)
	c := cursor(t, b, s.ns)
	del(t, a, s.ns, "x")
	after := deleted(t, b, s.ns, c, "x")
	clear(t, a, s.ns)
	del(t, a, s.ns, "y")
	for _, from := range []uint64{c, after} {
		if _, all, _ := changes(t, b, s.ns, from); !all {
			t.Fatalf("Changes(%q, %d) did not report all, after a Clear", s.ns, from)
		}
	}
	_, _, next := changes(t, b, s.ns, after)
	keys, all, _ := changes(t, b, s.ns, next)
	if all || len(keys) != 0 {
		t.Fatalf("Changes(%q, %d) = %q, all %v, from the cursor after the Clear, with nothing deleted since", s.ns, next, keys, all)
	}
	del(t, a, s.ns, "z")
	deleted(t, b, s.ns, next, "z")
}

func testChangesMany(t *testing.T, s *suite) {
	st := s.New(t)
	c := cursor(t, st, s.ns)
	var want []string
	for i := range 200 {
		want = append(want, fmt.Sprint("key ", i))
		del(t, st, s.ns, want[i])
	}
	deleted(t, st, s.ns, c, want...)
}

func testChangesBytes(t *testing.T, s *suite) {
	st := s.New(t)
	c := cursor(t, st, s.ns)
	var want []string
	for _, key := range strange() {
		del(t, st, s.ns, key)
		want = append(want, key)
	}
	deleted(t, st, s.ns, c, want...)
}

func testChangesLost(t *testing.T, s *suite) {
	a, b := s.New(t), s.New(t)
	c := cursor(t, b, s.ns)
	del(t, a, s.ns, "x")
	s.LoseChanges(t, a, s.ns)
	keys, all, next := changes(t, b, s.ns, c)
	if !all {
		t.Fatalf("Changes(%q, %d) = %q, all false, after the store lost its record of deletions: a lost deletion must read as all", s.ns, c, shorts(keys[:min(len(keys), 5)]))
	}
	// The loss is reported once: from the cursor after it, nothing.
	after := next
	keys, all, next = changes(t, b, s.ns, after)
	if all || len(keys) != 0 {
		t.Fatalf("Changes(%q, %d) = %q, all %v, from the cursor after a reported loss, with nothing deleted since", s.ns, after, shorts(keys[:min(len(keys), 5)]), all)
	}
	del(t, a, s.ns, "y")
	keys, all, _ = changes(t, b, s.ns, next)
	if !all && !slices.Contains(keys, "y") {
		t.Fatalf("Changes(%q, %d) = %q, missing the deletion of %q made after the loss", s.ns, next, keys, "y")
	}
}

// parallel runs f(i) for i in 0..n-1 in goroutines of their own, started at
// once, and fails t if they have not all returned within timeout.
func parallel(t *testing.T, n int, f func(i int) error) {
	t.Helper()
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs <- f(i)
		})
	}
	close(start)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * timeout):
		t.Fatalf("%d goroutines had not returned after %v", n, 3*timeout)
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func testConcurrentValues(t *testing.T, s *suite) {
	stores := []memo.Store{s.New(t), s.New(t)}
	const goroutines, rounds, keys = 8, 50, 4
	value := func(g, r int) []byte { return fmt.Appendf(nil, "%d/%d %s", g, r, strings.Repeat("x", 100*g)) }
	parallel(t, goroutines, func(g int) error {
		st := stores[g%len(stores)]
		for r := range rounds {
			key := fmt.Sprint(r % keys)
			if err := st.Set(bg, s.ns, key, value(g, r), time.Time{}); err != nil {
				return fmt.Errorf("storetest: Set: %v", err)
			}
			v, _, found, err := st.Get(bg, s.ns, key)
			if err != nil {
				return fmt.Errorf("storetest: Get: %v", err)
			}
			if found {
				var g2, r2 int
				if _, err := fmt.Sscanf(string(v), "%d/%d", &g2, &r2); err != nil || string(v) != string(value(g2, r2)) || r2%keys != r%keys {
					return fmt.Errorf("storetest: Get(%q) = %q: no value ever Set under that key, with others Set at once", key, short(v))
				}
			}
			if r%10 == 9 {
				if err := st.Delete(bg, s.ns, key); err != nil {
					return fmt.Errorf("storetest: Delete: %v", err)
				}
			}
		}
		return nil
	})
}

func testConcurrentLeases(t *testing.T, s *suite) {
	stores := []memo.Store{s.New(t), s.New(t)}
	const goroutines, keys = 8, 20
	var mu sync.Mutex
	holders := map[string][]int{}
	parallel(t, goroutines, func(g int) error {
		st := stores[g%len(stores)]
		for k := range keys {
			key := fmt.Sprint(k)
			got, err := st.Lease(bg, s.ns, key, fmt.Sprint("token ", g), time.Hour)
			if err != nil {
				return fmt.Errorf("storetest: Lease: %v", err)
			}
			if got {
				mu.Lock()
				holders[key] = append(holders[key], g)
				mu.Unlock()
			}
		}
		return nil
	})
	for k := range keys {
		if h := holders[fmt.Sprint(k)]; len(h) != 1 {
			t.Fatalf("the lease on key %d went to goroutines %v of %d asking at once, want exactly one", k, h, goroutines)
		}
	}
}

func testConcurrentDeletions(t *testing.T, s *suite) {
	stores := []memo.Store{s.New(t), s.New(t)}
	c := cursor(t, stores[0], s.ns)
	const goroutines, each = 8, 20
	parallel(t, goroutines, func(g int) error {
		st := stores[g%len(stores)]
		for i := range each {
			if err := st.Delete(bg, s.ns, fmt.Sprint(g, "/", i)); err != nil {
				return fmt.Errorf("storetest: Delete: %v", err)
			}
		}
		return nil
	})
	var want []string
	for g := range goroutines {
		for i := range each {
			want = append(want, fmt.Sprint(g, "/", i))
		}
	}
	deleted(t, stores[0], s.ns, c, want...)
}

func testContextEnded(t *testing.T, s *suite) {
	st := s.New(t)
	ended, cancel := context.WithCancel(bg)
	cancel()
	expired, cancel2 := context.WithDeadline(bg, time.Now().Add(-time.Second))
	defer cancel2()
	set(t, st, s.ns, "k", []byte("before"), time.Time{})
	leased(t, st, s.ns, "held", "a", time.Hour, true, "no one holds it")
	c := cursor(t, st, s.ns)
	for name, ctx := range map[string]context.Context{"cancelled": ended, "past its deadline": expired} {
		fail := func(op string, err error) {
			t.Helper()
			if err == nil {
				t.Fatalf("%s with a context %s returned no error", op, name)
			}
		}
		_, _, _, err := st.Get(ctx, s.ns, "k")
		fail("Get", err)
		fail("Set", st.Set(ctx, s.ns, "k", []byte("after"), time.Time{}))
		fail("Set", st.Set(ctx, s.ns, "new", []byte("after"), time.Time{}))
		fail("Delete", st.Delete(ctx, s.ns, "k"))
		fail("Clear", st.Clear(ctx, s.ns))
		_, err = st.Lease(ctx, s.ns, "free", "b", time.Hour)
		fail("Lease", err)
		fail("Unlease", st.Unlease(ctx, s.ns, "held", "a"))
		_, _, _, err = st.Changes(ctx, s.ns, c)
		fail("Changes", err)
		_, _, _, err = st.Changes(ctx, s.ns, 0)
		fail("Changes", err)
	}
	// Nothing changed.
	has(t, st, s.ns, "k", []byte("before"), time.Time{})
	hasNot(t, st, s.ns, "new", "its Set had an ended context")
	leased(t, st, s.ns, "free", "c", time.Hour, true, "the Lease with an ended context took nothing")
	leased(t, st, s.ns, "held", "c", time.Hour, false, "the Unlease with an ended context left a's lease")
	keys, all, _ := changes(t, st, s.ns, c)
	if len(keys) != 0 || all {
		t.Fatalf("Changes = %q, all %v, after a Delete and a Clear with ended contexts, want nothing", keys, all)
	}
}
