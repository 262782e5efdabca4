// Package redisstore is a memo.Store on Redis, through go-redis's
// UniversalClient, so a single server, Sentinel and Cluster all work from the
// same code: the processes of several machines share a memoized function's
// results and its executions in progress, and learn of each other's
// deletions within milliseconds.
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
// A namespace ns (memo's Sharing.Namespace(): name/version) is split into G
// groups (Options.Groups, 64 by default), so that on a Redis Cluster one
// memoized function's values and traffic spread over every master, while
// every operation (a Lua script, or for Get a pipeline) touches the keys of
// one hash slot only. A key KEY (memo's key encoding) belongs to group
// FNV-1a-64(KEY) mod G, and the keys of group i start with
//
//	Prefix:{ns#G.i.n}:
//
// where the hash tag's n is the least number from 0 up that puts the group
// in the i-th of G equal ranges of the 16384 hash slots, so that the groups
// fall on the masters in proportion to the slots each holds, for every
// namespace (n is 0 for a namespace with a brace, whose groups then share a
// slot). Under that start:
//
//	g        the group's generation, a counter; Clear increments it
//	v:KEY    the value for KEY: "GEN:" then memo's frame, expiring with the value
//	         (PXAT); a value of an older generation than its group's is a miss
//	l:KEY    the lease on KEY: the token of the process computing it, expiring
//	         with the lease
//	c        a stream of the group's deletions (field k: a key; field all: a
//	         Clear), trimmed to about Options.KeepChanges entries
//
// G is part of every key's name, so stores opened with different Groups
// never read each other's data: it is as if they had different Prefixes.
// Every process that shares a namespace must use the same Prefix and Groups.
//
// Clear increments every group's generation, one script per group sent in
// one pipeline, and returns once all of them have run. That keeps Clear one
// step for readers: a Get reads its group's generation with the value, in
// the same slot, so a Get that starts after Clear returned finds the new
// generation whichever group it reads, and no value from before the Clear
// is served. (A Get that overlaps the Clear may be served an old value from
// a group not yet incremented, as it may be served one while a single
// increment is in flight.) A Clear that fails part way returns the error,
// having cleared some groups. Clear is G increments whatever the size of
// the namespace, and never uses KEYS or FLUSHDB; it then deletes the
// namespace's old values with an incremental SCAN of every master for as
// long as its context allows, and the values it does not reach are never
// served again and go when they expire, are overwritten or are evicted by
// Redis's maxmemory policy.
//
// # Deletions
//
// Changes reads every group's stream, one script per group (the entries
// after the cursor, then the stream's state) sent in one pipeline. A memo
// cursor stands for one stream entry ID per group, kept by the Store in
// memory (at most 4096 cursors, the least recently used going first); a cursor
// the Store no longer knows (another Store's, or one not used for a long
// time) reads as lost changes, and so does a group whose stream was trimmed
// past the cursor: memo then drops everything it holds in memory for the
// namespace.
//
// The Store also implements memo.Notifier through Redis pub/sub: Delete and
// Clear publish on the channel Prefix:deleted:ns (a Delete from its script,
// in the same step as the deletion), and a Store subscribes, on one
// connection, to the channels of the namespaces whose caches are open, so
// that their pollers read Changes as soon as another process deletes. Pub/sub
// because it reaches every subscriber from one connection on a single server,
// behind Sentinel and on a Cluster (where a message published on one master
// reaches the subscribers of all): a blocking XREAD would need a connection
// per group on a Cluster, where one command cannot read streams in different
// slots, and client tracking would report every overwritten value and needs
// RESP3 and a connection per master. A message lost to a dropped connection
// is caught by memo's poll (Sharing.Poll); a resubscription after a dropped
// connection notifies every namespace, since messages may have been lost.
package redisstore

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gomemo/memo"
	"github.com/redis/go-redis/v9"
)

// Options configure a Store. Zero values read as the defaults.
type Options struct {
	// Prefix starts every key the store writes ("memo" by default). It
	// must not hold a brace, which would change the keys' hash slots.
	Prefix string
	// Groups is the number of groups each namespace is split into (64 by
	// default, at most 1024): on a Cluster, a namespace's values spread over
	// up to this many slots. It is part of the layout (see the package
	// documentation): stores with different Groups share nothing.
	Groups int
	// KeepChanges is about how many deletions the store keeps for other
	// processes to read, per group (10000 by default). A process that falls
	// further behind drops everything it holds in memory instead.
	KeepChanges int64
}

// The defaults of Options' zero fields and the limits of Groups.
const (
	defaultGroups = 64
	maxGroups     = 1024
	defaultKeep   = 10_000
)

// Store is a memo.Store on Redis, and a memo.Notifier. It is safe for
// concurrent use.
type Store struct {
	client redis.UniversalClient
	prefix string
	groups int
	keep   int64

	spaces sync.Map // ns → *space, the hash tags of its groups

	cmu     sync.Mutex            // guards cursors and uses
	cursors map[uint64]*streamPos // see Changes
	uses    uint64                // counts the cursors' uses, for their eviction

	wmu      sync.Mutex                               // guards what follows, for Notify
	watchers map[string]map[*chan<- struct{}]struct{} // channel → the caches' channels
	pubsub   *redis.PubSub                            // nil while nothing is watched
	received chan struct{}                            // closed when pubsub's reader has returned
}

var (
	_ memo.Store    = (*Store)(nil)
	_ memo.Notifier = (*Store)(nil)
)

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
	switch {
	case !honoured:
		return nil, errors.New("memo/redisstore: the client ignores context deadlines; create it with ContextTimeoutEnabled: true, so that a slow Redis cannot hold calls up")
	case opts.KeepChanges < 0:
		return nil, fmt.Errorf("memo/redisstore: KeepChanges must not be negative, got %d", opts.KeepChanges)
	case opts.Groups < 0 || opts.Groups > maxGroups:
		return nil, fmt.Errorf("memo/redisstore: Groups must be from 1 to %d (0 for the default, %d), got %d", maxGroups, defaultGroups, opts.Groups)
	case strings.ContainsAny(opts.Prefix, "{}"):
		return nil, fmt.Errorf("memo/redisstore: the Prefix %q holds a brace, which would change the hash slots of the store's keys", opts.Prefix)
	}
	return &Store{
		client:  client,
		prefix:  cmp.Or(opts.Prefix, "memo"),
		groups:  cmp.Or(opts.Groups, defaultGroups),
		keep:    cmp.Or(opts.KeepChanges, defaultKeep),
		cursors: map[uint64]*streamPos{},
	}, nil
}

// failed returns err, a failure of Redis, named as the store's; nil if err
// is nil.
func failed(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("memo/redisstore: %w", err)
}

// space is a namespace's groups: the start of each group's keys.
type space struct{ groups []string }

// space returns the groups of ns, working them out the first time.
func (s *Store) space(ns string) *space {
	if sp, ok := s.spaces.Load(ns); ok {
		return sp.(*space)
	}
	sp := &space{groups: make([]string, s.groups)}
	for i := range sp.groups {
		lo, hi := i*slots/s.groups, (i+1)*slots/s.groups
		start := func(n int) string {
			return s.prefix + ":{" + ns + "#" + strconv.Itoa(s.groups) + "." + strconv.Itoa(i) + "." + strconv.Itoa(n) + "}:"
		}
		sp.groups[i] = start(0)
		for n := range 100 * s.groups { // each try hits with odds 1/groups
			if slot := slotOf(start(n)); lo <= slot && slot < hi {
				sp.groups[i] = start(n)
				break
			}
		}
	}
	actual, _ := s.spaces.LoadOrStore(ns, sp)
	return actual.(*space)
}

// group returns the group of key, of the store's groups.
func (s *Store) group(key string) int {
	h := fnv.New64a()
	h.Write([]byte(key))
	return int(h.Sum64() % uint64(s.groups))
}

// names names the Redis keys that hold one key of a namespace: its group's
// start, and the key.
type names struct{ start, key string }

func (n names) gen() string     { return n.start + "g" }
func (n names) value() string   { return n.start + "v:" + n.key }
func (n names) lease() string   { return n.start + "l:" + n.key }
func (n names) changes() string { return n.start + "c" }

// names returns the names of the Redis keys of key in ns: see the package
// documentation. Every command about key uses these.
func (s *Store) names(ns, key string) names {
	return s.groupNames(ns, s.group(key), key)
}

// groupNames returns the names of the Redis keys of key in group i of ns.
func (s *Store) groupNames(ns string, i int, key string) names {
	return names{s.space(ns).groups[i], key}
}

// channel returns the pub/sub channel on which deletions from ns are
// announced.
func (s *Store) channel(ns string) string { return s.prefix + ":deleted:" + ns }

// genPrefixMax is the longest a value's generation prefix can be: a
// generation's 20 decimal digits, then a colon.
const genPrefixMax = 21

// Get implements memo.Store. It reads the group's generation, the value and
// its expiry in one pipeline: no script, one round trip. A value longer than
// memo.ReadLimit allows is not fetched: its error wraps memo.ErrValueTooLarge.
func (s *Store) Get(ctx context.Context, ns, key string) ([]byte, time.Time, bool, error) {
	pipe := s.client.Pipeline()
	read := s.read(ctx, pipe, ns, key)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, time.Time{}, false, failed(err)
	}
	return read()
}

var _ memo.BatchGetter = (*Store)(nil)

// GetBatch implements memo.BatchGetter: Get's reads of every key in one
// pipeline, one round trip (go-redis splits it by node on a cluster). A
// value longer than memo.ReadLimit allows is not fetched, and reads as
// none.
func (s *Store) GetBatch(ctx context.Context, ns string, keys []string) ([]memo.Lookup, error) {
	pipe := s.client.Pipeline()
	reads := make([]func() ([]byte, time.Time, bool, error), len(keys))
	for i, key := range keys {
		reads[i] = s.read(ctx, pipe, ns, key)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, failed(err)
	}
	out := make([]memo.Lookup, len(keys))
	for i, read := range reads {
		v, exp, found, err := read()
		if errors.Is(err, memo.ErrValueTooLarge) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[i] = memo.Lookup{Value: v, Expires: exp, Found: found}
	}
	return out, nil
}

// read queues on pipe the commands that read key in ns, and returns what
// gives Get's results from their replies once pipe has run.
func (s *Store) read(ctx context.Context, pipe redis.Pipeliner, ns, key string) func() ([]byte, time.Time, bool, error) {
	n := s.names(ns, key)
	gen := pipe.Get(ctx, n.gen())
	// Given the reader's bound, no more of the value is fetched than a
	// frame that long after its generation's prefix (at most 20 digits and
	// a colon); a stored value is never empty, so an empty range is none.
	limit, bounded := memo.ReadLimit(ctx)
	var val *redis.StringCmd
	if bounded {
		val = pipe.GetRange(ctx, n.value(), 0, int64(limit)+genPrefixMax)
	} else {
		val = pipe.Get(ctx, n.value())
	}
	exp := pipe.PExpireTime(ctx, n.value())
	return func() ([]byte, time.Time, bool, error) {
		v, err := val.Bytes()
		if errors.Is(err, redis.Nil) || err == nil && len(v) == 0 {
			return nil, time.Time{}, false, nil
		}
		g, gerr := gen.Result()
		if errors.Is(gerr, redis.Nil) {
			g, gerr = "0", nil
		}
		if err = cmp.Or(err, gerr, exp.Err()); err != nil {
			return nil, time.Time{}, false, failed(err)
		}
		// The value's generation must be the group's: an older one was
		// cleared.
		prefix, frame, ok := bytes.Cut(v, []byte{':'})
		if !ok || string(prefix) != g {
			return nil, time.Time{}, false, nil
		}
		if bounded && len(frame) > limit {
			return nil, time.Time{}, false, fmt.Errorf("memo/redisstore: %w: more than the %d bytes accepted, left unread", memo.ErrValueTooLarge, limit)
		}
		var expires time.Time
		if at := exp.Val(); at > 0 {
			expires = time.UnixMilli(int64(at / time.Millisecond))
		}
		return frame, expires, true, nil
	}
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

// Set implements memo.Store. The value is stored under its group's current
// generation.
func (s *Store) Set(ctx context.Context, ns, key string, value []byte, expires time.Time) error {
	at := int64(0)
	if !expires.IsZero() {
		at = max(expires.UnixMilli(), 1)
	}
	n := s.names(ns, key)
	return failed(setScript.Run(ctx, s.client, []string{n.gen(), n.value()}, value, at).Err())
}

var deleteScript = redis.NewScript(`
redis.call('DEL', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'k', ARGV[1])
redis.call('PUBLISH', ARGV[3], '')
return 1
`)

// Delete implements memo.Store: the value goes, the deletion is recorded in
// its group's stream and announced, in one script.
func (s *Store) Delete(ctx context.Context, ns, key string) error {
	n := s.names(ns, key)
	return failed(deleteScript.Run(ctx, s.client, []string{n.value(), n.changes()}, key, s.keep, s.channel(ns)).Err())
}

var clearScript = redis.NewScript(`
redis.call('INCR', KEYS[1])
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'all', '1')
`)

// Clear implements memo.Store: it moves every group of the namespace to a
// new generation, announces it, then deletes the old values it can reach
// within ctx (see the package documentation).
func (s *Store) Clear(ctx context.Context, ns string) error {
	pipe := s.client.Pipeline()
	for i := range s.groups {
		n := s.groupNames(ns, i, "")
		clearScript.Eval(ctx, pipe, []string{n.gen(), n.changes()}, s.keep)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return failed(err)
	}
	if err := s.client.Publish(ctx, s.channel(ns), "").Err(); err != nil {
		return failed(err) // cleared all the same; the others learn of it within Poll
	}
	s.sweep(ctx, ns)
	return nil
}

// sweep deletes the values of ns with an incremental SCAN of every master,
// until done or ctx ends. Values of the new generation written meanwhile may
// go too: they are only misses.
func (s *Store) sweep(ctx context.Context, ns string) {
	escape := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`).Replace
	match := escape(s.prefix+":{"+ns+"#"+strconv.Itoa(s.groups)+".") + "*}:v:*"
	scan := func(ctx context.Context, node redis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := node.Scan(ctx, cursor, match, 500).Result()
			if err != nil {
				return err
			}
			if len(keys) > 0 {
				// One UNLINK per key: on a Cluster they are in several slots.
				pipe := node.Pipeline()
				for _, k := range keys {
					pipe.Unlink(ctx, k)
				}
				if _, err := pipe.Exec(ctx); err != nil {
					return err
				}
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return scan(ctx, node) })
	case *redis.Ring:
		c.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error { return scan(ctx, node) })
	default:
		scan(ctx, s.client)
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
	n, err := leaseScript.Run(ctx, s.client, []string{s.names(ns, key).lease()}, token, max(d.Milliseconds(), 1)).Int()
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
	return failed(unleaseScript.Run(ctx, s.client, []string{s.names(ns, key).lease()}, token).Err())
}
