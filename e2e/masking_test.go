package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

type panCase struct {
	ID     string `json:"id"`
	Expect string `json:"expect"`
	Value  string `json:"value"`
}

func loadPANCases(t *testing.T) []panCase {
	f, err := os.Open(filepath.Join(sharedDir(t), "corpus", "pan-cases.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []panCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var c panCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		if c.Expect == "pass" {
			c.Expect = "keep"
		}
		cases = append(cases, c)
	}
	if len(cases) < 20 {
		t.Fatalf("only %d PAN cases", len(cases))
	}
	return cases
}

// panDigits returns the digit runs of 12+ digits (separators removed) that a
// masked value must no longer contain.
var digitsOnly = regexp.MustCompile(`[^0-9]`)

func leaked(original, got string) bool {
	// The full digit sequence of the value must not survive anywhere.
	d := digitsOnly.ReplaceAllString(original, "")
	return strings.Contains(digitsOnly.ReplaceAllString(got, ""), d) || strings.Contains(got, original)
}

// vault creates a table holding every corpus value in text, varchar, jsonb,
// text[] and (where it fits) numeric and bigint columns.
func vault(t *testing.T, h *harness, cases []panCase) {
	h.pg.ExecIn(t, h.db, `CREATE TABLE vault (id text PRIMARY KEY, t text, v varchar(200), j jsonb, a text[], n numeric, b bigint);
		GRANT SELECT ON vault TO shop_reader`)
	for _, c := range cases {
		var n, b any
		if regexp.MustCompile(`^[0-9]{1,18}$`).MatchString(c.Value) {
			n, b = c.Value, c.Value
		}
		h.pg.ExecIn(t, h.db, `INSERT INTO vault VALUES ($1::text, $2::text, $2::text, jsonb_build_object('v', $2::text), ARRAY[$2::text, 'x'], $3::text::numeric, $4::text::bigint)`, c.ID, c.Value, n, b)
	}
}

func TestMaskingCorpusThroughPsql(t *testing.T) {
	h := newHarness(t)
	cases := loadPANCases(t)
	vault(t, h, cases)
	out, stderr, err := h.psql("reader", agentToken, "-F", "\t", "-c", "select id, t, v, j::text, a::text, coalesce(n::text, ''), coalesce(b::text, '') from vault order by id")
	if err != nil {
		t.Fatalf("psql: %v %s", err, stderr)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "\t")
		rows[f[0]] = f[1:]
	}
	for _, c := range cases {
		t.Run(c.ID, func(t *testing.T) {
			got, ok := rows[c.ID]
			if !ok {
				t.Fatalf("row missing from %q", out)
			}
			for i, v := range got {
				if v == "" {
					continue
				}
				switch c.Expect {
				case "mask":
					if leaked(c.Value, v) {
						t.Errorf("column %d leaks the card number: %q", i, v)
					}
				case "keep":
					if !strings.Contains(v, c.Value) {
						t.Errorf("column %d changed a value that is not a card number: %q → %q", i, c.Value, v)
					}
				}
			}
		})
	}
}

func TestMaskingBinaryResultsThroughPgx(t *testing.T) {
	h := newHarness(t)
	cases := loadPANCases(t)
	vault(t, h, cases)
	ctx := context.Background()
	c := h.mustConnect("reader", agentToken)
	// pgx asks for binary results for jsonb, arrays and text.
	rows, err := c.Query(ctx, "select id, t, v, j, a from vault order by id")
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]panCase{}
	for _, pc := range cases {
		byID[pc.ID] = pc
	}
	n := 0
	for rows.Next() {
		var id, tv, vv string
		var j map[string]string
		var a []string
		if err := rows.Scan(&id, &tv, &vv, &j, &a); err != nil {
			t.Fatalf("scan: %v (a masked binary value must still decode)", err)
		}
		n++
		pc := byID[id]
		for _, v := range []string{tv, vv, j["v"], a[0]} {
			if pc.Expect == "mask" && leaked(pc.Value, v) {
				t.Errorf("%s: binary result leaks %q", id, v)
			}
			if pc.Expect == "keep" && v != pc.Value {
				t.Errorf("%s: binary result changed %q → %q", id, pc.Value, v)
			}
		}
	}
	if err := rows.Err(); err != nil || n != len(cases) {
		t.Fatalf("rows: %d %v", n, err)
	}
	// Numbers that are not card numbers pass in binary.
	var ts int64
	if err := c.QueryRow(ctx, "select b from vault where id = 'ts-luhn'").Scan(&ts); err != nil || ts != 1748503543012 {
		t.Errorf("binary bigint: %d %v", ts, err)
	}
	// A card number in a binary bigint cannot be masked in place: the row
	// is withheld and the session ends with a clear error (fail closed).
	var b int64
	err = c.QueryRow(ctx, "select b from vault where id = 'visa16'").Scan(&b)
	if err == nil || !strings.Contains(err.Error(), "could not mask") {
		t.Fatalf("binary bigint card number: %d %v", b, err)
	}
	// Text format of the same column is masked instead.
	c2 := h.mustConnect("reader", agentToken)
	var s string
	if err := c2.QueryRow(ctx, "select b::text from vault where id = 'visa16'").Scan(&s); err != nil || leaked("4111111111111111", s) {
		t.Errorf("bigint as text: %q %v", s, err)
	}
	var num string
	if err := c2.QueryRow(ctx, "select n from vault where id = 'visa16'", pgx.QueryResultFormats{pgx.TextFormatCode}).Scan(&num); err != nil || leaked("4111111111111111", num) {
		t.Errorf("numeric in text format: %q %v", num, err)
	}
}

func TestColumnRuleShowsOnlyLastFour(t *testing.T) {
	h := newHarness(t)
	out, stderr, err := h.psql("reader", agentToken, "-c", "select pan from payments order by id")
	if err != nil {
		t.Fatalf("%v %s", err, stderr)
	}
	want := "************1111\n************4444\n***********0005\n****-****-****-1117\n"
	if out != want {
		t.Errorf("payments.pan through the column rule:\n%s\nwant\n%s", out, want)
	}
	// Published once the result is sent (per read, not per row).
	if n := testutilCounter(t, h, "gatehouse_values_masked_total"); n != 4 {
		t.Errorf("gatehouse_values_masked_total = %v after four masked values, want 4", n)
	}
	// Not a plain column reference: the column rule cannot see it, so the
	// reference policy denies it (protect-pan-expressions) ...
	for _, q := range []string{"select pan || '' from payments where id = 1", "select reverse(pan) from payments", "select p from payments p", "select id from payments where pan like '4111%'"} {
		_, stderr, err := h.psql("reader", agentToken, "-c", q)
		if err == nil || !strings.Contains(stderr, "protect-pan-expressions") {
			t.Errorf("%s: %v %s", q, err, stderr)
		}
	}
	// A minus on the string makes the test an expression, even once the
	// lookup by the same literal is in the analysis cache (the normaliser
	// makes both "pan = $1").
	_, stderr, err = h.psql("reader", agentToken,
		"-c", "select id from payments where pan = '4111111111111111'",
		"-c", "select id from payments where pan = -'4111111111111111'")
	if !strings.Contains(stderr, "protect-pan-expressions") || strings.Count(stderr, "ERROR") != 1 {
		t.Errorf("a minus on the literal after a lookup by it: %v %s", err, stderr)
	}
	// ... and where a card number still comes back transformed-but-whole,
	// the detectors mask it (at most BIN and last four).
	out, _, err = h.psql("reader", agentToken, "-c", "select note from orders where id = 2")
	if err != nil || !strings.Contains(out, "4111 11** **** 1111") {
		t.Errorf("detector masking: %q %v", out, err)
	}
}

// TestMaskingFollowsEachResultsColumns runs, in one session, two queries
// whose results carry a column of the same name, each twice: the column
// rule applies to payments.pan every time and never to the other query's
// column, which the detectors mask. (The proxy reuses a parsed
// RowDescription only when its bytes, table and column numbers included,
// are the same.)
func TestMaskingFollowsEachResultsColumns(t *testing.T) {
	h := newHarness(t)
	payments := "select pan from payments where id = 1"
	orders := "select note as pan from orders where id = 2"
	out, stderr, err := h.psql("reader", agentToken, "-c", payments, "-c", orders, "-c", payments, "-c", orders)
	if err != nil {
		t.Fatalf("%v %s", err, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("output %q: want four lines", out)
	}
	for i, l := range lines {
		rule := i%2 == 0
		if rule && l != "************1111" || !rule && !strings.Contains(l, "4111 11** **** 1111") {
			t.Errorf("result %d = %q (column rule expected: %v)", i+1, l, rule)
		}
	}
}

func TestMaskingInErrorsNoticesNotificationsAndCopy(t *testing.T) {
	h := newHarness(t)
	h.pg.ExecIn(t, h.db, `CREATE TABLE cards (pan text UNIQUE); INSERT INTO cards VALUES ('4111111111111111');
		GRANT SELECT, INSERT ON cards TO shop_writer;
		CREATE FUNCTION shout(t text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'card on file: %', t USING DETAIL = 'detail ' || t, HINT = 'hint ' || t; END $$`)
	ctx := context.Background()
	t.Run("duplicate key detail", func(t *testing.T) {
		_, stderr, err := h.psql("writer", agentToken, "-c", "insert into cards values ('4111111111111111')")
		if err == nil || !strings.Contains(stderr, "23505") && !strings.Contains(stderr, "duplicate key") {
			t.Fatalf("want a duplicate key error: %v %s", err, stderr)
		}
		if strings.Contains(stderr, "4111111111111111") || !strings.Contains(stderr, "411111******1111") {
			t.Errorf("error detail not masked: %s", stderr)
		}
	})
	t.Run("error message", func(t *testing.T) {
		c := h.mustConnect("reader", agentToken)
		_, err := c.Exec(ctx, "select '5555555555554444x'::int")
		if err == nil || strings.Contains(err.Error(), "5555555555554444") || !strings.Contains(err.Error(), "555555******4444") {
			t.Errorf("error message: %v", err)
		}
	})
	t.Run("notice", func(t *testing.T) {
		_, stderr, err := h.psql("reader", agentToken, "-c", "select shout('4111 1111 1111 1111')")
		if err != nil {
			t.Fatal(err, stderr)
		}
		if strings.Contains(stderr, "4111 1111 1111 1111") || !strings.Contains(stderr, "4111 11** **** 1111") {
			t.Errorf("notice not masked: %s", stderr)
		}
	})
	t.Run("notification payload", func(t *testing.T) {
		l := h.mustConnect("reader", agentToken)
		if _, err := l.Exec(ctx, "listen cards"); err != nil {
			t.Fatal(err)
		}
		w := h.mustConnect("writer", agentToken)
		if _, err := w.Exec(ctx, "select pg_notify('cards', 'new card 378282246310005')"); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		n, err := l.WaitForNotification(wctx)
		if err != nil || n.Payload != "new card 378282*****0005" {
			t.Errorf("notification payload %q %v", n.Payload, err)
		}
	})
	t.Run("copy to stdout", func(t *testing.T) {
		out, stderr, err := h.psql("reader", agentToken, "-c", "copy (select id, note from orders order by id) to stdout with (format csv)")
		if err != nil {
			t.Fatal(err, stderr)
		}
		if strings.Contains(out, "4111 1111 1111 1111") || !strings.Contains(out, "4111 11** **** 1111") {
			t.Errorf("COPY output not masked:\n%s", out)
		}
	})
	t.Run("copy payments needs review", func(t *testing.T) {
		_, stderr, err := h.psql("reader", agentToken, "-c", "copy payments to stdout")
		if err == nil || !strings.Contains(stderr, "review-payments-copy") {
			t.Errorf("copy payments: %v %s", err, stderr)
		}
	})
}

// TestBinaryCopyOutRefused: binary COPY output cannot be masked (numbers in
// binary, no column rules), so it is withheld with a clear error.
func TestBinaryCopyOutRefused(t *testing.T) {
	h := newHarness(t)
	c := h.mustConnect("reader", agentToken)
	var buf strings.Builder
	_, err := c.PgConn().CopyTo(context.Background(), &buf, "COPY (SELECT id, note FROM orders) TO STDOUT WITH (FORMAT binary)")
	if err == nil || !strings.Contains(err.Error(), "could not mask") {
		t.Fatalf("binary COPY: %v", err)
	}
	if buf.Len() != 0 {
		t.Errorf("binary COPY sent %d bytes before the refusal", buf.Len())
	}
}
