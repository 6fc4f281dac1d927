package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

func TestMain(m *testing.M) {
	// As in the gateway, SQLite gets its page buffers before any database
	// is opened: some tests here open one by hand, which would initialise
	// the library without them.
	configurePageCache()
	os.Exit(m.Run())
}

// pageCacheStatus reads one of SQLite's SQLITE_STATUS_PAGECACHE_* counters:
// its current value and its high-water mark, which reset restarts from
// the current value.
func pageCacheStatus(t *testing.T, op int32, reset bool) (cur, high int64) {
	t.Helper()
	tls := libc.NewTLS()
	defer tls.Close()
	p := tls.Alloc(16)
	defer tls.Free(16)
	var r int32
	if reset {
		r = 1
	}
	if rc := sqlite3.Xsqlite3_status64(tls, op, p, p+8, r); rc != sqlite3.SQLITE_OK {
		t.Fatalf("sqlite3_status64(%d): %d", op, rc)
	}
	v := (*[2]int64)(cptr(p))
	return v[0], v[1]
}

// The store's page buffers must come from SQLite's slots, not malloc:
// with malloc, b-tree page splits and dropped page caches map and unmap
// memory (see sqlite_pagecache.go).
func TestSQLitePageBuffersComeFromSlots(t *testing.T) {
	if !configurePageCache() {
		t.Fatal("SQLite refused its page buffers")
	}
	// The counters are the process's: count from here.
	pageCacheStatus(t, sqlite3.SQLITE_STATUS_PAGECACHE_OVERFLOW, true)
	ctx := context.Background()
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Enough rows to split leaves of every index, and a chunk that spans
	// overflow pages.
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	var head Head
	for i := range 20 {
		recs := make([]Record, 50)
		for j := range recs {
			recs[j] = Record{Index: int64(i*50 + j), Time: t0, Kind: "statement", SessionID: "s1",
				Principal: "ci-agent", Connection: "shop", Decision: "allow", Data: []byte(`{"sql":"select 1"}`), Tables: []string{"payments"}}
		}
		next := Head{Size: head.Size + int64(len(recs)), Hashes: head.Hashes}
		if err := s.AppendEvents(ctx, recs, next); err != nil {
			t.Fatal(err)
		}
		head = next
	}
	if err := s.CreateRecording(ctx, Recording{SessionID: "s1", Principal: "ci-agent", Connection: "shop", Role: "reader", Started: t0}); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 100<<10)
	if err := s.AppendChunk(ctx, Chunk{SessionID: "s1", Seq: 0, Time: t0, Data: data}); err != nil {
		t.Fatal(err)
	}
	used, usedHigh := pageCacheStatus(t, sqlite3.SQLITE_STATUS_PAGECACHE_USED, false)
	if used == 0 || usedHigh < 20 {
		t.Errorf("%d page slots in use (at most %d): SQLite is not using its slots", used, usedHigh)
	}
	if _, overflowHigh := pageCacheStatus(t, sqlite3.SQLITE_STATUS_PAGECACHE_OVERFLOW, false); overflowHigh > 0 {
		t.Errorf("%d bytes of page buffers from malloc: the slots ran out", overflowHigh)
	}
}
