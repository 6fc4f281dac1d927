package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Store is the persistent state of a gateway: the audit log and session
// recordings. Implementations are safe for concurrent use.
type Store interface {
	RecordingStore
	Pruner
	ExportCursors
	// AppendEvents appends recs and sets the head to next in one
	// transaction that is durable when AppendEvents returns nil. recs must
	// be consecutive and start at the current head's size; if another
	// writer appended first it returns a *ConflictError (errors.Is
	// ErrConflict) carrying the current head, and writes nothing. It
	// keeps no reference to the recs slice once it returns, so the caller
	// may reuse it for its next batch (the journal copies the records it
	// queues); it may keep the records' Data and Tables and next's Hashes,
	// which the caller must not change.
	AppendEvents(ctx context.Context, recs []Record, next Head) error
	// Head returns the current tree size and compact range.
	Head(ctx context.Context) (Head, error)
	// Events returns the records matching q in index order.
	Events(ctx context.Context, q Query) ([]Record, error)
	// PutCheckpoint stores a signed checkpoint.
	PutCheckpoint(ctx context.Context, c Checkpoint) error
	// Checkpoints returns every stored checkpoint ordered by size, then by
	// the order they were stored.
	Checkpoints(ctx context.Context) ([]Checkpoint, error)
	// LatestCheckpoint returns the checkpoint with the largest size (the
	// last stored among equals), or ErrNotFound.
	LatestCheckpoint(ctx context.Context) (Checkpoint, error)
	// Close releases the store's resources.
	Close() error
}

var (
	// ErrConflict is returned by AppendEvents when the records do not start
	// at the current tree size: another writer (replica) appended first.
	ErrConflict = errors.New("store: append conflict: the log has grown")
	// ErrNotFound is returned by LatestCheckpoint when there is none, and by
	// Recording and FinishRecording for an unknown session.
	ErrNotFound = errors.New("store: not found")
	// ErrExists is returned by CreateRecording when the session already has
	// a recording.
	ErrExists = errors.New("store: already exists")
)

// ConflictError is AppendEvents' error when the log has grown since the
// caller read the head, or when the batch is stamped earlier than the log's
// last event: every store keeps index order and time order the same, so
// that a time range is a range of indexes (see SQLite.Events). Head is the
// store's head as read after the failed append (at least as new as the one
// that refused it) and Last the time of the log's last event (zero if it
// holds none), so the caller can rebuild its batch without reading them
// again, re-stamping what is earlier than Last.
type ConflictError struct {
	Head Head
	Last time.Time
}

func (e *ConflictError) Error() string {
	if e.Last.IsZero() {
		return fmt.Sprintf("store: append conflict: the log has grown to %d", e.Head.Size)
	}
	return fmt.Sprintf("store: append conflict: the log has grown to %d, its last event at %s",
		e.Head.Size, e.Last.UTC().Format(time.RFC3339Nano))
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Record is one audit event as stored: its leaf index and bytes, the leaf
// hash, and copies of a few fields used to find it. Data is authoritative;
// the other fields are derived from it by the writer and checked by
// audit.Verify.
type Record struct {
	Index      int64     // leaf index, from 0
	Time       time.Time // event time (stored with nanosecond precision, returned in UTC)
	Kind       string
	SessionID  string
	Principal  string
	Connection string
	Decision   string
	Outcome    string   // "success", "failure" or empty
	Tables     []string // tables the statement touches, sorted, no duplicates
	Data       []byte   // the leaf: the event's canonical JSON
	Hash       tlog.Hash
}

// Head is the end of the log: its size and the roots of the complete subtrees
// that make up the Merkle tree of Size leaves (one per set bit of Size,
// largest first). The store keeps it opaque; it is what lets any writer
// extend the tree without reading old leaves.
type Head struct {
	Size   int64
	Hashes []tlog.Hash
}

// Checkpoint is a signed tree head in the signed-note checkpoint format.
type Checkpoint struct {
	Size int64
	Time time.Time
	Note []byte // the signed note text
}

// DefaultLimit is the number of records Events returns when Query.Limit is 0;
// callers page with From.
const DefaultLimit = 1000

// Query selects events. Zero fields do not filter.
type Query struct {
	From, To     int64     // index range [From, To); To 0 means no upper bound
	Since, Until time.Time // time range [Since, Until)
	Kind         string
	Principal    string
	Connection   string
	SessionID    string
	Decision     string
	Outcome      string
	Table        string
	Limit        int // at most this many; 0 means DefaultLimit, negative means no limit
}

// commonKinds are the event kinds the partial index audit_events_rare_kind
// leaves out: the two every statement writes, nearly all of the log.
var commonKinds = map[string]bool{"statement": true, "statement.outcome": true}

const commonKindList = "'statement', 'statement.outcome'"

// The decisions and outcomes the partial indexes audit_events_rare_decision
// and audit_events_rare_outcome leave out (*_audit_rare_decisions.sql):
// an allowed statement, a successful one, and events that carry neither.
const (
	commonDecisionList = "'allow', ''"
	commonOutcomeList  = "'success', ''"
)

// eventsDialect is how a store's SQL reads events, for buildEvents.
type eventsDialect struct {
	ph         func(n int) string // the nth placeholder
	tablesExpr string             // event e's tables as a JSON array of text
	// viaBlocks: session, principal and table filters find events through
	// the blocks of events each session, principal and table appears in
	// (audit_session_blocks, audit_principal_blocks, audit_table_blocks),
	// which SQLite has in place of indexes that cost every event an entry
	// (0009_audit_owner_blocks.sql, 0010_audit_tables_by_event.sql).
	viaBlocks bool
}

// blockShift is log2 of the number of indexes in a block of the block
// tables: a block is idx >> blockShift.
const blockShift = 10

// buildEvents returns the SELECT for q in dialect d. Both stores share it
// so their filters cannot drift apart.
func buildEvents(q Query, d eventsDialect) (string, []any) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", d.ph(len(args))))
	}
	from, order := "audit_events e", "e.idx"
	var filters []blockFilter
	if d.viaBlocks {
		filters = blockFilters(q)
	}
	viaBlocks := len(filters) > 0
	byTable := viaBlocks && q.Table != ""
	if viaBlocks {
		// The blocks, in order, then each one's events in index order: the
		// planner keeps that nesting (CROSS JOIN) and so needs no sort, and
		// a LIMIT stops reading at once (TestQueriesReadBlocks). With a
		// table filter a block is read through the table's rows in it,
		// fewer and smaller than its events.
		shift := strconv.Itoa(blockShift)
		inBlock := func(idx string) string {
			return idx + " >= (b.block << " + shift + ") AND " + idx + " < ((b.block + 1) << " + shift + ")"
		}
		f := filters[0]
		if byTable {
			args = append(args, q.Table) // the first placeholder, in FROM
			from = f.table + " b CROSS JOIN audit_event_tables t ON " + inBlock("t.idx") +
				" AND t.name = " + d.ph(len(args)) + " CROSS JOIN audit_events e ON e.idx = t.idx"
			order = "b.block, t.idx"
		} else {
			from = f.table + " b CROSS JOIN audit_events e ON " + inBlock("e.idx")
			order = "b.block, e.idx"
		}
		add("b."+f.col+" = ?", f.name)
		if q.From > 0 {
			add("b.block >= ?", q.From>>blockShift)
		}
		if q.To > 0 {
			add("b.block <= ?", (q.To-1)>>blockShift)
		}
		// A block the other filters do not appear in is passed over
		// without reading its events.
		for _, o := range filters[1:] {
			add("EXISTS (SELECT 1 FROM "+o.table+" o WHERE o."+o.col+" = ? AND o.block = b.block)", o.name)
		}
	}
	if q.From > 0 {
		add("e.idx >= ?", q.From)
	}
	if q.To > 0 {
		add("e.idx < ?", q.To)
	}
	if !q.Since.IsZero() {
		add("e.ts >= ?", q.Since.UnixNano())
	}
	if !q.Until.IsZero() {
		add("e.ts < ?", q.Until.UnixNano())
	}
	for _, f := range []struct{ col, v string }{
		{"e.kind", q.Kind}, {"e.principal", q.Principal}, {"e.connection", q.Connection},
		{"e.session_id", q.SessionID}, {"e.decision", q.Decision}, {"e.outcome", q.Outcome},
	} {
		if f.v != "" {
			add(f.col+" = ?", f.v)
		}
	}
	// Each implies a partial index's condition (see 0001_audit.sql and
	// *_audit_rare_decisions.sql) in words both planners recognise; a bound
	// parameter would not.
	if q.Kind != "" && !commonKinds[q.Kind] {
		where = append(where, "e.kind NOT IN ("+commonKindList+")")
	}
	if q.Decision != "" && q.Decision != "allow" {
		where = append(where, "e.decision NOT IN ("+commonDecisionList+")")
	}
	if q.Outcome != "" && q.Outcome != "success" {
		where = append(where, "e.outcome NOT IN ("+commonOutcomeList+")")
	}
	if q.Table != "" && !byTable {
		// The table's events in index order: PostgreSQL's key for them is
		// (name, idx).
		add("e.idx IN (SELECT t.idx FROM audit_event_tables t WHERE t.name = ?)", q.Table)
	}
	sql := "SELECT e.idx, e.ts, e.kind, e.session_id, e.principal, e.connection, e.decision, e.outcome, " +
		d.tablesExpr + ", e.data, e.hash FROM " + from
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY " + order
	limit := q.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit > 0 {
		sql += " LIMIT " + strconv.Itoa(limit)
	}
	return sql, args
}

// blockFilter is one of a query's filters that the block tables serve:
// the table, its name column and the name looked for.
type blockFilter struct{ table, col, name string }

// blockFilters returns q's session, principal and table filters as block
// filters, narrowest first as a rule: a session's blocks are a subset of
// its principal's, and a principal usually has fewer than a table.
func blockFilters(q Query) []blockFilter {
	var fs []blockFilter
	if q.SessionID != "" {
		fs = append(fs, blockFilter{"audit_session_blocks", "session_id", q.SessionID})
	}
	if q.Principal != "" {
		fs = append(fs, blockFilter{"audit_principal_blocks", "principal", q.Principal})
	}
	if q.Table != "" {
		fs = append(fs, blockFilter{"audit_table_blocks", "name", q.Table})
	}
	return fs
}

// scanner is satisfied by *sql.Rows, *sql.Row, pgx.Rows and pgx.Row.
type scanner interface{ Scan(dest ...any) error }

// resultRows is what *sql.Rows and pgx.Rows share for reading a result, so
// both stores read rows with one loop.
type resultRows interface {
	scanner
	Next() bool
	Err() error
}

// collect scans every row of rows with scan. The caller closes rows and
// wraps the error with what it was reading.
func collect[T any](rows resultRows, scan func(scanner) (T, error)) ([]T, error) {
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// scanCheckpoint reads a checkpoint row: size, created, note.
func scanCheckpoint(s scanner) (Checkpoint, error) {
	var (
		c    Checkpoint
		ts   int64
		note string
	)
	if err := s.Scan(&c.Size, &ts, &note); err != nil {
		return Checkpoint{}, err
	}
	c.Time, c.Note = time.Unix(0, ts).UTC(), []byte(note)
	return c, nil
}

func scanRecord(s scanner) (Record, error) {
	var (
		r            Record
		ts           int64
		tables, data string
		hash         []byte
	)
	if err := s.Scan(&r.Index, &ts, &r.Kind, &r.SessionID, &r.Principal, &r.Connection,
		&r.Decision, &r.Outcome, &tables, &data, &hash); err != nil {
		return Record{}, err
	}
	r.Time = time.Unix(0, ts).UTC()
	r.Data = []byte(data)
	if len(hash) != tlog.HashSize {
		return Record{}, fmt.Errorf("store: event %d: hash has %d bytes", r.Index, len(hash))
	}
	copy(r.Hash[:], hash)
	if err := json.Unmarshal([]byte(tables), &r.Tables); err != nil {
		return Record{}, fmt.Errorf("store: event %d: tables: %w", r.Index, err)
	}
	if len(r.Tables) == 0 {
		r.Tables = nil
	}
	return r, nil
}

// checkAppend validates an append before any row is written.
func checkAppend(recs []Record, next Head) error {
	if len(recs) == 0 {
		return errors.New("store: append of no records")
	}
	for i, r := range recs {
		if r.Index != recs[0].Index+int64(i) {
			return fmt.Errorf("store: record %d has index %d, want %d", i, r.Index, recs[0].Index+int64(i))
		}
		if i > 0 && r.Time.Before(recs[i-1].Time) {
			return timeOrderError(r.Index, r.Time, recs[i-1].Time)
		}
	}
	if next.Size != recs[0].Index+int64(len(recs)) {
		return fmt.Errorf("store: next head size %d does not follow records ending at %d",
			next.Size, recs[0].Index+int64(len(recs)))
	}
	return nil
}

// timeOrderError refuses event idx stamped t, earlier than the event
// before it in the same batch, stamped prev: the log's index order is its
// time order (see ConflictError), and a batch is the caller's to order.
func timeOrderError(idx int64, t, prev time.Time) error {
	return fmt.Errorf("store: event %d at %s is earlier than the event before it (%s): events must be appended in time order",
		idx, t.UTC().Format(time.RFC3339Nano), prev.UTC().Format(time.RFC3339Nano))
}

func encodeHashes(hs []tlog.Hash) []byte {
	b := make([]byte, 0, len(hs)*tlog.HashSize)
	for _, h := range hs {
		b = append(b, h[:]...)
	}
	return b
}

func decodeHashes(b []byte) ([]tlog.Hash, error) {
	if len(b)%tlog.HashSize != 0 {
		return nil, fmt.Errorf("store: head hashes have %d bytes", len(b))
	}
	hs := make([]tlog.Hash, len(b)/tlog.HashSize)
	for i := range hs {
		copy(hs[i][:], b[i*tlog.HashSize:])
	}
	return hs, nil
}

// TablesInOrder reports whether ts is in the order Record.Tables asks for:
// sorted, without duplicates (strictly increasing).
func TablesInOrder(ts []string) bool {
	for i := 1; i < len(ts); i++ {
		if ts[i-1] >= ts[i] {
			return false
		}
	}
	return true
}

// uniqueTables returns r.Tables without duplicates, so the (name, idx) key
// cannot make an append fail: r.Tables itself when it is in order
// (TablesInOrder), as the audit log writes it.
func uniqueTables(r Record) []string {
	if TablesInOrder(r.Tables) {
		return r.Tables
	}
	seen := make(map[string]bool, len(r.Tables))
	var out []string
	for _, t := range r.Tables {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}
