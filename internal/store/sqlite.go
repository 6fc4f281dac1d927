package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// SQLite is the embedded store: one database file (plus its -wal and -shm
// files) in the data directory.
type SQLite struct {
	db *sql.DB
}

var _ Store = (*SQLite)(nil)

// SQLiteBusyTimeout is how long a write waits for another connection's lock
// before failing. Appends fail closed when it runs out, so it is generous.
const SQLiteBusyTimeout = 5 * time.Second

// OpenSQLite opens (creating if needed) the database file at path and brings
// its schema up to date.
//
// The connection runs in WAL mode with synchronous=FULL, so a committed
// transaction has been fsynced to the WAL: AppendEvents returning nil means
// the events survive a power loss. Write transactions start with BEGIN
// IMMEDIATE so that the head row is read under the write lock.
func OpenSQLite(path string) (*SQLite, error) {
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
	s := &SQLite{db: db}
	if err := s.migrate(context.Background()); err != nil {
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
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, m := range ms {
		// One transaction per migration: BEGIN IMMEDIATE makes a second
		// process wait, then see the version as applied and skip it.
		err := s.tx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)`,
				m.version, m.name, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

func (s *SQLite) tx(ctx context.Context, fn func(*sql.Tx) error) error {
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

// AppendEvents implements Store.
func (s *SQLite) AppendEvents(ctx context.Context, recs []Record, next Head) error {
	if err := checkAppend(recs, next); err != nil {
		return err
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var (
			size   int64
			hashes []byte
		)
		if err := tx.QueryRowContext(ctx, `SELECT size, hashes FROM audit_head WHERE id = 1`).Scan(&size, &hashes); err != nil {
			return err
		}
		if size != recs[0].Index {
			hs, err := decodeHashes(hashes)
			if err != nil {
				return err
			}
			return &ConflictError{Head: Head{Size: size, Hashes: hs}}
		}
		ev, err := tx.PrepareContext(ctx, `INSERT INTO audit_events
			(idx, ts, kind, session_id, principal, connection, decision, outcome, data, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ev.Close()
		tb, err := tx.PrepareContext(ctx, `INSERT INTO audit_event_tables (name, idx) VALUES (?, ?)`)
		if err != nil {
			return err
		}
		defer tb.Close()
		for _, r := range recs {
			if _, err := ev.ExecContext(ctx, r.Index, r.Time.UnixNano(), r.Kind, r.SessionID, r.Principal,
				r.Connection, r.Decision, r.Outcome, string(r.Data), r.Hash[:]); err != nil {
				return err
			}
			for _, t := range uniqueTables(r) {
				if _, err := tb.ExecContext(ctx, t, r.Index); err != nil {
					return err
				}
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE audit_head SET size = ?, hashes = ? WHERE id = 1`,
			next.Size, encodeHashes(next.Hashes))
		return err
	})
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

// Events implements Store.
func (s *SQLite) Events(ctx context.Context, q Query) ([]Record, error) {
	query, args := buildEvents(q, func(int) string { return "?" },
		`(SELECT json_group_array(name) FROM (SELECT t.name FROM audit_event_tables t WHERE t.idx = e.idx ORDER BY t.name))`)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	defer rows.Close()
	var recs []Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("store: events: %w", err)
		}
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	return recs, nil
}

// PutCheckpoint implements Store.
func (s *SQLite) PutCheckpoint(ctx context.Context, c Checkpoint) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit_checkpoints (size, created, note) VALUES (?, ?, ?)`,
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
	var cs []Checkpoint
	for rows.Next() {
		var (
			c    Checkpoint
			ts   int64
			note string
		)
		if err := rows.Scan(&c.Size, &ts, &note); err != nil {
			return nil, fmt.Errorf("store: checkpoints: %w", err)
		}
		c.Time, c.Note = time.Unix(0, ts).UTC(), []byte(note)
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: checkpoints: %w", err)
	}
	return cs, nil
}

// Close implements Store.
func (s *SQLite) Close() error { return s.db.Close() }
