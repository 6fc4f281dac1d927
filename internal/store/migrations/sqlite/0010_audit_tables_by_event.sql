-- An event's tables are kept under the event (idx, name) rather than
-- under the table (name, idx) with a second index on idx: one b-tree
-- insert per table instead of two, at the end of the tree rather than
-- among that table's earlier rows. The table filter then reads the
-- blocks of 1,024 events a table appears in (audit_table_blocks, written
-- as 0009's blocks are) and, in each, the table's rows by key range
-- (store.buildEvents). Indexing events costs 9-22% less
-- (BenchmarkAppendEventsIndexCost).
--
-- This copies the table rows once.
DROP TRIGGER audit_event_tables_no_update;
DROP TRIGGER audit_event_tables_no_delete;
CREATE TABLE audit_event_tables_by_event (
	idx  INTEGER NOT NULL,
	name TEXT NOT NULL,
	PRIMARY KEY (idx, name)
) WITHOUT ROWID;
INSERT INTO audit_event_tables_by_event (idx, name) SELECT idx, name FROM audit_event_tables ORDER BY idx, name;
DROP TABLE audit_event_tables;
ALTER TABLE audit_event_tables_by_event RENAME TO audit_event_tables;
CREATE TRIGGER audit_event_tables_no_update BEFORE UPDATE ON audit_event_tables
BEGIN SELECT RAISE(ABORT, 'audit_event_tables is append-only'); END;
CREATE TRIGGER audit_event_tables_no_delete BEFORE DELETE ON audit_event_tables
WHEN OLD.idx >= (SELECT coalesce(max(below), 0) FROM audit_prunes)
BEGIN SELECT RAISE(ABORT, 'audit_event_tables is append-only'); END;

CREATE TABLE audit_table_blocks (
	name  TEXT NOT NULL,
	block INTEGER NOT NULL,
	PRIMARY KEY (name, block)
) WITHOUT ROWID;
INSERT INTO audit_table_blocks (name, block)
	SELECT DISTINCT name, idx >> 10 FROM audit_event_tables WHERE name <> '';
CREATE TRIGGER audit_table_blocks_no_update BEFORE UPDATE ON audit_table_blocks
BEGIN SELECT RAISE(ABORT, 'audit_table_blocks is append-only'); END;
CREATE TRIGGER audit_table_blocks_no_delete BEFORE DELETE ON audit_table_blocks
WHEN OLD.block >= (SELECT coalesce(max(below), 0) FROM audit_prunes) >> 10
BEGIN SELECT RAISE(ABORT, 'audit_table_blocks is append-only'); END;
