// Package policy owns Gatehouse's rules: CEL expressions over the caller
// (principal), the connection and role, the session and a statement's facts
// (package pg), compiled and type-checked once at load and evaluated per
// connection and per statement.
//
// Each rule names an action — allow, review or deny — and the strictest
// matching rule wins; when none matches, the configured default applies.
// Evaluation fails closed: a statement that does not parse is denied by the
// built-in rule "unparseable", and a rule whose expression fails at run time
// (a missing claim, say) denies, naming itself.
//
// Rules see the variables principal (name, issuer, subject, groups, claims),
// connection, role, session (id, client_addr, in_transaction) and stmt (the
// pg.Statement facts, by their json names), and these helpers:
//
//	touches(names, "payments")         any name matches, in any schema (pg.MatchName)
//	touches(names, ["a", "b"])         any name matches any pattern
//	calls(stmt, "pg_read_file")        touches(stmt.functions, …)
//	touches_column(stmt.column_exprs, "payments.pan")
//	                                   a column fact lists pan of payments (pg.MatchColumn)
//	matches_name(name, "payments")     one name, one pattern
//	has_group("security")              "security" in principal.groups
//
// plus CEL's standard library and the ext strings library. docs/policy.md is
// the user's guide; testdata/reference.yaml is the reference deployment's
// policy.
package policy
