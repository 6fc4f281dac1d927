package pg

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// templateOf splits templateKeyOf's key into the template and the kinds.
func templateOf(sql string) (template, kinds string, ok bool) {
	key, n, ok := templateKeyOf(sql)
	if !ok {
		return "", "", false
	}
	return key[:n], key[n+1:], true
}

func TestTemplateOf(t *testing.T) {
	for _, tc := range []struct {
		sql, template, kinds string
	}{
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 42", "SELECT abalance FROM pgbench_accounts WHERE aid = $1", "i"},
		{"UPDATE t SET a = 'x', b = 007 WHERE id IN (1,2) LIMIT 3", "UPDATE t SET a = $1, b = $2 WHERE id IN ($3,$4) LIMIT $5", "siiii"},
		{"SELECT * FROM t WHERE id = 99999999999", "SELECT * FROM t WHERE id = $1", "f"},
		{"SELECT * FROM t WHERE id = 2147483647", "SELECT * FROM t WHERE id = $1", "i"},
		{"SELECT * FROM t WHERE id = 2147483648", "SELECT * FROM t WHERE id = $1", "f"},
		{"SELECT x::int FROM t WHERE a[1:2] = '{}'::int[]", "SELECT x::int FROM t WHERE a[$1:$2] = $3::int[]", "iis"},
		{"SELECT t1.c2 FROM t1 WHERE c3 >= 5;", "SELECT t1.c2 FROM t1 WHERE c3 >= $1;", "i"},
		{"SELECT 'ünïcode' FROM t", "SELECT $1 FROM t", "s"},
		// pgbench's TPC-B-like script: a sign is part of the constant.
		{"UPDATE pgbench_accounts SET abalance = abalance + -1234 WHERE aid = 5678;", "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;", "Ii"},
		{"UPDATE pgbench_accounts SET abalance = abalance + 1234 WHERE aid = 5678;", "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;", "ii"},
		{"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 1, 5678, -1234, CURRENT_TIMESTAMP);", "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP);", "iiiI"},
		{"SELECT * FROM t WHERE a = -5 AND b IN (-1,-2) AND c < -0 AND d + -7 > 0 AND e - -7 > 0", "SELECT * FROM t WHERE a = $1 AND b IN ($2,$3) AND c < $4 AND d + $5 > $6 AND e - $7 > $8", "IIIIIiIi"},
		{"SELECT * FROM t WHERE a > -2147483648 AND b <= -99999999999", "SELECT * FROM t WHERE a > $1 AND b <= $2", "FF"},
		// Nothing to replace: the text is its own key.
		{"SELECT a FROM t", "", ""},
		// A '-' the grammar would take as binary stays in the template,
		// and so does one that Normalize would replace with the constant
		// (no entry is made under such a template).
		{"SELECT a - 5 FROM t", "SELECT a - $1 FROM t", "i"},
		{"SELECT a -5", "SELECT a -$1", "i"},
		{"SELECT -5", "SELECT -$1", "i"},
		{"SELECT a = - 5", "SELECT a = - $1", "i"},
		{"SELECT a=-5", "SELECT a=-$1", "i"},
		{"SELECT a[-1]", "SELECT a[-$1]", "i"},
		{"SELECT a ^ -5", "SELECT a ^ -$1", "i"},
		{"SELECT a = -'5'", "SELECT a = -$1", "s"},
		// A sign taken in where Normalize does not replace it (a cast binds
		// tighter): no entry is made either.
		{"SELECT a = -5::int", "SELECT a = $1::int", "I"},
		{"SELECT a = -5 ::int", "SELECT a = $1 ::int", "I"},
		// Refused: a constant's token could join or change with what is
		// around it, or the lexer leaves its initial state.
		{"SELECT +5", "", ""},
		{"SELECT a = -5.5", "", ""},
		{"SELECT a = -5[1]", "", ""},
		{"SELECT 1.5", "", ""},
		{"SELECT .5", "", ""},
		{"SELECT 1e5", "", ""},
		{"SELECT 1_000", "", ""},
		{"SELECT 0x1F", "", ""},
		{"SELECT E'a'", "", ""},
		{"SELECT U&'a'", "", ""},
		{"SELECT U&$1", "", ""},
		{"SELECT B'101'", "", ""},
		{"SELECT int4 '5'", "SELECT int4 $1", "s"}, // kept; Normalize fails on it, so no entry is made
		{"SELECT 'a' 'b'", "", ""},
		{"SELECT 'a'\n'b'", "", ""},
		{"SELECT 'it''s'", "", ""},
		{"SELECT 'a\\'", "", ""},
		{"SELECT 'a\nb'", "", ""},
		{"SELECT 'open", "", ""},
		{"SELECT '{1}'[1]", "", ""},
		{"SELECT '{1}' [1]", "", ""},
		{"SELECT '(1,2)'.x", "", ""},
		{"SELECT 5(", "", ""},
		{"SELECT \"x\" FROM t WHERE a = 1", "", ""},
		{"SELECT 1 -- 2", "", ""},
		{"SELECT 1 /* 2 */", "", ""},
		{"SELECT $1, 2", "", ""},
		{"SELECT $$a$$, 2", "", ""},
		{"SELECT 1\x00", "", ""},
		{"SELECT 'a\x00b'", "", ""},
		{"SELECT '\xff'", "", ""},
		{"5", "", ""},
	} {
		tmpl, kinds, ok := templateOf(tc.sql)
		if tmpl != tc.template || kinds != tc.kinds || ok != (tc.template != "") {
			t.Errorf("templateOf(%q) = %q, %q, %v; want %q, %q", tc.sql, tmpl, kinds, ok, tc.template, tc.kinds)
		}
	}
}

// variant returns sql with every constant that templateOf replaces changed
// to another of the same kind, signed ones ('I', 'F') with their sign.
func variant(sql string) string {
	tmpl, kinds, ok := templateOf(sql)
	if !ok {
		return ""
	}
	var b strings.Builder
	k := 0
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] != '$' {
			b.WriteByte(tmpl[i])
			continue
		}
		for i+1 < len(tmpl) && isDigit(tmpl[i+1]) {
			i++
		}
		switch kinds[k] {
		case 'I':
			b.WriteString([]string{"-8", "-0", "-2147483647", "-0043"}[k%4])
		case 'i':
			b.WriteString([]string{"7", "0", "2147483647", "0042"}[k%4])
		case 'F':
			b.WriteString("-2147483648")
		case 'f':
			b.WriteString("12345678901234567890")
		default:
			b.WriteString([]string{"'zz'", "''", "'4111 1111 1111 1111'", "'(\"x\")--/*'"}[k%4])
		}
		k++
	}
	return b.String()
}

// checkTemplate holds templateOf to Normalize for sql: where Normalize
// returns sql's template, a text with other constants of the same kinds
// must normalise to it too, and analyse as its own text does.
func checkTemplate(t *testing.T, a *Analyzer, sql string) bool {
	t.Helper()
	tmpl, kinds, ok := templateOf(sql)
	if !ok {
		return false
	}
	if norm, err := pg_query.Normalize(sql); err != nil || norm != tmpl {
		return false // Analyze makes no entry under the template
	}
	v := variant(sql)
	if vt, vk, ok := templateOf(v); !ok || vt != tmpl || vk != kinds {
		t.Fatalf("variant %q of %q has template %q, %q, %v", v, sql, vt, vk, ok)
	}
	if norm, err := pg_query.Normalize(v); err != nil || norm != tmpl {
		t.Fatalf("%q has template %q, but its variant %q normalises to %q (%v)", sql, tmpl, v, norm, err)
	}
	if a != nil {
		a.Analyze(sql)
		got, _ := a.Analyze(v)
		if diff := differsUncached(v, got); diff != "" {
			t.Fatalf("found by template: %s", diff)
		}
	}
	return true
}

// TestTemplatesMatchNormalize runs checkTemplate over statements of every
// shape the guardrail corpus and the normaliser's special cases hold.
func TestTemplatesMatchNormalize(t *testing.T) {
	texts := []string{
		"SELECT abalance FROM pgbench_accounts WHERE aid = 42",
		"UPDATE pgbench_accounts SET abalance = abalance + 5 WHERE aid = 7",
		"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 2, 3, 4, CURRENT_TIMESTAMP)",
		"SELECT id, pan FROM payments WHERE id = 1 ORDER BY 1",
		"SELECT id, pan FROM payments ORDER BY 2",
		"SELECT id, pan FROM payments ORDER BY 'x'",
		"SELECT id FROM payments GROUP BY 1",
		"SELECT id + 1 FROM payments GROUP BY id + 1",
		"SELECT id + 1 FROM payments GROUP BY id + 2",
		"SELECT DISTINCT ON (1) id, pan FROM payments",
		"SELECT CAST(pan AS varchar(10)) FROM payments WHERE id = 3",
		"SELECT x::numeric(10, 2) FROM t WHERE y = 'a'",
		"SELECT * FROM payments LIMIT 10 OFFSET 20",
		"SELECT * FROM payments WHERE id IN (1, 2, 3) AND note LIKE 'a%' ESCAPE '!'",
		"SELECT * FROM payments WHERE created > now() - interval '1 day'",
		"SELECT set_config('log_statement', 'none', false)",
		"SET search_path = 'a'",
		"SET work_mem = 64",
		"EXPLAIN (ANALYZE false) DELETE FROM payments WHERE id = 1",
		"CREATE TABLE t (a int DEFAULT 5, b varchar(20))",
		"CREATE ROLE r PASSWORD 'x' CONNECTION LIMIT 5",
		"COPY (SELECT * FROM payments WHERE id = 5) TO STDOUT",
		"NOTIFY c, 'payload'",
		"DO 'BEGIN END'",
		"SELECT pg_sleep(5)",
		"SELECT * FROM payments FETCH FIRST 5 ROWS ONLY",
		"SELECT 1; DELETE FROM payments WHERE id = 2",
		"SELECT * FROM t WHERE a BETWEEN 1 AND 2",
		"SELECT CASE WHEN a = 1 THEN 'x' ELSE 'y' END FROM t",
		"SELECT * FROM t WHERE ts AT TIME ZONE 'UTC' > '2020-01-01'",
		"SELECT row_number() OVER (ORDER BY 1) FROM t",
		"SELECT * FROM t TABLESAMPLE system (10) REPEATABLE (3)",
		"VALUES (1, 'a'), (2, 'b')",
		"SELECT ARRAY[1, 2][1]",
		"PREPARE p AS SELECT 1; EXECUTE p(5)",
		"SELECT 1 FROM t WHERE a = 1 UNION SELECT 2",
		"SELECT * FROM t WHERE a = ANY('{1,2}')",
		"SELECT x FROM t WHERE y IS DISTINCT FROM 5",
		"INSERT INTO t VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET v = 'b'",
		"SELECT * FROM t WHERE a = 5 ORDER BY b LIMIT 10 OFFSET 5 FOR UPDATE",
		"SELECT a[1], generate_series(1, 10) FROM t",
		"SELECT * FROM t GROUP BY a HAVING count(*) > 5",
		"SELECT lag(a, 1) OVER (PARTITION BY b ORDER BY 2) FROM t WINDOW w AS (ORDER BY 1)",
		"SELECT 1 AS x ORDER BY 1",
		"VALUES (1) ORDER BY 1",
		"SELECT * FROM (VALUES (1, 2)) v(a, b) ORDER BY 2",
		"UPDATE t SET a = 1 RETURNING 1",
		"DELETE FROM t WHERE a IN (SELECT 1)",
		"SELECT CAST(5 AS int), 5::bit(3)",
		"CREATE INDEX ON t (a) WHERE b = 1",
		"ALTER TABLE t ALTER a SET DEFAULT 5",
		"FETCH 5 FROM c",
		"MOVE 5 IN c",
		"CALL p(1, 'a')",
		"SELECT 'a' || 'b', 10 % 3, 2 ^ 3, 7 # 2, @ 5, ~ 5, 1 = 1",
		"SELECT * FROM t OFFSET 5 ROWS FETCH NEXT 3 ROWS ONLY",
		"SELECT (SELECT 1) + 2, ROW(1, 'a'), ARRAY[1, 2], '{1,2}'::int[], 1 IN (1, 2)",
		"SELECT * FROM t WHERE a BETWEEN SYMMETRIC 1 AND 2",
		"SET LOCAL work_mem = 5",
		"SELECT * FROM t WHERE ts > '2020-01-01' AND ts < '2021-01-01'",
		// Signs, which the grammar folds into numbers.
		"UPDATE pgbench_accounts SET abalance = abalance + -4711 WHERE aid = 5678;",
		"UPDATE pgbench_tellers SET tbalance = tbalance + 4711 WHERE tid = 3;",
		"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 1, 5678, -4711, CURRENT_TIMESTAMP);",
		"SELECT * FROM t WHERE a = -5 AND b IN (-1, -2) AND c < -3 AND d - -4 > 0 AND e + -5 >= 1",
		"SELECT * FROM t WHERE a > -2147483648 AND b <> -99999999999",
		"SELECT * FROM t ORDER BY -1",
		"SELECT * FROM t ORDER BY -99999999999",
		"SELECT a FROM t GROUP BY -1",
		"SELECT DISTINCT ON (-1) a FROM t",
		"SET work_mem = -64",
		"SET work_mem = 64",
		"FETCH -5 FROM c",
		"SELECT * FROM t FETCH FIRST -5 ROWS ONLY",
		"SELECT * FROM t LIMIT -5 OFFSET -5",
		"SELECT * FROM t FETCH FIRST + 5 ROWS ONLY",
		"SET work_mem = + 64",
		"CREATE TABLE t (a int DEFAULT -5, b int CHECK (b > -1))",
		"ALTER SEQUENCE s INCREMENT BY -5 MINVALUE -10",
		"CREATE TABLE t (a int) WITH (fillfactor = -5)",
		"SELECT greatest(-1, 2), a[-1], a[1:-1], -5 ^ 2, 2 ^ -5, (-5), - 5, + 5 FROM t",
		"SELECT * FROM t WHERE a = -5 COLLATE \"C\" OR b = -5 AT TIME ZONE 'UTC'",
		"SELECT * FROM t WHERE a = -5 IS NULL AND b = -5 ISNULL AND -5 < a",
		"SELECT * FROM t WHERE a BETWEEN -2 AND -1 AND b LIKE -5",
		"VALUES (-1, 'a'), (-2, 'b')",
		"SELECT x::numeric(10, -2) FROM t",
		"SELECT '{1,2}'::int[] @> ARRAY[-1], a <-> -5, a ?- -5, a @- -5 FROM t",
		"CALL p(-1, 'a')",
		"SELECT lag(a, -1) OVER (ROWS BETWEEN 1 PRECEDING AND 2 FOLLOWING) FROM t",
		"SELECT set_config('x', -5, false), pg_sleep(-5)",
	}
	f, err := os.Open(filepath.Join("..", "..", "..", "..", "shared", "corpus", "pg-guardrails.jsonl"))
	if err != nil {
		t.Fatalf("the guardrail corpus: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c struct{ SQL string }
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		texts = append(texts, c.SQL)
	}
	a := NewAnalyzer(1000)
	checked := 0
	for _, sql := range texts {
		if checkTemplate(t, a, sql) {
			checked++
		}
	}
	t.Logf("%d of %d texts checked by template", checked, len(texts))
	// Most of the list has a template the normaliser agrees with.
	if checked < 20 {
		t.Errorf("%d texts checked by template, want at least 20", checked)
	}
}

// TestAnalyzeByTemplate checks that a text like one analysed before but
// for its constants skips the normaliser, and that one whose constants
// differ in kind, or whose normalised text is not its template, does not.
func TestAnalyzeByTemplate(t *testing.T) {
	a := NewAnalyzer(100)
	calls := 0
	a.normalize = func(sql string) (string, error) {
		calls++
		return pg_query.Normalize(sql)
	}
	for _, step := range []struct {
		sql   string
		calls int
	}{
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 42", 1},
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 43", 1},
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 43", 1}, // the text itself
		{"SELECT abalance FROM pgbench_accounts WHERE aid = '43'", 2},
		{"SELECT abalance FROM pgbench_accounts WHERE aid = '44'", 2},
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 99999999999", 3},
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 88888888888", 3},
		// ORDER BY 1 stays in the normalised text: no template entry.
		{"SELECT aid FROM pgbench_accounts ORDER BY 1", 4},
		{"SELECT aid FROM pgbench_accounts ORDER BY 2", 5},
		// A number past 32 bits is a numeric, which the normaliser does
		// replace in ORDER BY: its template must not serve a position.
		{"SELECT aid FROM pgbench_accounts ORDER BY 99999999999", 6},
		{"SELECT aid FROM pgbench_accounts ORDER BY 3", 7},
		// A position: the facts depend on it, so it is not shared.
		{"SELECT DISTINCT ON (1) aid, abalance FROM pgbench_accounts", 8},
		{"SELECT DISTINCT ON (2) aid, abalance FROM pgbench_accounts", 9},
	} {
		got, _ := a.Analyze(step.sql)
		if calls != step.calls {
			t.Errorf("after %q: %d calls to the normaliser, want %d", step.sql, calls, step.calls)
		}
		if diff := differsUncached(step.sql, got); diff != "" {
			t.Error(diff)
		}
	}
}

// FuzzTemplateOf holds templateOf to the normaliser on arbitrary text.
func FuzzTemplateOf(f *testing.F) {
	// Its seeds are in testdata/fuzz/FuzzTemplateOf: a statement, constants
	// of each kind, ORDER BY and GROUP BY, a type modifier, U&'a'.
	f.Fuzz(func(t *testing.T, sql string) {
		checkTemplate(t, nil, sql)
	})
}
