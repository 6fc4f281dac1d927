package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"strconv"
	"strings"
	"time"
)

// RecordingStore keeps session recordings: a row per session and its
// chunks. It is part of Store.
type RecordingStore interface {
	// CreateRecording adds the row of a session that starts recording. It
	// returns ErrExists if the session already has one.
	CreateRecording(ctx context.Context, r Recording) error
	// AppendChunk stores c, which must be the next chunk of a recording that
	// exists, and counts it in the recording's row. A chunk is never
	// rewritten: storing a sequence number twice is an error. It keeps no
	// reference to c.Data once it returns: the recorder reuses the buffer.
	AppendChunk(ctx context.Context, c Chunk) error
	// FinishRecording sets Ended, Bytes and Truncated of the recording of
	// r.SessionID, or returns ErrNotFound.
	FinishRecording(ctx context.Context, r Recording) error
	// Recording returns the row of session id, or ErrNotFound.
	Recording(ctx context.Context, id string) (Recording, error)
	// Recordings returns the rows matching q, newest start first.
	Recordings(ctx context.Context, q RecordingQuery) ([]Recording, error)
	// Chunks returns up to limit chunks of session id with Seq >= from, in
	// sequence order (limit <= 0: all of them).
	Chunks(ctx context.Context, id string, from int64, limit int) ([]Chunk, error)
	// DeleteRecordings deletes the recordings (rows and chunks) whose last
	// activity — the end, or while a session runs its newest chunk or its
	// start — is before before, and returns their session IDs.
	DeleteRecordings(ctx context.Context, before time.Time) ([]string, error)
}

// Recording is the row of one session's recording.
type Recording struct {
	SessionID  string
	Principal  string
	Connection string
	Role       string
	Started    time.Time // UTC
	Ended      time.Time // zero while the session runs (or if it never ended cleanly)
	Bytes      int64     // uncompressed bytes recorded, set when it ends
	Chunks     int64     // chunks stored so far
	Truncated  bool      // the per-session size cap was reached
}

// Chunk is one stored piece of a recording. SHA256 is the digest of Data
// as stored; readers recompute it.
type Chunk struct {
	SessionID string
	Seq       int64     // from 0
	Time      time.Time // time of the chunk's first entry
	Data      []byte
	SHA256    [sha256.Size]byte
}

// RecordingQuery selects recordings. Zero fields do not filter.
type RecordingQuery struct {
	Since, Until time.Time // start time in [Since, Until)
	Principal    string
	Connection   string
	Limit        int // 0 means DefaultLimit, negative means no limit
}

// buildRecordings returns the SELECT for q with placeholders made by ph(n).
func buildRecordings(q RecordingQuery, ph func(n int) string) (string, []any) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", ph(len(args))))
	}
	if !q.Since.IsZero() {
		add("started >= ?", q.Since.UnixNano())
	}
	if !q.Until.IsZero() {
		add("started < ?", q.Until.UnixNano())
	}
	if q.Principal != "" {
		add("principal = ?", q.Principal)
	}
	if q.Connection != "" {
		add("connection = ?", q.Connection)
	}
	sql := "SELECT " + recordingColumns + " FROM recordings"
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY started DESC, session_id DESC"
	limit := q.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit > 0 {
		sql += " LIMIT " + strconv.Itoa(limit)
	}
	return sql, args
}

const recordingColumns = "session_id, principal, connection, role, started, ended, bytes, chunks, truncated"

// staleRecordings selects the recordings DeleteRecordings removes; both
// dialects accept it with their own placeholder for the cutoff.
const staleRecordings = `SELECT r.session_id FROM recordings r WHERE COALESCE(NULLIF(r.ended, 0),
	(SELECT max(c.time) FROM recording_chunks c WHERE c.session_id = r.session_id), r.started) < `

func scanRecording(s scanner) (Recording, error) {
	var (
		r              Recording
		started, ended int64
		truncated      any
	)
	if err := s.Scan(&r.SessionID, &r.Principal, &r.Connection, &r.Role, &started, &ended, &r.Bytes, &r.Chunks, &truncated); err != nil {
		return Recording{}, err
	}
	r.Started = time.Unix(0, started).UTC()
	if ended != 0 {
		r.Ended = time.Unix(0, ended).UTC()
	}
	// SQLite has no boolean type: it returns the integer.
	switch v := truncated.(type) {
	case bool:
		r.Truncated = v
	case int64:
		r.Truncated = v != 0
	}
	return r, nil
}

func scanChunk(s scanner) (Chunk, error) {
	var (
		c    Chunk
		ts   int64
		hash []byte
	)
	if err := s.Scan(&c.SessionID, &c.Seq, &ts, &c.Data, &hash); err != nil {
		return Chunk{}, err
	}
	c.Time = time.Unix(0, ts).UTC()
	// A digest of the wrong length is kept as zeroes: the reader then
	// reports the chunk as not matching, which it does not.
	if len(hash) == sha256.Size {
		copy(c.SHA256[:], hash)
	}
	return c, nil
}

func checkRecording(r Recording) error {
	if r.SessionID == "" {
		return errors.New("store: recording without a session id")
	}
	return nil
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
