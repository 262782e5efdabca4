package memo

import (
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	_ "unsafe" // for go:linkname
)

// procPin pins the calling goroutine to its processor (the runtime's P),
// which then runs nothing else until procUnpin, and returns the processor's
// number. sync.Pool keeps per-processor data the same way.
//
//go:linkname procPin runtime.procPin
func procPin() int

// procUnpin ends procPin's pinning.
//
//go:linkname procUnpin runtime.procUnpin
func procUnpin()

// stripes are where a list's hits that take no lock note their moves, one
// stripe per processor, for the lock holder to make them (see list.read).
//
// The protocol, beside the index's and the list's:
//   - A stripe's state holds a generation and a count of tickets. A hit
//     pinned to processor p takes a ticket in stripe p: it writes its node in
//     notes[t], t being the count, if t < stripeLen, then adds one to the
//     count by compare-and-swap. Only the hits of one processor write a
//     stripe's notes (the pinning keeps them from overlapping), so a ticket's
//     note is written before anyone reads it, and the swap fails only when
//     the lock holder emptied the stripe meanwhile: the hit then notes again
//     in the emptied stripe.
//   - The lock holder empties a stripe (drain) by copying the notes of its
//     tickets, then setting the count to 0 by compare-and-swap (again if a
//     ticket came between), and makes the moves in ticket order. Every list
//     operation that reads or changes the order drains every stripe first
//     (list.flush). The hit that takes a stripe's last slot, or each
//     stripeLen-th ticket past it, drains that stripe if the lock is free;
//     past the last slot, tickets are counted but their moves are dropped.
//   - A hit that finds its stripe empty while another is not drains them
//     all first if the lock is free, so the hits of a goroutine that moved
//     to another processor are made in the order it made them; with no
//     other goroutine hitting the list at once, that keeps the order exactly
//     LRU's. Under concurrency, the moves of different processors are made
//     one stripe at a time, not in the order they happened, and that drain
//     would come on nearly every hit (each processor's empties the other's
//     stripe). So a hit that sees concurrency there (the lock held, or the
//     other stripes changed while it took the lock) has its processor skip
//     that drain the next backoff times its stripe is found empty, and
//     while it does, the drains of its stripe make one move in sampleRate
//     (in an LRU cache; WTinyLFU and EstimateSizes keep every move).
//   - Clear starts a new generation: it publishes the emptied index, then
//     the generation in gen, then in every stripe's state. A hit loads gen
//     before it looks its key up, and takes its ticket only in a stripe of
//     that generation (its swap fails if the stripe was reset meanwhile);
//     otherwise it looks up again. So a hit is counted in the generation it
//     found its entry in, and no hit made before a Clear is counted after
//     it.
type stripes struct {
	s       []stripe
	mask    int           // len(s) - 1
	drained uint64        // the tickets drained since the counts were last reset
	gen     atomic.Uint64 // the generation, as in the states' top bits
}

// A stripe holds the hits of one processor: a state, then the nodes of the
// first stripeLen tickets' entries. It is four cache lines long, so that
// stripes do not share lines.
type stripe struct {
	state atomic.Uint64 // gen<<genShift | tickets
	notes [stripeLen]atomic.Int32
	skip  atomic.Int32 // see read: written by its processor's hits only
	_     int32
}

const (
	stripeLen  = 60 // 8 + 60*4 + 8 = 256 bytes
	genShift   = 40
	ticketMask = 1<<genShift - 1
	backoff    = 1024 // see read
	sampleRate = 4    // see drain
)

// newStripes returns the stripes of a list: one per processor, rounded up to
// a power of two (a processor's number past them shares a stripe, which
// costs speed, not correctness).
func newStripes() *stripes {
	n := 1 << bits.Len(uint(runtime.GOMAXPROCS(0)-1))
	return &stripes{s: make([]stripe, n), mask: n - 1}
}

// read answers a lookup of k at now without mu, the lock of l's owner, if
// it finds a fresh value: it notes the hit for the lock holder and returns
// the value. Otherwise it reports false, and the caller looks again with mu
// held.
//
// While pinned, it calls nothing: a preemption request that meets a pinned
// goroutine at a call is dropped until the next signal, which would leave
// the garbage collector waiting.
func (l *list[K, V]) read(mu *sync.Mutex, k K, now int64) (v V, ok bool) {
	h := l.hits
	checked := false
	for {
		g := h.gen.Load()
		e := l.idx.get(k)
		if e == nil {
			return v, false
		}
		i := e.ref.Load()
		if i <= 0 || (l.exp != nil && !l.fresh(e, now, true)) {
			return v, false
		}
		st := &h.s[procPin()&h.mask]
		s := st.state.Load()
		t := s & ticketMask
		if s>>genShift != g {
			procUnpin() // cleared since the lookup, or being cleared
			continue
		}
		if t == 0 && !checked {
			checked = true
			if n := st.skip.Load(); n > 0 {
				st.skip.Store(n - 1)
			} else if seen := h.others(st); seen != 0 {
				procUnpin()
				if !mu.TryLock() {
					st.skip.Store(backoff) // someone holds the lock: concurrency
					continue
				}
				if h.others(st) != seen {
					st.skip.Store(backoff) // another processor hit meanwhile
				}
				l.flush()
				mu.Unlock()
				continue
			}
		}
		for {
			if t < stripeLen {
				st.notes[t].Store(i)
			}
			if ok = st.state.CompareAndSwap(s, s+1); ok {
				break
			}
			if s = st.state.Load(); s>>genShift != g {
				break
			}
			t = s & ticketMask
		}
		procUnpin()
		if !ok {
			continue // cleared since the lookup: look again
		}
		if t%stripeLen == stripeLen-1 && mu.TryLock() {
			l.drain(st) // its own: another processor's stripe stays in its cache
			mu.Unlock()
		}
		return e.val, true
	}
}

// others returns the tickets held by the stripes other than st.
func (h *stripes) others(st *stripe) uint64 {
	n := uint64(0)
	for i := range h.s {
		if &h.s[i] != st {
			n += h.s[i].state.Load() & ticketMask
		}
	}
	return n
}

// drain makes the moves noted in st, in ticket order, and counts its
// tickets. The list's lock must be held.
func (l *list[K, V]) drain(st *stripe) {
	var noted [stripeLen]int32
	for s := st.state.Load(); s&ticketMask != 0; s = st.state.Load() {
		n := min(s&ticketMask, stripeLen)
		for i := range n {
			noted[i] = st.notes[i].Load()
		}
		if st.state.CompareAndSwap(s, s&^ticketMask) {
			l.hits.drained += s & ticketMask
			if st.skip.Load() > 0 && l.pol == nil && l.sz == nil {
				// Processors hit at once, and the order is LRU's only up
				// to the order of their stripes anyway: make one move in
				// sampleRate, as a sampled LRU does, so that the moves do
				// not keep the lock busy.
				k := 0
				for i := 0; i < int(n); i += sampleRate {
					noted[k] = noted[i]
					k++
				}
				n = uint64(k)
			}
			l.apply(noted[:n])
			return
		}
	}
}

// counted returns the hits counted since the counts were last reset,
// drained or not. The list's lock must be held.
func (h *stripes) counted() uint64 {
	n := h.drained
	for i := range h.s {
		n += h.s[i].state.Load() & ticketMask
	}
	return n
}

// reset drops the tickets of every stripe, uncounted and their moves
// unmade, and starts a new generation, for Clear. The list's lock must be
// held.
func (h *stripes) reset() {
	g := (h.gen.Load() + 1) & (1<<(64-genShift) - 1)
	h.gen.Store(g)
	for i := range h.s {
		h.s[i].state.Store(g << genShift)
	}
	h.drained = 0
}
