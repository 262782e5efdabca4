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
		es, _ := c.held(c.now(), coldest)
		for _, e := range es {
			if !yield(e.key, e.val) {
				return
			}
		}
	}
}

// held returns the entries holding values fresh at now, in the order of
// entries, each shard's copied under its lock, and when each stops being
// fresh (nil if nothing expires).
func (c *Cache[K, V]) held(now int64, coldest bool) (es []*entry[K, V], ats []int64) {
	if c.off {
		return nil, nil
	}
	shards := slices.Clone(c.shards)
	if coldest {
		slices.Reverse(shards)
	}
	for _, s := range shards {
		es, ats = s.fresh(now, coldest, es, ats)
	}
	return es, ats
}

// fresh appends the entries of s holding values fresh at now, in the order
// of its list, or the reverse if reverse, to es, and when each stops being
// fresh to ats, if the list has expiries.
func (s *shard[K, V]) fresh(now int64, reverse bool, es []*entry[K, V], ats []int64) ([]*entry[K, V], []int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := &s.l
	l.flush()
	from := len(es)
	for _, sen := range l.order() {
		for i := l.nodes[sen].next; i != sen; i = l.nodes[i].next {
			if l.exp == nil {
				es = append(es, l.nodes[i].e)
			} else if at := l.expiry(i); now < at {
				es, ats = append(es, l.nodes[i].e), append(ats, at)
			}
		}
	}
	if reverse {
		slices.Reverse(es[from:])
		if ats != nil {
			slices.Reverse(ats[from:])
		}
	}
	return es, ats
}
