package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// CreateRecording implements Store.
func (p *Postgres) CreateRecording(ctx context.Context, r Recording) error {
	if err := checkRecording(r); err != nil {
		return err
	}
	_, err := p.pool.Exec(ctx, `INSERT INTO recordings (session_id, principal, connection, role, started, ended, bytes, chunks, truncated)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8)`,
		r.SessionID, r.Principal, r.Connection, r.Role, r.Started.UnixNano(), unixOrZero(r.Ended), r.Bytes, r.Truncated)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		err = ErrExists
	}
	return wrapRecording("create recording", r.SessionID, err)
}

// AppendChunk implements Store.
func (p *Postgres) AppendChunk(ctx context.Context, c Chunk) error {
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE recordings SET chunks = chunks + 1 WHERE session_id = $1 AND chunks = $2`, c.SessionID, c.Seq)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM recordings WHERE session_id = $1)`, c.SessionID).Scan(&exists); err != nil {
				return err
			}
			return notNext(c, exists)
		}
		_, err = tx.Exec(ctx, `INSERT INTO recording_chunks (session_id, seq, time, data, sha256) VALUES ($1, $2, $3, $4, $5)`,
			c.SessionID, c.Seq, c.Time.UnixNano(), c.Data, c.SHA256[:])
		return err
	})
	return wrapRecording("append chunk", c.SessionID, err)
}

// FinishRecording implements Store.
func (p *Postgres) FinishRecording(ctx context.Context, r Recording) error {
	tag, err := p.pool.Exec(ctx, `UPDATE recordings SET ended = $1, bytes = $2, truncated = $3 WHERE session_id = $4`,
		unixOrZero(r.Ended), r.Bytes, r.Truncated, r.SessionID)
	if err == nil && tag.RowsAffected() == 0 {
		err = ErrNotFound
	}
	return wrapRecording("finish recording", r.SessionID, err)
}

// Recording implements Store.
func (p *Postgres) Recording(ctx context.Context, id string) (Recording, error) {
	r, err := scanRecording(p.pool.QueryRow(ctx, `SELECT `+recordingColumns+` FROM recordings WHERE session_id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		err = ErrNotFound
	}
	return r, wrapRecording("recording", id, err)
}

// Recordings implements Store.
func (p *Postgres) Recordings(ctx context.Context, q RecordingQuery) ([]Recording, error) {
	query, args := buildRecordings(q, func(n int) string { return "$" + strconv.Itoa(n) })
	rows, err := p.pool.Query(ctx, query, args...)
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
func (p *Postgres) Chunks(ctx context.Context, id string, from int64, limit int) ([]Chunk, error) {
	q := `SELECT session_id, seq, time, data, sha256 FROM recording_chunks WHERE session_id = $1 AND seq >= $2 ORDER BY seq`
	if limit > 0 {
		q += " LIMIT " + strconv.Itoa(limit)
	}
	rows, err := p.pool.Query(ctx, q, id, from)
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
func (p *Postgres) DeleteRecordings(ctx context.Context, before time.Time) ([]string, error) {
	var ids []string
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, staleRecordings+"$1 FOR UPDATE", before.UnixNano())
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `DELETE FROM recording_chunks WHERE session_id = ANY($1)`, ids); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM recordings WHERE session_id = ANY($1)`, ids)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: delete recordings: %w", err)
	}
	return ids, nil
}
