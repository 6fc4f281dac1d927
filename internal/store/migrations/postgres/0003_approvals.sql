-- Approval requests: statements (or sessions) held for a reviewer's
-- decision. data is the approval package's JSON encoding of the whole
-- request and is authoritative; the other columns are copies used to find
-- rows. version grows by one on every update: UpdateApproval compares it, so
-- two replicas deciding at once cannot overwrite each other. holder is the
-- gateway replica whose client waits for the decision. Times are Unix
-- nanoseconds. Updates send NOTIFY gatehouse_approvals with the id, which
-- wakes waiters on the other replicas.
CREATE TABLE approvals (
	id         text PRIMARY KEY,
	status     text NOT NULL,
	principal  text NOT NULL,
	connection text NOT NULL,
	holder     text NOT NULL,
	created    bigint NOT NULL,
	expires    bigint NOT NULL,
	version    bigint NOT NULL,
	data       text NOT NULL
);
CREATE INDEX approvals_created ON approvals (created);
CREATE INDEX approvals_status_expires ON approvals (status, expires);
CREATE INDEX approvals_holder ON approvals (holder, status);
