-- The audit log: events (the Merkle tree's leaves), the head that serialises
-- appends (SELECT … FOR UPDATE), and signed checkpoints. Times are Unix
-- nanoseconds so both dialects store the same values.
CREATE TABLE audit_head (
	id     integer PRIMARY KEY CHECK (id = 1),
	size   bigint NOT NULL,
	hashes bytea NOT NULL
);
INSERT INTO audit_head (id, size, hashes) VALUES (1, 0, '\x');

CREATE TABLE audit_events (
	idx        bigint PRIMARY KEY,
	ts         bigint NOT NULL,
	kind       text NOT NULL,
	session_id text NOT NULL,
	principal  text NOT NULL,
	connection text NOT NULL,
	decision   text NOT NULL,
	outcome    text NOT NULL,
	data       text NOT NULL,
	hash       bytea NOT NULL
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
	name text NOT NULL,
	idx  bigint NOT NULL,
	PRIMARY KEY (name, idx)
);
CREATE INDEX audit_event_tables_idx ON audit_event_tables (idx);

CREATE TABLE audit_checkpoints (
	id      bigserial PRIMARY KEY,
	size    bigint NOT NULL,
	created bigint NOT NULL,
	note    text NOT NULL
);
CREATE INDEX audit_checkpoints_size ON audit_checkpoints (size, id);

-- Append-only: defence in depth against casual edits (see package doc).
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_event_tables_append_only BEFORE UPDATE OR DELETE ON audit_event_tables
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_event_tables_no_truncate BEFORE TRUNCATE ON audit_event_tables
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
