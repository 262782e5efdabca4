// Package sqlite is a memo.Store on disk: one SQLite database file in a
// directory, shared by every goroutine and every process that opens it, with
// nothing to install or run. Results survive restarts, and the processes of
// one machine (a pre-forked web server, the workers of a batch job, a program
// run again and again) compute each key once between them.
//
//	st, err := sqlite.Open(dir, sqlite.Options{MaxBytes: 256 << 20})
//	...
//	defer st.Close()
//	f, cache := memo.Memoize(render, memo.Share(memo.Sharing{Store: st, Name: "render"}))
//	defer cache.Close()
//
// The database is a pure-Go SQLite (modernc.org/sqlite) in WAL mode, so no C
// compiler is needed. Its file, dir/memo.db, is created with mode 0600.
//
// What is stored is bounded in bytes (Options.MaxBytes, keys and values
// counted) and optionally in entries, across processes: a write that goes
// past a bound evicts the least recently used entries first. Recency is
// approximate: a read records its time when the entry's last recorded use is
// more than a second old, so entries used within the same second may leave
// in either order; TestApproximateRecencyHitRatio measures what that costs
// against an exact LRU. Freed pages go back to the file system and the WAL
// is truncated after checkpoints, so the file stays near the bound. Expired
// entries are never returned, and are deleted by later writes.
//
// Faults never fail a memoized call: memo runs the function when the store
// errs. A database that is busy past its timeout, full, missing, or that
// cannot be written (its file's permissions) gives errors that memo counts
// and reports; one opened with Options.ReadOnly is a snapshot instead, and
// gives none. A file that is not a database or
// is corrupt is set aside (renamed memo.db.corrupt-<time>) and a new one is
// created, when Open finds it so or when an operation does; values whose
// bytes were damaged inside an intact database fail memo's checksum and count
// as misses.
//
// Deletions (Forget, Clear) are kept for an hour for other processes to read
// (memo.Store's Changes); a process that has not read them for longer drops
// everything it holds in memory instead. The Store is a memo.Notifier: while
// a cache is open on it, one goroutine checks the database's data_version
// every 10 ms, on a connection of its own, and tells the caches of the
// namespaces that another connection deleted from, so that another process's
// Forget or Clear reaches this one's memory within tens of milliseconds
// rather than within Sharing.Poll. No other goroutine runs in the
// background.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomemo/memo"
	sqlite "modernc.org/sqlite"
)

// Options configure a Store. Zero values read as the defaults.
type Options struct {
	// MaxBytes bounds the bytes stored, keys and values counted (1 GiB by
	// default). A value larger than the whole bound is refused.
	MaxBytes int64
	// MaxEntries bounds the number of entries; 0 means no bound but
	// MaxBytes.
	MaxEntries int64
	// ReadOnly opens the database for reading only, as a snapshot: values
	// are looked up, and Set, Delete, Clear and Unlease do nothing, while
	// Lease always grants (with nothing written, the processes of a
	// read-only store do not coordinate their executions).
	ReadOnly bool
	// BusyTimeout is how long an operation waits for another process's
	// write to finish before it fails (5s by default). memo bounds each
	// operation by its own Sharing.Timeout as well.
	BusyTimeout time.Duration

	pragmas []string // extra pragmas for every connection, for tests
}

// The defaults of Options' zero fields, and the store's fixed settings.
const (
	defaultMaxBytes    = 1 << 30
	defaultBusyTimeout = 5 * time.Second
	keepChanges        = time.Hour            // how long deletions are kept for Changes
	touchEvery         = time.Second          // the granularity of recency
	touchWait          = 5 * time.Millisecond // the longest a read waits to record its use
	recoverEvery       = 10 * time.Second     // the least time between two recoveries from corruption
	fileName           = "memo.db"
)

// Store is a memo.Store in one SQLite database. It is safe for use by many
// goroutines, and by many processes opening the same directory.
type Store struct {
	path string
	opts Options

	mu        sync.RWMutex // guards db against its replacement by recover
	db        *handle
	recovered time.Time // when recover last ran
	writes    atomic.Uint64
	closed    bool

	wmu                  sync.Mutex                  // guards what follows, for Notify
	watchers             map[*chan<- struct{}]string // the caches' channels, with their namespaces
	watchStop, watchDone chan struct{}               // nil while nothing is watched; see watch
}

var (
	_ memo.Store    = (*Store)(nil)
	_ memo.Notifier = (*Store)(nil)
)

// handle is an open database, with the statement every lookup runs prepared.
type handle struct {
	*sql.DB
	get *sql.Stmt
}

// Open opens the store in dir, creating dir (mode 0700) and the database
// (mode 0600) if they do not exist; processes may do so at the same moment
// (Open waits up to BusyTimeout for each other's locks). A database file that
// is corrupt or not a database is set aside and replaced by a new one.
func Open(dir string, opts Options) (*Store, error) {
	if opts.MaxBytes < 0 || opts.MaxEntries < 0 || opts.BusyTimeout < 0 {
		return nil, fmt.Errorf("memo/sqlite: MaxBytes, MaxEntries and BusyTimeout must not be negative, got %d, %d and %v", opts.MaxBytes, opts.MaxEntries, opts.BusyTimeout)
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = defaultMaxBytes
	}
	if opts.BusyTimeout == 0 {
		opts.BusyTimeout = defaultBusyTimeout
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("memo/sqlite: %w", err)
		}
	}
	s := &Store{path: filepath.Join(dir, fileName), opts: opts}
	db, err := s.open()
	if err != nil {
		return nil, err
	}
	s.db = db
	return s, nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Close closes the database. Calls through a memoized function that still
// uses the store go on, without it.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.db.get.Close()
	return s.db.Close()
}

// open opens the database at s.path, creating it and its tables if need be,
// or setting it aside and creating a new one if it is damaged.
func (s *Store) open() (*handle, error) {
	db, err := s.ready()
	if err == nil {
		return prepare(db)
	}
	if s.opts.ReadOnly || !damaged(err) {
		return nil, fmt.Errorf("memo/sqlite: opening %s: %w", s.path, err)
	}
	if err := s.setAside(); err != nil {
		return nil, err
	}
	db, err = s.ready()
	if err != nil {
		return nil, fmt.Errorf("memo/sqlite: creating %s after setting a damaged one aside: %w", s.path, err)
	}
	return prepare(db)
}

// ready connects to the database and checks it. While another process
// holds a lock that SQLite does not wait for (setting the journal mode of a
// new file, for one), it tries again every 10 ms, up to BusyTimeout.
func (s *Store) ready() (*sql.DB, error) {
	deadline := time.Now().Add(s.opts.BusyTimeout)
	for {
		db, err := s.connect()
		if err == nil {
			if err = s.check(db); err == nil {
				return db, nil
			}
			db.Close()
		}
		if !busy(err) || time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// busy reports whether err is SQLite's "database is locked".
func busy(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == codeBusy
}

// prepare prepares the lookup statement on db.
func prepare(db *sql.DB) (*handle, error) {
	// The value only if within the limit (-1: none); its length first,
	// which SQLite reads without the value.
	get, err := db.Prepare("SELECT CASE WHEN ?3 < 0 OR length(value) <= ?3 THEN value END, length(value), expires, used FROM entries WHERE ns = ?1 AND key = ?2")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("memo/sqlite: %w", err)
	}
	return &handle{db, get}, nil
}

// connect opens a handle on the database file, creating the file with mode
// 0600 first if it does not exist.
func (s *Store) connect() (*sql.DB, error) {
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(s.opts.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_size_limit(8388608)")
	for _, p := range s.opts.pragmas {
		q.Add("_pragma", p)
	}
	if s.opts.ReadOnly {
		q.Set("mode", "ro")
	} else {
		f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		f.Close()
		q.Set("_auto_vacuum", "INCREMENTAL")
		q.Set("_journal_mode", "WAL")
		q.Set("_synchronous", "NORMAL")
		q.Set("_txlock", "immediate")
	}
	db, err := sql.Open("sqlite", "file:"+s.path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	return db, nil
}

// schema creates the tables, once per database. totals holds the bytes and
// entries stored, kept by triggers; changes holds deletions for Changes, and
// meta the last change pruned from it.
const schema = `
CREATE TABLE IF NOT EXISTS entries (
	ns      TEXT    NOT NULL,
	key     BLOB    NOT NULL,
	value   BLOB    NOT NULL,
	size    INTEGER NOT NULL,
	expires INTEGER NOT NULL, -- Unix milliseconds; 0: never
	used    INTEGER NOT NULL, -- Unix milliseconds
	PRIMARY KEY (ns, key)
);
CREATE INDEX IF NOT EXISTS entries_used ON entries (used);
CREATE INDEX IF NOT EXISTS entries_expires ON entries (expires) WHERE expires > 0;
CREATE TABLE IF NOT EXISTS totals (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	bytes INTEGER NOT NULL,
	count INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals VALUES (1, 0, 0);
CREATE TRIGGER IF NOT EXISTS entries_insert AFTER INSERT ON entries BEGIN
	UPDATE totals SET bytes = bytes + NEW.size, count = count + 1;
END;
CREATE TRIGGER IF NOT EXISTS entries_delete AFTER DELETE ON entries BEGIN
	UPDATE totals SET bytes = bytes - OLD.size, count = count - 1;
END;
CREATE TRIGGER IF NOT EXISTS entries_update AFTER UPDATE OF size ON entries BEGIN
	UPDATE totals SET bytes = bytes - OLD.size + NEW.size;
END;
CREATE TABLE IF NOT EXISTS leases (
	ns      TEXT    NOT NULL,
	key     BLOB    NOT NULL,
	token   TEXT    NOT NULL,
	expires INTEGER NOT NULL,
	PRIMARY KEY (ns, key)
);
CREATE TABLE IF NOT EXISTS changes (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	ns  TEXT    NOT NULL,
	key BLOB,             -- NULL: the namespace was cleared
	at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('pruned', 0);
`

// check makes sure db is a sound database with memo's tables: it runs
// SQLite's quick check, then creates what is missing.
func (s *Store) check(db *sql.DB) error {
	ctx := context.Background()
	var result string
	if err := db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&result); err != nil {
		return err
	}
	if result != "ok" {
		return errCorrupt{result}
	}
	if s.opts.ReadOnly {
		var n int
		return db.QueryRowContext(ctx, "SELECT count(*) FROM totals").Scan(&n)
	}
	_, err := db.ExecContext(ctx, schema)
	return err
}

// errCorrupt is what quick_check found wrong.
type errCorrupt struct{ what string }

func (e errCorrupt) Error() string { return "the database is corrupt: " + e.what }

// SQLite's primary result codes that this store tells apart.
const (
	codeBusy    = 5
	codeCorrupt = 11
	codeNotADB  = 26
)

// damaged reports whether err says that the file is not a sound database.
func damaged(err error) bool {
	var c errCorrupt
	if errors.As(err, &c) {
		return true
	}
	var e *sqlite.Error
	if errors.As(err, &e) {
		code := e.Code() & 0xff
		return code == codeCorrupt || code == codeNotADB
	}
	return false
}

// setAside renames the damaged database, with its WAL and shared-memory
// files, so that a new one can be created in its place.
func (s *Store) setAside() error {
	aside := fmt.Sprintf("%s.corrupt-%d", s.path, time.Now().UnixNano())
	if err := os.Rename(s.path, aside); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("memo/sqlite: setting aside the damaged %s: %w", s.path, err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Rename(s.path+suffix, aside+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("memo/sqlite: setting aside the damaged %s: %w", s.path+suffix, err)
		}
	}
	return nil
}

// do runs f on the database, and recovers from a damaged one: the error is
// returned all the same, and the next operations use a new database.
func (s *Store) do(f func(db *handle) error) error {
	s.mu.RLock()
	db, closed := s.db, s.closed
	s.mu.RUnlock()
	if closed {
		return errors.New("memo/sqlite: the store is closed")
	}
	err := f(db)
	if err != nil && damaged(err) {
		s.recover(db)
	}
	if err != nil {
		return fmt.Errorf("memo/sqlite: %w", err)
	}
	return nil
}

// recover replaces db, found damaged, by a sound database, unless another
// goroutine did so already or a recovery ran less than recoverEvery ago.
func (s *Store) recover(db *handle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.db != db || time.Since(s.recovered) < recoverEvery {
		return
	}
	s.recovered = time.Now()
	db.Close()
	if fresh, err := s.open(); err == nil {
		s.db = fresh
		return
	}
	// Keep a handle, closed, so that operations fail until the next try.
	s.db = db
}

// now is the store's clock: Unix milliseconds.
func now() int64 { return time.Now().UnixMilli() }

// millis returns t as Unix milliseconds, 0 for the zero Time.
func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(t.UnixMilli(), 1)
}

// Get implements memo.Store. A hit records its time of use, at most once a
// second per entry, as the entry's recency; it fails silently where the
// database cannot be written.
func (s *Store) Get(ctx context.Context, ns, key string) (value []byte, expires time.Time, found bool, err error) {
	err = s.do(func(db *handle) error {
		var size, exp, used int64
		limit, ok := memo.ReadLimit(ctx)
		if !ok {
			limit = -1
		}
		err := db.get.QueryRowContext(ctx, ns, []byte(key), limit).Scan(&value, &size, &exp, &used)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		t := now()
		if exp != 0 && exp <= t {
			value = nil
			return nil
		}
		if limit >= 0 && size > int64(limit) {
			return fmt.Errorf("%w: %d bytes, more than the %d accepted, left unread", memo.ErrValueTooLarge, size, limit)
		}
		found = true
		if exp != 0 {
			expires = time.UnixMilli(exp)
		}
		if t-used >= touchEvery.Milliseconds() {
			s.touch(ctx, db, t, ns, []any{[]byte(key)})
		}
		return nil
	})
	return value, expires, found, err
}

// touch records t as the time of use of keys (each a []byte) in ns, unless
// the store is read-only. It fails silently where the database cannot be
// written.
func (s *Store) touch(ctx context.Context, db *handle, t int64, ns string, keys []any) {
	if s.opts.ReadOnly || len(keys) == 0 {
		return
	}
	// Recency is worth a write only if the write lock is free: a read never
	// waits on another process's write.
	tctx, cancel := context.WithTimeout(ctx, touchWait)
	defer cancel()
	for lo := 0; lo < len(keys); lo += batchMax {
		chunk := keys[lo:min(lo+batchMax, len(keys))]
		args := append([]any{t, ns}, chunk...)
		db.ExecContext(tctx, "UPDATE entries SET used = ? WHERE ns = ? AND key IN ("+params(len(chunk))+")", args...)
	}
}

var _ memo.BatchGetter = (*Store)(nil)

// batchMax is the most keys one statement of GetBatch names, well within
// SQLite's limit on a statement's parameters.
const batchMax = 500

// params returns n comma-separated SQL parameters.
func params(n int) string { return strings.Repeat("?,", n-1) + "?" }

// GetBatch implements memo.BatchGetter: one query per batchMax keys, and
// the uses recorded as Get records them, in one statement.
func (s *Store) GetBatch(ctx context.Context, ns string, keys []string) ([]memo.Lookup, error) {
	out := make([]memo.Lookup, len(keys))
	at := make(map[string][]int, len(keys)) // where each key is in keys
	for i, k := range keys {
		at[k] = append(at[k], i)
	}
	err := s.do(func(db *handle) error {
		t := now()
		var used []any // the keys whose use to record
		for lo := 0; lo < len(keys); lo += batchMax {
			chunk := keys[lo:min(lo+batchMax, len(keys))]
			args := make([]any, 1, len(chunk)+1)
			args[0] = ns
			for _, k := range chunk {
				args = append(args, []byte(k))
			}
			rows, err := db.QueryContext(ctx, "SELECT key, value, expires, used FROM entries WHERE ns = ? AND key IN ("+params(len(chunk))+")", args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var key, value []byte
				var exp, last int64
				if err := rows.Scan(&key, &value, &exp, &last); err != nil {
					rows.Close()
					return err
				}
				if exp != 0 && exp <= t {
					continue
				}
				l := memo.Lookup{Value: value, Found: true}
				if exp != 0 {
					l.Expires = time.UnixMilli(exp)
				}
				for _, i := range at[string(key)] {
					out[i] = l
				}
				if t-last >= touchEvery.Milliseconds() {
					used = append(used, key)
				}
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				return err
			}
		}
		s.touch(ctx, db, t, ns, used)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Set implements memo.Store. It evicts the least recently used entries past
// the bounds, in the same transaction, and every so often deletes expired
// entries, ended leases and old deletions.
func (s *Store) Set(ctx context.Context, ns, key string, value []byte, expires time.Time) error {
	return s.SetBatch(ctx, ns, []memo.Entry{{Key: key, Value: value, Expires: expires}})
}

var _ memo.BatchSetter = (*Store)(nil)

// SetBatch implements memo.BatchSetter: Set for every entry, in one
// transaction. An entry larger than MaxBytes fails the call, and nothing is
// written.
func (s *Store) SetBatch(ctx context.Context, ns string, entries []memo.Entry) error {
	if s.opts.ReadOnly {
		return nil
	}
	for _, e := range entries {
		if size := int64(len(e.Key) + len(e.Value)); size > s.opts.MaxBytes {
			return fmt.Errorf("memo/sqlite: an entry of %d bytes is larger than MaxBytes (%d)", size, s.opts.MaxBytes)
		}
	}
	evicted := false
	err := s.do(func(db *handle) error {
		return tx(ctx, db.DB, func(tx *sql.Tx) error {
			t := now()
			for _, e := range entries {
				if _, err := tx.ExecContext(ctx, `INSERT INTO entries (ns, key, value, size, expires, used) VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, size = excluded.size, expires = excluded.expires, used = excluded.used`,
					ns, []byte(e.Key), e.Value, len(e.Key)+len(e.Value), millis(e.Expires), t); err != nil {
					return err
				}
				if s.writes.Add(1)%64 == 1 {
					if err := sweep(ctx, tx, t); err != nil {
						return err
					}
				}
			}
			for {
				var bytes, count int64
				if err := tx.QueryRowContext(ctx, "SELECT bytes, count FROM totals").Scan(&bytes, &count); err != nil {
					return err
				}
				n := s.excess(bytes, count)
				if n == 0 {
					return nil
				}
				// The entries just written are the most recently used, so
				// they go last, the last written last of all.
				if _, err := tx.ExecContext(ctx, "DELETE FROM entries WHERE rowid IN (SELECT rowid FROM entries ORDER BY used, rowid LIMIT ?)", n); err != nil {
					return err
				}
				evicted = true
			}
		})
	})
	if err == nil && evicted {
		// Give freed pages back to the file system; a failure here only
		// leaves the file larger.
		s.do(func(db *handle) error {
			_, err := db.ExecContext(ctx, "PRAGMA incremental_vacuum")
			return err
		})
	}
	return err
}

// excess returns how many of the least recently used entries to evict, in a
// store holding bytes in count entries: enough for the entry bound, and for
// the byte bound as entries of average size go. The caller evicts again if
// that was not enough, so a bound lowered a lot is met in a few rounds.
func (s *Store) excess(bytes, count int64) int64 {
	var n int64
	if m := s.opts.MaxEntries; m > 0 && count > m {
		n = count - m
	}
	if over := bytes - s.opts.MaxBytes; over > 0 && count > 0 {
		n = max(n, over/max(bytes/count, 1)+1)
	}
	return max(min(n, count-1), 0) // never the entry just written
}

// sweep deletes expired entries, ended leases and deletions older than
// keepChanges, recording the last deletion pruned.
func sweep(ctx context.Context, tx *sql.Tx, t int64) error {
	for _, q := range []string{
		"DELETE FROM entries WHERE expires > 0 AND expires <= ?",
		"DELETE FROM leases WHERE expires <= ?",
	} {
		if _, err := tx.ExecContext(ctx, q, t); err != nil {
			return err
		}
	}
	old := t - keepChanges.Milliseconds()
	if _, err := tx.ExecContext(ctx, "UPDATE meta SET value = max(value, (SELECT coalesce(max(seq), 0) FROM changes WHERE at < ?)) WHERE name = 'pruned'", old); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, "DELETE FROM changes WHERE at < ?", old)
	return err
}

// tx runs f in a transaction, which takes the write lock at once.
func tx(ctx context.Context, db *sql.DB, f func(*sql.Tx) error) error {
	t, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(t); err != nil {
		t.Rollback()
		return err
	}
	return t.Commit()
}

// Delete implements memo.Store.
func (s *Store) Delete(ctx context.Context, ns, key string) error {
	if s.opts.ReadOnly {
		return nil
	}
	return s.do(func(db *handle) error {
		return tx(ctx, db.DB, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, "DELETE FROM entries WHERE ns = ? AND key = ?", ns, []byte(key)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, "INSERT INTO changes (ns, key, at) VALUES (?, ?, ?)", ns, []byte(key), now())
			return err
		})
	})
}

// Clear implements memo.Store.
func (s *Store) Clear(ctx context.Context, ns string) error {
	if s.opts.ReadOnly {
		return nil
	}
	return s.do(func(db *handle) error {
		return tx(ctx, db.DB, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, "DELETE FROM entries WHERE ns = ?", ns); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, "INSERT INTO changes (ns, key, at) VALUES (?, NULL, ?)", ns, now())
			return err
		})
	})
}

// Lease implements memo.Store.
func (s *Store) Lease(ctx context.Context, ns, key, token string, d time.Duration) (bool, error) {
	if s.opts.ReadOnly {
		return true, nil
	}
	var owner bool
	err := s.do(func(db *handle) error {
		t := time.Now()
		// The lease's end in whole milliseconds, rounded up, so that it is
		// never taken before d has passed.
		end := (t.Add(max(d, time.Millisecond)).UnixNano() + int64(time.Millisecond) - 1) / int64(time.Millisecond)
		r, err := db.ExecContext(ctx, `INSERT INTO leases (ns, key, token, expires) VALUES (?, ?, ?, ?)
			ON CONFLICT (ns, key) DO UPDATE SET token = excluded.token, expires = excluded.expires
			WHERE leases.expires <= ? OR leases.token = excluded.token`,
			ns, []byte(key), token, end, t.UnixMilli())
		if err != nil {
			return err
		}
		n, err := r.RowsAffected()
		owner = n == 1
		return err
	})
	return owner, err
}

// Unlease implements memo.Store.
func (s *Store) Unlease(ctx context.Context, ns, key, token string) error {
	if s.opts.ReadOnly {
		return nil
	}
	return s.do(func(db *handle) error {
		_, err := db.ExecContext(ctx, "DELETE FROM leases WHERE ns = ? AND key = ? AND token = ?", ns, []byte(key), token)
		return err
	})
}

// Changes implements memo.Store. Cursors are the sequence number of the next
// deletion.
func (s *Store) Changes(ctx context.Context, ns string, cursor uint64) (keys []string, all bool, next uint64, err error) {
	err = s.do(func(db *handle) error {
		keys, all, next = nil, false, cursor
		if cursor == 0 {
			var last int64
			err := db.QueryRowContext(ctx, "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)").Scan(&last)
			next = uint64(last) + 1
			return err
		}
		rows, err := db.QueryContext(ctx, "SELECT seq, ns = ?, key IS NULL, key FROM changes WHERE seq >= ? ORDER BY seq", ns, int64(cursor))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var seq int64
			var mine, cleared bool
			var key []byte
			if err := rows.Scan(&seq, &mine, &cleared, &key); err != nil {
				return err
			}
			next = uint64(seq) + 1
			switch {
			case !mine:
			case cleared: // not key == nil, which an empty key reads as
				all = true
			default:
				keys = append(keys, string(key))
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		// Read after the rows: deletions pruned meanwhile are then seen as
		// lost, never missed.
		var pruned int64
		if err := db.QueryRowContext(ctx, "SELECT value FROM meta WHERE name = 'pruned'").Scan(&pruned); err != nil {
			return err
		}
		if uint64(pruned) >= cursor {
			// Reported once: the next reading starts past what was pruned.
			all, next = true, max(next, uint64(pruned)+1)
		}
		return nil
	})
	return keys, all, next, err
}
