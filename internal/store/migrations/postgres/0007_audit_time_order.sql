-- Index order becomes time order, as on the embedded store: an append
-- stamped earlier than the log's last event is refused as a conflict
-- (last_ts, checked and moved under the head row's lock), and the replica
-- re-stamps its batch no earlier than that and tries again. A time range is
-- then a range of indexes that bisecting the primary key finds, where the
-- planner could walk the primary key from the log's start filtering on
-- time (500,000 events, "since" mid-log: 50-70 ms, growing with the log).
--
-- Events appended before this migration by replicas with clocks apart may
-- be out of order. ordered_from is the first index from which they are
-- not: the last event stamped earlier than one before it (0 if none). This
-- reads the whole log once. Queries bisect only while no event before
-- ordered_from remains (retention removes them in time); until then they
-- use audit_events_ts, which stays.
ALTER TABLE audit_head ADD COLUMN last_ts bigint NOT NULL DEFAULT 0;
ALTER TABLE audit_head ADD COLUMN ordered_from bigint NOT NULL DEFAULT 0;
UPDATE audit_head SET
	last_ts = coalesce((SELECT ts FROM audit_events WHERE idx = audit_head.size - 1), 0),
	ordered_from = coalesce((
		SELECT max(idx) FROM (
			SELECT idx, ts < max(ts) OVER (ORDER BY idx ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS back
			FROM audit_events
		) e WHERE back
	), 0)
WHERE id = 1;
