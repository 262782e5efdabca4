package memo

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"time"
)

// DefaultMaxSize is the size of a cache built without MaxSize or Unbounded,
// the same default as Python's functools.lru_cache.
const DefaultMaxSize = 128

// Option configures a memoized function: MaxSize, Unbounded, MaxWeight,
// Shards, TTL, Window, ExpireAfterAccess, StaleWhileRevalidate,
// RefreshAhead, CacheErrors, ExpireAfter,
// SingleFlight, WTinyLFU, Clock, Typed, MeasureExecTime,
// EstimateSizes, Share, Observe, Log.
//
// Options only record what they are given; the constructor checks them all
// together, and panics with a message starting "memo:" that names the option
// if one is invalid. A duration of 0, as configuration files write for "off",
// turns its feature off; a negative one is invalid.
type Option func(*config)

// config is what the options record, before validation.
type config struct {
	Parameters
	clock      func() time.Time // nil only if Clock was given nil
	observe    any              // the func(Event[K, V]) given to Observe
	observeSet bool
	sized      bool     // MaxSize or Unbounded was given
	negative   string   // why the first negative duration given is refused
	sharing    *Sharing // given to Share
	expire     any      // the func(V) time.Duration given to ExpireAfter
	weigh      any      // the func(K, V) int given to MaxWeight
	logger     *slog.Logger
}

// duration returns d, given to option, noting it if it is negative: a later
// option cannot undo that (TTL(-1) then Window(d) is still refused).
func (c *config) duration(option string, d time.Duration) time.Duration {
	if d < 0 && c.negative == "" {
		c.negative = fmt.Sprintf("memo: %s must not be negative, got %v", option, d)
	}
	return d
}

// configure applies opts to the defaults, validates the result and returns
// it normalised.
func configure(opts []Option) config {
	c := config{Parameters: Parameters{MaxSize: DefaultMaxSize, Shards: 1}, clock: time.Now}
	for _, o := range opts {
		o(&c)
	}
	if msg := c.invalid(); msg != "" {
		panic(msg)
	}
	c.MaxSize = max(c.MaxSize, 0)
	if c.TTL == 0 && c.Window == 0 && c.ExpireAfterAccess == 0 && c.expire == nil {
		c.StaleWhileRevalidate = 0 // nothing expires, so nothing is stale
		c.RefreshAhead, c.RefreshJitter = 0, 0
	}
	if c.SingleFlight {
		c.MaxSize, c.Unbounded = 0, false // nothing is kept
	} else if c.MaxSize == 0 && !c.Unbounded {
		c.MaxWeight = 0 // caching is off
	}
	return c
}

// invalid returns why c cannot configure a cache, or "".
func (c *config) invalid() string {
	if c.negative != "" {
		return c.negative
	}
	switch n := c.Shards; {
	case c.MaxSize > maxEntries:
		return fmt.Sprintf("memo: MaxSize(%d) is larger than the %d entries a cache can index; use Unbounded()", c.MaxSize, maxEntries)
	case n < 1:
		return fmt.Sprintf("memo: Shards must be at least 1, got %d", n)
	case n > 1 && !c.Unbounded && !c.SingleFlight && c.MaxSize > 0 && c.MaxSize < n:
		return fmt.Sprintf("memo: Shards(%d) needs MaxSize of at least %d, got %d", n, n, c.MaxSize)
	case c.clock == nil:
		return "memo: Clock was given a nil function (now)"
	case c.weigh != nil && c.MaxWeight <= 0:
		return fmt.Sprintf("memo: MaxWeight's total must be positive, got %d", c.MaxWeight)
	case c.weigh != nil && n > 1 && c.MaxWeight < n:
		return fmt.Sprintf("memo: Shards(%d) needs a MaxWeight of at least %d, got %d", n, n, c.MaxWeight)
	case c.EstimateSizes < 0:
		return fmt.Sprintf("memo: EstimateSizes's budget must not be negative, got %d", c.EstimateSizes)
	case c.EstimateSizes > 0 && c.weigh != nil:
		return "memo: EstimateSizes counts entries, so it cannot be combined with MaxWeight"
	case c.WTinyLFU && c.Unbounded:
		return "memo: WTinyLFU chooses what to evict, so it needs a MaxSize, not Unbounded"
	case c.WTinyLFU && (c.weigh != nil || c.EstimateSizes > 0):
		return "memo: WTinyLFU cannot be combined with MaxWeight or EstimateSizes, which assume an LRU"
	case c.SingleFlight && (c.sized || c.TTL > 0 || c.Window > 0 || c.ExpireAfterAccess > 0 || c.StaleWhileRevalidate > 0 || c.CacheErrors > 0 || c.expire != nil || c.sharing != nil || c.weigh != nil):
		return "memo: SingleFlight keeps no results, so it cannot be combined with MaxSize, Unbounded, TTL, Window, ExpireAfterAccess, StaleWhileRevalidate, CacheErrors, ExpireAfter, MaxWeight or Share"
	case c.RefreshJitter > c.RefreshAhead:
		return fmt.Sprintf("memo: RefreshAhead's jitter (%v) must not be longer than ahead (%v)", c.RefreshJitter, c.RefreshAhead)
	case c.RefreshAhead > 0 && c.ExpireAfterAccess > 0:
		return "memo: RefreshAhead cannot be combined with ExpireAfterAccess, whose entries in use do not come near their expiry"
	case c.ExpireAfterAccess > 0 && c.expire != nil:
		return "memo: ExpireAfterAccess gives every value the same life, so it cannot be combined with ExpireAfter"
	}
	return ""
}

// MaxSize bounds the cache to n entries, evicting the least recently used
// entry when full. A size of 0 or less turns caching off, as in Python: every
// call runs the function and counts as a miss, and the size is reported as 0.
// A size larger than a cache can index (2^31-2) is invalid. Of MaxSize and
// Unbounded, the last given wins. SingleFlight refuses both.
func MaxSize(n int) Option {
	return func(c *config) { c.MaxSize, c.Unbounded, c.sized = n, false, true }
}

// Unbounded lets the cache grow without limit: nothing is ever evicted. Of
// MaxSize and Unbounded, the last given wins. SingleFlight refuses both.
func Unbounded() Option {
	return func(c *config) { c.MaxSize, c.Unbounded, c.sized = 0, true, true }
}

// Shards splits the cache into n parts, each with its own lock, chosen by a
// hash of the key, so that goroutines on many cores rarely wait for one
// another. The price: eviction is least-recently-used within each part, which
// holds an equal share of MaxSize, not across the whole cache. CacheInfo
// still reports the whole. n must be at least 1, and no larger than a
// positive MaxSize.
func Shards(n int) Option {
	return func(c *config) { c.Shards = n }
}

// MeasureExecTime makes the cache time every execution of the function and
// add it up in CacheInfo.ExecTime. It is off by default because reading the
// clock twice per miss can cost more than the rest of a miss's bookkeeping.
func MeasureExecTime() Option {
	return func(c *config) { c.MeasureExecTime = true }
}

// Parameters are a cache's settings as configured, normalised: a negative
// MaxSize reads 0, and StaleWhileRevalidate reads 0 when nothing expires.
type Parameters struct {
	// MaxSize is the most entries the cache holds; 0 when Unbounded, and 0
	// when caching is off.
	MaxSize int
	// Unbounded reports that the cache has no size limit.
	Unbounded bool
	// TTL is how long a stored value stays fresh; 0 when values do not
	// expire one by one.
	TTL time.Duration
	// Window is the length of the wall-clock windows at whose end values
	// expire together; 0 when values do not expire by window.
	Window time.Duration
	// ExpireAfterAccess is how long a value stays fresh after it was last
	// stored or served; 0 when values do not expire by access.
	ExpireAfterAccess time.Duration
	// StaleWhileRevalidate is how long past its expiry a value may still be
	// served while it is refreshed in the background.
	StaleWhileRevalidate time.Duration
	// RefreshAhead is how long before its expiry a hit refreshes a value
	// in the background, and RefreshJitter how much earlier, at random, it
	// may do so; both 0 without RefreshAhead, and when nothing expires.
	RefreshAhead, RefreshJitter time.Duration
	// CacheErrors is how long an error is cached; 0 when errors are not.
	CacheErrors time.Duration
	// Typed reports that keys holding numbers of different types are kept
	// apart even when the numbers are equal.
	Typed bool
	// Shards is the number of independently locked parts; 1 when the cache
	// is not sharded.
	Shards int
	// MeasureExecTime reports that executions are timed for
	// CacheInfo.ExecTime.
	MeasureExecTime bool
	// SingleFlight reports that concurrent calls share executions but
	// nothing is kept: see SingleFlight.
	SingleFlight bool
	// MaxWeight is the bound on the total weight of the entries; 0 when
	// the cache is not bounded by weight (see MaxWeight).
	MaxWeight int
	// EstimateSizes is the sample budget of EstimateSizes; 0 without it.
	EstimateSizes int
	// WTinyLFU reports that the cache evicts by the W-TinyLFU policy, not
	// exact LRU (see WTinyLFU).
	WTinyLFU bool
}

// TTL makes every stored value expire d after it was stored. A hit does not
// extend it; a call after it is a miss and stores a fresh value. Every
// positive d works: an expiry beyond what the clock can reach (such as
// TTL(math.MaxInt64)) never comes. TTL(0) means values do not expire. Of TTL,
// Window and ExpireAfterAccess, the last given wins.
func TTL(d time.Duration) Option {
	return func(c *config) { c.TTL, c.Window, c.ExpireAfterAccess = c.duration("TTL", d), 0, 0 }
}

// ExpireAfterAccess makes every value expire d after it was last used: stored,
// or served by a hit, which pushes its expiry to d from then (a sliding TTL,
// for sessions and the like). A value nobody called for in the last d is
// never served: the call is a miss, as after TTL. A hit moves the expiry
// without a lock and allocates nothing; it leaves it where it is when that
// would move it by less than d/1024, so that hits on one entry from many
// cores do not all write to it: a value may thus expire up to d/1024 sooner
// than d after its last use, never later. Peek, CacheInfo and the other
// methods that look without calling do not count as uses, nor does a stale
// value served under StaleWhileRevalidate.
//
// In a shared cache (see Share) only memory slides: a value written to the
// store expires there d after it was written, hits in memory do not extend
// it (that would be a store write per hit), and a value read from the store
// starts in memory with the life it has left there, then slides from its
// first hit. A process keeps serving a value that its callers keep using
// after the store's copy has expired; another process then computes it
// again. ExpireAfterAccess(0) means values do not expire by access. Of TTL,
// Window and ExpireAfterAccess, the last given wins; ExpireAfter, which
// gives each value its own life, cannot be combined with it.
func ExpireAfterAccess(d time.Duration) Option {
	return func(c *config) { c.TTL, c.Window, c.ExpireAfterAccess = 0, 0, c.duration("ExpireAfterAccess", d) }
}

// Window makes values expire together at the end of the wall-clock window of
// length d in which they were stored. Windows are counted from the Unix
// epoch, so every process using the same d expires its values at the same
// instants. Window(0) means values do not expire. Of TTL, Window and
// ExpireAfterAccess, the last given wins.
func Window(d time.Duration) Option {
	return func(c *config) { c.TTL, c.Window, c.ExpireAfterAccess = 0, c.duration("Window", d), 0 }
}

// StaleWhileRevalidate lets a value that expired less than grace ago still be
// served: the call returns it at once, and one execution per key refreshes it
// in the background, in a goroutine that ends when the function returns. If
// the refresh fails, the stale value is served until grace has passed. Until
// then it also counts in CurrSize. A grace too long to reach keeps stale
// values forever. The refresh keeps the values of the context of the call
// that started it, but not its deadline or cancellation. Once the stale
// value can no longer be served, later calls join the refresh; if they all
// give up, its context is cancelled and the next call starts afresh. A grace
// of 0 serves nothing stale; so does any grace when nothing makes values
// expire (neither TTL, Window, ExpireAfterAccess nor ExpireAfter).
func StaleWhileRevalidate(grace time.Duration) Option {
	return func(c *config) { c.StaleWhileRevalidate = c.duration("StaleWhileRevalidate", grace) }
}

// RefreshAhead makes a hit on a value that expires within ahead start one
// execution refreshing it in the background, as StaleWhileRevalidate does
// after the expiry, so that the callers of a key in use never wait for it:
// the call returns the value it found at once, one execution per key runs
// in a goroutine that ends when the function returns, with the values of
// the context of the call that started it but not its deadline or
// cancellation, and its result replaces the value (reported to Observe as
// Replaced). A refresh that fails leaves the value as it was, to be served
// until it expires; the next hit within ahead tries again. A value nobody
// calls for within ahead of its expiry is not refreshed, and expires.
//
// jitter, at most ahead, spreads the refreshes of processes that stored a
// value at the same time (Window, or a value read from a shared store): each
// hit refreshes when the value has less than ahead minus a random part of
// jitter left. While a refresh runs, hits on its key take the cache's lock.
// A negative ahead or jitter is invalid; RefreshAhead(0, 0) refreshes
// nothing ahead, and so does any ahead when nothing makes values expire
// (neither TTL, Window nor ExpireAfter). It cannot be combined with
// ExpireAfterAccess.
func RefreshAhead(ahead, jitter time.Duration) Option {
	return func(c *config) {
		c.RefreshAhead, c.RefreshJitter = c.duration("RefreshAhead", ahead), c.duration("RefreshAhead's jitter", jitter)
	}
}

// CacheErrors makes an error returned by the function cached for d, so that
// calls within d return it without running the function again. Cached errors
// are held apart from values, at most MaxSize of them, and CurrSize does not
// count them. Panics are never cached. A d too long to reach caches errors
// until they are evicted, forgotten or cleared. CacheErrors(0) caches no
// errors.
func CacheErrors(d time.Duration) Option {
	return func(c *config) { c.CacheErrors = c.duration("CacheErrors", d) }
}

// Clock replaces time.Now as the cache's source of time, for tests. Expiry
// stays exact if the clock steps back. If now panics, no key is left waiting:
// a call that reads it before looking up panics with its value, and an
// execution that reads it to store its result ends as if the function had
// panicked (its callers panic with a *PanicError, nothing is stored). now
// must not be nil.
func Clock(now func() time.Time) Option {
	return func(c *config) { c.clock = now }
}

// Typed keeps numerically equal keys of different types apart, as Python's
// lru_cache(typed=True) does. It matters only for keys that hold empty
// interfaces (any): by default a memoized func(any) V answers f(1),
// f(int64(1)), f(uint8(1)) and f(1.0) from one entry, as Python's default
// does; with Typed they are four entries. The same holds for any fields and
// elements of struct and array keys. A non-empty interface (a fmt.Stringer,
// say) keeps its numbers' types either way, since a number of another type
// may not implement it. Keys of concrete types are unaffected either way.
func Typed() Option {
	return func(c *config) { c.Typed = true }
}

// Share makes the cache one tier of two: each result it computes is also
// written to s.Store, and a key it does not hold is looked for there before
// the function runs, so every process that memoizes the function with the
// same Sharing.Name and Version (on one machine through the disk store,
// across machines through a network one) computes each key once. The
// cache's own entries stay in memory as before.
//
// The store only ever speeds calls up: when it fails, is slow (past
// Sharing.Timeout) or gives back a damaged value, the call goes on as if the
// store did not have the key, and the failure is counted in
// CacheInfo.StoreErrors and reported as a StoreFailed event. After a
// failure, executions leave the store alone for a pause that doubles with
// each failure (100ms to 10s), so a store that is down is not hammered; the
// goroutine that reads deletions keeps trying every Sharing.Poll, and its
// first success ends the pause.
//
// When several processes miss one key at once, one of them computes it under
// a lease (Sharing.Lease) and the others wait for its result, so the function
// runs once per key across processes while they live (the computing process
// renews its lease as long as the function runs); if the computing process
// dies, another one takes over within about Sharing.Lease. Values expire in
// the store as in memory (TTL, Window; ExpireAfterAccess slides in memory
// only); a value read from the store
// expires in memory no later than it does there. Errors are never stored,
// nor, with CacheErrors, shared. Forget and Clear reach the store and, within
// Sharing.Poll, the memory of the other processes. A cache of size 0
// (MaxSize(0)) does not use the store.
//
// Keys are stored as TypedKeyOf encodes them (a long encoding by its
// SHA-256, see Sharing.Namespace), so two calls share a stored value exactly
// when they would share an entry in memory.
// A key type that encodes itself (MarshalBinary, as time.Time does) is stored
// by that encoding. Keys compared by address (pointers, channels, funcs)
// mean nothing to another process: a key type that holds one makes the constructor panic,
// and a key whose interface holds one fails its call with an error wrapping
// ErrUnsupportedArgument. Values go through s.Codec, framed with a checksum
// and a fingerprint of the value type, so a damaged or foreign value is
// never decoded, and two versions of a program whose value types differ
// ignore each other's values; with s.Secret, with a MAC instead of the
// checksum, so that no value is decoded that a holder of the secret did not
// write for its key. The constructor panics if s is invalid or if
// the default codec cannot carry the value type exactly.
//
// A shared cache runs a goroutine that reads the other processes' deletions;
// Close stops it.
func Share(s Sharing) Option {
	return func(c *config) { c.sharing = &s }
}

// SingleFlight makes the memoized function share executions without keeping
// their results: concurrent calls for one key run the function once and all
// get its result (the others count as hits, and as Coalesced), and the next
// call after it returns runs the function again. It is the generic,
// context-aware counterpart of golang.org/x/sync/singleflight. (MaxSize(0)
// is not that: as in Python, every call of a cache of size 0 runs the
// function on its own.) A SingleFlight cache holds nothing, so it cannot be
// combined with the options about keeping results (MaxSize, Unbounded, TTL,
// Window, StaleWhileRevalidate, CacheErrors, ExpireAfter, MaxWeight, Share):
// the constructor panics, naming them.
func SingleFlight() Option {
	return func(c *config) { c.SingleFlight = true }
}

// ExpireAfter lets the function choose how long each of its results stays
// fresh: f is asked about every value stored (after the function returns, and
// by Put), outside the cache's lock. A positive duration is the value's life,
// in place of TTL or Window; 0 leaves it to TTL or Window (or to no expiry
// without them); a negative one means the value is not cached at all (the
// call still returns it). An HTTP response's max-age or a token's expiry fits
// here. f is asked once about each value; a panic in it is the execution's
// (or Put's). f's value type must be the cache's; the constructor panics
// otherwise.
func ExpireAfter[V any](f func(V) time.Duration) Option {
	return func(c *config) { c.expire = f }
}

// expirer returns the function given to ExpireAfter for a cache with values
// V, or nil.
func expirer[V any](cfg *config) func(V) time.Duration {
	if cfg.expire == nil {
		return nil
	}
	f, ok := cfg.expire.(func(V) time.Duration)
	switch {
	case !ok:
		panic(fmt.Sprintf("memo: ExpireAfter was given a %T, but this cache needs a %v", cfg.expire, reflect.TypeFor[func(V) time.Duration]()))
	case f == nil:
		panic("memo: ExpireAfter was given a nil function")
	}
	return f
}

// Log sends the cache's events to logger, for a log line per event in one
// option: StoreFailed (with the error) at level Warn, PanicLost (with the
// panic) at level Error, and the entries leaving (Evicted, Expired,
// Forgotten, Cleared, Replaced) at level Debug, each with its kind and key
// (values are not logged). It works alongside Observe. A nil logger is
// slog.Default().
func Log(logger *slog.Logger) Option {
	return func(c *config) {
		if logger == nil {
			logger = slog.Default()
		}
		c.logger = logger
	}
}

// logged returns obs, or, with a logger given to Log, an observer that also
// logs each event.
func logged[K comparable, V any](obs func(Event[K, V]), logger *slog.Logger) func(Event[K, V]) {
	if logger == nil {
		return obs
	}
	return func(e Event[K, V]) {
		if obs != nil {
			obs(e)
		}
		ctx := context.Background()
		switch e.Kind {
		case StoreFailed:
			logger.Log(ctx, slog.LevelWarn, "memo: the store failed", "key", e.Key, "err", e.Err)
		case PanicLost:
			logger.Log(ctx, slog.LevelError, "memo: a panic no caller received", "key", e.Key, "panic", e.Panic.Value)
		default:
			logger.Log(ctx, slog.LevelDebug, "memo: "+e.Kind.String(), "key", e.Key)
		}
	}
}

// Observe makes fn receive every Event of the cache: the one way to watch
// what happens inside it, to log it, count it or free what a value holds.
// fn's key and value types must be the cache's; the constructor panics
// otherwise.
//
// fn is never called with a lock of the cache held, so it may call the
// cache. It is called by the goroutine that did the work, after that work's
// bookkeeping, in the order the events happened: the goroutine of the call,
// Forget, Clear, CacheInfo or PurgeExpired, or, for an execution memo runs in
// a goroutine of its own (MemoizeCtx with a context that can end, a
// background refresh), that goroutine, so a call may return before the
// events its result caused are delivered. Events caused by concurrent
// operations may reach fn concurrently and in any order between them. fn
// must not panic.
func Observe[K comparable, V any](fn func(Event[K, V])) Option {
	return func(c *config) { c.observe, c.observeSet = fn, true }
}

// observer returns the observer configured for a cache with keys K and
// values V, or nil.
func observer[K comparable, V any](cfg *config) func(Event[K, V]) {
	if !cfg.observeSet {
		return nil
	}
	fn, ok := cfg.observe.(func(Event[K, V]))
	if !ok {
		panic(fmt.Sprintf("memo: Observe was given a %T, but this cache needs a %v", cfg.observe, reflect.TypeFor[func(Event[K, V])]()))
	}
	return fn
}
