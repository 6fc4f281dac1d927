package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// CreateRecording implements Store.
func (s *SQLite) CreateRecording(ctx context.Context, r Recording) error {
	if err := checkRecording(r); err != nil {
		return err
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM recordings WHERE session_id = ?`, r.SessionID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrExists
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO recordings (session_id, principal, connection, role, started, ended, bytes, chunks, truncated)
			VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)`,
			r.SessionID, r.Principal, r.Connection, r.Role, r.Started.UnixNano(), unixOrZero(r.Ended), r.Bytes, r.Truncated)
		return err
	})
	return wrapRecording("create recording", r.SessionID, err)
}

// AppendChunk implements Store.
func (s *SQLite) AppendChunk(ctx context.Context, c Chunk) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE recordings SET chunks = chunks + 1 WHERE session_id = ? AND chunks = ?`, c.SessionID, c.Seq)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			var exists int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM recordings WHERE session_id = ?`, c.SessionID).Scan(&exists); err != nil {
				return err
			}
			return notNext(c, exists > 0)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO recording_chunks (session_id, seq, time, data, sha256) VALUES (?, ?, ?, ?, ?)`,
			c.SessionID, c.Seq, c.Time.UnixNano(), c.Data, c.SHA256[:])
		return err
	})
	return wrapRecording("append chunk", c.SessionID, err)
}

// FinishRecording implements Store.
func (s *SQLite) FinishRecording(ctx context.Context, r Recording) error {
	res, err := s.db.ExecContext(ctx, `UPDATE recordings SET ended = ?, bytes = ?, truncated = ? WHERE session_id = ?`,
		unixOrZero(r.Ended), r.Bytes, r.Truncated, r.SessionID)
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n == 0 {
			err = ErrNotFound
		}
	}
	return wrapRecording("finish recording", r.SessionID, err)
}

// Recording implements Store.
func (s *SQLite) Recording(ctx context.Context, id string) (Recording, error) {
	r, err := scanRecording(s.db.QueryRowContext(ctx, `SELECT `+recordingColumns+` FROM recordings WHERE session_id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	return r, wrapRecording("recording", id, err)
}

// Recordings implements Store.
func (s *SQLite) Recordings(ctx context.Context, q RecordingQuery) ([]Recording, error) {
	query, args := buildRecordings(q, func(int) string { return "?" })
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: recordings: %w", err)
	}
	defer rows.Close()
	out, err := collect(rows, scanRecording)
	if err != nil {
		return nil, fmt.Errorf("store: recordings: %w", err)
	}
	return out, nil
}

// Chunks implements Store.
func (s *SQLite) Chunks(ctx context.Context, id string, from int64, limit int) ([]Chunk, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.db.QueryContext(ctx, `SELECT session_id, seq, time, data, sha256 FROM recording_chunks
		WHERE session_id = ? AND seq >= ? ORDER BY seq LIMIT ?`, id, from, limit)
	if err != nil {
		return nil, fmt.Errorf("store: chunks of %s: %w", id, err)
	}
	defer rows.Close()
	out, err := collect(rows, scanChunk)
	if err != nil {
		return nil, fmt.Errorf("store: chunks of %s: %w", id, err)
	}
	return out, nil
}

// DeleteRecordings implements Store.
func (s *SQLite) DeleteRecordings(ctx context.Context, before time.Time) ([]string, error) {
	var ids []string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, staleRecordings+"?", before.UnixNano())
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `DELETE FROM recording_chunks WHERE session_id = ?`, id); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM recordings WHERE session_id = ?`, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: delete recordings: %w", err)
	}
	return ids, nil
}

// notNext explains why chunk c could not be counted in its recording.
func notNext(c Chunk, exists bool) error {
	if !exists {
		return ErrNotFound
	}
	return fmt.Errorf("chunk %d is not the next chunk", c.Seq)
}

func wrapRecording(op, id string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("store: %s %s: %w", op, id, err)
}
