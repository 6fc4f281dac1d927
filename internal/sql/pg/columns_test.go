package pg

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
)

// lacks fails when field contains any of names.
func lacks(field string, names ...string) check {
	return func(st *Statement) error {
		got := listField(st, field)
		for _, n := range names {
			if slices.Contains(got, n) {
				return fmt.Errorf("%s = %q, want it without %q", field, got, n)
			}
		}
		return nil
	}
}

// plainOnly is the shape of a statement that reads columns only as plain
// references and looks rows up by equality.
var plainOnly = []check{empty("column_exprs"), empty("whole_row_reads"), empty("filter_exprs")}

func TestColumnFacts(t *testing.T) {
	const pp = "payments.pan"
	tests := []struct {
		sql    string
		checks []check
	}{
		// Plain references: what column masking sees.
		{"SELECT id, pan, amount FROM payments WHERE id = 1", append(plainOnly, has("filter_columns", "payments.id", "id"))},
		{"SELECT p.pan, payments.amount FROM payments p, payments", plainOnly},
		{"SELECT * FROM payments", plainOnly},
		{"SELECT p.* FROM payments p", plainOnly},
		{"SELECT public.payments.pan FROM public.payments", plainOnly},
		{"SELECT x FROM (SELECT pan AS x FROM payments) s", plainOnly},
		{"WITH c AS (SELECT pan FROM payments) SELECT pan FROM c", plainOnly},
		{"INSERT INTO payments (id, pan) VALUES (1, '4111111111111111') RETURNING pan", plainOnly},
		{"SELECT pan FROM payments WHERE pan = $1", append(plainOnly, has("filter_columns", pp, "pan"))},
		{"SELECT pan FROM payments WHERE $1::text = pan AND pan IS NOT NULL", append(plainOnly, has("filter_columns", pp))},

		// Expressions in the SELECT list.
		{"SELECT pan::bytea FROM payments", []check{has("column_exprs", pp, "pan")}},
		{"SELECT encode(pan::bytea, 'hex') FROM payments p", []check{has("column_exprs", pp)}},
		{"SELECT reverse(pan), substr(pan, 1, 8), pan || '' FROM payments", []check{has("column_exprs", pp)}},
		{"SELECT CASE WHEN id > 0 THEN pan END FROM payments", []check{has("column_exprs", pp, "payments.id")}},
		{"SELECT array_agg(pan), string_agg(pan, ',') FROM payments", []check{has("column_exprs", pp)}},
		{"SELECT row_number() OVER (ORDER BY pan) FROM payments", []check{has("column_exprs", pp)}},
		{"SELECT pan COLLATE \"C\" FROM payments", []check{has("column_exprs", pp)}},
		{"SELECT (SELECT pan FROM payments LIMIT 1)", []check{has("column_exprs", pp)}},
		{"SELECT ARRAY(SELECT pan FROM payments)", []check{has("column_exprs", pp)}},
		{"SELECT EXISTS (SELECT pan FROM payments)", []check{lacks("column_exprs", pp)}},
		{`SELECT reverse(U&"p\0061n") FROM "payments"`, []check{has("column_exprs", pp)}},
		{"SELECT reverse(pan) FROM shop.public.payments", []check{has("column_exprs", "shop.public.payments.pan", "pan")}},

		// Through subqueries and CTEs, by alias and by position.
		{"SELECT reverse(x) FROM (SELECT pan AS x FROM payments) s", []check{has("column_exprs", pp)}},
		{"SELECT reverse(x) FROM (SELECT pan FROM payments) s(x)", []check{has("column_exprs", pp)}},
		{"SELECT reverse(pan) FROM (SELECT * FROM payments) s", []check{has("column_exprs", pp)}},
		{"SELECT reverse(c) FROM (SELECT * FROM payments) s(a, b, c)", []check{has("column_exprs", "payments.*")}},
		{"SELECT reverse(c) FROM payments p(a, b, c)", []check{has("column_exprs", "payments.*")}},
		{"WITH c(x) AS (SELECT pan FROM payments) SELECT reverse(x) FROM c", []check{has("column_exprs", pp)}},
		{"WITH a AS (SELECT pan FROM payments), b AS (SELECT pan AS y FROM a) SELECT upper(y) FROM b", []check{has("column_exprs", pp)}},
		{"WITH RECURSIVE r(x) AS (SELECT pan FROM payments UNION ALL SELECT x FROM r WHERE false) SELECT reverse(x) FROM r", []check{has("column_exprs", pp)}},
		{"WITH RECURSIVE r(a, b) AS (SELECT '', pan FROM payments UNION ALL SELECT reverse(b), a FROM r) SELECT a FROM r", []check{has("column_exprs", pp)}},
		{"WITH RECURSIVE a(x) AS (WITH RECURSIVE b(y) AS (SELECT pan FROM payments UNION ALL SELECT y FROM b) SELECT y FROM b UNION ALL SELECT x FROM a) SELECT md5(x) FROM a", []check{has("column_exprs", pp)}},
		{"WITH payments AS (SELECT 'x' AS pan) SELECT reverse(pan) FROM payments", []check{lacks("column_exprs", pp)}},
		{"SELECT r.x FROM payments p, LATERAL (SELECT reverse(p.pan) AS x) r", []check{has("column_exprs", pp)}},
		{"SELECT x FROM payments p CROSS JOIN LATERAL reverse(p.pan) x", []check{has("column_exprs", pp)}},
		{"SELECT * FROM unnest(ARRAY(SELECT pan FROM payments)) u", []check{has("column_exprs", pp)}},
		{"SELECT (SELECT reverse(pan) FROM orders) FROM payments", []check{has("column_exprs", pp)}}, // pan may be the outer payments'
		{"SELECT j.pan FROM (payments p JOIN orders o USING (id)) j", []check{empty("column_exprs")}},
		{"SELECT upper(j.pan) FROM (payments p JOIN orders o USING (id)) j", []check{has("column_exprs", pp)}},

		{"SELECT * FROM orders TABLESAMPLE bernoulli ((SELECT pan FROM payments LIMIT 1)::float)", []check{has("column_exprs", pp)}},
		{"SELECT pan(p) FROM payments p", []check{has("whole_row_reads", "payments")}}, // functional notation for p.pan
		{"SELECT id FROM payments LIMIT (SELECT pan FROM payments)::bigint", []check{has("column_exprs", pp)}},

		// Set operations lose the column's table on the wire.
		{"SELECT pan FROM payments UNION ALL SELECT 'x'", []check{has("column_exprs", pp)}},
		{"SELECT x FROM (SELECT pan AS x FROM payments INTERSECT SELECT pan FROM payments) s", []check{has("column_exprs", pp)}},
		{"SELECT * FROM payments EXCEPT SELECT * FROM payments WHERE false", []check{has("column_exprs", "payments.*")}},

		// Whole rows.
		{"SELECT p FROM payments p", []check{has("whole_row_reads", "payments"), has("column_exprs", "payments.*")}},
		{"SELECT row_to_json(p) FROM payments p", []check{has("whole_row_reads", "payments")}},
		{"SELECT to_jsonb(p.*) FROM payments p", []check{has("whole_row_reads", "payments")}},
		{"SELECT p::text FROM payments AS p", []check{has("whole_row_reads", "payments")}},
		{"SELECT ROW(p.*) FROM payments p", []check{has("whole_row_reads", "payments")}},
		{"SELECT payments FROM public.payments", []check{has("whole_row_reads", "public.payments")}},
		{"SELECT json_agg(public.payments) FROM public.payments", []check{has("whole_row_reads", "public.payments")}},
		{"SELECT s FROM (SELECT id, pan FROM payments) s", []check{has("column_exprs", pp), empty("whole_row_reads")}},
		{"WITH c AS (SELECT * FROM payments) SELECT c FROM c", []check{has("whole_row_reads", "payments")}},
		{"SELECT (p).pan FROM payments p", []check{has("whole_row_reads", "payments")}},

		// Predicates, ordering and grouping.
		{"SELECT count(*) FROM payments WHERE pan LIKE '4111%'", []check{has("filter_exprs", pp), has("filter_columns", pp)}},
		{"SELECT id FROM payments WHERE substr(pan, 1, 1) = '4'", []check{has("filter_exprs", pp)}},
		{"SELECT id FROM payments WHERE pan ~ '^4' OR pan > '5'", []check{has("filter_exprs", pp)}},
		{"SELECT id FROM payments WHERE pan = $1 OR pan = $2", []check{has("filter_exprs", pp)}},
		{"SELECT id FROM payments WHERE pan IN ('a', 'b')", []check{has("filter_exprs", pp)}},
		{"SELECT id FROM payments WHERE pan = ANY($1)", []check{has("filter_exprs", pp)}},
		{"SELECT id FROM payments WHERE NOT (pan = $1)", []check{has("filter_exprs", pp)}},
		{"SELECT id FROM payments HAVING max(pan) > '4'", []check{has("filter_exprs", pp)}},
		{"SELECT id FROM payments ORDER BY pan", []check{has("filter_exprs", pp), empty("column_exprs")}},
		{"SELECT id, pan FROM payments ORDER BY 2", []check{has("filter_exprs", pp)}},
		{"SELECT id, pan FROM payments ORDER BY 1", []check{lacks("filter_exprs", pp)}},
		{"SELECT pan AS x FROM payments ORDER BY x DESC", []check{has("filter_exprs", pp)}},
		{"SELECT DISTINCT ON (2) id, pan FROM payments", []check{has("filter_exprs", pp)}},
		{"SELECT count(*) FROM payments GROUP BY substr(pan, 1, 6)", []check{has("filter_exprs", pp)}},
		{"SELECT p.id FROM payments p JOIN guesses g ON g.x = p.pan", []check{has("filter_exprs", pp, "guesses.x")}},
		{"SELECT p.id FROM payments p JOIN guesses g ON p.pan = $1", []check{lacks("filter_exprs", pp), has("filter_columns", pp)}},
		{"SELECT id FROM payments JOIN guesses USING (pan)", []check{has("filter_exprs", pp, "guesses.pan")}},
		{"SELECT id FROM payments NATURAL JOIN guesses", []check{has("filter_exprs", "payments.*")}},
		{"SELECT id FROM orders WHERE note IN (SELECT pan FROM payments)", []check{has("filter_exprs", pp)}},
		{"SELECT id FROM payments WHERE EXISTS (SELECT 1 FROM orders o WHERE o.note = payments.pan)", []check{has("filter_exprs", pp)}},
		{"SELECT id FROM payments p WHERE p::text LIKE '%4111%'", []check{has("whole_row_reads", "payments"), has("filter_exprs", "payments.*")}},

		// Writes that copy the value elsewhere.
		{"UPDATE orders o SET note = p.pan FROM payments p WHERE p.id = o.id", []check{has("column_exprs", pp)}},
		{"UPDATE orders SET (note, x) = (SELECT pan, 1 FROM payments LIMIT 1)", []check{has("column_exprs", pp)}},
		{"INSERT INTO orders (note) VALUES ((SELECT pan FROM payments LIMIT 1))", []check{has("column_exprs", pp)}},
		{"INSERT INTO payments AS t (id, pan) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET pan = excluded.pan", []check{lacks("column_exprs", pp)}},
		{"INSERT INTO payments AS t (id, pan) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET note = t.pan", []check{has("column_exprs", pp)}},
		{"MERGE INTO orders o USING payments p ON o.id = p.id WHEN MATCHED THEN UPDATE SET note = p.pan", []check{has("column_exprs", pp)}},
		{"MERGE INTO orders o USING payments p ON o.id = p.id WHEN NOT MATCHED THEN INSERT (note) VALUES (reverse(p.pan))", []check{has("column_exprs", pp)}},
		{"DELETE FROM orders o USING payments p WHERE o.id = p.id RETURNING upper(p.pan)", []check{has("column_exprs", pp), has("deletes", "orders"), has("reads", "payments")}},
		{"INSERT INTO orders (note) SELECT pan FROM payments", []check{empty("column_exprs"), has("inserts", "orders")}},

		// Wrappers: the facts of what they run (or plan).
		{"EXPLAIN ANALYZE SELECT reverse(pan) FROM payments", []check{has("column_exprs", pp)}},
		{"EXPLAIN SELECT id FROM payments WHERE pan < '5'", []check{has("filter_exprs", pp)}},
		{"PREPARE q AS SELECT reverse(pan) FROM payments", []check{has("column_exprs", pp)}},
		{"COPY (SELECT upper(pan) FROM payments) TO STDOUT", []check{has("column_exprs", pp)}},
		{"DECLARE c CURSOR FOR SELECT p FROM payments p", []check{has("whole_row_reads", "payments")}},
		{"CREATE TABLE t AS SELECT md5(pan) FROM payments", []check{has("column_exprs", pp)}},
		{"WITH d AS (DELETE FROM payments RETURNING pan) SELECT reverse(pan) FROM d", []check{has("column_exprs", pp)}},

		// No table can hold it: every relation read.
		{"SELECT (SELECT reverse(zz.pan)) FROM payments", []check{has("column_exprs", pp)}},
		{"SELECT reverse(pan)", []check{has("column_exprs", "pan")}},
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

func TestMatchColumn(t *testing.T) {
	tests := []struct {
		name, pattern string
		want          bool
	}{
		{"payments.pan", "payments.pan", true},
		{"public.payments.pan", "payments.pan", true},
		{"shop.public.payments.pan", "public.payments.pan", true},
		{"evil.payments.pan", "public.payments.pan", false},
		{"payments.*", "payments.pan", true},
		{"payments.pan", "payments.*", true},
		{"payments.amount", "payments.pan", false},
		{"orders.pan", "payments.pan", false},
		{"pan", "payments.pan", false}, // attributed by the analyser, not here
		{"pan", "pan", true},
		{"orders.pan", "pan", true},
		{"Payments.pan", "payments.pan", false},
		{"payments.PAN", "payments.pan", false},
	}
	for _, tt := range tests {
		if got := MatchColumn(tt.name, tt.pattern); got != tt.want {
			t.Errorf("MatchColumn(%q, %q) = %v, want %v", tt.name, tt.pattern, got, tt.want)
		}
	}
}
