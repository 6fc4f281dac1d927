// Package approval holds statements (and session grants) that a policy rule
// sends for review until a human decides: the Broker creates requests,
// notifies reviewers, takes decisions, expires what nobody decided, and wakes
// the session waiting for the result, whichever gateway replica it runs on.
//
// # Lifecycle
//
// A request is pending until exactly one of:
//
//   - approved: Required distinct reviewers approved it;
//   - denied: one reviewer denied it (the reason is required and reaches
//     the client);
//   - expired: nobody decided before Expires;
//   - withdrawn: the client gave up (cancel, disconnect), the gateway shut
//     down, or the replica holding it restarted before a decision
//     ("abandoned").
//
// Every transition is a compare-and-swap on the stored row's version
// (store.ApprovalStore.UpdateApproval), so two reviewers deciding at once on
// two replicas cannot both win, and a decision never overwrites an expiry.
// Nobody decides their own request, and only members of the request's
// reviewer groups (or of the broker's approver groups) decide at all.
//
// Audit records (audit.KindApprovalRequested, audit.KindApprovalDecided) are
// written before the change they describe when the change could release a
// statement (a request, an approval), so that nothing runs on an unrecorded
// approval; changes that only refuse (deny, expiry, withdrawal) are stored
// first and recorded by the replica whose update won, so that racing
// replicas do not record one expiry twice.
//
// # Waking waiters across replicas
//
// Wait re-reads the request whenever it may have changed. A decision on the
// same broker wakes its waiters at once. On the PostgreSQL store every update
// sends NOTIFY (store.ApprovalWatcher), which wakes waiters on every replica;
// a slow poll stays on as a safety net for notifications lost while the
// listening connection reconnects. Stores without a watcher (SQLite) are
// polled every Options.PollInterval while anyone waits.
//
// # Stored format
//
// store.Approval.Data is the JSON object of the unexported type stored:
// format version "v" (1), the request's fields in snake_case, the
// requester's identity without token claims, and the decisions in the order
// they were made. Durations are nanoseconds. The row's other columns (status,
// principal, connection, holder, created, expires) are copies of it.
package approval
