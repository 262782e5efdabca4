package memo

import (
	"fmt"
)

// Event is something that happened inside a cache, as the function given
// with Observe sees it.
type Event[K comparable, V any] struct {
	// Kind says what happened.
	Kind EventKind
	// Key is the key it happened to.
	Key K
	// Value is the value that left the cache, for the kinds where one did
	// (Evicted, Expired, Forgotten, Cleared, Replaced).
	Value V
	// Panic is the panic that no caller received, for PanicLost.
	Panic *PanicError
	// Err is the store's failure, for StoreFailed.
	Err error
}

// EventKind says what an Event is about.
type EventKind uint8

// The kinds of Event. An entry that leaves the cache does so for exactly one
// of the first five reasons, reported once; only entries holding values are
// reported, not cached errors. An entry that can no longer be served (past
// its expiry, and past its grace with StaleWhileRevalidate) leaves as
// Expired, whatever drops it: the cache's own upkeep, a call for its key,
// Forget, Clear, Put or a background refresh storing over it. Each Expired
// entry is also counted in CacheInfo.Expirations.
const (
	// Evicted: the entry was the least recently used of a full cache, and
	// made room for another.
	Evicted EventKind = iota + 1
	// Expired: the entry was dropped after its expiry (and its grace, with
	// StaleWhileRevalidate).
	Expired
	// Forgotten: Forget dropped the entry, which could still be served, in
	// this process or, for a shared cache, in another one.
	Forgotten
	// Cleared: Clear dropped the entry, which could still be served, in
	// this process or, for a shared cache, in another one.
	Cleared
	// Replaced: a new value took the place of the entry, which could still
	// be served: stored by a background refresh over a stale value within
	// its grace, or by Put.
	Replaced
	// PanicLost: the function panicked where no caller was left to receive
	// the panic (a background refresh, or an execution whose callers all
	// gave up). With an observer, the panic is reported here instead of
	// ending the program.
	PanicLost
	// StoreFailed: the store of a shared cache (see Share) failed, or gave
	// back a damaged value, and Err says how. Key is the key concerned, the
	// zero key for Clear and for reading other processes' deletions. The
	// call went on without the store: it got its result all the same.
	StoreFailed
)

// String returns the kind's name, as in "Evicted".
func (k EventKind) String() string {
	switch k {
	case Evicted:
		return "Evicted"
	case Expired:
		return "Expired"
	case Forgotten:
		return "Forgotten"
	case Cleared:
		return "Cleared"
	case Replaced:
		return "Replaced"
	case PanicLost:
		return "PanicLost"
	case StoreFailed:
		return "StoreFailed"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// note records an event, with s.mu held, for s.unlock to deliver; it does
// nothing without an observer.
func (s *shard[K, V]) note(kind EventKind, k K, v V) {
	if s.c.observe != nil {
		s.pending = append(s.pending, Event[K, V]{Kind: kind, Key: k, Value: v})
	}
}

// noter returns a function that notes events of kind for entries leaving a
// list, or nil without an observer.
func (s *shard[K, V]) noter(kind EventKind) func(K, V) {
	if s.c.observe == nil {
		return nil
	}
	return func(k K, v V) { s.note(kind, k, v) }
}

// unlock releases s.mu, then delivers the events noted while it was held.
func (s *shard[K, V]) unlock() {
	if s.pending == nil {
		s.mu.Unlock()
		return
	}
	events := s.pending
	s.pending = nil
	s.mu.Unlock()
	s.c.deliver(events)
}

// deliver hands events to the observer.
func (c *Cache[K, V]) deliver(events []Event[K, V]) {
	for _, e := range events {
		c.observe(e)
	}
}
