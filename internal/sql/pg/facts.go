package pg

import (
	"encoding/json"
	"fmt"
)

// Statement holds the facts Gatehouse knows about one SQL statement. Policy
// rules see it as the CEL variable stmt, with the json names below as field
// names. Facts are collected from the whole parse tree (subqueries, CTEs,
// RETURNING, MERGE actions, the inner statement of PREPARE, COPY (query),
// CREATE TABLE AS, EXPLAIN ANALYZE, rule actions, …), so a rule that asks
// "does this statement delete from payments?" does not depend on where in the
// statement the DELETE hides.
//
// Object names are normalised: unquoted identifiers are lower case (the parser
// folds them), quoted identifiers keep their case, U&"…" escapes are decoded,
// and qualified names are joined with dots ("public.payments"). Match them
// with MatchName, never with ==, so that a rule naming payments also sees
// public.payments.
//
// A Statement returned by Analyze may be shared by every caller that analysed
// the same text: treat it as read-only. Resolve returns a fresh copy.
type Statement struct {
	// Command is PostgreSQL's command tag for the statement ("SELECT",
	// "DROP TABLE", "ALTER SYSTEM", …). Empty when ParseError is set.
	Command string `json:"command"`

	// Relations by what the statement does to them. Reads include every
	// table, view or CTE name referenced in a reading position (a CTE name
	// over-matches on purpose: it cannot be told from a table without the
	// catalog).
	Reads     []string `json:"reads,omitempty"`
	Inserts   []string `json:"inserts,omitempty"`
	Updates   []string `json:"updates,omitempty"` // includes INSERT … ON CONFLICT DO UPDATE and MERGE … UPDATE targets
	Deletes   []string `json:"deletes,omitempty"` // includes MERGE … DELETE targets
	Truncates []string `json:"truncates,omitempty"`

	// DDL targets by name, of any kind; Objects says which kind each one is.
	Drops   []string `json:"drops,omitempty"`
	Alters  []string `json:"alters,omitempty"`
	Renames []string `json:"renames,omitempty"` // renamed objects by their old name; includes SET SCHEMA moves
	Creates []string `json:"creates,omitempty"`
	Objects []Object `json:"objects,omitempty"`

	// Functions lists every function called anywhere in the statement, by
	// the name as written (qualified when written qualified).
	Functions []string `json:"functions,omitempty"`

	// Column facts, for rules that protect a column the gateway masks.
	// Column masking finds a column by the table and attribute PostgreSQL
	// reports in RowDescription, which it does only for a plain column
	// reference in a SELECT list or RETURNING; these lists name the other
	// ways a statement can read or probe a column. Each column appears as
	// "table.column", the table named as in FROM whatever alias the
	// statement gave it, and as the bare "column". Resolution works without
	// the catalog and over-matches: an unqualified column is attributed to
	// every table in scope (enclosing queries' included); a column of a
	// subquery in FROM or a CTE to the columns it is made of; a column no
	// FROM item can hold to every relation the statement reads; and a
	// column whose name cannot be known (under a column alias list over *,
	// in a recursive CTE) as "table.*", meaning any column of the table.
	//
	// ColumnExprs lists columns read through anything other than a plain
	// reference (pan, p.pan, *, p.*) in a SELECT list or RETURNING:
	// function and operator arguments, casts, CASE, aggregates, window
	// functions, row constructors, subqueries used as values, FROM-clause
	// functions, UPDATE … SET and VALUES expressions (which can copy a value
	// to a column no masking rule knows), whole-row values, and every
	// output column of a UNION, INTERSECT or EXCEPT operand (PostgreSQL
	// reports no table for a set operation's columns).
	ColumnExprs []string `json:"column_exprs,omitempty"`
	// WholeRowReads lists tables read as one composite value: SELECT p FROM
	// payments p, row_to_json(p), to_jsonb(p.*), p::text, ROW(p.*). Their
	// columns are in ColumnExprs too, as "table.*".
	WholeRowReads []string `json:"whole_row_reads,omitempty"`
	// FilterColumns lists columns tested in WHERE, JOIN … ON or USING
	// (NATURAL JOIN: "table.*" of both sides), HAVING, or that rows are
	// sorted, grouped, partitioned or made DISTINCT ON by (ORDER BY 1 and
	// output names count). FilterExprs is the subset used in any way other
	// than a lookup — a top-level (ANDed) column = constant or $n, or
	// column IS [NOT] NULL — that is, with LIKE, regular expressions,
	// ranges, IN, ANY, functions, casts, comparisons with other columns, OR,
	// NOT, sorting or grouping: predicates that can recover a value piece by
	// piece.
	FilterColumns []string `json:"filter_columns,omitempty"`
	FilterExprs   []string `json:"filter_exprs,omitempty"`

	Privileges []Privilege  `json:"privileges,omitempty"`
	Roles      []RoleChange `json:"roles,omitempty"`

	// Settings lists the configuration parameters the statement changes or
	// resets (SET, RESET, set_config, ALTER SYSTEM/ROLE/DATABASE … SET), in
	// lower case.
	Settings []string `json:"settings,omitempty"`
	// Logging is set when the statement can change what the server logs or
	// audits: any ALTER SYSTEM, a change of log_*, pgaudit.*, *_preload_libraries
	// or session_replication_role (which silences audit triggers), set_config
	// with a name that is not a constant, and disabling triggers.
	Logging bool `json:"logging,omitempty"`

	Copy           Copy     `json:"copy,omitzero"`
	ModifyingCTE   bool     `json:"modifying_cte,omitempty"`
	ExplainAnalyze bool     `json:"explain_analyze,omitempty"`
	Into           Into     `json:"into,omitzero"`
	MergeActions   []string `json:"merge_actions,omitempty"` // "update", "insert", "delete", "nothing"

	// Opaque is set when the statement's effect cannot be judged from its
	// text: DO blocks, CALL, creating functions, procedures, rules, triggers,
	// views, event triggers, extensions, casts, operators, languages, foreign
	// servers and subscriptions, functions that run SQL given as text, EXECUTE
	// of an unknown prepared statement, and settings that make the server
	// lex SQL differently from the analyser.
	Opaque       bool   `json:"opaque,omitempty"`
	OpaqueReason string `json:"opaque_reason,omitempty"`

	Prepare    Prepare    `json:"prepare,omitzero"`
	Execute    Execute    `json:"execute,omitzero"`
	Deallocate Deallocate `json:"deallocate,omitzero"`

	// ParseError is set when the text does not parse; Error says why.
	ParseError bool   `json:"parse_error,omitempty"`
	Error      string `json:"error,omitempty"`

	// marshalled is the statement as encoding/json writes it, made when
	// Analyze creates the statement and before anyone shares it; nil for a
	// statement made or changed elsewhere.
	marshalled []byte
}

// AppendJSON appends st as encoding/json marshals it. A statement from
// Analyze was marshalled once, when it was analysed: the audit log writes
// the facts of every statement, and a busy workload repeats a few
// statements with different constants.
func (st *Statement) AppendJSON(dst []byte) ([]byte, error) {
	if st == nil {
		return append(dst, "null"...), nil
	}
	if st.marshalled != nil {
		return append(dst, st.marshalled...), nil
	}
	b, err := json.Marshal(st)
	if err != nil {
		return dst, fmt.Errorf("marshal statement facts: %w", err)
	}
	return append(dst, b...), nil
}

// marshal fills st.marshalled. An error leaves it nil, for AppendJSON to
// report.
func (st *Statement) marshal() {
	st.marshalled, _ = json.Marshal(st)
}

// Object is one DDL target with its kind.
type Object struct {
	// Action is "create", "alter", "drop" or "rename" (SET SCHEMA counts as
	// a rename: the qualified name changes).
	Action string `json:"action"`
	// Kind is PostgreSQL's object type in lower case: "table", "schema",
	// "database", "view", "materialized_view", "index", "sequence",
	// "function", "trigger", …; "owned" for DROP OWNED BY (Name is the role).
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Cascade is set for DROP … CASCADE, which may remove other objects.
	Cascade bool `json:"cascade,omitempty"`
}

// Privilege is one GRANT, REVOKE, ALTER DEFAULT PRIVILEGES, ownership change
// (ALTER … OWNER TO, REASSIGN OWNED) or role membership change.
type Privilege struct {
	Action     string   `json:"action"`               // "grant", "revoke", "owner", "reassign"
	Kind       string   `json:"kind"`                 // object kind ("table", "schema", …), "role" for membership, "default_table" etc. for default privileges
	Privileges []string `json:"privileges,omitempty"` // lower case; "all" for ALL; granted role names for membership
	Objects    []string `json:"objects,omitempty"`
	Grantees   []string `json:"grantees,omitempty"` // "public" for PUBLIC
}

// RoleChange is one CREATE/ALTER/DROP ROLE (USER, GROUP) or role rename.
type RoleChange struct {
	Action string `json:"action"` // "create", "alter", "drop", "rename"
	Name   string `json:"name"`
}

// Copy describes a COPY statement; its fields are empty for other statements.
type Copy struct {
	Direction string `json:"direction,omitempty"` // "in" (FROM) or "out" (TO)
	Target    string `json:"target,omitempty"`    // "stdio", "file" or "program"
	Relation  string `json:"relation,omitempty"`  // the table, when not COPY (query)
	Query     bool   `json:"query,omitempty"`     // COPY (query) TO …
}

// Into describes a statement that creates a table from a query: SELECT …
// INTO, CREATE TABLE … AS, CREATE MATERIALIZED VIEW. Empty otherwise.
type Into struct {
	Target string   `json:"target,omitempty"`
	Kind   string   `json:"kind,omitempty"`  // "table" or "materialized_view"
	Reads  []string `json:"reads,omitempty"` // the relations the source query reads
}

// Prepare names the prepared statement a PREPARE creates.
type Prepare struct {
	Name string `json:"name,omitempty"`
}

// Execute names the prepared statement an EXECUTE runs.
type Execute struct {
	Name string `json:"name,omitempty"`
	// Resolved is set once Resolve has merged the prepared statement's facts.
	Resolved bool `json:"resolved,omitempty"`
}

// Deallocate names the prepared statement a DEALLOCATE removes; All is set
// for DEALLOCATE ALL and DISCARD ALL.
type Deallocate struct {
	Name string `json:"name,omitempty"`
	All  bool   `json:"all,omitempty"`
}

// Analysis is the result of analysing one query string: one Statement per
// statement, in order. An empty string or one holding only comments has no
// statements.
type Analysis struct {
	Statements []*Statement `json:"statements"`

	syntax *SyntaxError // set when the text does not parse
	// shareable is set when the analysis holds for every text that
	// normalises to the analysed one: it parsed, and no fact depended on a
	// $n parameter's value.
	shareable bool
}
