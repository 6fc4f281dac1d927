-- A time range is found by bisecting the primary key instead of through an
-- index on ts. On the embedded store the log has one writer (the journal
-- holds its file exclusively) and audit.Log stamps every event no earlier
-- than the one before, so index order is time order; AppendEvents now
-- refuses a batch that would break it. The index cost every append a
-- b-tree insert: about a sixth of indexing an event. The PostgreSQL store,
-- whose replicas append with their own clocks, keeps its index.
DROP INDEX audit_events_ts;
