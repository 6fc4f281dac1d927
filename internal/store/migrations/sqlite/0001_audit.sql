-- The audit log: events (the Merkle tree's leaves), the head that serialises
-- appends, and signed checkpoints. Times are Unix nanoseconds.
CREATE TABLE audit_head (
	id     INTEGER PRIMARY KEY CHECK (id = 1),
	size   INTEGER NOT NULL,
	hashes BLOB NOT NULL
);
INSERT INTO audit_head (id, size, hashes) VALUES (1, 0, x'');

CREATE TABLE audit_events (
	idx        INTEGER PRIMARY KEY,
	ts         INTEGER NOT NULL,
	kind       TEXT NOT NULL,
	session_id TEXT NOT NULL,
	principal  TEXT NOT NULL,
	connection TEXT NOT NULL,
	decision   TEXT NOT NULL,
	outcome    TEXT NOT NULL,
	data       TEXT NOT NULL,
	hash       BLOB NOT NULL
);
-- Every index costs every append (a b-tree insert and a page written to the
-- log before the fsync), so only selective filters have one: time, session,
-- principal and table, and the kinds other than the two a statement writes
-- (store.buildEvents repeats the partial index's condition so the planner
-- can use it). Connection, decision, outcome and the statement kinds match
-- most events: queries on them scan in index order, as they would anyway.
CREATE INDEX audit_events_ts ON audit_events (ts);
CREATE INDEX audit_events_session ON audit_events (session_id, idx);
CREATE INDEX audit_events_principal ON audit_events (principal, idx);
CREATE INDEX audit_events_rare_kind ON audit_events (kind, idx)
	WHERE kind NOT IN ('statement', 'statement.outcome');

CREATE TABLE audit_event_tables (
	name TEXT NOT NULL,
	idx  INTEGER NOT NULL,
	PRIMARY KEY (name, idx)
) WITHOUT ROWID;
CREATE INDEX audit_event_tables_idx ON audit_event_tables (idx);

CREATE TABLE audit_checkpoints (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	size    INTEGER NOT NULL,
	created INTEGER NOT NULL,
	note    TEXT NOT NULL
);
CREATE INDEX audit_checkpoints_size ON audit_checkpoints (size, id);

-- Append-only: defence in depth against casual edits (see package doc).
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_event_tables_no_update BEFORE UPDATE ON audit_event_tables
BEGIN SELECT RAISE(ABORT, 'audit_event_tables is append-only'); END;
CREATE TRIGGER audit_event_tables_no_delete BEFORE DELETE ON audit_event_tables
BEGIN SELECT RAISE(ABORT, 'audit_event_tables is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
