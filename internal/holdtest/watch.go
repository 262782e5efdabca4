package holdtest

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gomemo/memo"
)

// watched is the function Watcher and Invalidation share through the store.
func watched(k int) string { return "value " + strconv.Itoa(k) }

// Watcher is the watching process of Invalidation: it holds the keys the
// parent names on its stdin, one at a time, and prints when each has left
// its memory. Its Poll is 10s, so a deletion reaches it sooner only if the
// store pushes it.
func Watcher(st memo.Store) {
	f, c := memo.Memoize(watched, memo.Share(memo.Sharing{Store: st, Name: "watch", Poll: 10 * time.Second}))
	defer c.Close()
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		k, _ := strconv.Atoi(in.Text())
		f(k)
		fmt.Println("held")
		deadline := time.Now().Add(15 * time.Second)
		for c.Contains(k) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Microsecond)
		}
		fmt.Println(time.Now().UnixNano())
	}
}

// next returns the next line of a child's output, failing t unless there is
// one within 20s.
func next(t testing.TB, lines *bufio.Scanner) string {
	t.Helper()
	got := make(chan bool, 1)
	go func() { got <- lines.Scan() }()
	select {
	case ok := <-got:
		if !ok {
			t.Fatalf("the child ended: %v", lines.Err())
		}
		return lines.Text()
	case <-time.After(20 * time.Second):
		t.Fatal("the child said nothing within 20s")
		return ""
	}
}

// Invalidation measures, over 100 keys, the time from a Forget returning in
// this process to the key leaving the memory of a Watcher that start starts
// on the same data as st. It logs the percentiles and fails t unless the
// 99th is well under the Watcher's Poll: the store pushed the deletions.
func Invalidation(t testing.TB, st memo.Store, start Start) {
	t.Helper()
	cmd := start()
	in, lines := run(t, cmd, "ready")
	f, c := memo.Memoize(watched, memo.Share(memo.Sharing{Store: st, Name: "watch"}))
	defer c.Close()
	var times []time.Duration
	for k := range 100 {
		f(k) // stored
		fmt.Fprintln(in, k)
		if l := next(t, lines); l != "held" {
			t.Fatalf("the watcher printed %q, not held", l)
		}
		c.Forget(k)
		forgotten := time.Now()
		gone, err := strconv.ParseInt(next(t, lines), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		times = append(times, max(time.Unix(0, gone).Sub(forgotten), 0))
	}
	in.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(times)
	t.Logf("Forget returning here to the value gone from another process's memory, 100 samples: p50 %v, p99 %v, max %v",
		times[49].Round(10*time.Microsecond), times[98].Round(10*time.Microsecond), times[99].Round(10*time.Microsecond))
	if times[98] >= time.Second {
		t.Fatalf("p99 %v: not well under the other process's Poll (10s)", times[98])
	}
}
