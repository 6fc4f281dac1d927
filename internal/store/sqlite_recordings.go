package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
	"unsafe"

	sqlite3 "modernc.org/sqlite/lib"
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

// AppendChunk's statements, numbered after txSQL's.
const (
	stmtBumpChunks = numTxStmts + iota
	stmtRecordingExists
	stmtInsertChunk
)

var chunkSQL = []string{
	stmtBumpChunks - numTxStmts:      `UPDATE recordings SET chunks = chunks + 1 WHERE session_id = ?1 AND chunks = ?2`,
	stmtRecordingExists - numTxStmts: `SELECT count(*) FROM recordings WHERE session_id = ?1`,
	stmtInsertChunk - numTxStmts: `INSERT INTO recording_chunks (session_id, seq, time, sha256, data)
		VALUES (?1, ?2, ?3, ?4, zeroblob(?5))`,
}

// AppendChunk implements Store.
func (s *SQLite) AppendChunk(ctx context.Context, c Chunk) error {
	err := s.chunks.transact(ctx, func() error { return s.chunks.appendChunkLocked(c) })
	return wrapRecording("append chunk", c.SessionID, err)
}

// appendChunkLocked counts the chunk in its recording's row (which must be
// at c.Seq chunks), inserts it with a zeroblob of its size for data, and
// writes the bytes into that through SQLite's incremental blob I/O. Bound
// to the INSERT, the bytes would be copied into a record as large as the
// chunk, allocated and freed for every chunk; a trailing zeroblob is left
// out of the record (hence data's place, see migration 0006), and the blob
// write copies from buf straight into the b-tree's overflow pages.
func (a *sqliteConn) appendChunkLocked(c Chunk) error {
	tls := a.tls
	// sqlite3_blob_open takes the names as C strings.
	const schemaName, tableName, columnName = "main\x00", "recording_chunks\x00", "data\x00"
	need := len(schemaName) + len(tableName) + len(columnName) + len(c.SessionID) + len(c.SHA256) + len(c.Data)
	if err := a.growLocked(need); err != nil {
		return err
	}
	w := a.writer()
	db, _ := w.put(schemaName)
	table, _ := w.put(tableName)
	column, _ := w.put(columnName)
	id, idLen := w.put(c.SessionID)

	bump := a.stmts[stmtBumpChunks]
	sqlite3.Xsqlite3_bind_text(tls, bump, 1, id, idLen, 0)
	sqlite3.Xsqlite3_bind_int64(tls, bump, 2, c.Seq)
	if err := a.stepLocked(stmtBumpChunks); err != nil {
		return err
	}
	if sqlite3.Xsqlite3_changes(tls, a.db) == 0 {
		ex := a.stmts[stmtRecordingExists]
		sqlite3.Xsqlite3_bind_text(tls, ex, 1, id, idLen, 0)
		rc := sqlite3.Xsqlite3_step(tls, ex)
		var err error
		if rc != sqlite3.SQLITE_ROW {
			err = a.errLocked(rc, "count recordings")
		}
		exists := sqlite3.Xsqlite3_column_int64(tls, ex, 0) > 0
		sqlite3.Xsqlite3_reset(tls, ex)
		if err != nil {
			return err
		}
		return notNext(c, exists)
	}

	ins := a.stmts[stmtInsertChunk]
	sqlite3.Xsqlite3_bind_text(tls, ins, 1, id, idLen, 0)
	sqlite3.Xsqlite3_bind_int64(tls, ins, 2, c.Seq)
	sqlite3.Xsqlite3_bind_int64(tls, ins, 3, c.Time.UnixNano())
	p, n := w.putBytes(c.SHA256[:])
	sqlite3.Xsqlite3_bind_blob(tls, ins, 4, p, n, 0)
	sqlite3.Xsqlite3_bind_int64(tls, ins, 5, int64(len(c.Data)))
	if err := a.stepLocked(stmtInsertChunk); err != nil {
		return err
	}
	if len(c.Data) == 0 {
		return nil
	}
	rowid := sqlite3.Xsqlite3_last_insert_rowid(tls, a.db)
	pblob := tls.Alloc(int(unsafe.Sizeof(uintptr(0))))
	defer tls.Free(int(unsafe.Sizeof(uintptr(0))))
	rc := sqlite3.Xsqlite3_blob_open(tls, a.db, db, table, column, rowid, 1, pblob)
	blob := *(*uintptr)(cptr(pblob))
	if rc != sqlite3.SQLITE_OK {
		err := a.errLocked(rc, "open chunk blob")
		sqlite3.Xsqlite3_blob_close(tls, blob) // a no-op on a null handle
		return err
	}
	p, n = w.putBytes(c.Data)
	var err error
	if rc := sqlite3.Xsqlite3_blob_write(tls, blob, p, n, 0); rc != sqlite3.SQLITE_OK {
		err = a.errLocked(rc, "write chunk")
	}
	if rc := sqlite3.Xsqlite3_blob_close(tls, blob); rc != sqlite3.SQLITE_OK && err == nil {
		err = a.errLocked(rc, "close chunk blob")
	}
	return err
}

// FinishRecording implements Store.
func (s *SQLite) FinishRecording(ctx context.Context, r Recording) error {
	res, err := s.exec(ctx, `UPDATE recordings SET ended = ?, bytes = ?, truncated = ? WHERE session_id = ?`,
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
