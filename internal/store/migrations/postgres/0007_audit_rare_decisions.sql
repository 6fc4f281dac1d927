-- Auditors ask for what was refused, held or failed, and those events are
-- few: without an index such a query read the whole log (on SQLite,
-- 1,000,000 events: 0.45 s, and as long again for every page). Partial
-- indexes, like audit_events_rare_kind, hold only the rare values, so the
-- events every statement writes (allowed statements, successful outcomes)
-- pay nothing.
-- store.buildEvents repeats their conditions so that the planner uses them.
CREATE INDEX audit_events_rare_decision ON audit_events (decision, idx)
	WHERE decision NOT IN ('allow', '');
CREATE INDEX audit_events_rare_outcome ON audit_events (outcome, idx)
	WHERE outcome NOT IN ('success', '');
