package redisstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// streamPos is where a reader of a namespace's deletions left off: the last
// entry ID it read of each group's stream. A memo cursor names one.
type streamPos struct {
	ns   string
	ids  []streamID
	used uint64 // the Store's uses count at its last use
}

// maxCursors is the most cursors a Store keeps; past it, the least recently
// used half goes. A cache holds one cursor per namespace, the one it used
// last, so they are far fewer, and only one that a cache has not used for
// thousands of readings can be lost (which reads as lost changes).
const maxCursors = 4096

// streamID is a stream entry ID, milliseconds and sequence number.
type streamID struct{ ms, seq uint64 }

// parseID parses a stream entry ID; ok is false for a malformed one.
func parseID(id string) (streamID, bool) {
	msText, seqText, ok := strings.Cut(id, "-")
	ms, err1 := strconv.ParseUint(msText, 10, 64)
	seq, err2 := strconv.ParseUint(seqText, 10, 64)
	return streamID{ms, seq}, ok && err1 == nil && err2 == nil
}

func (id streamID) String() string {
	return strconv.FormatUint(id.ms, 10) + "-" + strconv.FormatUint(id.seq, 10)
}

func (id streamID) after(o streamID) bool {
	return id.ms > o.ms || id.ms == o.ms && id.seq > o.seq
}

// streamScript reads a group's stream: the entries after ID ARGV[1] (none
// if ARGV[1] is empty), at most ARGV[2], and the stream's state, read after
// them, so that deletions trimmed meanwhile are seen as lost, never missed:
// its length, entries ever added, first entry's ID and last one's. (A
// script rather than XINFO STREAM in a pipeline, so that a Cluster client
// sends it to the key's master.)
var streamScript = redis.NewScript(`
local entries = {}
if ARGV[1] ~= '' then
	entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
end
if redis.call('EXISTS', KEYS[1]) == 0 then return {entries, 0, 0, '0-0', '0-0'} end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local h = {}
for i = 1, #info, 2 do h[info[i]] = info[i + 1] end
local first = h['first-entry']
if first then first = first[1] else first = '0-0' end
return {entries, h['length'], h['entries-added'], first, h['last-generated-id']}
`)

// groupRead is what streamScript returns about one group.
type groupRead struct {
	keys          []string // the keys of the entries read
	all           bool     // an entry read is a Clear
	last          streamID // the last entry read, if any
	read          int      // entries read
	length, added int64
	first, newest streamID // the stream's first entry and last added
}

// readGroups runs streamScript on the given groups of ns, in one pipeline,
// reading after the IDs after (every group's; the streams' state only if
// nil), at most batch entries each.
func (s *Store) readGroups(ctx context.Context, ns string, groups []int, after []streamID, batch int) ([]groupRead, error) {
	run := func(eval func(ctx context.Context, c redis.Scripter, keys []string, args ...any) *redis.Cmd) ([]*redis.Cmd, error) {
		pipe := s.client.Pipeline()
		cmds := make([]*redis.Cmd, len(groups))
		for j, i := range groups {
			from := ""
			if after != nil {
				from = after[i].String()
			}
			cmds[j] = eval(ctx, pipe, []string{s.groupNames(ns, i, "").changes()}, from, batch)
		}
		_, err := pipe.Exec(ctx)
		return cmds, err
	}
	cmds, err := run(streamScript.EvalSha)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		cmds, err = run(streamScript.Eval) // loads it
	}
	if err != nil {
		return nil, failed(err)
	}
	reads := make([]groupRead, len(groups))
	for j, cmd := range cmds {
		if err := reads[j].parse(cmd.Val()); err != nil {
			return nil, failed(err)
		}
	}
	return reads, nil
}

// parse reads v, streamScript's answer, into r.
func (r *groupRead) parse(v any) error {
	malformed := fmt.Errorf("the stream reading %v is malformed", v)
	parts, ok := v.([]any)
	if !ok || len(parts) != 5 {
		return malformed
	}
	entries, ok1 := parts[0].([]any)
	length, ok2 := parts[1].(int64)
	added, ok3 := parts[2].(int64)
	firstText, ok4 := parts[3].(string)
	newestText, ok5 := parts[4].(string)
	first, ok6 := parseID(firstText)
	newest, ok7 := parseID(newestText)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) {
		return malformed
	}
	r.length, r.added, r.first, r.newest, r.read = length, added, first, newest, len(entries)
	for _, e := range entries {
		// An entry is its ID and its fields and values.
		pair, ok := e.([]any)
		if !ok || len(pair) != 2 {
			return malformed
		}
		idText, ok1 := pair[0].(string)
		fields, ok2 := pair[1].([]any)
		id, ok3 := parseID(idText)
		if !(ok1 && ok2 && ok3) || len(fields) != 2 {
			return malformed
		}
		if k, ok := fields[1].(string); ok && fields[0] == "k" {
			r.keys = append(r.keys, k)
		} else {
			r.all = true
		}
		r.last = id
	}
	return nil
}

// trimmed reports whether entries after ID from may be gone from the
// stream: it was trimmed (more were added than are left), and the oldest
// entry left, or for an empty stream the last one added, is newer than from.
func (r *groupRead) trimmed(from streamID) bool {
	if r.added <= r.length {
		return false
	}
	if r.length == 0 {
		return r.newest.after(from)
	}
	return r.first.after(from)
}

// Changes implements memo.Store. It reads every group's stream after the
// cursor's IDs, in one pipeline of one script per group. A reading that
// finds nothing returns the cursor it was given.
func (s *Store) Changes(ctx context.Context, ns string, cursor uint64) (keys []string, all bool, next uint64, err error) {
	every := make([]int, s.groups)
	for i := range every {
		every[i] = i
	}
	from := s.cursor(ns, cursor)
	if from == nil {
		// The present, from the streams' states; for a cursor not known,
		// lost changes.
		reads, err := s.readGroups(ctx, ns, every, nil, 0)
		if err != nil {
			return nil, false, 0, err
		}
		ids := make([]streamID, s.groups)
		for i, r := range reads {
			ids[i] = r.newest
		}
		return nil, cursor != 0, s.newCursor(ns, ids), nil
	}
	const batch = 1000
	ids := append([]streamID(nil), from...)
	moved := false
	for pending := every; len(pending) > 0; {
		reads, err := s.readGroups(ctx, ns, pending, ids, batch)
		if err != nil {
			return nil, false, 0, err
		}
		var more []int // the groups with more to read
		for j, i := range pending {
			r := &reads[j]
			keys = append(keys, r.keys...)
			all = all || r.all || r.trimmed(from[i])
			if r.read > 0 {
				ids[i], moved = r.last, true
			}
			if r.read == batch {
				more = append(more, i)
			}
		}
		pending = more
	}
	if !moved && !all {
		return nil, false, cursor, nil
	}
	return keys, all, s.newCursor(ns, ids), nil
}

// cursor returns the IDs cursor stands for in ns, or nil for 0 or a cursor
// the Store does not know.
func (s *Store) cursor(ns string, cursor uint64) []streamID {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	pos := s.cursors[cursor]
	if pos == nil || pos.ns != ns {
		return nil
	}
	s.uses++
	pos.used = s.uses
	return pos.ids
}

// newCursor returns a new cursor standing for ids in ns, making room for it
// if the Store keeps maxCursors already.
func (s *Store) newCursor(ns string, ids []streamID) uint64 {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if len(s.cursors) >= maxCursors {
		// Drop those used less recently than the median.
		used := make([]uint64, 0, len(s.cursors))
		for _, pos := range s.cursors {
			used = append(used, pos.used)
		}
		median := quickMedian(used)
		for c, pos := range s.cursors {
			if pos.used <= median {
				delete(s.cursors, c)
			}
		}
	}
	s.uses++
	for {
		c := rand.Uint64()
		if _, taken := s.cursors[c]; c != 0 && !taken {
			s.cursors[c] = &streamPos{ns: ns, ids: ids, used: s.uses}
			return c
		}
	}
}

// quickMedian returns the median of xs, reordering them.
func quickMedian(xs []uint64) uint64 {
	k := len(xs) / 2
	for lo, hi := 0, len(xs)-1; lo < hi; {
		p := xs[(lo+hi)/2]
		i, j := lo, hi
		for i <= j {
			for xs[i] < p {
				i++
			}
			for xs[j] > p {
				j--
			}
			if i <= j {
				xs[i], xs[j] = xs[j], xs[i]
				i, j = i+1, j-1
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return xs[k]
		}
	}
	return xs[k]
}

// Notify implements memo.Notifier: c is sent a value at once, for what was
// deleted before the subscription, then whenever a message arrives on ns's
// channel, and when the Store subscribes to it (again, after a dropped
// connection). The first Notify opens the Store's pub/sub
// connection; the last stop closes it.
func (s *Store) Notify(ns string, c chan<- struct{}) (stop func()) {
	ch := s.channel(ns)
	key := &c
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.watchers == nil {
		s.watchers = map[string]map[*chan<- struct{}]struct{}{}
	}
	fresh := s.watchers[ch] == nil
	if fresh {
		s.watchers[ch] = map[*chan<- struct{}]struct{}{}
	}
	s.watchers[ch][key] = struct{}{}
	select { // for what was deleted before the subscription
	case c <- struct{}{}:
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	switch {
	case s.pubsub == nil:
		// The channel is subscribed to even if Redis does not answer now:
		// go-redis subscribes again on every new connection.
		s.pubsub = s.client.Subscribe(ctx, ch)
		s.received = make(chan struct{})
		go s.receive(s.pubsub.ChannelWithSubscriptions(), s.received)
	case fresh:
		s.pubsub.Subscribe(ctx, ch)
	}
	return func() {
		s.wmu.Lock()
		if _, ok := s.watchers[ch][key]; !ok {
			s.wmu.Unlock()
			return // stopped already
		}
		delete(s.watchers[ch], key)
		if len(s.watchers[ch]) == 0 {
			delete(s.watchers, ch) // its channel stays subscribed, unused, until the last stop
		}
		var ps *redis.PubSub
		var received chan struct{}
		if len(s.watchers) == 0 {
			ps, received = s.pubsub, s.received
			s.pubsub, s.received = nil, nil
		}
		s.wmu.Unlock()
		if ps != nil {
			// Outside the lock, which the reader takes for each message.
			ps.Close()
			<-received
		}
	}
}

// receive passes the messages and subscriptions of msgs on to the watchers
// of their channels, until msgs is closed, then closes done.
func (s *Store) receive(msgs <-chan any, done chan<- struct{}) {
	defer close(done)
	for m := range msgs {
		var ch string
		switch m := m.(type) {
		case *redis.Message:
			ch = m.Channel
		case *redis.Subscription:
			ch = m.Channel
		default:
			continue
		}
		s.wmu.Lock()
		for c := range s.watchers[ch] {
			select {
			case *c <- struct{}{}:
			default:
			}
		}
		s.wmu.Unlock()
	}
}
