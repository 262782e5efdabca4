package redisstore

import (
	"context"
	"errors"
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

// Changes implements memo.Store. It reads every group's stream after the
// cursor's IDs (one pipeline), and then each stream's state, so that
// deletions trimmed meanwhile are seen as lost, never missed. A reading that
// finds nothing returns the cursor it was given.
func (s *Store) Changes(ctx context.Context, ns string, cursor uint64) (keys []string, all bool, next uint64, err error) {
	from := s.cursor(ns, cursor)
	if from == nil {
		// The current IDs, from the streams' states; for a cursor not
		// known, lost changes.
		ids, err := s.lastIDs(ctx, ns)
		if err != nil {
			return nil, false, 0, err
		}
		return nil, cursor != 0, s.newCursor(ns, ids), nil
	}
	const batch = 1000
	ids := append([]streamID(nil), from...)
	pending := make([]int, s.groups) // the groups still to read
	for i := range pending {
		pending[i] = i
	}
	moved := false
	for len(pending) > 0 {
		pipe := s.client.Pipeline()
		ranges := make([]*redis.XMessageSliceCmd, len(pending))
		infos := make([]*redis.XInfoStreamCmd, len(pending))
		for j, i := range pending {
			stream := s.groupNames(ns, i, "").changes
			ranges[j] = pipe.XRangeN(ctx, stream, "("+ids[i].String(), "+", batch)
			infos[j] = pipe.XInfoStream(ctx, stream)
		}
		pipe.Exec(ctx) // errors are read command by command
		var more []int
		for j, i := range pending {
			entries, err := ranges[j].Result()
			if err != nil {
				return nil, false, 0, failed(err)
			}
			for _, e := range entries {
				if k, ok := e.Values["k"].(string); ok {
					keys = append(keys, k)
				} else {
					all = true
				}
				id, ok := parseID(e.ID)
				if !ok {
					return nil, false, 0, failed(errors.New("the stream entry ID " + e.ID + " is malformed"))
				}
				ids[i], moved = id, true
			}
			info, err := infos[j].Result()
			switch {
			case err != nil && strings.Contains(err.Error(), "no such key"):
			case err != nil:
				return nil, false, 0, failed(err)
			case trimmed(info, from[i]):
				all = true
			}
			if len(entries) == batch {
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

// trimmed reports whether entries after ID from may be gone from the
// stream: it was trimmed (more were added than are left), and the oldest
// entry left, or for an empty stream the last one added, is newer than from.
func trimmed(info *redis.XInfoStream, from streamID) bool {
	if info.EntriesAdded <= info.Length {
		return false
	}
	first := info.FirstEntry.ID
	if info.Length == 0 {
		first = info.LastGeneratedID
	}
	id, ok := parseID(first)
	return !ok || id.after(from)
}

// lastIDs returns the ID of the last entry added to each group's stream of
// ns (0-0 for a stream that does not exist).
func (s *Store) lastIDs(ctx context.Context, ns string) ([]streamID, error) {
	pipe := s.client.Pipeline()
	infos := make([]*redis.XInfoStreamCmd, s.groups)
	for i := range infos {
		infos[i] = pipe.XInfoStream(ctx, s.groupNames(ns, i, "").changes)
	}
	pipe.Exec(ctx)
	ids := make([]streamID, s.groups)
	for i, cmd := range infos {
		info, err := cmd.Result()
		if err != nil {
			if strings.Contains(err.Error(), "no such key") {
				continue
			}
			return nil, failed(err)
		}
		if ids[i], _ = parseID(info.LastGeneratedID); ids[i] == (streamID{}) && info.LastGeneratedID != "0-0" {
			return nil, failed(errors.New("the stream entry ID " + info.LastGeneratedID + " is malformed"))
		}
	}
	return ids, nil
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

// Notify implements memo.Notifier: c is sent a value whenever a message
// arrives on ns's channel, and when the Store subscribes to it again after
// a dropped connection. The first Notify opens the Store's pub/sub
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
