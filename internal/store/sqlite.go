package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"modernc.org/libc"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLite is the embedded store: one database file (plus its -wal and -shm
// files) in the data directory.
type SQLite struct {
	db     *sql.DB
	app    *sqliteConn // AppendEvents' own connection
	chunks *sqliteConn // AppendChunk's
	turns  writeTurns  // taken by every write transaction, on any connection
	path   string
	// firstAt is narrowTime's bisection on this database, built once.
	firstAt func(context.Context, time.Time, bool) (int64, bool, error)
}

var _ Store = (*SQLite)(nil)

// SQLiteBusyTimeout is how long a write waits for another connection's lock
// before failing. Appends fail closed when it runs out, so it is generous.
const SQLiteBusyTimeout = 5 * time.Second

// OpenSQLite opens (creating if needed) the database file at path and brings
// its schema up to date.
//
// Every connection runs in WAL mode with synchronous=FULL, so a committed
// transaction has been fsynced to the WAL: AppendEvents returning nil means
// the events survive a power loss. Write transactions start with BEGIN
// IMMEDIATE so that the head row is read under the write lock. AppendEvents
// and AppendChunk have a connection each (see sqliteConn); the rest share a
// database/sql pool.
func OpenSQLite(path string) (*SQLite, error) {
	configurePageCache()
	v := url.Values{}
	for _, p := range []string{
		"journal_mode(WAL)",
		"synchronous(FULL)",
		fmt.Sprintf("busy_timeout(%d)", SQLiteBusyTimeout.Milliseconds()),
		"foreign_keys(1)",
	} {
		v.Add("_pragma", p)
	}
	v.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + v.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	s := &SQLite{db: db, path: path, turns: newWriteTurns()}
	s.firstAt = bisector("?1", sql.ErrNoRows, func(ctx context.Context, query string, args ...any) scanner {
		return s.db.QueryRowContext(ctx, query, args...)
	})
	if err := s.migrate(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	if s.app, err = openSQLiteConn(path, s.turns, appendSQL); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	if s.chunks, err = openSQLiteConn(path, s.turns, chunkSQL); err != nil {
		s.app.close()
		db.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	return s, nil
}

func (s *SQLite) migrate(ctx context.Context) error {
	ms, err := migrations("sqlite")
	if err != nil {
		return err
	}
	if _, err := s.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, m := range ms {
		// One transaction per migration: BEGIN IMMEDIATE makes a second
		// process wait, then see the version as applied and skip it.
		err := s.tx(ctx, func(tx *sql.Tx) error {
			var applied string
			err := tx.QueryRowContext(ctx, `SELECT name FROM schema_migrations WHERE version = ?`, m.version).Scan(&applied)
			if err == nil {
				return sameMigration(m, applied)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)`,
				m.version, m.name, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

// tx runs fn in a write transaction on the pool, in its turn (writeTurns).
func (s *SQLite) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	if err := s.turns.take(ctx); err != nil {
		return err
	}
	defer s.turns.release()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// exec runs one writing statement on the pool, in its turn (writeTurns).
func (s *SQLite) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := s.turns.take(ctx); err != nil {
		return nil, err
	}
	defer s.turns.release()
	return s.db.ExecContext(ctx, query, args...)
}

// AppendEvents implements Store.
func (s *SQLite) AppendEvents(ctx context.Context, recs []Record, next Head) error {
	if err := checkAppend(recs, next); err != nil {
		return err
	}
	err := s.app.append(ctx, recs, next)
	if err != nil && !errors.Is(err, ErrConflict) {
		return fmt.Errorf("store: append events: %w", err)
	}
	return err
}

// Head implements Store.
func (s *SQLite) Head(ctx context.Context) (Head, error) {
	var (
		h Head
		b []byte
	)
	if err := s.db.QueryRowContext(ctx, `SELECT size, hashes FROM audit_head WHERE id = 1`).Scan(&h.Size, &b); err != nil {
		return Head{}, fmt.Errorf("store: head: %w", err)
	}
	var err error
	h.Hashes, err = decodeHashes(b)
	return h, err
}

// sqliteEvents is the SQLite dialect of buildEvents.
var sqliteEvents = eventsDialect{
	ph:         func(int) string { return "?" },
	tablesExpr: `(SELECT json_group_array(name) FROM (SELECT t.name FROM audit_event_tables t WHERE t.idx = e.idx ORDER BY t.name))`,
	viaBlocks:  true,
}

// Events implements Store. A time range becomes a range of indexes first
// (see narrowTime), which the primary key finds; buildEvents' conditions on
// time stay, redundant here.
func (s *SQLite) Events(ctx context.Context, q Query) ([]Record, error) {
	q, none, err := narrowTime(ctx, q, s.firstAt)
	if err != nil || none {
		return nil, err
	}
	query, args := buildEvents(q, sqliteEvents)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	defer rows.Close()
	recs, err := collect(rows, scanRecord)
	if err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	return recs, nil
}

// PutCheckpoint implements Store.
func (s *SQLite) PutCheckpoint(ctx context.Context, c Checkpoint) error {
	_, err := s.exec(ctx, `INSERT INTO audit_checkpoints (size, created, note) VALUES (?, ?, ?)`,
		c.Size, c.Time.UnixNano(), string(c.Note))
	if err != nil {
		return fmt.Errorf("store: put checkpoint: %w", err)
	}
	return nil
}

// Checkpoints implements Store.
func (s *SQLite) Checkpoints(ctx context.Context) ([]Checkpoint, error) {
	return s.checkpoints(ctx, `SELECT size, created, note FROM audit_checkpoints ORDER BY size, id`)
}

// LatestCheckpoint implements Store.
func (s *SQLite) LatestCheckpoint(ctx context.Context) (Checkpoint, error) {
	cs, err := s.checkpoints(ctx, `SELECT size, created, note FROM audit_checkpoints ORDER BY size DESC, id DESC LIMIT 1`)
	if err != nil {
		return Checkpoint{}, err
	}
	if len(cs) == 0 {
		return Checkpoint{}, ErrNotFound
	}
	return cs[0], nil
}

func (s *SQLite) checkpoints(ctx context.Context, query string) ([]Checkpoint, error) {
	rows, err := s.db.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("store: checkpoints: %w", err)
	}
	defer rows.Close()
	cs, err := collect(rows, scanCheckpoint)
	if err != nil {
		return nil, fmt.Errorf("store: checkpoints: %w", err)
	}
	return cs, nil
}

// DeferSync makes AppendEvents' commits durable only on SyncIndex (or the
// next checkpoint of the WAL), for a caller that keeps the events durable
// elsewhere until then: a Journal. Other writes keep synchronous=FULL.
func (s *SQLite) DeferSync() error {
	s.app.mu.Lock()
	defer s.app.mu.Unlock()
	if s.app.db == 0 {
		return errConnClosed
	}
	return s.app.execLocked(`PRAGMA synchronous = NORMAL`)
}

// SyncIndex makes every committed append durable: in WAL mode with
// synchronous=NORMAL a commit is in the WAL file but not yet on disk, and a
// checkpoint syncs the WAL before copying it and the database after, so an
// fdatasync of the WAL file covers whatever has not been checkpointed.
// fdatasync acts on the file, not the descriptor: one opened here does.
func (s *SQLite) SyncIndex() error {
	f, err := os.Open(s.path + "-wal")
	if errors.Is(err, os.ErrNotExist) {
		return nil // no WAL: everything is in the database file, synced
	}
	if err != nil {
		return fmt.Errorf("store: sync index: %w", err)
	}
	defer f.Close()
	if err := syscall.Fdatasync(int(f.Fd())); err != nil {
		return fmt.Errorf("store: sync index: %w", err)
	}
	return nil
}

// Close implements Store.
func (s *SQLite) Close() error {
	return errors.Join(s.app.close(), s.chunks.close(), s.db.Close())
}

// sqliteConn is a connection to the database of its own, kept apart from
// the database/sql pool, for the store's hot writes: AppendEvents and
// AppendChunk. modernc's driver parses a statement again on every execution
// (its prepared statements keep only the SQL text), which cost an append
// more than its fsync, and copies every bound blob into memory it allocates
// and frees again: for a chunk that is a fresh mapping each time, whose
// page faults and munmap cost more than writing it. This connection talks to
// SQLite's C API (as transpiled by modernc) directly, keeps its statements
// prepared for the store's lifetime and binds from a buffer it keeps.
//
// Writes through one sqliteConn run one at a time, which is all its callers
// ask for: audit.Log has one committer, a recording one writer. Writers on
// the store's other connections wait their turn with it (writeTurns),
// another process's for SQLite's write lock; the reads under the lock (the
// audit head, a recording's chunk count) catch their writes.
type sqliteConn struct {
	mu    sync.Mutex // guards every field; held for a whole transaction
	turns writeTurns // the store's, taken for each transaction after mu
	tls   *libc.TLS
	db    uintptr   // sqlite3*; 0 once closed
	stmts []uintptr // txSQL's, then the caller's
	// buf is C memory the bound text and blobs are copied into; SQLite
	// reads it (SQLITE_STATIC) until the statement is reset.
	buf    uintptr
	bufCap int
	// pins keep allocator mappings of the size classes SQLite's b-tree
	// balancing borrows from (see pinSizeClassesLocked).
	pins []uintptr
	// blocks are the block rows written (AppendEvents' connection).
	blocks blockMemo
}

// Statements every sqliteConn prepares first: transaction control.
const (
	stmtBegin = iota
	stmtCommit
	stmtRollback
	numTxStmts
)

var txSQL = [numTxStmts]string{
	stmtBegin:    `BEGIN IMMEDIATE`,
	stmtCommit:   `COMMIT`,
	stmtRollback: `ROLLBACK`,
}

// AppendEvents' statements, numbered after txSQL's.
const (
	stmtHead = numTxStmts + iota
	stmtEvent
	stmtTable
	stmtSetHead
	stmtLastTime
	stmtSessionBlock
	stmtPrincipalBlock
	stmtTableBlock
)

var appendSQL = []string{
	stmtHead - numTxStmts: `SELECT size, hashes FROM audit_head WHERE id = 1`,
	stmtEvent - numTxStmts: `INSERT INTO audit_events (idx, ts, kind, session_id, principal, connection, decision, outcome, data, hash)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)`,
	stmtTable - numTxStmts:          `INSERT INTO audit_event_tables (name, idx) VALUES (?1, ?2)`,
	stmtSetHead - numTxStmts:        `UPDATE audit_head SET size = ?1, hashes = ?2 WHERE id = 1`,
	stmtLastTime - numTxStmts:       `SELECT ts FROM audit_events WHERE idx = ?1`,
	stmtSessionBlock - numTxStmts:   `INSERT OR IGNORE INTO audit_session_blocks (session_id, block) VALUES (?1, ?2)`,
	stmtPrincipalBlock - numTxStmts: `INSERT OR IGNORE INTO audit_principal_blocks (principal, block) VALUES (?1, ?2)`,
	stmtTableBlock - numTxStmts:     `INSERT OR IGNORE INTO audit_table_blocks (name, block) VALUES (?1, ?2)`,
}

// openSQLiteConn opens a connection on the database at path, whose schema
// must be current, and prepares txSQL's statements and then sqls. Its
// pragmas are the pool's: WAL is a property of the file, synchronous=FULL is
// set here, per connection.
func openSQLiteConn(path string, turns writeTurns, sqls []string) (_ *sqliteConn, err error) {
	a := &sqliteConn{turns: turns, tls: libc.NewTLS()}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	cpath, err := libc.CString(path)
	if err != nil {
		return nil, err
	}
	defer libc.Xfree(a.tls, cpath)
	pdb := a.tls.Alloc(int(unsafe.Sizeof(uintptr(0))))
	defer a.tls.Free(int(unsafe.Sizeof(uintptr(0))))
	rc := sqlite3.Xsqlite3_open_v2(a.tls, cpath, pdb, sqlite3.SQLITE_OPEN_READWRITE|sqlite3.SQLITE_OPEN_NOMUTEX, 0)
	a.db = *(*uintptr)(cptr(pdb))
	if rc != sqlite3.SQLITE_OK {
		return nil, a.errLocked(rc, "open")
	}
	sqlite3.Xsqlite3_extended_result_codes(a.tls, a.db, 1)
	sqlite3.Xsqlite3_busy_timeout(a.tls, a.db, int32(SQLiteBusyTimeout.Milliseconds()))
	for _, p := range []string{`PRAGMA journal_mode = WAL`, `PRAGMA synchronous = FULL`, `PRAGMA foreign_keys = 1`} {
		if err := a.execLocked(p); err != nil {
			return nil, err
		}
	}
	for _, q := range append(txSQL[:], sqls...) {
		cq, err := libc.CString(q)
		if err != nil {
			return nil, err
		}
		pstmt := a.tls.Alloc(int(unsafe.Sizeof(uintptr(0))))
		rc := sqlite3.Xsqlite3_prepare_v3(a.tls, a.db, cq, -1, sqlite3.SQLITE_PREPARE_PERSISTENT, pstmt, 0)
		a.stmts = append(a.stmts, *(*uintptr)(cptr(pstmt)))
		a.tls.Free(int(unsafe.Sizeof(uintptr(0))))
		libc.Xfree(a.tls, cq)
		if rc != sqlite3.SQLITE_OK {
			return nil, a.errLocked(rc, "prepare")
		}
	}
	if err := a.growLocked(4096); err != nil {
		return nil, err
	}
	if err := a.pinSizeClassesLocked(); err != nil {
		return nil, err
	}
	return a, nil
}

// Size classes pinned by a sqliteConn, 256 B to 16 KiB, and how many of
// each class's 64 KiB mappings.
const (
	minPinnedLog = 8
	maxPinnedLog = 14
	pinnedPages  = 4
)

// pinSizeClassesLocked keeps pinnedPages of modernc's allocator mappings
// alive for each size class from 256 B to 16 KiB until close. The allocator
// carves a class's blocks from 64 KiB mappings and unmaps one as soon as
// its last block is freed, and a b-tree page split borrows a page buffer
// and a scratch buffer and frees them at once: whenever the live blocks of
// a class filled its mappings, every split cost an mmap and a munmap, 10%
// of the gateway's CPU under pgbench. One block kept in each of several
// mappings leaves their other slots free for such borrowing. The pins cost
// address space, not memory: only the pages touched are resident.
func (a *sqliteConn) pinSizeClassesLocked() error {
	const mapping = 1 << 16
	for log := minPinnedLog; log <= maxPinnedLog; log++ {
		size := 1 << log
		// The allocator fills one mapping before it starts the next, so
		// this many blocks span at least pinnedPages mappings.
		blocks := make([]uintptr, 0, pinnedPages*(mapping/size))
		for range cap(blocks) {
			p := libc.Xmalloc(a.tls, libc.Tsize_t(size))
			if p == 0 {
				for _, q := range blocks {
					libc.Xfree(a.tls, q)
				}
				return fmt.Errorf("sqlite: cannot allocate %d bytes", size)
			}
			blocks = append(blocks, p)
		}
		seen := map[uintptr]bool{}
		for _, p := range blocks {
			if page := p &^ (mapping - 1); !seen[page] {
				seen[page] = true
				a.pins = append(a.pins, p)
				continue
			}
			libc.Xfree(a.tls, p)
		}
	}
	return nil
}

// cptr turns the address of C memory (allocated by modernc's libc, never
// the Go heap) into a pointer. It reinterprets the word rather than
// converting it, which go vet's unsafeptr check would flag although the
// memory is not the garbage collector's.
func cptr(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

func (a *sqliteConn) close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tls == nil {
		return nil
	}
	var err error
	for i, s := range a.stmts {
		if s != 0 {
			sqlite3.Xsqlite3_finalize(a.tls, s)
			a.stmts[i] = 0
		}
	}
	if a.db != 0 {
		if rc := sqlite3.Xsqlite3_close_v2(a.tls, a.db); rc != sqlite3.SQLITE_OK {
			err = a.errLocked(rc, "close")
		}
		a.db = 0
	}
	if a.buf != 0 {
		libc.Xfree(a.tls, a.buf)
		a.buf, a.bufCap = 0, 0
	}
	for _, p := range a.pins {
		libc.Xfree(a.tls, p)
	}
	a.pins = nil
	a.tls.Close()
	a.tls = nil
	return err
}

var errConnClosed = errors.New("sqlite: store is closed")

// transact runs fn in one write transaction: BEGIN IMMEDIATE takes the
// write lock, so what fn reads holds until COMMIT. ctx's cancellation
// interrupts the statement running (a wait for the lock, say). fn runs with
// the connection locked and must leave every statement reset.
func (a *sqliteConn) transact(ctx context.Context, fn func() error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.db == 0 {
		return errConnClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := a.turns.take(ctx); err != nil {
		return err
	}
	defer a.turns.release()
	if ctx.Done() != nil {
		// The deferred wait makes sure the interrupt cannot land on a later
		// transaction.
		db, done := a.db, make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			defer close(done)
			sqlite3.Xsqlite3_interrupt(nil, db)
		})
		defer func() {
			if !stop() {
				<-done
			}
		}()
	}
	if err := a.stepLocked(stmtBegin); err != nil {
		return a.ctxErr(ctx, err)
	}
	err := fn()
	if err == nil {
		err = a.stepLocked(stmtCommit)
	}
	if err != nil {
		a.blocks.forget() // they may have been rolled back
		// Every statement has been reset, so the rollback runs even after an
		// interrupt. A failed COMMIT may already have rolled back.
		if sqlite3.Xsqlite3_get_autocommit(a.tls, a.db) == 0 {
			if rerr := a.stepLocked(stmtRollback); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
			return err
		}
		return a.ctxErr(ctx, err)
	}
	return nil
}

// append runs one AppendEvents transaction: the head read under the write
// lock decides between appending and a ConflictError.
func (a *sqliteConn) append(ctx context.Context, recs []Record, next Head) error {
	return a.transact(ctx, func() error { return a.appendLocked(recs, next) })
}

func (a *sqliteConn) ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}

func (a *sqliteConn) appendLocked(recs []Record, next Head) error {
	tls := a.tls
	h := a.stmts[stmtHead]
	rc := sqlite3.Xsqlite3_step(tls, h)
	if rc != sqlite3.SQLITE_ROW {
		if rc == sqlite3.SQLITE_DONE {
			sqlite3.Xsqlite3_reset(tls, h)
			return errors.New("audit_head has no row")
		}
		err := a.errLocked(rc, "read head")
		sqlite3.Xsqlite3_reset(tls, h)
		return err
	}
	size := sqlite3.Xsqlite3_column_int64(tls, h, 0)
	last, err := a.lastTimeLocked(size)
	if err != nil {
		sqlite3.Xsqlite3_reset(tls, h)
		return err
	}
	// The time check is what lets Events bisect for time ranges.
	if size != recs[0].Index || recs[0].Time.Before(last) {
		p, n := sqlite3.Xsqlite3_column_blob(tls, h, 1), sqlite3.Xsqlite3_column_bytes(tls, h, 1)
		var b []byte
		if n > 0 {
			b = append(b, unsafe.Slice((*byte)(cptr(p)), n)...)
		}
		sqlite3.Xsqlite3_reset(tls, h)
		hs, err := decodeHashes(b)
		if err != nil {
			return err
		}
		return &ConflictError{Head: Head{Size: size, Hashes: hs}, Last: last}
	}
	sqlite3.Xsqlite3_reset(tls, h)

	ev, tb := a.stmts[stmtEvent], a.stmts[stmtTable]
	for i := range recs {
		r := &recs[i]
		need := len(r.Kind) + len(r.SessionID) + len(r.Principal) + len(r.Connection) +
			len(r.Decision) + len(r.Outcome) + len(r.Data) + len(r.Hash)
		if err := a.growLocked(need); err != nil {
			return err
		}
		w := a.writer()
		sqlite3.Xsqlite3_bind_int64(tls, ev, 1, r.Index)
		sqlite3.Xsqlite3_bind_int64(tls, ev, 2, r.Time.UnixNano())
		for j, v := range [...]string{r.Kind, r.SessionID, r.Principal, r.Connection, r.Decision, r.Outcome} {
			p, n := w.put(v)
			sqlite3.Xsqlite3_bind_text(tls, ev, int32(3+j), p, n, 0)
		}
		p, n := w.putBytes(r.Data)
		sqlite3.Xsqlite3_bind_text(tls, ev, 9, p, n, 0)
		p, n = w.putBytes(r.Hash[:])
		sqlite3.Xsqlite3_bind_blob(tls, ev, 10, p, n, 0)
		if err := a.stepLocked(stmtEvent); err != nil {
			return err
		}
		if err := a.listBlocksLocked(r); err != nil {
			return err
		}
		for _, t := range uniqueTables(*r) {
			if err := a.growLocked(len(t)); err != nil {
				return err
			}
			w := a.writer()
			p, n := w.put(t)
			sqlite3.Xsqlite3_bind_text(tls, tb, 1, p, n, 0)
			sqlite3.Xsqlite3_bind_int64(tls, tb, 2, r.Index)
			if err := a.stepLocked(stmtTable); err != nil {
				return err
			}
		}
	}

	hashes := encodeHashes(next.Hashes)
	if err := a.growLocked(len(hashes)); err != nil {
		return err
	}
	w := a.writer()
	sh := a.stmts[stmtSetHead]
	sqlite3.Xsqlite3_bind_int64(tls, sh, 1, next.Size)
	p, n := w.putBytes(hashes)
	sqlite3.Xsqlite3_bind_blob(tls, sh, 2, p, n, 0)
	return a.stepLocked(stmtSetHead)
}

// lastTimeLocked returns the time of event size-1, the log's last, or the
// zero time if there is none: an empty log, or a prune that took the whole
// log (nothing left that a query could see out of order).
func (a *sqliteConn) lastTimeLocked(size int64) (time.Time, error) {
	if size == 0 {
		return time.Time{}, nil
	}
	tls, s := a.tls, a.stmts[stmtLastTime]
	sqlite3.Xsqlite3_bind_int64(tls, s, 1, size-1)
	defer sqlite3.Xsqlite3_reset(tls, s)
	switch rc := sqlite3.Xsqlite3_step(tls, s); rc {
	case sqlite3.SQLITE_ROW:
		return time.Unix(0, sqlite3.Xsqlite3_column_int64(tls, s, 0)).UTC(), nil
	case sqlite3.SQLITE_DONE:
		return time.Time{}, nil
	default:
		return time.Time{}, a.errLocked(rc, "read the last event's time")
	}
}

// stepLocked runs statement i to completion and resets it.
func (a *sqliteConn) stepLocked(i int) error {
	s := a.stmts[i]
	rc := sqlite3.Xsqlite3_step(a.tls, s)
	var err error
	if rc != sqlite3.SQLITE_DONE && rc != sqlite3.SQLITE_ROW {
		err = a.errLocked(rc, "")
	}
	sqlite3.Xsqlite3_reset(a.tls, s)
	return err
}

// execLocked runs sql once, unprepared.
func (a *sqliteConn) execLocked(sql string) error {
	q, err := libc.CString(sql)
	if err != nil {
		return err
	}
	defer libc.Xfree(a.tls, q)
	if rc := sqlite3.Xsqlite3_exec(a.tls, a.db, q, 0, 0, 0); rc != sqlite3.SQLITE_OK {
		return a.errLocked(rc, sql)
	}
	return nil
}

// errLocked is the error for result code rc with SQLite's message, which
// names the cause (a constraint, a trigger's RAISE, a full disk).
func (a *sqliteConn) errLocked(rc int32, op string) error {
	msg := "unknown error"
	if a.db != 0 {
		msg = libc.GoString(sqlite3.Xsqlite3_errmsg(a.tls, a.db))
	}
	if op != "" {
		return fmt.Errorf("sqlite: %s: %s (%d)", op, msg, rc)
	}
	return fmt.Errorf("sqlite: %s (%d)", msg, rc)
}

// growLocked makes buf hold at least n bytes. The previous contents need not
// survive: it is called only between statements.
func (a *sqliteConn) growLocked(n int) error {
	if n <= a.bufCap && a.buf != 0 {
		return nil
	}
	n = max(n, 2*a.bufCap, 4096)
	p := libc.Xmalloc(a.tls, libc.Tsize_t(n))
	if p == 0 {
		return fmt.Errorf("sqlite: cannot allocate %d bytes", n)
	}
	if a.buf != 0 {
		libc.Xfree(a.tls, a.buf)
	}
	a.buf, a.bufCap = p, n
	return nil
}

func (a *sqliteConn) writer() bufWriter {
	return bufWriter{base: a.buf, mem: unsafe.Slice((*byte)(cptr(a.buf)), a.bufCap)}
}

// bufWriter fills a sqliteConn's C buffer front to back for one statement's
// bindings. An empty value still gets a valid address: a null pointer
// would bind SQL NULL.
type bufWriter struct {
	base uintptr
	mem  []byte
	off  int
}

func (w *bufWriter) put(s string) (uintptr, int32) {
	p := w.base + uintptr(w.off)
	w.off += copy(w.mem[w.off:], s)
	return p, int32(len(s))
}

func (w *bufWriter) putBytes(b []byte) (uintptr, int32) {
	p := w.base + uintptr(w.off)
	w.off += copy(w.mem[w.off:], b)
	return p, int32(len(b))
}
