package memo

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Store is a tier shared by processes: bytes in, bytes out, each value with
// an expiry. A memoized function given one with Share looks a key up in its
// own cache first, then in the store, and only then runs; what it computes,
// it writes to the store for the others. The disk store (module
// github.com/gomemo/memo/sqlite) and the Redis store (module
// github.com/gomemo/memo/redisstore) implement Store; so can any other.
//
// memo never passes a Store a value it has not framed itself: the bytes
// carry a checksum and the fingerprint of the value's type, and memo
// verifies both on the way back, so a Store keeps and returns bytes as they
// are and need not check them. Every method may be called by many goroutines
// at once; each is given a context with the deadline of Sharing.Timeout.
// Keys and namespaces are opaque strings, which may hold any bytes.
type Store interface {
	// Get returns the value stored under key in namespace ns and the
	// instant it expires (the zero Time if it never does), with found false
	// if there is none or it has expired. A value longer than
	// ReadLimit(ctx) should be refused without being read (see ReadLimit).
	Get(ctx context.Context, ns, key string) (value []byte, expires time.Time, found bool, err error)
	// Set stores value under key in ns until expires (the zero Time: no
	// expiry), replacing what was there.
	Set(ctx context.Context, ns, key string, value []byte, expires time.Time) error
	// Delete removes the value under key in ns, if any, and records the
	// deletion for Changes.
	Delete(ctx context.Context, ns, key string) error
	// Clear removes every value of ns and records that for Changes.
	Clear(ctx context.Context, ns string) error
	// Lease gives the lease on key in ns to token for d, unless another
	// token holds a lease on it that has not expired, and reports whether
	// token holds it now. A lease marks one execution in progress for every
	// process sharing the store. A token that holds the lease is given it
	// again for d from now: that is how the process computing a key renews
	// its lease while the function runs.
	Lease(ctx context.Context, ns, key, token string, d time.Duration) (bool, error)
	// Unlease ends token's lease on key in ns, if token still holds it.
	Unlease(ctx context.Context, ns, key, token string) error
	// Changes returns the keys of ns deleted since cursor (by any process),
	// or all true if ns was cleared since then or the changes since cursor
	// are no longer known, and the cursor to pass next time, which is never
	// 0. Cursor 0 asks only for the current cursor.
	Changes(ctx context.Context, ns string, cursor uint64) (keys []string, all bool, next uint64, err error)
}

// BatchGetter is a Store that looks many keys up in one round trip. The
// batch calls of a shared cache (see MemoizeBatch) use GetBatch where the
// store has it, and otherwise one Get per key, concurrently. The disk and
// Redis stores implement it.
type BatchGetter interface {
	// GetBatch returns what Get would return for each of keys in ns, in the
	// order of keys. An error fails the lookup of every key.
	GetBatch(ctx context.Context, ns string, keys []string) ([]Lookup, error)
}

// Lookup is what GetBatch found for one key: Get's results.
type Lookup struct {
	Value   []byte
	Expires time.Time // the zero Time if it never expires
	Found   bool
}

// BatchSetter is a Store that writes many values at once more cheaply than
// one Set each, such as a database in one transaction. The batch calls of
// a shared cache use SetBatch where the store has it, and otherwise one Set
// per key, concurrently. The disk store implements it.
type BatchSetter interface {
	// SetBatch stores each entry in ns, as Set would. An error may leave
	// some of them written.
	SetBatch(ctx context.Context, ns string, entries []Entry) error
}

// Entry is one value for SetBatch: Set's arguments.
type Entry struct {
	Key     string
	Value   []byte
	Expires time.Time // the zero Time for no expiry
}

// ErrValueTooLarge is wrapped by the error a Store's Get returns for a value
// longer than ReadLimit allows, which it did not read: see ReadLimit.
var ErrValueTooLarge = errors.New("memo: the stored value is larger than the reader accepts")

// readLimitKey is the context key of ReadLimit's bound.
type readLimitKey struct{}

// ReadLimit returns the longest value, in bytes, that the cache calling a
// Store's Get accepts (Sharing.MaxValue and its frame), given the context of
// that call, and false for a context that carries no bound. A store that can
// learn a value's length before reading it (SQLite's length(), Redis's
// STRLEN) should return, for a longer value, an error wrapping
// ErrValueTooLarge instead of reading it, so that a value planted by whoever
// can write to the store makes no reader fetch or allocate more than this.
// Such an error is a miss, reported, that does not pause the store.
func ReadLimit(ctx context.Context) (int, bool) {
	n, ok := ctx.Value(readLimitKey{}).(int)
	return n, ok
}

// Notifier is a Store that tells a process of deletions as they happen, so
// that another process's Forget or Clear reaches this one's memory within
// milliseconds rather than within Sharing.Poll. A cache whose Store
// implements it reads the store's Changes when notified, and every Poll all
// the same, so that a lost notification delays a deletion by at most Poll.
type Notifier interface {
	// Notify arranges for c to be sent a value, without blocking, soon after
	// any process deletes from ns (Delete, Clear), until stop is called; c
	// has room for one value, so that notifications coming faster than they
	// are read are merged into one. A deletion made before the store
	// watches for ns is covered by a value sent once it does. It may send
	// when nothing was deleted, and it may miss deletions (a dropped
	// connection), never blocking the store's other methods either way.
	Notify(ns string, c chan<- struct{}) (stop func())
}

// Sharing puts a memoized function's results in a Store shared with other
// processes; see Share. Zero durations and sizes read as their defaults.
type Sharing struct {
	// Store is where results are shared. It must not be nil.
	Store Store
	// Name names the function in the store: every process that memoizes
	// the same function with the same arguments gives the same Name, and
	// no other function shares it. It must not be empty.
	Name string
	// Version is part of the namespace: bump it when the function's
	// results change meaning, and every result stored before is ignored.
	Version int
	// Codec turns values into bytes and back (see Codec). nil means the
	// default, gob, for which the constructor refuses value types gob
	// cannot carry (unexported fields, interfaces, funcs, channels); each
	// value is then checked as it is written (a nil and an empty slice, or
	// a pointer to a zero value, inside a struct do not survive gob).
	Codec Codec
	// Timeout bounds each store operation, so that a slow store holds a
	// call up by at most about this long per operation before the call goes
	// on without it (1s by default).
	Timeout time.Duration
	// Lease is how long the lease of a process computing a key lasts
	// unless renewed (2s by default); the others wait for its result
	// meanwhile. The process renews its lease every Lease/4 while the
	// function runs, so an execution may take as long as it needs, and is
	// not run again by another process while its own lives and reaches the
	// store. When the process dies, or cannot renew its lease for about
	// Lease (the store is down or slow, the process is stopped), another
	// process computes the key within about Lease. Give it well over
	// Timeout, which bounds each renewal.
	Lease time.Duration
	// Poll is how often the cache reads the deletions made by other
	// processes (Forget, Clear) to drop them from its own memory (1s by
	// default): the longest another process's Forget or Clear can take to
	// reach this one, given a store that answers. A Store that implements
	// Notifier also makes the cache read them as they happen, and Poll is
	// then the bound only for notifications that are lost: the Redis store
	// pushes deletions through Redis pub/sub (milliseconds: a p99 under 50
	// ms across processes, on one server and on a cluster), the disk store
	// watches its database for other connections' commits every 10 ms
	// (tens of milliseconds).
	Poll time.Duration
	// MaxValue is the largest encoded value, in bytes, that is written to
	// the store or accepted from it (16 MiB by default): a longer one read
	// from the store is a miss, and is reported, before any of it is
	// checked or decoded. The store is told the bound (see ReadLimit): the
	// disk and Redis stores refuse a longer value without fetching it.
	MaxValue int

	// Secret, when set, authenticates every value this cache writes to
	// the store: the value's frame carries an HMAC-SHA256, keyed by the
	// Secret, of the namespace, the key, the expiry and the encoded value,
	// and a value read back is served only if the Secret (or OldSecret)
	// authenticates it. The check comes before anything else reads the
	// value's bytes; a value that fails it (written without the secret or
	// with another one, forged, moved from another key or namespace, or
	// altered, its expiry included) is never decoded or served, and is
	// reported as a StoreFailed event whose error wraps ErrUnauthenticated
	// and counted in CacheInfo.StoreRejected; the call computes the value
	// and writes its own. Every process sharing the Name must have the
	// same Secret. Give at least 16 random bytes, kept as a password is.
	//
	// The Secret stops whoever can write to the store but does not hold
	// it (another service or tenant on a shared Redis, a user who can
	// write the cache's directory) from making this process serve a value
	// that no holder of the secret computed for that key. It does not
	// hide values: anyone who can read the store can read them. It does
	// not keep the store available: whoever can write to it can delete or
	// overwrite values (each such value is then a miss, recomputed and
	// reported, so calls slow down but stay right), hold leases, or fill
	// it. Nor does it tell an old value from the latest: a value its
	// holder wrote for a key can be written back under that key until its
	// expiry, after a Forget or a Clear, or after a newer value. It does
	// not protect against a process that holds the Secret.
	//
	// Without a Secret, a value's frame carries a checksum and the value
	// type's fingerprint, which catch damage and values moved between
	// keys, not forgery: anyone who can write to the store can make every
	// process serve a value of their choosing, and the default codec, gob,
	// decodes what they wrote, though it is not hardened against hostile
	// input. Give a Secret whenever others can write to the store.
	Secret []byte
	// OldSecret is a secret accepted besides Secret for reading, never
	// used for writing. To change the Secret, give each process the new
	// Secret and the old one as OldSecret, so that it still reads the
	// values written with the old one, and drop OldSecret once every
	// process has the new Secret. (While some processes still have only
	// the old Secret, they reject the values the others write, and
	// recompute them.) It requires a Secret.
	OldSecret []byte
}

// The defaults of Sharing's zero fields.
const (
	minSecret           = 16
	defaultStoreTimeout = time.Second
	defaultLease        = 2 * time.Second
	defaultPoll         = time.Second
	defaultMaxValue     = 16 << 20
)

// Namespace returns the namespace under which s's values are stored: the
// Name, a slash, and the Version in decimal. Stores keep each value under
// this namespace and the key of its call: TypedKeyOf's encoding of the key
// (of its numbers made one type first, in a cache without Typed); for an
// encoding longer than 256 bytes, the byte 'h' and the encoding's SHA-256
// instead.
func (s Sharing) Namespace() string { return s.Name + "/" + strconv.Itoa(s.Version) }

// tier is a cache's use of its Store. Its counters are atomic, mine has a
// lock of its own (held for no user code), the cursor another (held across
// the store's Changes), and the rest is fixed at construction.
type tier[K comparable, V any] struct {
	Sharing          // normalised: a Codec, no zero durations or sizes
	ns      string   // Sharing.Namespace()
	check   bool     // K holds interfaces: keys are checked call by call
	fp      uint64   // the fingerprint of V
	secrets [][]byte // Secret, then OldSecret, copied; nil without a Secret

	hits, misses, errors, waits, rejected atomic.Uint64

	mu   sync.Mutex
	mine map[string]int // see own

	// reading serialises the readings of the store's deletions, by the
	// poller and by Clear, and guards cursor, where the last one left off.
	// emptied counts this process's Clears that emptied memory after their
	// reading: the poller does not empty it for an older reading (apply).
	reading sync.Mutex
	cursor  uint64
	emptied atomic.Uint64

	// After a failure, executions leave the store alone until downUntil
	// (Unix nanoseconds), a pause that doubles with each failure from
	// minPause to maxPause; any success ends it. The poller keeps trying
	// every Poll, so a store that comes back is used again within Poll.
	downUntil, pause atomic.Int64

	stop chan struct{} // closed by Close
	done chan struct{} // closed when the poller has returned
	once sync.Once
}

// newTier checks sh for a cache of K and V, panicking with a "memo: Share"
// message if it cannot work. The caller starts its poller.
func newTier[K comparable, V any](sh Sharing) *tier[K, V] {
	switch {
	case sh.Store == nil:
		panic("memo: Share was given a nil Store")
	case sh.Name == "":
		panic("memo: Share needs a Name, which names the function in the store")
	case sh.Timeout < 0 || sh.Lease < 0 || sh.Poll < 0 || sh.MaxValue < 0:
		panic(fmt.Sprintf("memo: Share: Timeout, Lease, Poll and MaxValue must not be negative, got %v, %v, %v and %d", sh.Timeout, sh.Lease, sh.Poll, sh.MaxValue))
	case sh.Secret != nil && len(sh.Secret) < minSecret:
		panic(fmt.Sprintf("memo: Share: a Secret of %d bytes is too short; give at least %d random bytes", len(sh.Secret), minSecret))
	case sh.OldSecret != nil && len(sh.OldSecret) < minSecret:
		panic(fmt.Sprintf("memo: Share: an OldSecret of %d bytes is too short; give at least %d random bytes", len(sh.OldSecret), minSecret))
	case sh.OldSecret != nil && sh.Secret == nil:
		panic("memo: Share was given an OldSecret without a Secret")
	}
	kt, vt := reflect.TypeFor[K](), reflect.TypeFor[V]()
	if why := localOnly(kt, reflect.Value{}); why != "" {
		panic(fmt.Sprintf("memo: Share: keys of type %v cannot be shared between processes: %s", kt, why))
	}
	if sh.Codec == nil {
		if why := gobRefuses(vt, nil); why != "" {
			panic(fmt.Sprintf("memo: Share: the default codec (gob) cannot carry values of type %v exactly: %s; give Sharing a Codec", vt, why))
		}
		sh.Codec = gobCodec{}
	}
	sh.Timeout = cmp.Or(sh.Timeout, defaultStoreTimeout)
	sh.Lease = cmp.Or(sh.Lease, defaultLease)
	sh.Poll = cmp.Or(sh.Poll, defaultPoll)
	sh.MaxValue = cmp.Or(sh.MaxValue, defaultMaxValue)
	var secrets [][]byte
	for _, s := range [][]byte{sh.Secret, sh.OldSecret} {
		if s != nil {
			secrets = append(secrets, bytes.Clone(s))
		}
	}
	if secrets != nil {
		sh.Secret = secrets[0]
	}
	return &tier[K, V]{
		secrets: secrets,
		Sharing: sh,
		ns:      sh.Namespace(),
		check:   mayPanicOnEqual(kt),
		fp:      fingerprint(vt),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// storeKey is a key as the store sees it: TypedKeyOf's encoding (full), or,
// for one longer than compactAbove bytes, its compact form: the byte 'h'
// then the SHA-256 of the encoding. (An encoding starts with KeyVersion,
// never 'h'.) TypedKeyOf, not KeyOf, because KeyOf merges values that memory
// keeps apart (ID("a") and "a" held in an any); the numbers that a cache
// without Typed merges in memory are made one type before they get here.
// The frame's checksum covers the full encoding, so two keys whose compact
// forms collide never read each other's values.
type storeKey struct{ store, full string }

// compactAbove is the longest key the store is given in full.
const compactAbove = 256

// key returns the store's key for k.
func (t *tier[K, V]) key(k K) (storeKey, error) {
	if t.check {
		if why := localOnly(nil, reflect.ValueOf(&k).Elem()); why != "" {
			return storeKey{}, fmt.Errorf("%w: the key %T cannot be shared between processes: %s", ErrUnsupportedArgument, k, why)
		}
	}
	full, err := TypedKeyOf(k)
	if err != nil || len(full) <= compactAbove {
		return storeKey{full, full}, err
	}
	sum := sha256.Sum256([]byte(full))
	return storeKey{"h" + string(sum[:]), full}, nil
}

// The pauses of executions after store failures.
const (
	minPause = 100 * time.Millisecond
	maxPause = 10 * time.Second
)

// op runs f with a context bounded by the Timeout, and keeps the store's
// health: a failure that is not ctx's own ending starts or lengthens a
// pause, a success ends it.
func (t *tier[K, V]) op(ctx context.Context, f func(context.Context) error) error {
	octx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	err := f(octx)
	switch {
	case err == nil:
		if t.pause.Load() != 0 {
			t.pause.Store(0)
			t.downUntil.Store(0)
		}
	case ctx.Err() == nil && !errors.Is(err, ErrValueTooLarge):
		p := min(max(2*time.Duration(t.pause.Load()), minPause), maxPause)
		t.pause.Store(int64(p))
		t.downUntil.Store(time.Now().Add(p).UnixNano())
	}
	return err
}

// paused reports whether executions should leave the store alone, after a
// recent failure.
func (t *tier[K, V]) paused() bool {
	until := t.downUntil.Load()
	return until != 0 && time.Now().UnixNano() < until
}

// fail counts err, a failure of the store about k, and reports it to the
// observer.
func (t *tier[K, V]) fail(c *Cache[K, V], k K, err error) {
	t.errors.Add(1)
	if c.observe != nil {
		c.observe(Event[K, V]{Kind: StoreFailed, Key: k, Err: err})
	}
}

// The waits of a process for another's execution: the first look, and the
// longest pause between looks.
const (
	leaseFirstPoll = 2 * time.Millisecond
	leaseMaxPoll   = 100 * time.Millisecond
)

// load answers an execution for k, the key of a cache shared through the
// store: with the value stored by any process, or, failing that, with fn's,
// which it writes to the store for the others. until is, for a value from
// the store, when it expires there, on the wall clock in Unix nanoseconds
// (0: never, or the value is fn's); life is, for fn's value, its life from
// ExpireAfter (see Cache.lifeOf). wrote reports that it wrote the store.
// Whatever the store does, the call gets fn's result or a stored one; while
// the store is paused after a failure, fn's, without trying the store.
func (t *tier[K, V]) load(c *Cache[K, V], ctx context.Context, k K, fn func(context.Context, K) (V, error)) (v V, until, life int64, wrote bool, err error) {
	key, err := t.key(k)
	if err != nil {
		return v, 0, 0, false, err
	}
	if t.paused() {
		if v, err = fn(ctx, k); err == nil {
			life = c.lifeOf(v)
		}
		return v, 0, life, false, err
	}
	v, until, ok, absent := t.get(c, ctx, k, key)
	if ok {
		t.hits.Add(1)
		return v, until, 0, false, nil
	}
	t.misses.Add(1)
	token := strconv.FormatUint(rand.Uint64(), 36)
	delay := leaseFirstPoll
	for !t.paused() { // if the lookup failed, straight to fn
		var owner bool
		err := t.op(ctx, func(ctx context.Context) (err error) {
			owner, err = t.Store.Lease(ctx, t.ns, key.store, token, t.Lease)
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return v, 0, 0, false, ctx.Err()
			}
			t.fail(c, k, err)
			break // compute without the lease
		}
		if owner {
			defer t.op(context.WithoutCancel(ctx), func(ctx context.Context) error {
				if err := t.Store.Unlease(ctx, t.ns, key.store, token); err != nil {
					t.fail(c, k, err)
				}
				return nil
			})
			defer t.renew(c, ctx, k, key, token)() // stopped before the Unlease
			// Another process may have stored it between the look and
			// the lease. (What was there but unusable still is.)
			if absent {
				if v, until, ok, _ := t.get(c, ctx, k, key); ok {
					t.waits.Add(1)
					return v, until, 0, false, nil
				}
			}
			break
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return v, 0, 0, false, ctx.Err()
		case <-timer.C:
		}
		delay = min(2*delay, leaseMaxPoll)
		if v, until, ok, _ := t.get(c, ctx, k, key); ok {
			t.waits.Add(1)
			return v, until, 0, false, nil
		}
	}
	v, err = fn(ctx, k)
	if err != nil {
		return v, 0, 0, false, err
	}
	life = c.lifeOf(v)
	if t.paused() {
		return v, 0, life, false, nil
	}
	return v, 0, life, t.put(c, ctx, k, key, v, life), nil
}

// renewals is how many times a lease is renewed within its Lease.
const renewals = 4

// renew renews token's lease on k (under key) every Lease/renewals, in a
// goroutine of its own, until the function it returns is called, or another
// process has taken the lease over. That function stops the renewals and
// waits for the goroutine to end, cancelling a renewal in progress, so that
// no renewal comes after the Unlease that follows it. A renewal that fails
// is reported, and tried again at the next tick: the lease may still hold.
func (t *tier[K, V]) renew(c *Cache[K, V], ctx context.Context, k K, key storeKey, token string) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		ticker := time.NewTicker(max(t.Lease/renewals, time.Millisecond))
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			var held bool
			err := t.op(ctx, func(ctx context.Context) (err error) {
				held, err = t.Store.Lease(ctx, t.ns, key.store, token, t.Lease)
				return err
			})
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				t.fail(c, k, err)
			case !held:
				return // lost: another process computes k too
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// get looks key up in the store and decodes what it finds (see open).
// absent reports that the store answered that it has no value.
func (t *tier[K, V]) get(c *Cache[K, V], ctx context.Context, k K, key storeKey) (v V, until int64, ok, absent bool) {
	var b []byte
	var exp time.Time
	var found bool
	err := t.op(ctx, func(ctx context.Context) (err error) {
		ctx = context.WithValue(ctx, readLimitKey{}, t.MaxValue+sealedLen)
		b, exp, found, err = t.Store.Get(ctx, t.ns, key.store)
		return err
	})
	if err != nil {
		if ctx.Err() == nil {
			t.fail(c, k, err)
		}
		return v, 0, false, false
	}
	if !found {
		return v, 0, false, true
	}
	v, until, ok = t.open(c, k, key, b, exp)
	return v, until, ok, false
}

// open checks b, the stored value of k under key, which expires at exp in
// the store, and decodes it, for every path that reads the store. It
// returns ok false for a miss: a value longer than MaxValue, one the secret
// does not authenticate, one written for another value type, damaged, or
// expired by the expiry its sealed frame carries; all but the last two are
// reported. Nothing of b is read before its length is checked, nor decoded
// before it is authenticated. until is when the value expires (see load),
// by the earlier of the store's expiry and the frame's.
func (t *tier[K, V]) open(c *Cache[K, V], k K, key storeKey, b []byte, exp time.Time) (v V, until int64, ok bool) {
	if len(b) > t.MaxValue+sealedLen {
		t.fail(c, k, fmt.Errorf("memo: the stored value of %d bytes is larger than MaxValue (%d)", len(b), t.MaxValue))
		return v, 0, false
	}
	body, sealed, err := unframe(t.ns, key.full, t.fp, b, t.secrets...)
	if err == errForeign {
		return v, 0, false
	}
	if err == nil && len(body) > t.MaxValue {
		err = fmt.Errorf("memo: the stored value of %d bytes is larger than MaxValue (%d)", len(body), t.MaxValue)
	}
	if err == nil {
		if !exp.IsZero() {
			until = exp.UnixNano()
		}
		if sealed != 0 {
			if _, wall := c.stamp(); sealed <= wall {
				return v, 0, false // expired, or written back after its expiry
			}
			if until == 0 || sealed < until {
				until = sealed
			}
		}
		v, err = decodeValue[V](t.Codec, body)
	}
	if err != nil {
		if errors.Is(err, ErrUnauthenticated) {
			t.rejected.Add(1)
		}
		t.fail(c, k, err)
		var zero V
		return zero, 0, false
	}
	return v, until, true
}

// put writes v, fn's result for k or a value Put, to the store, to stay
// fresh for life (see expiryAt), and reports whether it did.
func (t *tier[K, V]) put(c *Cache[K, V], ctx context.Context, k K, key storeKey, v V, life int64) bool {
	b, exp, ok := t.framed(c, k, key, v, life)
	if !ok {
		return false
	}
	err := t.op(context.WithoutCancel(ctx), func(ctx context.Context) error {
		return t.Store.Set(ctx, t.ns, key.store, b, exp)
	})
	if err != nil {
		t.fail(c, k, err)
		return false
	}
	return true
}

// framed returns what put writes for v, k's value: its frame and its
// expiry in the store, with ok false if it is not to be written (a failure
// to encode it is reported).
func (t *tier[K, V]) framed(c *Cache[K, V], k K, key storeKey, v V, life int64) (b []byte, exp time.Time, ok bool) {
	if life < 0 {
		return nil, exp, false // not to be cached
	}
	body, err := encodeValue(t.Codec, v)
	if err != nil {
		t.fail(c, k, err)
		return nil, exp, false
	}
	if len(body) > t.MaxValue {
		t.fail(c, k, fmt.Errorf("memo: the encoded value of %d bytes is larger than MaxValue (%d), so it is not stored", len(body), t.MaxValue))
		return nil, exp, false
	}
	exp = t.expiry(c, life)
	var sealed int64
	if !exp.IsZero() {
		sealed = exp.UnixNano()
	}
	return frame(t.ns, key.full, t.fp, sealed, t.Secret, body), exp, true
}

// expiry returns when a value stored now expires, by life (see expiryAt),
// the cache's TTL, Window or ExpireAfterAccess (from now: hits in memory do
// not extend it): the zero Time for never.
func (t *tier[K, V]) expiry(c *Cache[K, V], life int64) time.Time {
	if life == 0 && c.params.TTL == 0 && c.params.Window == 0 && c.params.ExpireAfterAccess == 0 {
		return time.Time{}
	}
	now, wall := c.stamp()
	at := c.expiryAt(now, wall, 0, life)
	if at == math.MaxInt64 {
		return time.Time{} // beyond what the clock reaches
	}
	return time.Unix(0, addSat(wall, at-now))
}

// forget deletes k from the store, for Forget, or for an execution whose
// result was written after its key was forgotten or cleared.
func (t *tier[K, V]) forget(c *Cache[K, V], k K) {
	key, err := t.key(k)
	if err != nil {
		return // such a key is never stored
	}
	// Noted before the deletion, so that the poller, which may read it at
	// once, knows it as this process's own and does not drop what this
	// process stores for k afterwards (a value Put, a new result).
	t.own(key.store, 1)
	if err := t.op(context.Background(), func(ctx context.Context) error { return t.Store.Delete(ctx, t.ns, key.store) }); err != nil {
		t.own(key.store, -1)
		t.fail(c, k, err)
	}
}

// own counts n more of this process's deletions of key in the store that
// the poller has yet to read.
func (t *tier[K, V]) own(key string, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mine == nil {
		t.mine = map[string]int{}
	}
	if t.mine[key] += n; t.mine[key] <= 0 {
		delete(t.mine, key)
	}
}

// others returns the keys of deletions not made by this process, counting
// off this process's own.
func (t *tier[K, V]) others(keys []string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, k := range keys {
		if t.mine[k] > 0 {
			if t.mine[k]--; t.mine[k] == 0 {
				delete(t.mine, k)
			}
			continue
		}
		out = append(out, k)
	}
	return out
}

// clear clears the namespace in the store, for Clear, which has emptied c's
// memory already, so that executions in progress take what they write to
// the store back out (see finish). It then reads the deletions up to its
// own, so that they do not come back through the poller to drop what this
// process computes after the Clear, and empties c's memory again of what it
// took in meanwhile, perhaps from the store before it was cleared.
func (t *tier[K, V]) clear(c *Cache[K, V]) {
	err := t.op(context.Background(), func(ctx context.Context) error { return t.Store.Clear(ctx, t.ns) })
	if err == nil {
		_, _, _, err = t.read(true)
	}
	if err != nil {
		// The poller reads the Clear, if it happened, and empties memory.
		var zero K
		t.fail(c, zero, err)
		return
	}
	c.clearLocal(false, nil)
}

// poll drops from c's memory what other processes delete from the store,
// every Poll and whenever a Notifier store notifies, until Close.
func (t *tier[K, V]) poll(c *Cache[K, V]) {
	defer close(t.done)
	ticker := time.NewTicker(t.Poll)
	defer ticker.Stop()
	var notified chan struct{} // nil, never ready, for a store that does not notify
	if n, ok := t.Store.(Notifier); ok {
		notified = make(chan struct{}, 1)
		defer n.Notify(t.ns, notified)()
	}
	for {
		select {
		case <-t.stop:
			return
		case <-ticker.C:
		case <-notified:
		}
		t.apply(c)
	}
}

// apply reads the store's deletions and drops them from c's memory: the
// keys other processes deleted, or everything, for a Clear or for deletions
// the store no longer knows. Before any reading has worked, it cannot know
// what was deleted, and drops everything: the constructor's first reading,
// on an empty cache, only places the cursor. It does not empty memory for a
// reading that a Clear of this process has since read past, emptying memory
// after it.
func (t *tier[K, V]) apply(c *Cache[K, V]) {
	keys, all, emptied, err := t.read(false)
	switch {
	case err != nil:
		var zero K
		t.fail(c, zero, err)
	case all:
		c.clearLocal(false, func() bool { return t.emptied.Load() != emptied })
	case len(keys) > 0:
		c.forgetEncoded(keys)
	}
}

// read reads the store's deletions since the cursor and moves it on. It
// returns the keys of the deletions not made by this process, or all true
// for everything, and the count of this process's Clears that emptied memory
// after their reading, counting this one if own, for a Clear.
func (t *tier[K, V]) read(own bool) (keys []string, all bool, emptied uint64, err error) {
	t.reading.Lock()
	defer t.reading.Unlock()
	var next uint64
	err = t.op(context.Background(), func(ctx context.Context) (err error) {
		keys, all, next, err = t.Store.Changes(ctx, t.ns, t.cursor)
		return err
	})
	if err != nil {
		return nil, false, 0, err
	}
	if all || t.cursor == 0 {
		keys, all = nil, true
		t.mu.Lock()
		t.mine = nil // whatever this process deleted is gone too
		t.mu.Unlock()
	} else {
		keys = t.others(keys)
	}
	t.cursor = next
	if own {
		t.emptied.Add(1)
	}
	return keys, all, t.emptied.Load(), nil
}

// close stops the poller and waits for it.
func (t *tier[K, V]) close() {
	t.once.Do(func() { close(t.stop) })
	<-t.done
}
