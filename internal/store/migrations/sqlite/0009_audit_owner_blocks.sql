-- Session and principal filters find their events through blocks of 1,024
-- indexes rather than an index entry per event. The two indexes cost 43%
-- of indexing an event (a b-tree insert each, on every event); a block
-- table holds one row per session (principal) and block it has events in,
-- written with the block's first such event, so a busy session costs one
-- insert per 1,024 events of the log rather than one per event of its own.
-- A query reads the blocks a session (principal) appears in, in order, and
-- in each the events of that block range that match: at most 1,023 others
-- per block read, in primary key order (store.buildEvents). A block is
-- idx >> 10 (store.ownerBlockShift). Empty sessions and principals (events
-- that belong to none) are not filters, and have no rows.
--
-- This reads the log once, through the indexes it then drops.
CREATE TABLE audit_session_blocks (
	session_id TEXT NOT NULL,
	block      INTEGER NOT NULL,
	PRIMARY KEY (session_id, block)
) WITHOUT ROWID;
CREATE TABLE audit_principal_blocks (
	principal TEXT NOT NULL,
	block     INTEGER NOT NULL,
	PRIMARY KEY (principal, block)
) WITHOUT ROWID;
INSERT INTO audit_session_blocks (session_id, block)
	SELECT DISTINCT session_id, idx >> 10 FROM audit_events WHERE session_id <> '';
INSERT INTO audit_principal_blocks (principal, block)
	SELECT DISTINCT principal, idx >> 10 FROM audit_events WHERE principal <> '';
DROP INDEX audit_events_session;
DROP INDEX audit_events_principal;

-- Like the events they lead to: rows are never changed, and deleted only
-- in blocks wholly below the newest prune marker. As for the events this
-- is defence in depth; the blocks only find events, audit.Verify reads
-- them all.
CREATE TRIGGER audit_session_blocks_no_update BEFORE UPDATE ON audit_session_blocks
BEGIN SELECT RAISE(ABORT, 'audit_session_blocks is append-only'); END;
CREATE TRIGGER audit_session_blocks_no_delete BEFORE DELETE ON audit_session_blocks
WHEN OLD.block >= (SELECT coalesce(max(below), 0) FROM audit_prunes) >> 10
BEGIN SELECT RAISE(ABORT, 'audit_session_blocks is append-only'); END;
CREATE TRIGGER audit_principal_blocks_no_update BEFORE UPDATE ON audit_principal_blocks
BEGIN SELECT RAISE(ABORT, 'audit_principal_blocks is append-only'); END;
CREATE TRIGGER audit_principal_blocks_no_delete BEFORE DELETE ON audit_principal_blocks
WHEN OLD.block >= (SELECT coalesce(max(below), 0) FROM audit_prunes) >> 10
BEGIN SELECT RAISE(ABORT, 'audit_principal_blocks is append-only'); END;
