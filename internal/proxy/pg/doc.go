// Package pg is Gatehouse's PostgreSQL engine: the client-facing front end
// (TLS, startup, token authentication), the target leg (pgconn with the
// role's credential, then a hijacked raw connection) and the session loop
// that relays the wire protocol message by message, calling the core
// (identity, policy, mask, audit) on the way.
//
// The relay frames messages itself instead of decoding them into pgproto3
// structs: most messages are forwarded byte for byte, and only the few the
// core needs to see (Query, Parse, DataRow, ErrorResponse, ...) are looked
// into. Buffers returned by the reader are valid until its next call.
//
// Policy denials are enforced by the target itself: the denied statement is
// replaced by a sentinel statement that fails during parse analysis, and the
// sentinel's error is rewritten into Gatehouse's 42501 on the way back. So
// the target's transaction state, the order of responses in a pipeline and
// the skip-until-Sync behaviour of the extended protocol are exactly
// PostgreSQL's own, while the denied statement itself never reaches it.
package pg
