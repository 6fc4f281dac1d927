package e2e

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

type guardrailCase struct {
	ID      string `json:"id"`
	Verdict string `json:"verdict"`
	SQL     string `json:"sql"`
	Why     string `json:"why"`
}

// sharedDir finds shared/ beside the repository (CI clones main with shared/
// next to it). GATEHOUSE_SHARED overrides.
func sharedDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("GATEHOUSE_SHARED"); d != "" {
		return d
	}
	dir, _ := filepath.Abs("..")
	for i := 0; i < 4; i++ {
		for _, cand := range []string{filepath.Join(dir, "shared"), filepath.Join(dir, "..", "shared")} {
			if st, err := os.Stat(filepath.Join(cand, "corpus")); err == nil && st.IsDir() {
				return cand
			}
		}
		dir = filepath.Dir(dir)
	}
	t.Fatal("shared/corpus not found beside the repository (set GATEHOUSE_SHARED)")
	return ""
}

func loadGuardrails(t *testing.T) []guardrailCase {
	f, err := os.Open(filepath.Join(sharedDir(t), "corpus", "pg-guardrails.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []guardrailCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var c guardrailCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
	}
	if len(cases) < 40 {
		t.Fatalf("only %d guardrail cases", len(cases))
	}
	return cases
}

// targetState is what a denied statement must leave untouched.
func targetState(h *harness) string {
	return h.scalar(`select string_agg(c.relname || ':' || coalesce(s.n_live_tup, 0)::text, ',' order by c.relname)
		|| '|' || (select count(*) from payments)::text || '|' || (select coalesce(sum(amount), 0) from payments)::text
		|| '|' || (select string_agg(nspname, ',' order by nspname) from pg_namespace where nspname not like 'pg\_%')
		|| '|' || (select has_table_privilege('public', 'payments', 'select')::text)
		from pg_class c left join pg_stat_user_tables s on s.relid = c.oid
		where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'v', 'm')`)
}

// TestGuardrailCorpusThroughPsql runs every case of the shared corpus as
// the writer agent through psql against a real PostgreSQL: denied and
// reviewed cases must fail with 42501 naming a rule and leave the target
// exactly as it was; allowed ones must not be refused by Gatehouse.
func TestGuardrailCorpusThroughPsql(t *testing.T) {
	h := newHarness(t)
	for _, c := range loadGuardrails(t) {
		t.Run(c.ID, func(t *testing.T) {
			before := targetState(h)
			type result struct {
				stderr string
				err    error
			}
			done := make(chan result, 1)
			go func() {
				_, stderr, err := h.psql("writer", agentToken, "-c", c.SQL)
				done <- result{stderr, err}
			}()
			if c.Verdict == "review" {
				// Held for a reviewer: the request names the rule; deny it.
				req := h.pending(t)
				if req.Rule == "" || req.Statement == "" {
					t.Errorf("approval request: %+v", req)
				}
				if code, b := h.api(t, "POST", "/api/v1/approvals/"+req.ID+"/deny", approverToken, map[string]string{"reason": "corpus check"}); code != 200 {
					t.Fatalf("deny: %d %s", code, b)
				}
			}
			res := <-done
			stderr, err := res.stderr, res.err
			refused := strings.Contains(stderr, "ERROR:  gatehouse:")
			switch c.Verdict {
			case "deny", "review":
				if err == nil || !refused {
					t.Fatalf("%s (%s) was not refused: err=%v stderr=%s", c.SQL, c.Why, err, stderr)
				}
				if !strings.Contains(stderr, "rule") {
					t.Errorf("refusal does not carry the rule: %s", stderr)
				}
				if c.Verdict == "review" && !strings.Contains(stderr, "corpus check") {
					t.Errorf("review verdict does not carry the reviewer's reason: %s", stderr)
				}
				if after := targetState(h); after != before {
					t.Errorf("denied statement changed the target:\nbefore %s\nafter  %s", before, after)
				}
			case "allow":
				if refused {
					t.Fatalf("%s (%s) was refused: %s", c.SQL, c.Why, stderr)
				}
			default:
				t.Fatalf("unknown verdict %q", c.Verdict)
			}
		})
	}
}

// TestDenialAbortsTransaction: a denied statement inside a transaction
// block leaves it aborted exactly as PostgreSQL would: later statements get
// 25P02 and COMMIT rolls back what ran before.
func TestDenialAbortsTransaction(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	c := h.mustConnect("writer", agentToken)
	if _, err := c.Exec(ctx, "begin"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "insert into orders (id, note) values (700, 'in tx')"); err != nil {
		t.Fatal(err)
	}
	_, err := c.Exec(ctx, "drop table payments")
	if pgCode(err) != "42501" || !strings.Contains(err.Error(), "no-drop") {
		t.Fatalf("drop: %v", err)
	}
	if _, err := c.Exec(ctx, "select 1"); pgCode(err) != "25P02" {
		t.Fatalf("after denial: %v, want 25P02", err)
	}
	// A second denied statement in the aborted block gets 25P02 too, as
	// PostgreSQL answers before looking at any statement.
	if _, err := c.Exec(ctx, "truncate payments"); pgCode(err) != "25P02" {
		t.Fatalf("denied statement in aborted tx: %v, want 25P02", err)
	}
	tag, err := c.Exec(ctx, "commit")
	if err != nil || tag.String() != "ROLLBACK" {
		t.Fatalf("commit: %v %v", tag, err)
	}
	if got := h.scalar("select count(*)::text from orders where id = 700"); got != "0" {
		t.Errorf("insert before the denial committed")
	}
}

// TestDenialInPipeline: in the extended protocol the error arrives where
// PostgreSQL would put it and the pipeline stays in sync.
func TestDenialInPipeline(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	c := h.mustConnect("writer", agentToken)
	// One extended-protocol batch (Parse/Bind/Describe/Execute ×3, Sync):
	// the denied middle statement fails, the third is skipped as after any
	// error, and the connection is in sync afterwards.
	pb := &pgconn.Batch{}
	pb.ExecParams("select 1", nil, nil, nil, nil)
	pb.ExecParams("delete from payments where id = $1", [][]byte{[]byte("1")}, nil, nil, nil)
	pb.ExecParams("select 2", nil, nil, nil, nil)
	results, err := c.PgConn().ExecBatch(ctx, pb).ReadAll()
	if pgCode(err) != "42501" || !strings.Contains(err.Error(), "protect-payments-delete") {
		t.Fatalf("delete in pipeline: %v", err)
	}
	if len(results) < 1 || results[0].Err != nil || string(results[0].Rows[0][0]) != "1" {
		t.Fatalf("pipeline results before the denial: %+v", results)
	}
	var n int
	if err := c.QueryRow(ctx, "select count(*) from payments").Scan(&n); err != nil || n != 4 {
		t.Fatalf("after pipeline: %d %v", n, err)
	}
	// Prepared statement protocol path: Parse of a denied statement.
	if _, err := c.Prepare(ctx, "del", "delete from payments"); pgCode(err) != "42501" {
		t.Fatalf("prepare: %v", err)
	}
	// SQL-level PREPARE/EXECUTE is judged as what it runs.
	if _, err := c.Exec(ctx, "prepare p2 as select * from orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "execute p2"); err != nil {
		t.Errorf("execute of an allowed prepared statement: %v", err)
	}
	if _, err := c.Exec(ctx, "prepare p3 as delete from payments"); pgCode(err) != "42501" {
		t.Errorf("prepare of a delete: %v", err)
	}
	if _, err := c.Exec(ctx, "execute p3"); err == nil {
		t.Errorf("execute p3 succeeded")
	}
	if got := h.scalar("select count(*)::text from payments"); got != "4" {
		t.Errorf("payments rows: %s", got)
	}
}

// TestFastPathFunctionCallRefused: the FunctionCall protocol names a
// function by OID past the analyser, so it is refused — and the session
// stays usable.
func TestFastPathFunctionCallRefused(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	c := h.mustConnect("reader", agentToken)
	var oid uint32
	if err := c.QueryRow(ctx, "select 'pg_catalog.pg_read_file(text)'::regprocedure::oid").Scan(&oid); err != nil {
		t.Fatal(err)
	}
	// FunctionCall: oid, 1 format code (text), 1 argument, result format text.
	body := binary.BigEndian.AppendUint32(nil, oid)
	body = append(body, 0, 1, 0, 0, 0, 1)
	body = binary.BigEndian.AppendUint32(body, uint32(len("/etc/passwd")))
	body = append(body, "/etc/passwd"...)
	body = append(body, 0, 0)
	msg := append([]byte{'F'}, binary.BigEndian.AppendUint32(nil, uint32(len(body)+4))...)
	msg = append(msg, body...)
	conn := c.PgConn()
	if _, err := conn.Conn().Write(msg); err != nil {
		t.Fatal(err)
	}
	fe := conn.Frontend()
	var gotErr *pgproto3.ErrorResponse
	for {
		m, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		if e, ok := m.(*pgproto3.ErrorResponse); ok {
			gotErr = &pgproto3.ErrorResponse{Code: e.Code, Message: e.Message}
		}
		if _, ok := m.(*pgproto3.FunctionCallResponse); ok {
			t.Fatal("the function ran")
		}
		if _, ok := m.(*pgproto3.ReadyForQuery); ok {
			break
		}
	}
	if gotErr == nil || gotErr.Code != "42501" || !strings.Contains(gotErr.Message, "function-call-protocol") {
		t.Fatalf("FunctionCall: %+v", gotErr)
	}
	var one int
	if err := c.QueryRow(ctx, "select 1").Scan(&one); err != nil {
		t.Errorf("session after a refused FunctionCall: %v", err)
	}
}
