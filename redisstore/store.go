// Package redisstore is a memo.Store on Redis, through go-redis's
// UniversalClient, so a single server, Sentinel and Cluster all work: the
// processes of several machines share a memoized function's results and its
// executions in progress.
//
//	client := redis.NewUniversalClient(&redis.UniversalOptions{
//		Addrs:                 []string{"localhost:6379"},
//		ContextTimeoutEnabled: true, // required: memo bounds each operation by its context
//	})
//	st, err := redisstore.New(client, redisstore.Options{})
//	...
//	f, cache := memo.Memoize(render, memo.Share(memo.Sharing{Store: st, Name: "render"}))
//	defer cache.Close()
//
// # Layout
//
// Every key of a namespace ns (memo's Sharing.Namespace(): name/version)
// starts with Prefix:{ns}:, so that Redis Cluster keeps a namespace in one
// hash slot, and every operation (a Lua script, or for Get a pipeline)
// touches keys of one slot only; in ns, '%' and '}' are written %25 and
// %7D, and the empty namespace %, so that no two namespaces' keys meet:
//
//	Prefix:{ns}:g        the namespace's generation, a counter; Clear increments it
//	Prefix:{ns}:v:KEY    the value for KEY (memo's key encoding): "GEN:" then memo's frame,
//	                     expiring with the value (PXAT); a value of an older generation is a miss
//	Prefix:{ns}:l:KEY    the lease on KEY: the token of the process computing it, expiring with the lease
//	Prefix:{ns}:c        a stream of deletions (field k: a key; field all: a Clear), trimmed
//	                     to about Options.KeepChanges entries
//
// Clear is one increment, whatever the size of the namespace, and never uses
// KEYS or FLUSHDB; it then deletes the namespace's old values with an
// incremental SCAN for as long as its context allows, and the values it does
// not reach are never served again and go when they expire, are overwritten
// or are evicted by Redis's maxmemory policy.
package redisstore

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gomemo/memo"
	"github.com/redis/go-redis/v9"
)

// Options configure a Store. Zero values read as the defaults.
type Options struct {
	// Prefix starts every key the store writes ("memo" by default).
	Prefix string
	// KeepChanges is about how many deletions the store keeps for other
	// processes to read (10000 by default). A process that falls further
	// behind drops everything it holds in memory instead.
	KeepChanges int64
}

// Store is a memo.Store on Redis. It is safe for concurrent use.
type Store struct {
	client redis.UniversalClient
	prefix string
	keep   int64
}

var _ memo.Store = (*Store)(nil)

// New returns a Store on client. The client must respect context deadlines
// (ContextTimeoutEnabled), so that memo's Sharing.Timeout bounds each
// operation; New refuses a client it can tell does not. The caller closes the
// client, after every cache that uses the store.
func New(client redis.UniversalClient, opts Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("memo/redisstore: the client is nil")
	}
	var honoured bool
	switch c := client.(type) {
	case *redis.Client:
		honoured = c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		honoured = c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		honoured = c.Options().ContextTimeoutEnabled
	default:
		honoured = true // cannot tell
	}
	if !honoured {
		return nil, errors.New("memo/redisstore: the client ignores context deadlines; create it with ContextTimeoutEnabled: true, so that a slow Redis cannot hold calls up")
	}
	if opts.KeepChanges < 0 {
		return nil, fmt.Errorf("memo/redisstore: KeepChanges must not be negative, got %d", opts.KeepChanges)
	}
	if opts.Prefix == "" {
		opts.Prefix = "memo"
	}
	if opts.KeepChanges == 0 {
		opts.KeepChanges = 10_000
	}
	return &Store{client: client, prefix: opts.Prefix, keep: opts.KeepChanges}, nil
}

// failed returns err, a failure of Redis, named as the store's; nil if err
// is nil.
func failed(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("memo/redisstore: %w", err)
}

// keys of a namespace: see the package documentation.
func (s *Store) space(ns string) string      { return s.prefix + ":{" + tag(ns) + "}:" }
func (s *Store) gen(ns string) string        { return s.space(ns) + "g" }
func (s *Store) value(ns, key string) string { return s.space(ns) + "v:" + key }
func (s *Store) lease(ns, key string) string { return s.space(ns) + "l:" + key }
func (s *Store) changes(ns string) string    { return s.space(ns) + "c" }

// tagEscaper escapes a namespace for its hash tag.
var tagEscaper = strings.NewReplacer("%", "%25", "}", "%7D")

// tag returns ns as it stands between the braces of its keys' hash tag:
// without a '}', which would end the tag early and let the keys of two
// namespaces meet, and never empty, which would make no tag at all and
// spread a namespace over slots. '%' and '}' become %25 and %7D, and the
// empty namespace %; every other namespace stands as it is.
func tag(ns string) string {
	if ns == "" {
		return "%"
	}
	return tagEscaper.Replace(ns)
}

// Get implements memo.Store. It reads the generation, the value and its
// expiry in one pipeline: no script, one round trip.
func (s *Store) Get(ctx context.Context, ns, key string) ([]byte, time.Time, bool, error) {
	vkey := s.value(ns, key)
	pipe := s.client.Pipeline()
	gen := pipe.Get(ctx, s.gen(ns))
	val := pipe.Get(ctx, vkey)
	exp := pipe.PExpireTime(ctx, vkey)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, time.Time{}, false, failed(err)
	}
	v, err := val.Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, time.Time{}, false, nil
	}
	g, gerr := gen.Result()
	if errors.Is(gerr, redis.Nil) {
		g, gerr = "0", nil
	}
	if err = cmp.Or(err, gerr, exp.Err()); err != nil {
		return nil, time.Time{}, false, failed(err)
	}
	// The value's generation must be the namespace's: an older one was
	// cleared.
	prefix, frame, ok := bytes.Cut(v, []byte{':'})
	if !ok || string(prefix) != g {
		return nil, time.Time{}, false, nil
	}
	var expires time.Time
	if at := exp.Val(); at > 0 {
		expires = time.UnixMilli(int64(at / time.Millisecond))
	}
	return frame, expires, true, nil
}

var setScript = redis.NewScript(`
local v = (redis.call('GET', KEYS[1]) or '0') .. ':' .. ARGV[1]
if ARGV[2] == '0' then
	redis.call('SET', KEYS[2], v)
else
	redis.call('SET', KEYS[2], v, 'PXAT', ARGV[2])
end
return 1
`)

// Set implements memo.Store. The value is stored under the namespace's
// current generation.
func (s *Store) Set(ctx context.Context, ns, key string, value []byte, expires time.Time) error {
	at := int64(0)
	if !expires.IsZero() {
		at = max(expires.UnixMilli(), 1)
	}
	return failed(setScript.Run(ctx, s.client, []string{s.gen(ns), s.value(ns, key)}, value, at).Err())
}

var deleteScript = redis.NewScript(`
redis.call('DEL', KEYS[1])
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'k', ARGV[1])
`)

// Delete implements memo.Store.
func (s *Store) Delete(ctx context.Context, ns, key string) error {
	return failed(deleteScript.Run(ctx, s.client, []string{s.value(ns, key), s.changes(ns)}, key, s.keep).Err())
}

var clearScript = redis.NewScript(`
redis.call('INCR', KEYS[1])
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'all', '1')
`)

// Clear implements memo.Store: it moves the namespace to a new generation,
// then deletes the old values it can reach within ctx (see the package
// documentation).
func (s *Store) Clear(ctx context.Context, ns string) error {
	if err := clearScript.Run(ctx, s.client, []string{s.gen(ns), s.changes(ns)}, s.keep).Err(); err != nil {
		return failed(err)
	}
	s.sweep(ctx, ns)
	return nil
}

// sweep deletes the values of ns with an incremental SCAN on the node that
// holds the namespace's slot, until done or ctx ends. Values of the new
// generation written meanwhile may go too: they are only misses.
func (s *Store) sweep(ctx context.Context, ns string) {
	var node redis.Cmdable = s.client
	if c, ok := s.client.(*redis.ClusterClient); ok {
		n, err := c.MasterForKey(ctx, s.gen(ns))
		if err != nil {
			return
		}
		node = n
	}
	match := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`).Replace(s.space(ns)+"v:") + "*"
	var cursor uint64
	for {
		keys, next, err := node.Scan(ctx, cursor, match, 500).Result()
		if err != nil {
			return
		}
		if len(keys) > 0 && node.Unlink(ctx, keys...).Err() != nil {
			return
		}
		if cursor = next; cursor == 0 {
			return
		}
	}
}

var leaseScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// Lease implements memo.Store.
func (s *Store) Lease(ctx context.Context, ns, key, token string, d time.Duration) (bool, error) {
	n, err := leaseScript.Run(ctx, s.client, []string{s.lease(ns, key)}, token, max(d.Milliseconds(), 1)).Int()
	if err != nil {
		return false, failed(err)
	}
	return n == 1, nil
}

var unleaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// Unlease implements memo.Store.
func (s *Store) Unlease(ctx context.Context, ns, key, token string) error {
	return failed(unleaseScript.Run(ctx, s.client, []string{s.lease(ns, key)}, token).Err())
}

// Cursors are stream entry IDs, milliseconds and sequence number packed as
// ms<<seqBits | seq, plus one, so that no cursor is 0.
const seqBits = 20

// packID returns the cursor after stream entry id, and false for an ID it
// cannot pack.
func packID(id string) (uint64, bool) {
	msText, seqText, ok := strings.Cut(id, "-")
	if !ok {
		return 0, false
	}
	ms, err1 := strconv.ParseUint(msText, 10, 64)
	seq, err2 := strconv.ParseUint(seqText, 10, 64)
	if err1 != nil || err2 != nil || seq >= 1<<seqBits || ms >= 1<<(64-seqBits-1) {
		return 0, false
	}
	return (ms<<seqBits | seq) + 1, true
}

// unpackID returns the stream entry ID cursor was made from.
func unpackID(cursor uint64) string {
	c := cursor - 1
	return strconv.FormatUint(c>>seqBits, 10) + "-" + strconv.FormatUint(c&(1<<seqBits-1), 10)
}

// Changes implements memo.Store.
func (s *Store) Changes(ctx context.Context, ns string, cursor uint64) (keys []string, all bool, next uint64, err error) {
	stream := s.changes(ns)
	if cursor == 0 {
		last, err := s.client.XRevRangeN(ctx, stream, "+", "-", 1).Result()
		if err != nil {
			return nil, false, 0, failed(err)
		}
		if len(last) == 0 {
			return nil, false, 1, nil // after 0-0
		}
		next, ok := packID(last[0].ID)
		if !ok {
			return nil, false, 1, nil // unreadable IDs: read everything
		}
		return nil, false, next, nil
	}
	next = cursor
	after := unpackID(cursor)
	for {
		entries, err := s.client.XRangeN(ctx, stream, "("+after, "+", 1000).Result()
		if err != nil {
			return nil, false, 0, failed(err)
		}
		for _, e := range entries {
			if k, ok := e.Values["k"].(string); ok {
				keys = append(keys, k)
			} else {
				all = true
			}
			after = e.ID
			var ok bool
			if next, ok = packID(e.ID); !ok {
				return nil, true, cursor, nil
			}
		}
		if len(entries) < 1000 {
			break
		}
	}
	// Read after the entries: deletions trimmed meanwhile are then seen as
	// lost, never missed.
	info, err := s.client.XInfoStream(ctx, stream).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return keys, all, next, nil
		}
		return nil, false, 0, failed(err)
	}
	// Entries were trimmed (more were added than are left), and the oldest
	// left is newer than the old cursor: what came between is lost.
	if first, ok := packID(info.FirstEntry.ID); info.EntriesAdded > info.Length && (!ok || first > cursor) {
		all = true
	}
	return keys, all, next, nil
}
