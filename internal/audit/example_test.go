package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/webhook"
)

// A leaf is the event's canonical JSON; its hash is SHA-256(0x00 || leaf).
func ExampleEvent_MarshalCanonical() {
	ev := audit.Event{
		Kind:       audit.KindStatement,
		Time:       time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		SessionID:  "s1",
		Principal:  &audit.Principal{Subject: "ci", Name: "ci-agent", Groups: []string{"agents"}},
		Connection: "shop",
		Role:       "reader",
		Statement:  "SELECT 1",
		Decision:   "allow",
		Rule:       "default",
	}
	leaf, _ := ev.MarshalCanonical()
	fmt.Printf("%s\n%v\n", leaf, tlog.RecordHash(leaf))
	// Output:
	// {"kind":"statement","time":"2025-01-02T03:04:05Z","session_id":"s1","principal":{"subject":"ci","name":"ci-agent","groups":["agents"]},"connection":"shop","role":"reader","statement":"SELECT 1","decision":"allow","rule":"default"}
	// WYz8GsDZyr+/oVWT3mrDDWJ2YaCSSsIga8UBYCaBqgQ=
}

// A checkpoint is a signed note: origin, tree size and root hash, then the
// signature line.
func ExampleLog_Checkpoint() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "audit-example-")
	defer os.RemoveAll(dir)
	st, _ := store.OpenSQLite(filepath.Join(dir, "gatehouse.db"))
	defer st.Close()

	// A fixed key and clock make the output reproducible; Ed25519
	// signatures are deterministic.
	skey, vkey, _ := note.GenerateKey(bytes.NewReader(make([]byte, 32)), "gatehouse.example/audit")
	signer, _ := note.NewSigner(skey)
	clock := func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) }

	log, _ := audit.Open(ctx, st, signer, clock, nil)
	for _, k := range []audit.Kind{audit.KindGatewayStart, audit.KindSessionStart, audit.KindStatement} {
		log.Append(ctx, audit.Event{Kind: k, Connection: "shop"})
	}
	c, _ := log.Checkpoint(ctx)
	log.Shutdown(ctx)
	fmt.Print(string(c.Note))

	verifier, _ := note.NewVerifier(vkey)
	rep, _ := audit.Verify(ctx, st, note.VerifierList(verifier))
	fmt.Println("verified:", rep.OK(), rep.TreeSize, "events,", rep.VerifiedCheckpoints, "checkpoint")
	// Output:
	// gatehouse.example/audit
	// 3
	// ENSQVZxx9iDpAtI6Lf6xKvGz+hD6Jvn3+iZBG/MfSbY=
	//
	// — gatehouse.example/audit uQGF41OeyF8ODaalyw4PfnSeysJ3AWkvbO+lAn7PxsaOfnS2ECjY5L63Qk/0p2UTFcj7dp7MPFHz+FU38Hj/O91RkQU=
	// verified: true 3 events, 1 checkpoint
}

// A stream delivery is a POST of export lines, one per event, with the
// sink's name, the range of leaf indexes and the body's HMAC in headers.
func ExampleStreamer_Flush() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "audit-example-")
	defer os.RemoveAll(dir)
	st, _ := store.OpenSQLite(filepath.Join(dir, "gatehouse.db"))
	defer st.Close()
	skey, _, _ := note.GenerateKey(bytes.NewReader(make([]byte, 32)), "gatehouse.example/audit")
	signer, _ := note.NewSigner(skey)
	clock := func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) }
	log, _ := audit.Open(ctx, st, signer, clock, nil)
	log.Append(ctx, audit.Event{Kind: audit.KindGatewayStart})
	log.Append(ctx, audit.Event{Kind: audit.KindStatement, Connection: "shop", Statement: "SELECT 1", Decision: "allow"})
	log.Shutdown(ctx)

	secret := []byte("shared-secret")
	siem := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		for _, h := range []string{"Content-Type", audit.ExportHeader, audit.EventsHeader, webhook.SignatureHeader} {
			fmt.Printf("%s: %s\n", h, r.Header.Get(h))
		}
		fmt.Println("signature valid:", webhook.Verify(secret, body, r.Header.Get(webhook.SignatureHeader)))
		fmt.Print(string(body))
	}))
	defer siem.Close()
	s, _ := audit.NewStreamer(st, audit.StreamConfig{Name: "siem", URL: siem.URL, Secret: secret})
	if err := s.Flush(ctx); err != nil {
		fmt.Println(err)
	}
	s.Shutdown(ctx) // nothing left to deliver
	pos, _ := st.ExportCursor(ctx, "siem")
	fmt.Println("cursor:", pos)
	// Output:
	// Content-Type: application/x-ndjson
	// X-Gatehouse-Export: siem
	// X-Gatehouse-Events: 0-1
	// X-Gatehouse-Signature: sha256=a234e118fb77616a9e16feed01fa062c2eea889a898d990a1f8e60a8f76fad96
	// signature valid: true
	// {"index":0,"hash":"ma4rHwhViDwI3g+3jB30LVZ8H9JNlxzNKJMyuWk9B9g=","event":{"kind":"gateway.start","time":"2025-01-02T03:04:05Z"}}
	// {"index":1,"hash":"oOBz94NKVG4GOcSwlcrr4yoPFzPijrGHzW6zDqXTUl8=","event":{"kind":"statement","time":"2025-01-02T03:04:05Z","connection":"shop","statement":"SELECT 1","decision":"allow"}}
	// cursor: 2
}
