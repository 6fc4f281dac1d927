package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/store"
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
