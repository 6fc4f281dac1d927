-- Retention: the audit log's prefix may be deleted, but only below a marker
-- that is recorded first. A marker keeps what verification needs to go on
-- from the pruned prefix: the compact range (tree hashes) at its index and
-- the signed checkpoint of that size, whose root the range must fold to.
-- Markers are append-only; the newest (largest below) is the one in force.
CREATE TABLE audit_prunes (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	below      INTEGER NOT NULL,
	hashes     BLOB NOT NULL,
	checkpoint TEXT NOT NULL,
	created    INTEGER NOT NULL
);
CREATE TRIGGER audit_prunes_no_update BEFORE UPDATE ON audit_prunes
BEGIN SELECT RAISE(ABORT, 'audit_prunes is append-only'); END;
CREATE TRIGGER audit_prunes_no_delete BEFORE DELETE ON audit_prunes
BEGIN SELECT RAISE(ABORT, 'audit_prunes is append-only'); END;

-- Events (and their table rows) may now be deleted below the marker, and
-- nowhere else. As before this is defence in depth: audit.Verify checks
-- that every marker is bridged by a signed checkpoint and announced by an
-- audit.pruned event, and that nothing at or above it is missing.
DROP TRIGGER audit_events_no_delete;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN OLD.idx >= (SELECT coalesce(max(below), 0) FROM audit_prunes)
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
DROP TRIGGER audit_event_tables_no_delete;
CREATE TRIGGER audit_event_tables_no_delete BEFORE DELETE ON audit_event_tables
WHEN OLD.idx >= (SELECT coalesce(max(below), 0) FROM audit_prunes)
BEGIN SELECT RAISE(ABORT, 'audit_event_tables is append-only'); END;
