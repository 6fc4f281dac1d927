-- Index order becomes time order, and a time range is found by bisecting
-- the primary key instead of through an index on ts, which cost every
-- append a b-tree insert (about a tenth of indexing an event). AppendEvents
-- refuses a batch stamped earlier than the log's last event, as a conflict
-- that tells the writer (audit.Log) the time to re-stamp from.
--
-- A log written before, when a gateway and a command could append to the
-- same file, may be out of order in places by a commit's width.
-- ordered_from is the first index from which it is not: the last event
-- stamped earlier than the one before it (0 if none); this reads the log
-- once. Upgrade every binary that opens the file together: a command of
-- the previous release appends without the check.
-- Bisection covers the events from ordered_from on; a time range's start
-- also looks among the events before it, reading them.
ALTER TABLE audit_head ADD COLUMN ordered_from INTEGER NOT NULL DEFAULT 0;
UPDATE audit_head SET ordered_from = coalesce((
	SELECT max(idx) FROM (
		SELECT idx, ts < lag(ts) OVER (ORDER BY idx) AS back FROM audit_events
	) WHERE back
), 0)
WHERE id = 1;
DROP INDEX audit_events_ts;
