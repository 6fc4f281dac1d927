-- Index order becomes time order, as on the embedded store: an append
-- stamped earlier than the log's last event (last_ts) is refused as a
-- conflict, and the replica re-stamps its batch no earlier and tries
-- again. A time range is then a range of indexes that bisecting the
-- primary key finds, where the planner could walk the primary key from the
-- log's start filtering on time (500,000 events, "since" mid-log: 50-70 ms,
-- growing with the log).
--
-- Events that replicas appended before, with clocks apart, may be out of
-- order. ordered_from is the first index from which they are not: the last
-- event stamped earlier than the one before it (0 if none). Bisection
-- covers the events from ordered_from on; a time range's start is also
-- looked for among the events before it, which audit_events_ts (it stays)
-- finds when the range starts late.
--
-- The trigger keeps last_ts and ordered_from for every insert, so a
-- replica still running the previous release during a rolling upgrade,
-- which neither checks nor moves last_ts, cannot break what queries rely
-- on: an event it appends out of order moves ordered_from up to it.
--
-- This migration runs first of the release's, so that it holds audit_head
-- before anything touches audit_events: appending replicas take them in
-- that order. Appends wait while it reads the log once.
ALTER TABLE audit_head ADD COLUMN last_ts bigint NOT NULL DEFAULT 0;
ALTER TABLE audit_head ADD COLUMN ordered_from bigint NOT NULL DEFAULT 0;
UPDATE audit_head SET
	last_ts = coalesce((SELECT ts FROM audit_events WHERE idx = audit_head.size - 1), 0),
	ordered_from = coalesce((
		SELECT max(idx) FROM (
			SELECT idx, ts < lag(ts) OVER (ORDER BY idx) AS back FROM audit_events
		) e WHERE back
	), 0)
WHERE id = 1;

CREATE FUNCTION audit_events_time_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT FROM new_events) THEN
		RETURN NULL; -- an append that lost the race: nothing to keep
	END IF;
	UPDATE audit_head h SET
		ordered_from = greatest(h.ordered_from, coalesce((
			SELECT max(idx) FROM (
				SELECT idx, ts < coalesce(lag(ts) OVER (ORDER BY idx), h.last_ts) AS back
				FROM new_events
			) e WHERE back
		), 0)),
		last_ts = (SELECT ts FROM new_events ORDER BY idx DESC LIMIT 1)
	WHERE id = 1;
	RETURN NULL;
END
$$;
CREATE TRIGGER audit_events_time_order AFTER INSERT ON audit_events
	REFERENCING NEW TABLE AS new_events
	FOR EACH STATEMENT EXECUTE FUNCTION audit_events_time_order();
