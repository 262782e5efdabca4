package memo

import (
	"iter"
	"slices"
)

// Hottest returns the cache's entries holding fresh values, from the most to
// the least likely to stay: for an LRU cache, from the most to the least
// recently used, the last being the next to be evicted. Under WTinyLFU it
// goes segment by segment, each from its most to its least recent entry: the
// window, then the protected segment, then the probation segment; the next
// victim is the oldest of the window or of probation, whichever the policy
// finds less frequent, so the order is not exactly that of eviction there.
// A sharded cache yields its shards one
// after another, each in its own order, since the shards keep no order
// between them. Entries past their expiry, stale ones served under
// StaleWhileRevalidate included, and cached errors are left out.
//
// The entries are copied first, each shard's under its lock, which is
// released before any is yielded, so the loop may call the cache; what
// changes meanwhile is not seen. Iterating is not a use: it changes no recency, counts no hit
// and moves no ExpireAfterAccess expiry.
func (c *Cache[K, V]) Hottest() iter.Seq2[K, V] { return c.entries(false) }

// Coldest returns the entries Hottest returns, in the reverse order: the next
// to be evicted first.
func (c *Cache[K, V]) Coldest() iter.Seq2[K, V] { return c.entries(true) }

// entries yields the fresh entries shard by shard, each shard's in the order
// of its list, or the reverse if coldest (the shards too).
func (c *Cache[K, V]) entries(coldest bool) iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		if c.off {
			return
		}
		now := c.now()
		held := make([][]*entry[K, V], len(c.shards))
		for n, s := range c.shards {
			held[n] = s.fresh(now, coldest)
		}
		if coldest {
			slices.Reverse(held)
		}
		for _, es := range held {
			for _, e := range es {
				if !yield(e.key, e.val) {
					return
				}
			}
		}
	}
}

// fresh returns the entries of s holding values fresh at now, in the order
// of its list, or the reverse if reverse.
func (s *shard[K, V]) fresh(now int64, reverse bool) []*entry[K, V] {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := &s.l
	l.flush()
	out := make([]*entry[K, V], 0, l.len())
	for _, sen := range l.order() {
		for i := l.nodes[sen].next; i != sen; i = l.nodes[i].next {
			if l.exp == nil || now < l.expiry(i) {
				out = append(out, l.nodes[i].e)
			}
		}
	}
	if reverse {
		slices.Reverse(out)
	}
	return out
}
