-- Export cursors: how far each streaming export sink (config audit.export,
-- audit.Streamer) has delivered the audit log. position is the index of the
-- next event to send, so 0 is "nothing yet" and a restart resumes there.
-- Cursors are not evidence: moving one forward skips events for that
-- receiver only, which sees the gap in the X-Gatehouse-Events ranges; the
-- log itself is untouched. updated is Unix nanoseconds.
CREATE TABLE audit_export_cursors (
	name     TEXT PRIMARY KEY,
	position INTEGER NOT NULL CHECK (position >= 0),
	updated  INTEGER NOT NULL
);
