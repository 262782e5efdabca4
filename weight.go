package memo

import (
	"fmt"
	"reflect"
)

// MaxWeight bounds the cache by the total weight of its entries, as weigh
// measures them (bytes, say, where results differ in size), on top of the
// bound on their number: with Unbounded, the weight is the only bound. When
// a new entry takes the total past total, the least recently used entries
// are evicted until it fits, exactly as for MaxSize; an entry heavier than
// total on its own is not cached (the call still returns it). weigh is
// called once per value stored, outside the cache's lock, and must return a
// weight of at least 0; a panic in it, or a negative weight, is the
// execution's panic. weigh's key and value types must be the cache's, and
// total must be positive; the constructor panics otherwise. A sharded cache
// gives each shard an equal share of total, so that an entry heavier than
// that share is not kept.
func MaxWeight[K comparable, V any](total int, weigh func(K, V) int) Option {
	return func(c *config) { c.MaxWeight, c.weigh = total, weigh }
}

// weigher returns the function given to MaxWeight for a cache with keys K
// and values V, or nil.
func weigher[K comparable, V any](cfg *config) func(K, V) int {
	if cfg.weigh == nil {
		return nil
	}
	f, ok := cfg.weigh.(func(K, V) int)
	switch {
	case !ok:
		panic(fmt.Sprintf("memo: MaxWeight was given a %T, but this cache needs a %v", cfg.weigh, reflect.TypeFor[func(K, V) int]()))
	case f == nil:
		panic("memo: MaxWeight was given a nil weigh function")
	}
	return f
}

// weigh returns the weight of v under k, panicking if it is negative.
func (c *Cache[K, V]) weigh(k K, v V) int {
	w := c.weigher(k, v)
	if w < 0 {
		panic(fmt.Sprintf("memo: MaxWeight's function weighed the value for %v at %d; weights must not be negative", k, w))
	}
	return w
}

// weights are the weights of a list's entries, by node, and their total.
type weights struct {
	of    []int
	total int
	max   int // the bound on total
}

func (w *weights) init(n int) {
	w.of = make([]int, n)
	w.total = 0
}

func (w *weights) grow(n int) { w.of = extend(w.of, n) }

// set gives node i the weight x.
func (w *weights) set(i int32, x int) {
	w.total += x - w.of[i]
	w.of[i] = x
}

// fits reports whether an entry of weight x can be cached in s at all.
func (s *shard[K, V]) fits(x int) bool { return s.l.wt == nil || x <= s.l.wt.max }

// weighed gives k's entry, just stored, the weight x, then evicts the least
// recently used entries until the total fits the bound, with s.mu held, in
// a cache bounded by weight.
func (s *shard[K, V]) weighed(k K, x int) {
	w := s.l.wt
	i, _ := s.l.lookup(k).entry()
	w.set(i, x)
	for w.total > w.max {
		old, _ := s.l.removeOldest()
		s.st.evictions++
		s.note(Evicted, old.key, old.val)
	}
}
