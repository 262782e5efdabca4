package memo

import (
	"context"
	"fmt"
	"time"
)

// expiries records when each entry of a list expires, and keeps the entries
// in the order they were stored. Every entry of one list gets the same
// lifetime rule (a fixed TTL, or the end of the current window), so with a
// clock that does not go back, store order is expiry order: the expired
// entries are always the oldest ones, and dropping them all costs one step
// each, with no scan.
type expiries struct {
	at         []int64 // parallel to list.nodes: when each entry expires
	order      []link  // parallel to list.nodes: store order, oldest first
	refresh    []int32 // parallel to list.nodes: the execution refreshing a stale entry, or 0
	head, tail int32   // the oldest and newest entries; 0 when none
	grace      int64   // how long past at an entry may still be served stale
}

type link struct{ prev, next int32 }

func (e *expiries) init(n int) {
	e.at = make([]int64, n)
	e.order = make([]link, n)
	e.refresh = make([]int32, n)
	e.head, e.tail = 0, 0
}

func (e *expiries) grow(n int) {
	e.at = append(e.at, make([]int64, n-len(e.at))...)
	e.order = append(e.order, make([]link, n-len(e.order))...)
	e.refresh = append(e.refresh, make([]int32, n-len(e.refresh))...)
}

// push appends node i, which is in no order yet, as the newest entry.
func (e *expiries) push(i int32, at int64) {
	e.at[i] = at
	e.order[i] = link{prev: e.tail}
	if e.tail != 0 {
		e.order[e.tail].next = i
	} else {
		e.head = i
	}
	e.tail = i
}

// unlink takes node i out of the order.
func (e *expiries) unlink(i int32) {
	n := e.order[i]
	if n.prev != 0 {
		e.order[n.prev].next = n.next
	} else {
		e.head = n.next
	}
	if n.next != 0 {
		e.order[n.next].prev = n.prev
	} else {
		e.tail = n.prev
	}
	e.order[i] = link{}
}

// purge drops every entry that can no longer be served at now and returns
// how many it dropped.
func (l *list[K, V]) purge(now int64) (n int) {
	for e := l.exp; e.head != 0 && e.at[e.head]+e.grace <= now; n++ {
		l.removeAt(e.head)
	}
	return n
}

// TTL makes every stored value expire d after it was stored. A hit does not
// extend it; a call after it is a miss and stores a fresh value. TTL panics if
// d is not positive. Of TTL and Window, the last given wins.
func TTL(d time.Duration) Option {
	mustPositive("TTL", d)
	return func(c *config) { c.TTL, c.Window = d, 0 }
}

// Window makes values expire together at the end of the wall-clock window of
// length d in which they were stored. Windows are counted from the Unix
// epoch, so every process using the same d expires its values at the same
// instants. Window panics if d is not positive. Of TTL and Window, the last
// given wins.
func Window(d time.Duration) Option {
	mustPositive("Window", d)
	return func(c *config) { c.TTL, c.Window = 0, d }
}

// StaleWhileRevalidate lets a value that expired less than grace ago still be
// served: the call returns it at once, and one execution per key refreshes it
// in the background, in a goroutine that ends when the function returns. If
// the refresh fails, the stale value is served until grace has passed. Until
// then it also counts in CurrSize. It needs TTL or Window, and panics if
// grace is not positive.
func StaleWhileRevalidate(grace time.Duration) Option {
	mustPositive("StaleWhileRevalidate", grace)
	return func(c *config) { c.StaleWhileRevalidate = grace }
}

// CacheErrors makes an error returned by the function cached for d, so that
// calls within d return it without running the function again. Cached errors
// are held apart from values, at most MaxSize of them, and CurrSize does not
// count them. Panics are never cached. CacheErrors panics if d is not
// positive.
func CacheErrors(d time.Duration) Option {
	mustPositive("CacheErrors", d)
	return func(c *config) { c.ErrorTTL = d }
}

// Clock replaces time.Now as the cache's source of time, for tests. It
// panics if now is nil.
func Clock(now func() time.Time) Option {
	if now == nil {
		panic("memo: Clock given a nil function")
	}
	return func(c *config) { c.clock = now }
}

func mustPositive(option string, d time.Duration) {
	if d <= 0 {
		panic(fmt.Sprintf("memo: %s must be positive, got %v", option, d))
	}
}

// stamp reads the clock once: now is nanoseconds since the cache was built
// (monotonic when the clock is), wall is Unix nanoseconds.
func (c *Cache[K, V]) stamp() (now, wall int64) {
	t := c.clock()
	return int64(t.Sub(c.base)), t.UnixNano()
}

// valueExpiry returns when a value stored at now (wall on the wall clock)
// expires.
func (c *Cache[K, V]) valueExpiry(now, wall int64) int64 {
	if w := int64(c.params.Window); w > 0 {
		end := (wall/w + 1) * w
		if wall < 0 && wall%w != 0 {
			end -= w // round toward the past before the epoch too
		}
		return now + end - wall
	}
	return now + int64(c.params.TTL)
}

// lookupExpired answers, with c.mu held, a call whose key has a stale value
// or a cached error; it then releases the lock and reports true. Otherwise it
// drops what has expired for k and leaves the call to join or start an
// execution; i is what c.l.items holds for k, and it returns what it holds
// after.
func (c *Cache[K, V]) lookupExpired(ctx context.Context, k K, i int32, now int64, fn func(context.Context, K) (V, error)) (v V, err error, after int32, answered bool) {
	if i > 0 { // present but not fresh
		e := c.l.exp
		if now < e.at[i]+e.grace {
			v = c.l.nodes[i].val
			c.l.touch(i)
			c.st.hits++
			var cl *call[V]
			if e.refresh[i] == 0 {
				// The refresh counts itself as a waiter, so callers who join
				// it and give up never abandon it.
				cl = &call[V]{waiters: 1, refresh: true}
				e.refresh[i] = c.register(cl)
			}
			c.mu.Unlock()
			if cl != nil {
				go c.run(context.WithoutCancel(ctx), k, fn, cl, true, nil)
			}
			return v, nil, i, true
		}
		f := e.refresh[i]
		c.l.removeAt(i) // leaves the mark -f if a refresh is running
		c.st.expirations++
		i = -f
	}
	if c.errs != nil {
		if j, ok := c.errs.items[k]; ok {
			if now < c.errs.exp.at[j] {
				c.errs.touch(j)
				c.st.hits++
				err = c.errs.nodes[j].val
				c.mu.Unlock()
				return v, err, i, true
			}
			c.errs.removeAt(j)
			c.st.expirations++
		}
	}
	return v, nil, i, false
}

// purge drops every expired entry, with c.mu held, and returns how many.
func (c *Cache[K, V]) purge(now int64) int {
	n := 0
	if c.l.exp != nil {
		n += c.l.purge(now)
	}
	if c.errs != nil {
		n += c.errs.purge(now)
	}
	c.st.expirations += uint64(n)
	return n
}

// PurgeExpired drops every expired entry now and returns how many it
// dropped. Expired entries are also dropped as the cache is used, so calling
// it is never needed for correctness; it returns their memory sooner.
func (c *Cache[K, V]) PurgeExpired() int {
	if !c.timed {
		return 0
	}
	now, _ := c.stamp()
	n := 0
	for _, p := range c.each() {
		p.mu.Lock()
		n += p.purge(now)
		p.mu.Unlock()
	}
	return n
}
