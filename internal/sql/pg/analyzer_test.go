package pg

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// check is one expectation on a Statement.
type check func(*Statement) error

func has(field string, want ...string) check {
	return func(st *Statement) error {
		got := listField(st, field)
		for _, w := range want {
			if !slices.Contains(got, w) {
				return fmt.Errorf("%s = %q, want it to contain %q", field, got, w)
			}
		}
		return nil
	}
}

func empty(field string) check {
	return func(st *Statement) error {
		if got := listField(st, field); len(got) > 0 {
			return fmt.Errorf("%s = %q, want empty", field, got)
		}
		return nil
	}
}

func listField(st *Statement, field string) []string {
	switch field {
	case "reads":
		return st.Reads
	case "inserts":
		return st.Inserts
	case "updates":
		return st.Updates
	case "deletes":
		return st.Deletes
	case "truncates":
		return st.Truncates
	case "drops":
		return st.Drops
	case "alters":
		return st.Alters
	case "renames":
		return st.Renames
	case "creates":
		return st.Creates
	case "functions":
		return st.Functions
	case "settings":
		return st.Settings
	case "merge_actions":
		return st.MergeActions
	case "column_exprs":
		return st.ColumnExprs
	case "whole_row_reads":
		return st.WholeRowReads
	case "filter_columns":
		return st.FilterColumns
	case "filter_exprs":
		return st.FilterExprs
	case "objects":
		var out []string
		for _, o := range st.Objects {
			s := o.Action + " " + o.Kind + " " + o.Name
			if o.Cascade {
				s += " cascade"
			}
			out = append(out, s)
		}
		return out
	}
	panic("unknown field " + field)
}

func is(what string, get func(*Statement) bool) check {
	return func(st *Statement) error {
		if !get(st) {
			return fmt.Errorf("want %s", what)
		}
		return nil
	}
}

func not(what string, get func(*Statement) bool) check {
	return func(st *Statement) error {
		if get(st) {
			return fmt.Errorf("want not %s", what)
		}
		return nil
	}
}

func command(c string) check {
	return func(st *Statement) error {
		if st.Command != c {
			return fmt.Errorf("command = %q, want %q", st.Command, c)
		}
		return nil
	}
}

func equal[T comparable](what string, get func(*Statement) T, want T) check {
	return func(st *Statement) error {
		if got := get(st); got != want {
			return fmt.Errorf("%s = %v, want %v", what, got, want)
		}
		return nil
	}
}

var (
	opaque  = func(s *Statement) bool { return s.Opaque }
	logging = func(s *Statement) bool { return s.Logging }
)

func TestAnalyze(t *testing.T) {
	tests := []struct {
		sql    string
		checks []check
	}{
		// Reads everywhere a relation can hide.
		{"SELECT a.x FROM a JOIN s.b ON true WHERE a.id IN (SELECT id FROM c) AND EXISTS (SELECT 1 FROM d)",
			[]check{command("SELECT"), has("reads", "a", "s.b", "c", "d"), empty("inserts")}},
		{"TABLE payments", []check{has("reads", "payments")}},
		{`SELECT * FROM "Payments", U&"p\0061yments", shop.public.payments`,
			[]check{has("reads", "Payments", "payments", "shop.public.payments")}},
		{"SELECT 1 FROM a UNION SELECT 2 FROM b", []check{has("reads", "a", "b")}},
		{"SELECT (SELECT max(x) FROM lateral_t) FROM a, LATERAL (SELECT * FROM l WHERE l.id = a.id) q", []check{has("reads", "lateral_t", "a", "l"), has("functions", "max")}},

		// Writes.
		{"INSERT INTO orders SELECT * FROM payments RETURNING (SELECT 1 FROM r)", []check{command("INSERT"), has("inserts", "orders"), has("reads", "payments", "r")}},
		{"INSERT INTO p VALUES (1) ON CONFLICT (id) DO UPDATE SET v = 2", []check{has("inserts", "p"), has("updates", "p")}},
		{"INSERT INTO p VALUES (1) ON CONFLICT DO NOTHING", []check{has("inserts", "p"), empty("updates")}},
		{"UPDATE payments p SET amount = 0 FROM orders o WHERE o.id = p.id", []check{command("UPDATE"), has("updates", "payments"), has("reads", "orders"), empty("deletes")}},
		{"DELETE FROM ONLY public.payments USING orders", []check{has("deletes", "public.payments"), has("reads", "orders")}},
		{"WITH d AS (DELETE FROM payments RETURNING *) INSERT INTO archive SELECT * FROM d",
			[]check{is("modifying_cte", func(s *Statement) bool { return s.ModifyingCTE }), has("deletes", "payments"), has("inserts", "archive")}},
		{"WITH u AS (UPDATE payments SET x = 1 RETURNING *) SELECT * FROM u", []check{has("updates", "payments")}},
		{"SELECT * FROM (WITH q AS (DELETE FROM payments RETURNING 1) SELECT * FROM q) s", []check{has("deletes", "payments")}},
		{"MERGE INTO payments p USING orders o ON p.id = o.id WHEN MATCHED AND o.x THEN UPDATE SET a = 1 WHEN NOT MATCHED THEN INSERT VALUES (1) WHEN MATCHED THEN DELETE",
			[]check{command("MERGE"), has("updates", "payments"), has("inserts", "payments"), has("deletes", "payments"), has("merge_actions", "update", "insert", "delete")}},
		{"MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DO NOTHING", []check{has("merge_actions", "nothing"), empty("deletes"), empty("updates")}},
		{"TRUNCATE a, ONLY public.b CASCADE", []check{command("TRUNCATE"), has("truncates", "a", "public.b")}},

		// EXPLAIN: ANALYZE executes, plain EXPLAIN only plans.
		{"EXPLAIN ANALYZE DELETE FROM payments", []check{command("EXPLAIN"), has("deletes", "payments"), is("explain_analyze", func(s *Statement) bool { return s.ExplainAnalyze })}},
		{"EXPLAIN (ANALYZE, BUFFERS) UPDATE payments SET a = 1", []check{has("updates", "payments")}},
		{"EXPLAIN (ANALYZE true) DELETE FROM payments", []check{has("deletes", "payments")}},
		{"EXPLAIN (ANALYZE on) DELETE FROM payments", []check{has("deletes", "payments")}},
		{"EXPLAIN (ANALYZE false) DELETE FROM payments", []check{empty("deletes"), has("reads", "payments")}},
		{"EXPLAIN (ANALYZE off) DELETE FROM payments", []check{empty("deletes")}},
		{"EXPLAIN DELETE FROM payments", []check{empty("deletes"), has("reads", "payments")}},
		{"EXPLAIN SELECT pg_read_file('x')", []check{has("functions", "pg_read_file")}},
		{"EXPLAIN ANALYZE SELECT * INTO t FROM payments", []check{equal("into", func(s *Statement) string { return s.Into.Target }, "t")}},
		{"EXPLAIN ANALYZE CREATE TABLE t AS SELECT * FROM payments", []check{has("creates", "t"), has("reads", "payments")}},

		// Copying data into new tables.
		{"SELECT * INTO payments_copy FROM payments", []check{command("SELECT INTO"), has("creates", "payments_copy"), has("reads", "payments"),
			equal("into.target", func(s *Statement) string { return s.Into.Target }, "payments_copy")}},
		{"CREATE TABLE c AS SELECT * FROM payments", []check{command("CREATE TABLE AS"), equal("into.target", func(s *Statement) string { return s.Into.Target }, "c"),
			func(s *Statement) error {
				if !slices.Contains(s.Into.Reads, "payments") {
					return fmt.Errorf("into.reads = %q", s.Into.Reads)
				}
				return nil
			}}},
		{"CREATE MATERIALIZED VIEW mv AS SELECT * FROM payments", []check{command("CREATE MATERIALIZED VIEW"), equal("into.kind", func(s *Statement) string { return s.Into.Kind }, "materialized_view")}},

		// COPY.
		{"COPY payments TO STDOUT", []check{command("COPY"), has("reads", "payments"), equal("copy", func(s *Statement) Copy { return s.Copy }, Copy{Direction: "out", Target: "stdio", Relation: "payments"})}},
		{"COPY payments FROM '/tmp/x'", []check{has("inserts", "payments"), equal("copy", func(s *Statement) Copy { return s.Copy }, Copy{Direction: "in", Target: "file", Relation: "payments"})}},
		{"COPY (SELECT * FROM payments) TO PROGRAM 'gzip > /tmp/x'", []check{has("reads", "payments"), equal("copy", func(s *Statement) Copy { return s.Copy }, Copy{Direction: "out", Target: "program", Query: true})}},
		{"COPY (DELETE FROM payments RETURNING *) TO STDOUT", []check{has("deletes", "payments")}},

		// DDL.
		{"DROP TABLE IF EXISTS a, s.b CASCADE", []check{command("DROP TABLE"), has("drops", "a", "s.b"), has("objects", "drop table a cascade")}},
		{"DROP SCHEMA evil", []check{command("DROP SCHEMA"), has("objects", "drop schema evil")}},
		{"DROP DATABASE shop", []check{command("DROP DATABASE"), has("objects", "drop database shop")}},
		{"DROP VIEW v", []check{has("objects", "drop view v")}},
		{"DROP MATERIALIZED VIEW mv", []check{command("DROP MATERIALIZED VIEW"), has("objects", "drop materialized_view mv")}},
		{"DROP INDEX CONCURRENTLY i", []check{has("objects", "drop index i")}},
		{"DROP FUNCTION f(int), pg_catalog.g", []check{has("drops", "f", "pg_catalog.g"), has("objects", "drop function f")}},
		{"DROP TRIGGER audit ON payments", []check{has("drops", "audit"), has("alters", "payments"), is("logging", logging)}},
		{"DROP OWNED BY shop_writer CASCADE", []check{command("DROP OWNED"), has("objects", "drop owned shop_writer cascade")}},
		{"ALTER TABLE payments RENAME TO p2", []check{command("ALTER TABLE"), has("renames", "payments"), has("objects", "rename table payments")}},
		{"ALTER TABLE payments RENAME COLUMN pan TO x", []check{has("alters", "payments"), empty("renames")}},
		{"ALTER SCHEMA public RENAME TO old", []check{has("renames", "public"), has("objects", "rename schema public")}},
		{"ALTER DATABASE shop RENAME TO old", []check{has("objects", "rename database shop")}},
		{"ALTER VIEW v RENAME TO w", []check{has("objects", "rename view v")}},
		{"ALTER TABLE payments SET SCHEMA evil", []check{has("renames", "payments"), has("alters", "payments")}},
		{"ALTER TABLE public.payments ADD COLUMN x int DEFAULT pg_read_file('x')", []check{has("alters", "public.payments"), has("functions", "pg_read_file")}},
		{"ALTER TABLE orders ADD FOREIGN KEY (p) REFERENCES payments", []check{has("alters", "orders"), has("reads", "payments")}},
		{"ALTER TABLE orders DISABLE TRIGGER ALL", []check{is("logging", logging)}},
		{"ALTER TABLE orders OWNER TO bob", []check{func(s *Statement) error {
			if len(s.Privileges) != 1 || s.Privileges[0].Action != "owner" {
				return fmt.Errorf("privileges = %+v", s.Privileges)
			}
			return nil
		}}},
		{"CREATE TABLE t (id int REFERENCES payments, LIKE orders)", []check{command("CREATE TABLE"), has("creates", "t"), has("reads", "payments", "orders")}},
		{"CREATE INDEX i ON payments (pan)", []check{command("CREATE INDEX"), has("creates", "i"), has("reads", "payments")}},

		// Code the analyser cannot see into.
		{"DO $$BEGIN DELETE FROM payments; END$$", []check{command("DO"), is("opaque", opaque)}},
		{"CALL p(1)", []check{command("CALL"), is("opaque", opaque), has("functions", "p")}},
		{"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", []check{command("CREATE FUNCTION"), is("opaque", opaque)}},
		{"CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC DELETE FROM payments; END", []check{command("CREATE PROCEDURE"), is("opaque", opaque), has("deletes", "payments")}},
		{"CREATE RULE r AS ON INSERT TO orders DO ALSO DELETE FROM payments", []check{is("opaque", opaque), has("deletes", "payments")}},
		{"CREATE TRIGGER t BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION f()", []check{command("CREATE TRIGGER"), is("opaque", opaque), has("alters", "orders")}},
		{"CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()", []check{is("opaque", opaque)}},
		{"CREATE VIEW v AS SELECT * FROM payments", []check{command("CREATE VIEW"), is("opaque", opaque), has("reads", "payments"), has("creates", "v")}},
		{"CREATE EXTENSION dblink", []check{is("opaque", opaque)}},
		{"LOAD 'auto_explain'", []check{is("opaque", opaque)}},
		{"CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw", []check{is("opaque", opaque)}},
		{"CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p", []check{is("opaque", opaque)}},
		{"SELECT query_to_xml('DELETE FROM payments', true, true, '')", []check{is("opaque", opaque)}},
		{"SELECT pg_catalog.query_to_xml('x', true, true, '')", []check{is("opaque", opaque)}},
		{"SELECT myschema.query_to_xml('x')", []check{not("opaque", opaque)}},
		{"SELECT 1", []check{not("opaque", opaque), not("logging", logging)}},

		// Functions.
		{"SELECT pg_catalog.pg_read_file('/etc/passwd')", []check{has("functions", "pg_catalog.pg_read_file")}},
		{`SELECT "pg_read_file"('/etc/passwd')`, []check{has("functions", "pg_read_file")}},
		{"SELECT * FROM pg_ls_dir('.') WITH ORDINALITY", []check{has("functions", "pg_ls_dir")}},
		{"SELECT * FROM ROWS FROM (lo_import('/x'), generate_series(1, 2))", []check{has("functions", "lo_import", "generate_series")}},
		{"SELECT count(*) FILTER (WHERE x IN (SELECT dblink('a', 'b'))) FROM t", []check{has("functions", "count", "dblink")}},
		{"VALUES (lo_export(1, '/tmp/x'))", []check{has("functions", "lo_export")}},

		// Settings and logging.
		{"SET log_statement = 'none'", []check{command("SET"), is("logging", logging), has("settings", "log_statement")}},
		{"SET LOCAL log_min_duration_statement = -1", []check{is("logging", logging)}},
		{`SET "LOG_STATEMENT" TO none`, []check{is("logging", logging)}},
		{"SET pgaudit.log = 'none'", []check{is("logging", logging), has("settings", "pgaudit.log")}},
		{"RESET log_statement", []check{command("RESET"), is("logging", logging)}},
		{"SET session_replication_role = replica", []check{is("logging", logging)}},
		{"SET search_path = public", []check{not("logging", logging), has("settings", "search_path")}},
		{"SET TIME ZONE 'UTC'", []check{not("logging", logging)}},
		{"RESET ALL", []check{not("logging", logging)}},
		{"ALTER SYSTEM SET work_mem = '1GB'", []check{command("ALTER SYSTEM"), is("logging", logging)}},
		{"ALTER SYSTEM RESET ALL", []check{is("logging", logging)}},
		{"ALTER ROLE bob SET log_statement = 'none'", []check{command("ALTER ROLE"), is("logging", logging)}},
		{"ALTER DATABASE shop SET pgaudit.log = 'none'", []check{command("ALTER DATABASE"), is("logging", logging)}},
		{"SELECT set_config('log_statement', 'none', false)", []check{is("logging", logging), has("settings", "log_statement")}},
		{"SELECT pg_catalog.set_config('search_path', '', false)", []check{not("logging", logging), not("opaque", opaque), has("settings", "search_path")}},
		{"SELECT set_config($1, 'none', false)", []check{is("logging", logging), is("opaque", opaque)}},
		{"SELECT set_config(lower('LOG_STATEMENT'), 'none', false)", []check{is("logging", logging)}},
		{"SET standard_conforming_strings = off", []check{is("opaque", opaque)}},
		{"SET standard_conforming_strings = on", []check{not("opaque", opaque)}},
		{"SET standard_conforming_strings TO DEFAULT", []check{not("opaque", opaque)}},
		{"SET client_encoding = 'SJIS'", []check{is("opaque", opaque)}},
		{"SET client_encoding = 'UTF8'", []check{not("opaque", opaque)}},
		{"SELECT set_config('standard_conforming_strings', 'off', false)", []check{is("opaque", opaque)}},
		{"ALTER ROLE bob SET client_encoding = 'GBK'", []check{is("opaque", opaque)}},

		// Privileges and roles.
		{"GRANT SELECT, UPDATE (amount) ON payments, orders TO bob, PUBLIC", []check{command("GRANT"), func(s *Statement) error {
			want := []Privilege{{Action: "grant", Kind: "table", Privileges: []string{"select", "update"}, Objects: []string{"payments", "orders"}, Grantees: []string{"bob", "public"}}}
			if !reflect.DeepEqual(s.Privileges, want) {
				return fmt.Errorf("privileges = %+v", s.Privileges)
			}
			return nil
		}, empty("reads")}},
		{"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM bob", []check{command("REVOKE"), equal("action", func(s *Statement) string { return s.Privileges[0].Action }, "revoke")}},
		{"GRANT admin TO bob", []check{command("GRANT ROLE"), equal("kind", func(s *Statement) string { return s.Privileges[0].Kind }, "role")}},
		{"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO bob", []check{command("ALTER DEFAULT PRIVILEGES"), equal("n", func(s *Statement) int { return len(s.Privileges) }, 1)}},
		{"REASSIGN OWNED BY a TO b", []check{equal("n", func(s *Statement) int { return len(s.Privileges) }, 1)}},
		{"CREATE ROLE evil SUPERUSER LOGIN PASSWORD 'x'", []check{command("CREATE ROLE"), equal("roles", func(s *Statement) RoleChange { return s.Roles[0] }, RoleChange{"create", "evil"})}},
		{"CREATE USER u", []check{command("CREATE USER")}},
		{"ALTER USER bob WITH SUPERUSER", []check{command("ALTER ROLE"), equal("roles", func(s *Statement) RoleChange { return s.Roles[0] }, RoleChange{"alter", "bob"})}},
		{"DROP ROLE IF EXISTS a, b", []check{command("DROP ROLE"), equal("n", func(s *Statement) int { return len(s.Roles) }, 2)}},
		{"ALTER ROLE a RENAME TO b", []check{equal("roles", func(s *Statement) RoleChange { return s.Roles[0] }, RoleChange{"rename", "a"})}},

		// Prepared statements and transactions.
		{"PREPARE p(int) AS DELETE FROM payments WHERE id = $1", []check{command("PREPARE"), has("deletes", "payments"), equal("name", func(s *Statement) string { return s.Prepare.Name }, "p")}},
		{"EXECUTE p(1)", []check{command("EXECUTE"), equal("name", func(s *Statement) string { return s.Execute.Name }, "p")}},
		{"EXPLAIN EXECUTE p(1)", []check{equal("name", func(s *Statement) string { return s.Execute.Name }, "")}},
		{"DEALLOCATE p", []check{command("DEALLOCATE"), equal("d", func(s *Statement) Deallocate { return s.Deallocate }, Deallocate{Name: "p"})}},
		{"DEALLOCATE ALL", []check{command("DEALLOCATE ALL"), equal("d", func(s *Statement) Deallocate { return s.Deallocate }, Deallocate{All: true})}},
		{"DISCARD ALL", []check{command("DISCARD ALL"), equal("d", func(s *Statement) Deallocate { return s.Deallocate }, Deallocate{All: true})}},
		{"BEGIN ISOLATION LEVEL SERIALIZABLE", []check{command("BEGIN")}},
		{"START TRANSACTION READ ONLY", []check{command("START TRANSACTION")}},
		{"COMMIT", []check{command("COMMIT")}},
		{"ROLLBACK TO SAVEPOINT s", []check{command("ROLLBACK")}},
		{"SHOW log_statement", []check{command("SHOW"), not("logging", logging)}},
		{"VACUUM ANALYZE payments", []check{command("VACUUM"), has("reads", "payments")}},
		{"LOCK TABLE payments IN ACCESS EXCLUSIVE MODE", []check{command("LOCK TABLE")}},
		{"REFRESH MATERIALIZED VIEW mv", []check{has("updates", "mv")}},
		{"DECLARE c CURSOR FOR SELECT * FROM payments", []check{command("DECLARE CURSOR"), has("reads", "payments")}},
		{"CREATE SEQUENCE s", []check{command("CREATE SEQUENCE"), has("creates", "s")}},
	}
	a := NewAnalyzer(100)
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			an, err := a.Analyze(tt.sql)
			if err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			if len(an.Statements) != 1 {
				t.Fatalf("%d statements, want 1", len(an.Statements))
			}
			st := an.Statements[0]
			for _, c := range tt.checks {
				if err := c(st); err != nil {
					b, _ := json.Marshal(st)
					t.Errorf("%v\nfacts: %s", err, b)
				}
			}
		})
	}
}

func TestParseError(t *testing.T) {
	a := NewAnalyzer(10)
	for _, sql := range []string{"DELET FROM payments", "SELECT 1; DROP TABL x", "SELECT 1\x00; DROP TABLE payments", "SELECT '"} {
		for range 2 { // miss, then hit
			an, err := a.Analyze(sql)
			var se *SyntaxError
			if err == nil || !errorsAs(err, &se) {
				t.Errorf("%q: err = %v, want *SyntaxError", sql, err)
			}
			if len(an.Statements) != 1 || !an.Statements[0].ParseError || an.Statements[0].Error == "" {
				t.Errorf("%q: statements = %+v", sql, an.Statements)
			}
		}
	}
	an, err := a.Analyze("  -- only a comment\n")
	if err != nil || len(an.Statements) != 0 {
		t.Errorf("comment only: %+v, %v", an, err)
	}
}

func errorsAs(err error, se **SyntaxError) bool {
	e, ok := err.(*SyntaxError)
	*se = e
	return ok
}

// differsUncached describes how got, an analysis of sql the cache may have
// served, differs from an uncached analysis of the same text, or returns ""
// when it does not: the cache's invariant.
func differsUncached(sql string, got *Analysis) string {
	want := analyzeText(sql, false)
	if reflect.DeepEqual(got.Statements, want.Statements) {
		return ""
	}
	g, _ := json.Marshal(got.Statements)
	w, _ := json.Marshal(want.Statements)
	return fmt.Sprintf("%q:\ncached   %s\nuncached %s", sql, g, w)
}

// TestCacheAgrees checks the cache invariant: whatever path an analysis
// takes (exact hit, template hit, normalised hit, raw fallback), it equals
// an uncached analysis of the same text.
func TestCacheAgrees(t *testing.T) {
	texts := []string{
		// Literal texts equal to the normalised form of later ones: their
		// entries must not stand in for those (a parse error; facts
		// judged unknown because of $n).
		"SELECT interval $1 FROM orders",
		"SELECT set_config($1, $2, $3)",
		"SELECT set_config('search_path', '', false)",
		"SELECT * FROM payments WHERE id = 1",
		"SELECT * FROM payments WHERE id = 2",
		"SELECT set_config('log_statement', 'none', false)",
		"SELECT set_config('search_path', 'none', false)",
		"SELECT set_config('log_statement', 'all', false)",
		"SET log_statement = 'none'",
		"SET search_path = 'a'",
		"SET standard_conforming_strings = off",
		"SET standard_conforming_strings = on",
		"SET client_encoding = 'UTF8'",
		"SET client_encoding = 'SJIS'",
		"SELECT interval '1 day' FROM orders",
		"EXPLAIN (ANALYZE false) DELETE FROM payments WHERE id = 1",
		"EXPLAIN (ANALYZE true) DELETE FROM payments WHERE id = 1",
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'DELETE FROM payments'",
		"COPY payments TO '/tmp/a'",
		"SELECT 1; DROP TABLE payments",
		"SELECT 2; DROP TABLE payments",
		"UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
		// Typed literals written without a space: the normalised text
		// (text$1) lexes as an identifier.
		"SELECT!A$1",
		"SELECT!A''",
		"SELECT set_config(text'log_statement', 'none', false)",
		"SELECT N'4111111111111111' FROM payments UNION SELECT pan FROM payments",
		// Positions name columns: which one depends on the constant.
		"SELECT DISTINCT ON ($1) id, pan FROM payments",
		"SELECT DISTINCT ON (1) id, pan FROM payments",
		"SELECT DISTINCT ON (2) id, pan FROM payments",
		"SELECT id, pan FROM payments ORDER BY 1",
		"SELECT id, pan FROM payments ORDER BY 2",
		"SELECT id, pan FROM payments GROUP BY 2, 1",
		"SELECT id FROM payments WHERE pan = '4111111111111111'",
		"SELECT id FROM payments WHERE pan LIKE '4111%'",
		// A minus on a constant that is not a number is an operator, but
		// Normalize replaces it with the constant: "pan = -'x'" must not
		// share "pan = 'x'"'s facts (a lookup, not an expression).
		"SELECT id FROM payments WHERE pan = 'x'",
		"SELECT id FROM payments WHERE pan = -'x'",
		"SELECT id FROM payments WHERE pan = - E'x'",
		"SELECT id FROM payments WHERE pan = -$$x$$",
		"SELECT id FROM payments WHERE pan = -B'1'",
		"SELECT id FROM payments WHERE pan = -X'1F'",
		"SELECT id FROM payments WHERE pan = -U&'x'",
		"SELECT id FROM payments WHERE pan = TRUE",
		"SELECT id FROM payments WHERE pan = -TRUE",
		"SELECT id FROM payments WHERE pan = -\n\tfalse",
		"SELECT id FROM payments WHERE pan = NULL",
		"SELECT id FROM payments WHERE pan = - NULL",
		"SELECT id FROM payments WHERE pan = -/**/'x'",
		"SELECT id FROM payments WHERE pan = -5",
		"SELECT id FROM payments WHERE pan = - 6",
	}
	cached := NewAnalyzer(100)
	for pass := range 3 {
		for _, sql := range texts {
			got, _ := cached.Analyze(sql)
			if diff := differsUncached(sql, got); diff != "" {
				t.Errorf("pass %d %s", pass, diff)
			}
		}
	}
	tiny := NewAnalyzer(2)
	for _, sql := range texts {
		tiny.Analyze(sql)
	}
	if tiny.lru.Len() > 2 || len(tiny.cache) != tiny.lru.Len() {
		t.Errorf("cache holds %d/%d entries, want ≤ 2", tiny.lru.Len(), len(tiny.cache))
	}
}

func TestMatchName(t *testing.T) {
	tests := []struct {
		name, pattern string
		want          bool
	}{
		{"payments", "payments", true},
		{"public.payments", "payments", true},
		{"evil.payments", "payments", true},
		{"shop.public.payments", "payments", true},
		{"payments", "public.payments", true},
		{"public.payments", "public.payments", true},
		{"shop.public.payments", "public.payments", true},
		{"evil.payments", "public.payments", false},
		{"Payments", "payments", false},
		{"payments2", "payments", false},
		{"dblink_exec", "dblink*", true},
		{"public.dblink", "dblink*", true},
		{"xdblink", "dblink*", false},
		{"pg_catalog.pg_ls_dir", "pg_ls_*", true},
	}
	for _, tt := range tests {
		if got := MatchName(tt.name, tt.pattern); got != tt.want {
			t.Errorf("MatchName(%q, %q) = %v, want %v", tt.name, tt.pattern, got, tt.want)
		}
	}
}

func TestResolve(t *testing.T) {
	a := NewAnalyzer(10)
	ps := NewPreparedSet()
	prep, _ := a.Analyze("PREPARE p AS DELETE FROM payments WHERE id = $1")
	ps.Apply(prep.Statements[0])
	for _, sql := range []string{"EXECUTE p(1)", "EXPLAIN ANALYZE EXECUTE p(1)", "CREATE TABLE x AS EXECUTE p(1)"} {
		an, _ := a.Analyze(sql)
		st := a.Resolve(an.Statements[0], ps)
		if !slices.Contains(st.Deletes, "payments") || !st.Execute.Resolved {
			t.Errorf("%s: resolved = %+v", sql, st)
		}
		if len(an.Statements[0].Deletes) != 0 {
			t.Errorf("%s: Resolve modified the cached statement", sql)
		}
	}
	// Protocol-level Parse shares the namespace.
	q, _ := a.Analyze("UPDATE payments SET a = $1")
	ps.Prepare("s1", q.Statements...)
	ex, _ := a.Analyze("EXECUTE s1(1)")
	if st := a.Resolve(ex.Statements[0], ps); !slices.Contains(st.Updates, "payments") {
		t.Errorf("EXECUTE s1: %+v", st)
	}
	dealloc, _ := a.Analyze("DEALLOCATE p")
	ps.Apply(dealloc.Statements[0])
	ex, _ = a.Analyze("EXECUTE p")
	if st := a.Resolve(ex.Statements[0], ps); !st.Opaque || !strings.Contains(st.OpaqueReason, "unknown") {
		t.Errorf("EXECUTE of deallocated p: %+v", st)
	}
	discard, _ := a.Analyze("DISCARD ALL")
	ps.Apply(discard.Statements[0])
	if _, ok := ps.Lookup("s1"); ok {
		t.Error("DISCARD ALL left s1")
	}
	if st := a.Resolve(ex.Statements[0], nil); !st.Opaque {
		t.Errorf("nil set: %+v", st)
	}
}

// TestAppendJSON checks that the facts marshalled at analysis are what
// json.Marshal writes for the statement, and that a statement changed after
// analysis (by Resolve) is marshalled as changed, not from the analysis.
func TestAppendJSON(t *testing.T) {
	a := NewAnalyzer(10)
	ps := NewPreparedSet()
	texts := []string{
		"SELECT pan FROM payments WHERE id = 42",
		"SELECT pan FROM payments WHERE id = 43", // from the cache, by normalised text
		"INSERT INTO orders SELECT * FROM payments RETURNING id; DROP TABLE x CASCADE",
		"GRANT SELECT ON payments TO bob",
		"SELECT 'a < b & c'", // HTML characters are escaped as json.Marshal does
		"SELEC nonsense",
		"PREPARE p AS DELETE FROM payments WHERE id = $1",
		"EXECUTE p(1)",
	}
	for _, sql := range texts {
		an, _ := a.Analyze(sql)
		for _, st := range an.Statements {
			if st.marshalled == nil {
				t.Errorf("%q: not marshalled at analysis", sql)
			}
			ps.Apply(st)
			for _, st := range []*Statement{st, a.Resolve(st, ps)} {
				got, err := st.AppendJSON([]byte("x"))
				if err != nil {
					t.Fatal(err)
				}
				want, _ := json.Marshal(st)
				if string(got) != "x"+string(want) {
					t.Errorf("%q:\nAppendJSON %s\nMarshal    x%s", sql, got, want)
				}
			}
		}
	}
	ex, _ := a.Analyze("EXECUTE p(1)")
	resolved := a.Resolve(ex.Statements[0], ps)
	got, _ := resolved.AppendJSON(nil)
	if !strings.Contains(string(got), `"deletes":["payments"]`) {
		t.Errorf("resolved EXECUTE marshalled without the prepared statement's facts: %s", got)
	}
	var nilStmt *Statement
	if got, _ := nilStmt.AppendJSON(nil); string(got) != "null" {
		t.Errorf("nil statement: %s", got)
	}
}
