package pg

import (
	"testing"
)

// FuzzAnalyze checks that analysis never panics, that text which does not
// parse is flagged, and that the cache (by text, normalised text or
// template) returns what an uncached analysis of the same text returns.
func FuzzAnalyze(f *testing.F) {
	for _, s := range []string{
		"SELECT 1",
		"DROP/**/TABLE payments",
		`DROP TABLE U&"p\0061yments"`,
		"SELECT 'a\\'; DROP TABLE payments; --'",
		"SELECT $q$'$q$; DROP TABLE payments; --",
		"SELECT 1 /* /* */ ; DROP TABLE payments; /* */ */",
		"WITH x AS (DELETE FROM payments RETURNING *) SELECT count(*) FROM x",
		"EXPLAIN (ANALYZE false) DELETE FROM payments",
		"SELECT set_config('log_statement', 'none', false)",
		"SET standard_conforming_strings = off",
		"PREPARE p AS DELETE FROM payments; EXECUTE p",
		"MERGE INTO payments p USING orders o ON p.id = o.id WHEN MATCHED THEN DELETE",
		"COPY (SELECT 1) TO PROGRAM 'id'",
		"SELECT interval '1 day'",
		"WITH RECURSIVE r(a, b) AS (SELECT '', pan FROM payments UNION ALL SELECT reverse(b), a FROM r) SELECT a FROM r",
		"SELECT DISTINCT ON (2) p.id, reverse(x) FROM payments p, LATERAL (SELECT p.pan x) s ORDER BY 2",
		"SELECT row_to_json(p) FROM payments p WHERE pan LIKE '4%' UNION SELECT NULL",
		"DELET FROM payments",
		"SELECT 1\x00; DROP TABLE payments",
		// Texts alike but for constants: later ones are found by template.
		"SELECT * FROM payments WHERE id = 1 AND note = 'a'",
		"SELECT * FROM payments WHERE id = 2 AND note = 'b'",
		"SELECT id FROM payments ORDER BY 'x'",
		"UPDATE payments SET amount = amount + -5 WHERE id IN (-1, 2)",
		"UPDATE payments SET amount = amount + -6 WHERE id IN (-3, 4)",
		"SELECT id FROM payments WHERE amount = -5::int",
		"SELECT id FROM payments WHERE pan = 'x' AND amount > - 5 OR note = +'y' OR -TRUE",
		"SELECT -interval '1 day', - - 5, -(5), 5 - -5, x COLLATE \"C\" FROM payments OFFSET - 5 ROWS",
		"SELECT id FROM payments ORDER BY 2",
		"",
	} {
		f.Add(s)
	}
	a := NewAnalyzer(64)
	f.Fuzz(func(t *testing.T, sql string) {
		an, err := a.Analyze(sql)
		if an == nil {
			t.Fatal("nil analysis")
		}
		if err != nil {
			if len(an.Statements) != 1 || !an.Statements[0].ParseError {
				t.Fatalf("error %v without a flagged statement", err)
			}
		}
		for _, st := range an.Statements {
			if st.ParseError != (err != nil) {
				t.Fatalf("parse_error %v but err %v", st.ParseError, err)
			}
		}
		if diff := differsUncached(sql, an); diff != "" {
			t.Fatal(diff)
		}
	})
}
