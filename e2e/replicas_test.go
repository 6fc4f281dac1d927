package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/jackc/pgx/v5"
)

// TestReplicasReStampThroughClients: two gateways share one PostgreSQL
// store, and each takes statements from its own clients at the same time.
// A replica that commits after the other has stored a later event
// re-stamps its batch (audit.Log rewrites the time inside each encoded
// event). Load runs until the replicas have re-stamped events under it;
// then the log must verify (every leaf hash, time order, the head row),
// and hold each statement's event exactly once, with its own text and
// tables.
func TestReplicasReStampThroughClients(t *testing.T) {
	pgc := sharedPG(t)
	usePG := withPostgresStore(pgc, pgc.NewDatabase(t))
	a := newHarness(t, usePG)
	b := newHarness(t, usePG, withCfg(func(c *config.Config) { c.Audit.SigningKeyFile = a.cfg.DataDir + "/audit.key" }))
	replicas := []*harness{a, b}
	restamped := func() float64 {
		return testutilCounter(t, a, "gatehouse_audit_restamped_events_total") +
			testutilCounter(t, b, "gatehouse_audit_restamped_events_total")
	}

	const clientsPer, perRound = 2, 40
	var conns []*pgx.Conn
	for _, h := range replicas {
		for range clientsPer {
			conns = append(conns, h.mustConnect("reader", agentToken))
		}
	}
	// statement is client c's i-th, unique across the run.
	statement := func(c, i int) string {
		return fmt.Sprintf("select count(*) from orders where id > %d", c*1_000_000+i)
	}
	// Starting the replicas and sessions may already re-stamp (the
	// gateway.start and session.start events); the statements must too.
	before := restamped()
	ran := 0
	for deadline := time.Now().Add(60 * time.Second); ran == 0 || restamped() == before; {
		if time.Now().After(deadline) {
			t.Fatalf("no event re-stamped after %d statements on each of %d clients", ran, len(conns))
		}
		var wg sync.WaitGroup
		errs := make(chan error, len(conns))
		for c, conn := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := ran; i < ran+perRound; i++ {
					if _, err := conn.Exec(context.Background(), statement(c, i), pgx.QueryExecModeSimpleProtocol); err != nil {
						errs <- fmt.Errorf("client %d, statement %d: %w", c, i, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		ran += perRound
	}
	t.Logf("%d statements on each of %d clients; %v events re-stamped during them", ran, len(conns), restamped()-before)

	code, body := b.api(t, "GET", "/api/v1/audit/verify", auditorToken, nil)
	var rep struct {
		OK       bool
		TreeSize int64 `json:"tree_size"`
		Findings []json.RawMessage
	}
	if err := json.Unmarshal(body, &rep); code != 200 || err != nil {
		t.Fatalf("verify: %d %v %s", code, err, body)
	}
	if !rep.OK || len(rep.Findings) != 0 {
		t.Fatalf("the shared log does not verify after re-stamps: %s", body)
	}

	code, body = a.api(t, "GET", "/api/v1/audit/events?kind=statement&table=orders&limit=10000", auditorToken, nil)
	var lines []struct{ Event json.RawMessage }
	if err := json.Unmarshal(body, &lines); code != 200 || err != nil {
		t.Fatalf("events: %d %v %.200s", code, err, body)
	}
	seen := map[string]int{}
	for _, l := range lines {
		var ev struct {
			Statement string
			Tables    []string
		}
		if err := json.Unmarshal(l.Event, &ev); err != nil {
			t.Fatal(err)
		}
		if len(ev.Tables) != 1 || ev.Tables[0] != "orders" {
			t.Errorf("statement %q: tables %v", ev.Statement, ev.Tables)
		}
		seen[ev.Statement]++
	}
	if want := ran * len(conns); len(lines) != want {
		t.Errorf("%d statement events on orders, want %d", len(lines), want)
	}
	for c := range conns {
		for i := range ran {
			if n := seen[statement(c, i)]; n != 1 {
				t.Fatalf("client %d, statement %d: %d events, want 1", c, i, n)
			}
		}
	}
}
