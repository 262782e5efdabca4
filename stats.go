package memo

import (
	"math"
	"strconv"
	"time"
)

// CacheInfo is a snapshot of a memoized function's cache, taken at one
// instant. Hits, Misses, MaxSize and CurrSize mean what they mean in Python's
// functools.lru_cache; the other fields go further. Counters are ints, so a
// test compares them with plain numbers (assert.Equal(t, 1, ci.Hits)); the
// cache counts in 64 bits, and on a 32-bit platform a counter past
// math.MaxInt32 reads math.MaxInt32 instead of wrapping.
type CacheInfo struct {
	// Hits counts calls answered without running the function, including
	// calls that waited for another caller's execution of the same key.
	// Hits + Misses is the number of calls whose key the cache accepted: a
	// call whose key cannot be compared (ErrNotComparable), or whose
	// MemoizeKeyed key function fails, counts neither.
	Hits int `json:"hits"`
	// Misses counts calls that found nothing to use: those that ran the
	// function (even for a cache of size 0 or a key that is not equal to
	// itself, which bypass the cache), and those that found nothing cached
	// from a context that had already ended. It is counted before the
	// function runs, so a call that fails still counts one miss.
	Misses int `json:"misses"`
	// MaxSize is the most entries the cache holds; 0 when Unbounded.
	MaxSize int `json:"maxsize"`
	// Unbounded reports that the cache was built with the Unbounded option.
	Unbounded bool `json:"unbounded"`
	// CurrSize is the number of entries in the cache.
	CurrSize int `json:"currsize"`
	// Evictions counts entries dropped to make room for new ones.
	Evictions int `json:"evictions"`
	// Coalesced counts the hits that were served by waiting on an execution
	// another caller had started for the same key.
	Coalesced int `json:"coalesced"`
	// Errors counts executions that failed: returned an error, panicked or
	// called runtime.Goexit. An execution that began before the last Clear
	// is not counted, nor is its time in ExecTime. A failed background
	// refresh (StaleWhileRevalidate, RefreshAhead) counts here, though the call that
	// started it was a hit, so Errors may exceed Misses.
	Errors int `json:"errors"`
	// ExecTime is the total time spent running the function, measured only
	// with the MeasureExecTime option; 0 without it.
	ExecTime time.Duration `json:"exec_time_ns"`
	// Expirations counts entries dropped because they had expired.
	Expirations int `json:"expirations"`
	// Weight is the total weight of the entries, and MaxWeight its bound,
	// for a cache bounded by weight (see MaxWeight); both 0 otherwise.
	Weight    int `json:"weight"`
	MaxWeight int `json:"maxweight"`

	// The counters of a shared cache's store (see Share), all 0 without
	// one. Each execution of a shared cache (a miss) first looks in the
	// store, unless the store is paused after a failure: it finds a value
	// there (StoreHits), or it does not (StoreMisses) and either gets the
	// result of another process that was computing the key (StoreWaits)
	// or runs the function. The store
	// counters are kept apart from the others, so a snapshot taken while
	// executions run may count an execution in Misses and not yet here.

	// StoreHits counts executions answered from the store.
	StoreHits int `json:"store_hits"`
	// StoreMisses counts executions that found nothing in the store.
	StoreMisses int `json:"store_misses"`
	// StoreWaits counts the store misses answered by waiting for another
	// process's execution of the same key.
	StoreWaits int `json:"store_waits"`
	// StoreErrors counts failures of the store and damaged values read
	// from it, each also reported as a StoreFailed event.
	StoreErrors int `json:"store_errors"`
	// StoreRejected counts the values read from the store that
	// Sharing.Secret did not authenticate (see ErrUnauthenticated), each
	// also counted in StoreErrors.
	StoreRejected int `json:"store_rejected"`
}

// HitRatio returns Hits / (Hits + Misses), or 0 before the first call.
func (ci CacheInfo) HitRatio() float64 {
	calls := ci.Hits + ci.Misses
	if calls == 0 {
		return 0
	}
	return float64(ci.Hits) / float64(calls)
}

// Measure is one of a CacheInfo's numbers as a metrics system reports it.
// CacheInfo.Measures lists every number once, so an exporter (memoprom,
// memootel, or one of your own) reports them all and stays complete when
// CacheInfo gains a field.
type Measure struct {
	// Name names the number in OpenTelemetry's style: lower-case words
	// joined by dots, as in "hits", "store.rejected" or "entries.limit".
	// An exporter adds its prefix and its system's conventions.
	Name string
	// Unit is the number's unit in UCUM, as OpenTelemetry writes it:
	// "{call}", "{entry}", "{execution}", "{error}", "s" or "1".
	Unit string
	// Help says in one sentence what the number counts.
	Help string
	// Level is true for a number that goes up and down (the entries and
	// the weight, and their bounds), false for a count that only grows
	// until Clear resets it.
	Level bool
	// Value is the number, in seconds for a time.
	Value float64
}

// Measures returns the snapshot's numbers, each named, described and with
// its unit: the same names, in the same order, for every CacheInfo. Unbounded
// is left out; MaxSize reads 0 for it.
func (ci CacheInfo) Measures() []Measure {
	count := func(name, unit, help string, v int) Measure { return Measure{name, unit, help, false, float64(v)} }
	level := func(name, unit, help string, v int) Measure { return Measure{name, unit, help, true, float64(v)} }
	return []Measure{
		count("hits", "{call}", "Calls answered without running the function.", ci.Hits),
		count("misses", "{call}", "Calls the cache could not answer from memory.", ci.Misses),
		count("coalesced", "{call}", "Hits that waited for another caller's execution.", ci.Coalesced),
		count("evictions", "{entry}", "Entries dropped to make room.", ci.Evictions),
		count("expirations", "{entry}", "Entries dropped because they had expired.", ci.Expirations),
		count("errors", "{execution}", "Executions that failed.", ci.Errors),
		{"exec.time", "s", "Time spent running the function (with memo.MeasureExecTime).", false, ci.ExecTime.Seconds()},
		count("store.hits", "{execution}", "Executions answered from the shared store.", ci.StoreHits),
		count("store.misses", "{execution}", "Executions that found nothing in the shared store.", ci.StoreMisses),
		count("store.waits", "{execution}", "Store misses answered by another process's execution.", ci.StoreWaits),
		count("store.errors", "{error}", "Failures of the shared store.", ci.StoreErrors),
		count("store.rejected", "{error}", "Values read from the shared store that the Secret did not authenticate.", ci.StoreRejected),
		level("entries", "{entry}", "Entries in the cache.", ci.CurrSize),
		level("entries.limit", "{entry}", "The most entries the cache holds; 0 when unbounded.", ci.MaxSize),
		level("weight", "1", "Total weight of the entries (with memo.MaxWeight).", ci.Weight),
		level("weight.limit", "1", "The bound on the total weight; 0 without memo.MaxWeight.", ci.MaxWeight),
	}
}

// String formats the snapshot the way Python prints its CacheInfo, as in
// CacheInfo(hits=1, misses=1, maxsize=256, currsize=1), with maxsize=unbounded
// for an unbounded cache.
func (ci CacheInfo) String() string {
	b := make([]byte, 0, 64)
	b = append(b, "CacheInfo(hits="...)
	b = strconv.AppendInt(b, int64(ci.Hits), 10)
	b = append(b, ", misses="...)
	b = strconv.AppendInt(b, int64(ci.Misses), 10)
	b = append(b, ", maxsize="...)
	if ci.Unbounded {
		b = append(b, "unbounded"...)
	} else {
		b = strconv.AppendInt(b, int64(ci.MaxSize), 10)
	}
	b = append(b, ", currsize="...)
	b = strconv.AppendInt(b, int64(ci.CurrSize), 10)
	b = append(b, ')')
	return string(b)
}

// stats are a cache's counters, guarded by the cache's lock: every call takes
// that lock anyway, so plain fields cost nothing more and a snapshot of them
// is always consistent.
type stats struct {
	hits, misses, evictions, coalesced, errors, expirations uint64
	execTime                                                time.Duration
}

// add adds o's counts to st.
func (st *stats) add(o stats) {
	st.hits += o.hits
	st.misses += o.misses
	st.evictions += o.evictions
	st.coalesced += o.coalesced
	st.errors += o.errors
	st.expirations += o.expirations
	st.execTime += o.execTime
}

// info returns st as a CacheInfo, for a cache of parameters p holding size
// entries.
func (st *stats) info(p Parameters, size int) CacheInfo {
	return CacheInfo{
		Hits:        count(st.hits),
		Misses:      count(st.misses),
		MaxSize:     p.MaxSize,
		Unbounded:   p.Unbounded,
		CurrSize:    size,
		Evictions:   count(st.evictions),
		Coalesced:   count(st.coalesced),
		Errors:      count(st.errors),
		ExecTime:    st.execTime,
		Expirations: count(st.expirations),
		MaxWeight:   p.MaxWeight,
	}
}

// count returns n as an int, or math.MaxInt where an int cannot hold it.
func count(n uint64) int {
	if n > math.MaxInt {
		return math.MaxInt
	}
	return int(n)
}
