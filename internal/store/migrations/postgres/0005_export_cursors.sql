-- Export cursors: how far each streaming export sink (config audit.export,
-- audit.Streamer) has delivered the audit log. position is the index of the
-- next event to send, so 0 is "nothing yet" and a restart resumes there.
-- Replicas sharing the store share the cursor; AdvanceExportCursor compares
-- the old position, so a slower replica cannot move it back. Cursors are not
-- evidence: moving one forward skips events for that receiver only, which
-- sees the gap in the X-Gatehouse-Events ranges; the log itself is
-- untouched. updated is Unix nanoseconds.
CREATE TABLE audit_export_cursors (
	name     text PRIMARY KEY,
	position bigint NOT NULL CHECK (position >= 0),
	updated  bigint NOT NULL
);
