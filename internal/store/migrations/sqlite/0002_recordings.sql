-- Session recordings: one row per session and its compressed chunks, in
-- order. Times are Unix nanoseconds; ended is 0 while the session runs. The
-- chunk bytes are opaque here: the record package owns their format, and
-- sha256 is the digest of data that session.end audit events also carry.
CREATE TABLE recordings (
	session_id TEXT PRIMARY KEY,
	principal  TEXT NOT NULL,
	connection TEXT NOT NULL,
	role       TEXT NOT NULL,
	started    INTEGER NOT NULL,
	ended      INTEGER NOT NULL DEFAULT 0,
	bytes      INTEGER NOT NULL DEFAULT 0,
	chunks     INTEGER NOT NULL DEFAULT 0,
	truncated  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX recordings_started ON recordings (started);

-- A rowid table, not WITHOUT ROWID: chunks are large and SQLite keeps
-- WITHOUT ROWID rows inside the key's b-tree.
CREATE TABLE recording_chunks (
	session_id TEXT NOT NULL REFERENCES recordings (session_id),
	seq        INTEGER NOT NULL,
	time       INTEGER NOT NULL,
	data       BLOB NOT NULL,
	sha256     BLOB NOT NULL,
	PRIMARY KEY (session_id, seq)
);

-- Chunks are written once. DELETE stays allowed: retention (record.Prune)
-- removes whole recordings. As for the audit tables this is defence in
-- depth; the digests in the audit log are what detect edits.
CREATE TRIGGER recording_chunks_no_update BEFORE UPDATE ON recording_chunks
BEGIN SELECT RAISE(ABORT, 'recording_chunks is append-only'); END;
