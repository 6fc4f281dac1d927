package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// oldSQLite creates the database at path with the schema of the migrations
// before version below, as an older release left it. exec runs SQL on it or
// fails the test; upgrade closes it and opens it as this release does,
// applying the rest.
func oldSQLite(t *testing.T, path string, below int) (exec func(q string, args ...any), upgrade func() *SQLite) {
	t.Helper()
	old, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { old.Close() }) // closing again is a no-op
	exec = func(q string, args ...any) {
		t.Helper()
		if _, err := old.ExecContext(context.Background(), q, args...); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	ms, err := migrations("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied INTEGER NOT NULL)`)
	for _, m := range ms {
		if m.version >= below {
			break
		}
		exec(m.sql)
		exec(`INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, 0)`, m.version, m.name)
	}
	upgrade = func() *SQLite {
		t.Helper()
		if err := old.Close(); err != nil {
			t.Fatal(err)
		}
		s, err := OpenSQLite(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	return exec, upgrade
}

// TestSQLiteMigrationMovesChunkData opens a store written with the schema
// before migration 0006 and checks that the chunks it held keep their
// bytes, digests and times, that data is now the last column (which
// AppendChunk's blob write relies on), that the append-only trigger is back,
// and that the recording goes on from where it was.
func TestSQLiteMigrationMovesChunkData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	exec, upgrade := oldSQLite(t, path, 6)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	exec(`INSERT INTO recordings (session_id, principal, connection, role, started, chunks) VALUES ('s1', 'ci-agent', 'shop', 'reader', ?, 3)`, t0.UnixNano())
	var want []Chunk
	for seq := range int64(3) {
		data := bytes.Repeat([]byte{byte('a' + seq)}, 1+int(seq)*150_000)
		c := Chunk{SessionID: "s1", Seq: seq, Time: t0.Add(time.Duration(seq) * time.Second), Data: data, SHA256: sha256.Sum256(data)}
		exec(`INSERT INTO recording_chunks (session_id, seq, time, data, sha256) VALUES (?, ?, ?, ?, ?)`,
			c.SessionID, c.Seq, c.Time.UnixNano(), c.Data, c.SHA256[:])
		want = append(want, c)
	}
	s := upgrade()
	var cols []string
	rows, err := s.db.QueryContext(ctx, `SELECT name FROM pragma_table_info('recording_chunks') ORDER BY cid`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	rows.Close()
	if got := strings.Join(cols, ","); got != "session_id,seq,time,sha256,data" {
		t.Errorf("recording_chunks columns = %s, want data last", got)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE recording_chunks SET seq = seq`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("UPDATE recording_chunks after the migration: err = %v, want the append-only trigger's", err)
	}

	next := Chunk{SessionID: "s1", Seq: 3, Time: t0.Add(3 * time.Second), Data: bytes.Repeat([]byte("d"), 70_000)}
	next.SHA256 = sha256.Sum256(next.Data)
	if err := s.AppendChunk(ctx, next); err != nil {
		t.Fatalf("AppendChunk after the migration: %v", err)
	}
	want = append(want, next)
	got, err := s.Chunks(ctx, "s1", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Chunks = %d, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Seq != w.Seq || !g.Time.Equal(w.Time) || g.SHA256 != w.SHA256 || !bytes.Equal(g.Data, w.Data) {
			t.Errorf("chunk %d = seq %d, time %v, %d bytes; want seq %d, time %v, %d bytes, same digest and bytes",
				i, g.Seq, g.Time, len(g.Data), w.Seq, w.Time, len(w.Data))
		}
	}
}

// TestSQLiteAppendChunkFullDisk fills the database (a page limit on the
// chunk connection stands in for the disk) and checks that the failed
// append names the cause, leaves no trace, and can be retried once there is
// room.
func TestSQLiteAppendChunkFullDisk(t *testing.T) {
	ctx := context.Background()
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "full.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateRecording(ctx, Recording{SessionID: "s1", Principal: "ci-agent", Connection: "shop", Role: "reader", Started: time.Now()}); err != nil {
		t.Fatal(err)
	}
	c := Chunk{SessionID: "s1", Time: time.Now(), Data: bytes.Repeat([]byte("x"), 400_000)}
	c.SHA256 = sha256.Sum256(c.Data)
	limit := func(pages int) {
		t.Helper()
		s.chunks.mu.Lock()
		defer s.chunks.mu.Unlock()
		if err := s.chunks.execLocked(fmt.Sprintf(`PRAGMA max_page_count = %d`, pages)); err != nil {
			t.Fatal(err)
		}
	}
	limit(50) // a 400 kB chunk needs about 100 pages of 4 KiB
	err = s.AppendChunk(ctx, c)
	if err == nil || !strings.Contains(err.Error(), "full") {
		t.Fatalf("AppendChunk on a full database: err = %v, want SQLite's 'database or disk is full'", err)
	}
	r, err := s.Recording(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if cs, err := s.Chunks(ctx, "s1", 0, 0); err != nil || len(cs) != 0 || r.Chunks != 0 {
		t.Fatalf("after the failed append: %d chunks stored, recording counts %d (err %v); want none", len(cs), r.Chunks, err)
	}
	limit(1 << 30)
	if err := s.AppendChunk(ctx, c); err != nil {
		t.Fatalf("AppendChunk once there is room: %v", err)
	}
	cs, err := s.Chunks(ctx, "s1", 0, 0)
	if err != nil || len(cs) != 1 || !bytes.Equal(cs[0].Data, c.Data) {
		t.Fatalf("after the retry: %d chunks (err %v), want the one appended", len(cs), err)
	}
}
