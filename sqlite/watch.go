package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// watchEvery is how often a Store that notifies checks its database for
// other connections' commits.
const watchEvery = 10 * time.Millisecond

// Notify implements memo.Notifier. It sends c a value at once, for what
// was deleted before it watches; then, while any cache watches, one goroutine
// reads the database's data_version every watchEvery, on a connection of
// its own (outside the pool that lookups use), which changes only when
// another connection, of this process or another, commits. Only then does it
// read the last deletion's number, and, if that moved, the namespaces
// deleted from since, and sends c a value if ns is one of them. Both are
// reads of a page or two that wait for no writer (WAL).
func (s *Store) Notify(ns string, c chan<- struct{}) (stop func()) {
	key := &c
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.watchers == nil {
		s.watchers = map[*chan<- struct{}]string{}
	}
	s.watchers[key] = ns
	select { // for what was deleted before the watcher looks
	case c <- struct{}{}:
	default:
	}
	if s.watchStop == nil {
		s.watchStop, s.watchDone = make(chan struct{}), make(chan struct{})
		go s.watch(s.watchStop, s.watchDone)
	}
	return func() {
		s.wmu.Lock()
		if _, ok := s.watchers[key]; !ok {
			s.wmu.Unlock()
			return // stopped already
		}
		delete(s.watchers, key)
		var halt, done chan struct{}
		if len(s.watchers) == 0 {
			halt, done = s.watchStop, s.watchDone
			s.watchStop, s.watchDone = nil, nil
		}
		s.wmu.Unlock()
		if halt != nil {
			close(halt)
			<-done
		}
	}
}

// watch checks the database every watchEvery until stop is closed, then
// closes done.
func (s *Store) watch(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	ticker := time.NewTicker(watchEvery)
	defer ticker.Stop()
	var db *sql.DB       // the watcher's own
	var of *handle       // the store's handle when db was opened
	version := int64(-1) // data_version at the last check
	last := int64(-1)    // the last deletion's number at the last check
	defer func() {
		if db != nil {
			db.Close()
		}
	}()
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
		}
		s.mu.RLock()
		current, closed := s.db, s.closed
		s.mu.RUnlock()
		if closed {
			continue
		}
		if current != of || db == nil {
			// A new database (after recovery from corruption): watch it.
			if db != nil {
				db.Close()
			}
			var err error
			if db, err = s.connect(); err != nil {
				db = nil
				continue
			}
			db.SetMaxOpenConns(1)
			of, version, last = current, -1, -1
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		first := last < 0
		changed, err := s.deletedSince(ctx, db, &version, &last)
		cancel()
		if err != nil {
			db.Close()
			db = nil
			continue
		}
		s.wake(changed, first)
	}
}

// deletedSince reads db's data_version and, if it moved since *version, the last
// deletion's number; if that moved since *last, it returns the namespaces
// deleted from since. It moves both on.
func (s *Store) deletedSince(ctx context.Context, db *sql.DB, version, last *int64) (namespaces []string, err error) {
	var v int64
	if err := db.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		return nil, err
	}
	if v == *version {
		return nil, nil
	}
	*version = v
	var seq int64
	if err := db.QueryRowContext(ctx, "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)").Scan(&seq); err != nil {
		return nil, err
	}
	if *last < 0 || seq == *last {
		*last = seq
		return nil, nil
	}
	rows, err := db.QueryContext(ctx, "SELECT DISTINCT ns FROM changes WHERE seq > ?", *last)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var ns string
		if err := rows.Scan(&ns); err != nil {
			return nil, err
		}
		namespaces = append(namespaces, ns)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	*last = seq
	return namespaces, nil
}

// wake sends a value, without blocking, to the watchers of the
// namespaces, or to every watcher if all: after the watcher's first look at
// a database, for what was deleted before it looked.
func (s *Store) wake(namespaces []string, all bool) {
	if len(namespaces) == 0 && !all {
		return
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for c, ns := range s.watchers {
		if all {
			select {
			case *c <- struct{}{}:
			default:
			}
			continue
		}
		for _, deleted := range namespaces {
			if ns == deleted {
				select {
				case *c <- struct{}{}:
				default:
				}
				break
			}
		}
	}
}
