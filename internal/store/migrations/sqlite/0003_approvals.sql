-- Approval requests: statements (or sessions) held for a reviewer's
-- decision. data is the approval package's JSON encoding of the whole
-- request and is authoritative; the other columns are copies used to find
-- rows. version grows by one on every update: UpdateApproval compares it, so
-- two replicas deciding at once cannot overwrite each other. holder is the
-- gateway replica whose client waits for the decision. Times are Unix
-- nanoseconds.
CREATE TABLE approvals (
	id         TEXT PRIMARY KEY,
	status     TEXT NOT NULL,
	principal  TEXT NOT NULL,
	connection TEXT NOT NULL,
	holder     TEXT NOT NULL,
	created    INTEGER NOT NULL,
	expires    INTEGER NOT NULL,
	version    INTEGER NOT NULL,
	data       TEXT NOT NULL
);
CREATE INDEX approvals_created ON approvals (created);
CREATE INDEX approvals_status_expires ON approvals (status, expires);
CREATE INDEX approvals_holder ON approvals (holder, status);
