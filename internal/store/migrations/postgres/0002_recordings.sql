-- Session recordings: one row per session and its compressed chunks, in
-- order. Times are Unix nanoseconds; ended is 0 while the session runs. The
-- chunk bytes are opaque here: the record package owns their format, and
-- sha256 is the digest of data that session.end audit events also carry.
CREATE TABLE recordings (
	session_id text PRIMARY KEY,
	principal  text NOT NULL,
	connection text NOT NULL,
	role       text NOT NULL,
	started    bigint NOT NULL,
	ended      bigint NOT NULL DEFAULT 0,
	bytes      bigint NOT NULL DEFAULT 0,
	chunks     bigint NOT NULL DEFAULT 0,
	truncated  boolean NOT NULL DEFAULT false
);
CREATE INDEX recordings_started ON recordings (started);

CREATE TABLE recording_chunks (
	session_id text NOT NULL REFERENCES recordings (session_id),
	seq        bigint NOT NULL,
	time       bigint NOT NULL,
	data       bytea NOT NULL,
	sha256     bytea NOT NULL,
	PRIMARY KEY (session_id, seq)
);

-- Chunks are written once. DELETE stays allowed: retention (record.Prune)
-- removes whole recordings. As for the audit tables this is defence in
-- depth; the digests in the audit log are what detect edits.
CREATE TRIGGER recording_chunks_append_only BEFORE UPDATE ON recording_chunks
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
