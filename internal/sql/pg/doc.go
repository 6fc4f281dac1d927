// Package pg owns statement analysis for PostgreSQL: it parses SQL with
// PostgreSQL's own grammar (libpg_query through pg_query_go) and reduces each
// statement to facts — its command tag, the relations it reads, inserts,
// updates, deletes, truncates, drops, alters, renames and creates, the
// functions it calls, privilege and role changes, settings it changes,
// COPY, SELECT INTO, EXPLAIN ANALYZE, MERGE actions, prepared statements,
// whether its effect is opaque (DO, CALL, CREATE FUNCTION, …), and how it
// uses column values: read through expressions, as whole rows, or in
// predicates and ordering (columns.go), which column masking cannot see. Policy
// (package policy) judges these facts; this package judges nothing.
//
// Facts are collected from the whole parse tree by a reflective walk, so a
// statement kind without a dedicated case is still searched for relations
// and function calls. Where the analyser cannot know — an unqualified name's
// schema, a view's definition, a function's body — it over-reports: a deny
// rule then matches too much rather than too little.
//
// Analyzer caches analyses by text, and by template for texts that differ
// only in constants (see Analyzer for why the cache cannot return the facts
// of a different statement). PreparedSet and Resolve give
// EXECUTE the facts of what was prepared.
//
// The analyser assumes what Gatehouse's proxy must guarantee on the wire: a
// UTF-8 client encoding and standard_conforming_strings=on. Statements that
// change either are reported as opaque; startup parameters are the proxy's
// to check.
package pg
