// Package memcachedstore is a memo.Store on Memcached, through
// github.com/bradfitz/gomemcache: the processes of several machines share a
// memoized function's results and its executions in progress, on a fleet of
// memcached servers that may already be running.
//
//	client := memcache.New("10.0.0.1:11211", "10.0.0.2:11211")
//	client.Timeout = 200 * time.Millisecond
//	st, err := memcachedstore.New(client, memcachedstore.Options{})
//	...
//	f, cache := memo.Memoize(render, memo.Share(memo.Sharing{Store: st, Name: "render"}))
//	defer cache.Close()
//
// The client spreads the keys over its servers (a hash of each key picks
// one), so one namespace's keys live on several servers; a server that dies
// or hangs fails the operations on its keys, which memo counts and works
// around by computing locally.
//
// # Layout
//
// Memcached keys are at most 250 bytes of printable ASCII, so memo's keys
// and namespaces, which may hold any bytes, are hashed: H(ns) and H(ns, key)
// below are the unpadded URL-safe Base64 of a SHA-256 of the namespace and
// of the namespace's length, the namespace and the key.
//
//	Prefix:g:H(ns)        the namespace's generation, a number; Clear increments it (incr)
//	Prefix:v:H(ns, key)   the value: the generation it was written in, its expiry
//	                      (Unix milliseconds, 0 for never) and memo's frame
//	Prefix:l:H(ns, key)   the lease: its holder's token and expiry, written with add,
//	                      renewed and ended by its holder with a compare-and-swap
//	Prefix:n:H(ns)        the number of the namespace's last deletion (incr)
//	Prefix:d:H(ns):N      deletion N: the key deleted, or a Clear
//
// A value of an older generation is a miss, so Clear is one increment
// whatever the size of the namespace; the old values go when they expire,
// are overwritten or are evicted. A generation or deletion counter that is
// missing (never written, or evicted) is created at a random number, so
// that no value or deletion from before is taken for a current one.
//
// # What Memcached may lose
//
// Memcached may evict any item at any time. A lost value is a miss; a lost
// lease lets another process compute the key too; a lost generation makes
// every value of the namespace a miss. A lost deletion is never missed in
// silence: Changes reads the deletions by number, and reports all (every
// process then drops what it holds of the namespace in memory) when one of
// them is gone, when the counter was lost, or when more than
// Options.KeepChanges happened since the reader's cursor. Expiries are
// checked by the store against the clocks of the processes, which should
// agree to well within Sharing.Lease.
package memcachedstore

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/gomemo/memo"
)

// Options configure a Store. Zero values read as the defaults.
type Options struct {
	// Prefix starts every key the store writes ("memo" by default): at
	// most 100 bytes of printable ASCII without spaces.
	Prefix string
	// KeepChanges is how many deletions of a namespace a process may fall
	// behind by (10000 by default); one that falls further behind drops
	// everything it holds of the namespace in memory instead. Each deletion
	// is kept for an hour, if Memcached does not evict it first.
	KeepChanges int
}

// Store is a memo.Store on Memcached. It is safe for concurrent use.
type Store struct {
	client *memcache.Client
	prefix string
	keep   uint64
}

var _ memo.Store = (*Store)(nil)

// The store's fixed settings.
const (
	keepChanges = time.Hour // how long a deletion is kept for Changes
	batch       = 500       // the deletions read with one request
	tries       = 3         // the attempts of a lease against concurrent writers
)

// New returns a Store on client. The client's Timeout bounds each request to
// a server; memo's Sharing.Timeout bounds an operation only between
// requests, so keep the client's Timeout below it (gomemcache's default,
// 500ms, is below memo's default of 1s). The largest value a server takes
// is its item size limit (memcached -I, 1 MiB by default): a larger one is
// an error that memo counts, and the value is not shared.
func New(client *memcache.Client, opts Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("memo/memcachedstore: the client is nil")
	}
	if opts.KeepChanges < 0 {
		return nil, fmt.Errorf("memo/memcachedstore: KeepChanges must not be negative, got %d", opts.KeepChanges)
	}
	if opts.Prefix == "" {
		opts.Prefix = "memo"
	}
	if len(opts.Prefix) > 100 || strings.ContainsFunc(opts.Prefix, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return nil, fmt.Errorf("memo/memcachedstore: the Prefix %q is not at most 100 bytes of printable ASCII without spaces", opts.Prefix)
	}
	if opts.KeepChanges == 0 {
		opts.KeepChanges = 10_000
	}
	return &Store{client: client, prefix: opts.Prefix, keep: uint64(opts.KeepChanges)}, nil
}

// failed returns err, a failure of Memcached, named as the store's.
func failed(err error) error {
	return fmt.Errorf("memo/memcachedstore: %w", err)
}

// hash returns the unpadded URL-safe Base64 of the SHA-256 of parts, each
// but the last preceded by its length, so that no two lists of parts meet.
func hash(parts ...string) string {
	h := sha256.New()
	for i, p := range parts {
		if i < len(parts)-1 {
			h.Write(binary.AppendUvarint(nil, uint64(len(p))))
		}
		h.Write([]byte(p))
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// keys of a namespace: see the package documentation.
func (s *Store) gen(ns string) string        { return s.prefix + ":g:" + hash(ns) }
func (s *Store) value(ns, key string) string { return s.prefix + ":v:" + hash(ns, key) }
func (s *Store) lease(ns, key string) string { return s.prefix + ":l:" + hash(ns, key) }
func (s *Store) last(ns string) string       { return s.prefix + ":n:" + hash(ns) }
func (s *Store) deletion(ns string, n uint64) string {
	return s.prefix + ":d:" + hash(ns) + ":" + strconv.FormatUint(n, 10)
}

// expiration returns memcached's expiration for an item to be kept until at
// least at (the zero Time: for ever): seconds from now up to 30 days, an
// absolute Unix time beyond, or 0 (never) beyond what its 32 bits reach.
// Items a second or so too long-lived are fine: the store checks its own
// expiries to the millisecond.
func expiration(at time.Time) int32 {
	if at.IsZero() {
		return 0
	}
	secs := int64(time.Until(at)/time.Second) + 2
	switch {
	case secs <= 30*24*60*60:
		return int32(secs)
	case at.Unix()+2 <= 1<<31-1:
		return int32(at.Unix() + 2)
	default:
		return 0
	}
}

// millis returns t as Unix milliseconds, 0 for the zero Time.
func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(t.UnixMilli(), 1)
}

// counter returns the number in key, creating it at a random number if it is
// missing, and reports whether it did.
func (s *Store) counter(ctx context.Context, key string) (n uint64, created bool, err error) {
	for range tries {
		if err := ctx.Err(); err != nil {
			return 0, false, err
		}
		it, err := s.client.Get(key)
		if err == nil {
			n, err := strconv.ParseUint(strings.TrimSpace(string(it.Value)), 10, 64)
			if err != nil {
				return 0, false, failed(fmt.Errorf("the counter %s holds %q", key, it.Value))
			}
			return n, created, nil
		}
		if !errors.Is(err, memcache.ErrCacheMiss) {
			return 0, false, failed(err)
		}
		// Far from 0 and from the wrap at 2^64, and from every number an
		// earlier counter of this key may have reached.
		start := rand.Uint64()>>2 + 1<<61
		err = s.client.Add(&memcache.Item{Key: key, Value: []byte(strconv.FormatUint(start, 10))})
		switch {
		case err == nil:
			return start, true, nil
		case !errors.Is(err, memcache.ErrNotStored):
			return 0, false, failed(err)
		}
		created = false // another process created it: read it
	}
	return 0, false, failed(fmt.Errorf("the counter %s kept changing", key))
}

// increment adds one to the counter in key, creating it first if it is
// missing, and returns its new number.
func (s *Store) increment(ctx context.Context, key string) (uint64, error) {
	for range tries {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n, err := s.client.Increment(key, 1)
		if err == nil {
			return n, nil
		}
		if !errors.Is(err, memcache.ErrCacheMiss) {
			return 0, failed(err)
		}
		if _, _, err := s.counter(ctx, key); err != nil {
			return 0, err
		}
	}
	return 0, failed(fmt.Errorf("the counter %s kept disappearing", key))
}

// The header of a stored value: its generation and its expiry.
const headerLen = 16

// Get implements memo.Store. It reads the generation and the value in one
// request per server. Memcached tells no value's length without the value,
// so one longer than memo.ReadLimit allows is fetched, then refused: its
// error wraps memo.ErrValueTooLarge.
func (s *Store) Get(ctx context.Context, ns, key string) ([]byte, time.Time, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, time.Time{}, false, err
	}
	gkey, vkey := s.gen(ns), s.value(ns, key)
	items, err := s.client.GetMulti([]string{gkey, vkey})
	if err != nil {
		return nil, time.Time{}, false, failed(err)
	}
	g, v := items[gkey], items[vkey]
	if g == nil || v == nil || len(v.Value) < headerLen {
		return nil, time.Time{}, false, nil
	}
	gen, err := strconv.ParseUint(strings.TrimSpace(string(g.Value)), 10, 64)
	if err != nil || binary.BigEndian.Uint64(v.Value) != gen {
		return nil, time.Time{}, false, nil // cleared
	}
	var expires time.Time
	if ms := int64(binary.BigEndian.Uint64(v.Value[8:])); ms != 0 {
		if ms <= time.Now().UnixMilli() {
			return nil, time.Time{}, false, nil
		}
		expires = time.UnixMilli(ms)
	}
	if limit, ok := memo.ReadLimit(ctx); ok && len(v.Value)-headerLen > limit {
		// Read already (memcached tells no length alone), but not passed on.
		return nil, time.Time{}, false, fmt.Errorf("memo/memcachedstore: a value of %d bytes, over the reader's limit of %d: %w", len(v.Value)-headerLen, limit, memo.ErrValueTooLarge)
	}
	return v.Value[headerLen:], expires, true, nil
}

// Set implements memo.Store. The value is stored under the namespace's
// current generation; one already expired deletes what was there.
func (s *Store) Set(ctx context.Context, ns, key string, value []byte, expires time.Time) error {
	gen, _, err := s.counter(ctx, s.gen(ns))
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	vkey := s.value(ns, key)
	if !expires.IsZero() && !expires.After(time.Now()) {
		if err := s.client.Delete(vkey); err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
			return failed(err)
		}
		return nil
	}
	b := make([]byte, headerLen, headerLen+len(value))
	binary.BigEndian.PutUint64(b, gen)
	binary.BigEndian.PutUint64(b[8:], uint64(millis(expires)))
	b = append(b, value...)
	if err := s.client.Set(&memcache.Item{Key: vkey, Value: b, Expiration: expiration(expires)}); err != nil {
		return failed(err)
	}
	return nil
}

// Delete implements memo.Store: it deletes the value, then records the
// deletion under the next number.
func (s *Store) Delete(ctx context.Context, ns, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.client.Delete(s.value(ns, key)); err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
		return failed(err)
	}
	// Recorded whatever ctx does now: a deletion made is one to read.
	return s.record(context.WithoutCancel(ctx), ns, "k"+key)
}

// Clear implements memo.Store: it increments the generation, then records
// the Clear under the next deletion number.
func (s *Store) Clear(ctx context.Context, ns string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := s.increment(ctx, s.gen(ns)); err != nil {
		return err
	}
	// Recorded whatever ctx does now: a Clear made is one to read.
	return s.record(context.WithoutCancel(ctx), ns, "a")
}

// record records a deletion of ns: "k" and the key, or "a" for a Clear.
// Between the increment and the write, readers find the number without its
// deletion, and report all.
func (s *Store) record(ctx context.Context, ns, what string) error {
	n, err := s.increment(ctx, s.last(ns))
	if err != nil {
		return err
	}
	err = s.client.Set(&memcache.Item{Key: s.deletion(ns, n), Value: []byte(what), Expiration: int32(keepChanges / time.Second)})
	if err != nil {
		return failed(err)
	}
	return nil
}

// A lease's value: its holder's token, a space, and its expiry in Unix
// milliseconds.
func leaseValue(token string, until int64) []byte {
	return []byte(token + " " + strconv.FormatInt(until, 10))
}

// holder returns the token and expiry of a lease's value; a value it cannot
// read is a lease that has ended.
func holder(b []byte) (token string, until int64) {
	i := strings.LastIndexByte(string(b), ' ')
	if i < 0 {
		return "", 0
	}
	until, err := strconv.ParseInt(string(b[i+1:]), 10, 64)
	if err != nil {
		return "", 0
	}
	return string(b[:i]), until
}

// Lease implements memo.Store: add, if no one holds the key; otherwise a
// compare-and-swap, if the lease is token's own or has expired.
func (s *Store) Lease(ctx context.Context, ns, key, token string, d time.Duration) (bool, error) {
	lkey := s.lease(ns, key)
	for range tries {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		until := time.Now().Add(max(d, time.Millisecond))
		// The lease's end in whole milliseconds, rounded up, so that it is
		// never taken before d has passed.
		end := (until.UnixNano() + int64(time.Millisecond) - 1) / int64(time.Millisecond)
		item := &memcache.Item{Key: lkey, Value: leaseValue(token, end), Expiration: expiration(until)}
		err := s.client.Add(item)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, memcache.ErrNotStored) {
			return false, failed(err)
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
		held, err := s.client.Get(lkey)
		if errors.Is(err, memcache.ErrCacheMiss) {
			continue // it went meanwhile: add again
		}
		if err != nil {
			return false, failed(err)
		}
		if t, at := holder(held.Value); t != token && at > time.Now().UnixMilli() {
			return false, nil
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
		item.CasID = held.CasID
		switch err := s.client.CompareAndSwap(item); {
		case err == nil:
			return true, nil
		case !errors.Is(err, memcache.ErrCASConflict) && !errors.Is(err, memcache.ErrNotStored):
			return false, failed(err)
		}
		// Another process wrote the lease, or it went, meanwhile: look again.
	}
	return false, nil
}

// Unlease implements memo.Store: a compare-and-swap, if the lease is token's,
// to a lease held by no one that has expired already.
func (s *Store) Unlease(ctx context.Context, ns, key, token string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	lkey := s.lease(ns, key)
	held, err := s.client.Get(lkey)
	if errors.Is(err, memcache.ErrCacheMiss) {
		return nil
	}
	if err != nil {
		return failed(err)
	}
	if t, _ := holder(held.Value); t != token {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err = s.client.CompareAndSwap(&memcache.Item{Key: lkey, Value: leaseValue("", 0), Expiration: 1, CasID: held.CasID})
	if err != nil && !errors.Is(err, memcache.ErrCASConflict) && !errors.Is(err, memcache.ErrNotStored) {
		return failed(err)
	}
	return nil
}

// recordWait is how long Changes waits for a deletion being recorded.
const recordWait = 10 * time.Millisecond

// again reads the records of names missing from items once more, after
// recordWait, into items.
func (s *Store) again(ctx context.Context, names []string, items map[string]*memcache.Item) error {
	var missing []string
	for _, name := range names {
		if items[name] == nil {
			missing = append(missing, name)
		}
	}
	timer := time.NewTimer(recordWait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
	}
	more, err := s.client.GetMulti(missing)
	if err != nil {
		return failed(err)
	}
	for name, it := range more {
		items[name] = it
	}
	return nil
}

// Changes implements memo.Store. A cursor is the number of the next
// deletion to read.
func (s *Store) Changes(ctx context.Context, ns string, cursor uint64) (keys []string, all bool, next uint64, err error) {
	last, created, err := s.counter(ctx, s.last(ns))
	if err != nil {
		return nil, false, 0, err
	}
	next = last + 1
	switch {
	case cursor == 0:
		return nil, false, next, nil
	case created || cursor > next || next-cursor > s.keep:
		// The counter was lost, or the reader is too far behind.
		return nil, true, next, nil
	}
	for from := cursor; from < next; from += batch {
		if err := ctx.Err(); err != nil {
			return nil, false, 0, err
		}
		var names []string
		for n := from; n < min(from+batch, next); n++ {
			names = append(names, s.deletion(ns, n))
		}
		items, err := s.client.GetMulti(names)
		if err != nil {
			return nil, false, 0, failed(err)
		}
		if len(items) < len(names) {
			// A deletion is being recorded (its number taken, its record
			// not yet written), or was lost: look once more, a little later.
			if err := s.again(ctx, names, items); err != nil {
				return nil, false, 0, err
			}
		}
		for _, name := range names {
			it := items[name]
			switch {
			case it == nil || len(it.Value) == 0 || it.Value[0] == 'a':
				// Lost, or a Clear.
				return nil, true, next, nil
			default:
				keys = append(keys, string(it.Value[1:]))
			}
		}
	}
	return keys, false, next, nil
}
