-- A chunk's bytes move to the last column. AppendChunk reserves them with a
-- zeroblob in the INSERT and writes them through SQLite's incremental blob
-- I/O; SQLite leaves a trailing zeroblob out of the record it builds, but
-- expands one in any other position into a record as large as the chunk,
-- allocated and freed for every chunk. The table is rebuilt, since SQLite
-- cannot reorder columns: this copies every stored chunk once, in this one
-- transaction, and needs free disk space for a second copy while it runs.
CREATE TABLE recording_chunks_new (
	session_id TEXT NOT NULL REFERENCES recordings (session_id),
	seq        INTEGER NOT NULL,
	time       INTEGER NOT NULL,
	sha256     BLOB NOT NULL,
	data       BLOB NOT NULL,
	PRIMARY KEY (session_id, seq)
);
INSERT INTO recording_chunks_new (rowid, session_id, seq, time, sha256, data)
	SELECT rowid, session_id, seq, time, sha256, data FROM recording_chunks ORDER BY rowid;
DROP TABLE recording_chunks;
ALTER TABLE recording_chunks_new RENAME TO recording_chunks;

-- Dropped with the old table. The blob writes are AppendChunk's own, on a
-- row it has just inserted, in the same transaction: they fire no trigger.
CREATE TRIGGER recording_chunks_no_update BEFORE UPDATE ON recording_chunks
BEGIN SELECT RAISE(ABORT, 'recording_chunks is append-only'); END;
