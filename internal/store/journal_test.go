package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// journalEnv is a SQLite store and a journal in front of it, opened without
// the indexer where a test plays the crash that stops it.
type journalEnv struct {
	db, journal string
}

func newJournalEnv(t *testing.T) journalEnv {
	dir := t.TempDir()
	return journalEnv{db: filepath.Join(dir, "gatehouse.db"), journal: filepath.Join(dir, "gatehouse.db.audit-journal")}
}

// open opens the journal; with index false its indexer never runs, as if the
// process died before it could.
func (e journalEnv) open(t *testing.T, index bool) *Journal {
	t.Helper()
	j := e.openIdle(t, JournalOptions{})
	if index {
		go j.indexLoop()
	} else {
		close(j.indexDone)
	}
	close(j.syncDone)
	return j
}

// openIdle opens the journal with opts and starts none of its goroutines:
// the caller starts them, or closes indexDone and syncDone in their stead.
func (e journalEnv) openIdle(t *testing.T, opts JournalOptions) *Journal {
	t.Helper()
	st, err := OpenSQLite(e.db)
	if err != nil {
		t.Fatal(err)
	}
	j, err := openJournal(context.Background(), st, e.journal, opts)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	return j
}

// crash drops j without indexing what it journaled: the lock goes with the
// file, as it does when the process is killed.
func crash(t *testing.T, j *Journal) {
	t.Helper()
	j.closeOnce.Do(func() {}) // Close must not run after this
	if err := errors.Join(j.f.Close(), j.JournalIndex.Close()); err != nil {
		t.Fatal(err)
	}
}

func (e journalEnv) exec(t *testing.T, q string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+e.db+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func jrec(i int64) Record {
	data := []byte(fmt.Sprintf(`{"kind":"statement","n":%d}`, i))
	return Record{
		Index: i, Time: time.Unix(1700000000, i).UTC(), Kind: "statement", SessionID: fmt.Sprintf("s%d", i%3),
		Principal: "ci-agent", Connection: "shop", Decision: "allow", Tables: []string{"payments"},
		Data: data, Hash: tlog.RecordHash(data),
	}
}

// jhead is a head of size n with the right number of (made up) hashes.
func jhead(n int64) Head {
	h := Head{Size: n}
	for b := n; b > 0; b &= b - 1 {
		h.Hashes = append(h.Hashes, tlog.Hash{byte(n), byte(len(h.Hashes))})
	}
	return h
}

// appendBatches appends batches of the given sizes after the head.
func appendBatches(t *testing.T, s Store, sizes ...int64) {
	t.Helper()
	ctx := context.Background()
	for _, n := range sizes {
		h, err := s.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var recs []Record
		for i := h.Size; i < h.Size+n; i++ {
			recs = append(recs, jrec(i))
		}
		if err := s.AppendEvents(ctx, recs, jhead(h.Size+n)); err != nil {
			t.Fatalf("append %d..%d: %v", h.Size, h.Size+n, err)
		}
	}
}

func checkEvents(t *testing.T, s Store, n int64) {
	t.Helper()
	ctx := context.Background()
	recs, err := s.Events(ctx, Query{Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(recs)) != n {
		t.Fatalf("%d events, want %d", len(recs), n)
	}
	for i, r := range recs {
		if want := jrec(int64(i)); r.Index != want.Index || string(r.Data) != string(want.Data) || !r.Time.Equal(want.Time) ||
			r.SessionID != want.SessionID || len(r.Tables) != 1 {
			t.Fatalf("event %d = %+v, want %+v", i, r, want)
		}
	}
	h, err := s.Head(ctx)
	if err != nil || h.Size != n || len(h.Hashes) != len(jhead(n).Hashes) || h.Hashes[0] != jhead(n).Hashes[0] {
		t.Fatalf("head = %+v, %v; want %+v", h, err, jhead(n))
	}
}

// TestJournalReplay: what was acknowledged but not indexed when the process
// died is indexed when the store is next opened.
func TestJournalReplay(t *testing.T) {
	e := newJournalEnv(t)
	j := e.open(t, false)
	appendBatches(t, j, 3, 1, 5)
	if st := j.Stats(); st.Unindexed != 9 {
		t.Fatalf("Stats().Unindexed = %d with 9 events journaled and none indexed", st.Unindexed)
	}
	crash(t, j)

	j = e.open(t, true)
	defer j.Close()
	checkEvents(t, j, 9)
	if st := j.Stats(); st.Unindexed != 0 || st.IndexWaits != 0 {
		t.Fatalf("after replay and a read: Stats() = %+v, want nothing unindexed, no waits", st)
	}
	appendBatches(t, j, 2)
	checkEvents(t, j, 11)
}

// TestJournalReuse: once indexed, the file is written from the start again;
// the older frames after the new ones are not replayed.
func TestJournalReuse(t *testing.T) {
	e := newJournalEnv(t)
	j := e.open(t, true)
	appendBatches(t, j, 4, 4, 4, 4)
	if err := j.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := j.syncIndex(true); err != nil {
		t.Fatal(err)
	}
	// Stop the indexer, then append: the frame goes to offset 0, ahead of
	// four indexed frames of the previous generation.
	close(j.stop)
	<-j.indexDone
	appendBatches(t, j, 2)
	if j.off >= 4*frameSize(t, 4) {
		t.Fatalf("journal offset %d: the file was not reused", j.off)
	}
	crash(t, j)

	j = e.open(t, true)
	defer j.Close()
	checkEvents(t, j, 18)
}

func frameSize(t *testing.T, n int64) int64 {
	var recs []Record
	for i := range n {
		recs = append(recs, jrec(i))
	}
	return int64(len(appendFrame(nil, journalBatch{recs: recs, next: jhead(n)})))
}

// TestJournalTornTail: a frame cut short by a crash was never acknowledged;
// replay stops before it and keeps everything before.
func TestJournalTornTail(t *testing.T) {
	for name, tear := range map[string]func(b []byte, last int64) []byte{
		"cut":     func(b []byte, last int64) []byte { return b[:last+frameHeaderSize+5] },
		"flipped": func(b []byte, last int64) []byte { b[last+frameHeaderSize+3] ^= 0x40; return b },
		"zeroed":  func(b []byte, last int64) []byte { clear(b[last:]); return b },
	} {
		t.Run(name, func(t *testing.T) {
			e := newJournalEnv(t)
			j := e.open(t, false)
			appendBatches(t, j, 2, 3)
			last := j.off
			appendBatches(t, j, 4)
			end := j.off
			crash(t, j)
			b, err := os.ReadFile(e.journal)
			if err != nil {
				t.Fatal(err)
			}
			b = tear(b[:end], last)
			if err := os.WriteFile(e.journal, b, 0o600); err != nil {
				t.Fatal(err)
			}
			j = e.open(t, true)
			defer j.Close()
			checkEvents(t, j, 5)
		})
	}
}

// TestJournalGap: a journal that does not continue the store (the store
// lost events it had indexed, or the journal is another store's) refuses to
// open rather than index a log with a hole.
func TestJournalGap(t *testing.T) {
	e := newJournalEnv(t)
	j := e.open(t, true)
	appendBatches(t, j, 3)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	other := newJournalEnv(t)
	j = other.open(t, false)
	appendBatches(t, j, 5, 2)
	crash(t, j)
	// Keep only the second frame: events 5 and 6, after a store of 3.
	b, err := os.ReadFile(other.journal)
	if err != nil {
		t.Fatal(err)
	}
	first := frameSize(t, 5)
	if err := os.WriteFile(e.journal, b[first:first+int64(frameSizeAt(t, 5, 2))], 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := OpenSQLite(e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = OpenJournal(context.Background(), st, e.journal, JournalOptions{})
	if err == nil || !strings.Contains(err.Error(), "journal resumes at event 5 but the store ends at 3") {
		t.Fatalf("open over a gap: err = %v", err)
	}
}

func frameSizeAt(t *testing.T, from, n int64) int {
	var recs []Record
	for i := from; i < from+n; i++ {
		recs = append(recs, jrec(i))
	}
	return len(appendFrame(nil, journalBatch{recs: recs, next: jhead(from + n)}))
}

// TestJournalLock: one process appends to a journaled store.
func TestJournalLock(t *testing.T) {
	e := newJournalEnv(t)
	j := e.open(t, true)
	defer j.Close()
	st, err := OpenSQLite(e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := OpenJournal(context.Background(), st, e.journal, JournalOptions{}); !errors.Is(err, ErrJournalLocked) {
		t.Fatalf("second journal: err = %v, want ErrJournalLocked", err)
	}
}

// TestJournalIndexFailure: when the index cannot be written, appends are
// refused (fail closed) once the indexer has met the failure; what was
// journaled is indexed when the store recovers.
func TestJournalIndexFailure(t *testing.T) {
	e := newJournalEnv(t)
	j := e.open(t, true)
	defer j.Close()
	appendBatches(t, j, 2)
	if err := j.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.exec(t, `CREATE TRIGGER fail BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'disk full'); END`)
	appendBatches(t, j, 1) // journaled; its indexing fails
	err := j.Flush(context.Background())
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Flush while the index fails: %v", err)
	}
	h, _ := j.Head(context.Background())
	if err := j.AppendEvents(context.Background(), []Record{jrec(3)}, jhead(4)); err == nil || !strings.Contains(err.Error(), "appends refused") {
		t.Fatalf("append while the index fails: err = %v", err)
	}
	if h.Size != 3 {
		t.Fatalf("head %d, want 3", h.Size)
	}
	e.exec(t, `DROP TRIGGER fail`)
	deadline := time.Now().Add(10 * time.Second)
	for j.Flush(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("index did not recover")
		}
		time.Sleep(20 * time.Millisecond)
	}
	appendBatches(t, j, 2)
	checkEvents(t, j, 5)
}

// TestJournalSyncFailure: after a failed fdatasync nothing written since is
// known to be on disk; the journal refuses every append until reopened,
// and what was acknowledged before survives.
func TestJournalSyncFailure(t *testing.T) {
	e := newJournalEnv(t)
	j := e.open(t, true)
	appendBatches(t, j, 2)
	j.fdatasync = func(int) error { return syscall.EIO }
	for range 2 {
		err := j.AppendEvents(context.Background(), []Record{jrec(2)}, jhead(3))
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("append after a failed fdatasync: err = %v, want EIO", err)
		}
	}
	j.fdatasync = syscall.Fdatasync
	if err := j.AppendEvents(context.Background(), []Record{jrec(2)}, jhead(3)); err == nil {
		t.Fatal("a broken journal took an append")
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = e.open(t, true)
	defer j.Close()
	// The refused frame may or may not be on disk; either way the log is
	// whole. Here the write reached the page cache, so it replays: events
	// the caller was told failed are recorded rather than lost.
	recs, err := j.Events(context.Background(), Query{Limit: -1})
	if err != nil || len(recs) < 2 {
		t.Fatalf("after reopen: %d events, %v", len(recs), err)
	}
}

// TestJournalFull: an index that falls behind by the journal's limit makes
// appends wait for it, and fail when the caller's context ends first.
func TestJournalFull(t *testing.T) {
	e := newJournalEnv(t)
	j := e.open(t, false)
	defer crash(t, j)
	j.off = journalLimit
	j.durable = -1 // the index is not on disk, so the offset is not reset
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := j.AppendEvents(ctx, []Record{jrec(0)}, jhead(1))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "journal full") {
		t.Fatalf("append to a full journal: err = %v", err)
	}
	// One append, however often it was woken to look again.
	if st := j.Stats(); st.IndexWaits != 1 || st.IndexWaitTime < 50*time.Millisecond || st.IndexWaitTime > 10*time.Second {
		t.Fatalf("Stats() = %+v after one append waited 50ms, want 1 wait of about that", st)
	}
}

// FuzzReadFrame: replay reads whatever a crash, a disk or an intruder left
// in the journal. It must never panic or allocate beyond the input, and a
// frame it accepts must be one appendFrame could have written.
func FuzzReadFrame(f *testing.F) {
	valid := appendFrame(nil, journalBatch{recs: []Record{jrec(7), jrec(8)}, next: jhead(9)})
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add(append(valid, valid...))
	f.Add(valid[frameHeaderSize:])
	f.Fuzz(func(t *testing.T, b []byte) {
		// The payload decoder on its own too: behind the CRC the fuzzer
		// would rarely reach it.
		if batch, err := decodeBatch(b); err == nil {
			if again, err := decodeBatch(appendFrame(nil, batch)[frameHeaderSize:]); err != nil || !reflect.DeepEqual(again, batch) {
				t.Fatalf("accepted payload does not round-trip: %v", err)
			}
		}
		batch, n, err := readFrame(b)
		if err != nil {
			return
		}
		if n > len(b) || len(batch.recs) == 0 {
			t.Fatalf("frame of %d bytes with %d records from %d bytes", n, len(batch.recs), len(b))
		}
		again, _, err := readFrame(appendFrame(nil, batch))
		if err != nil || !reflect.DeepEqual(again, batch) {
			t.Fatalf("accepted frame does not round-trip: %v", err)
		}
	})
}

// TestJournalWriteDurability: with a sync interval appends do not wait for
// fdatasync, a background sync follows, and what was appended survives the
// process dying (the page cache keeps it).
func TestJournalWriteDurability(t *testing.T) {
	e := newJournalEnv(t)
	j := e.openIdle(t, JournalOptions{SyncInterval: 5 * time.Millisecond})
	close(j.indexDone) // no indexer: everything stays in the journal
	syncs := make(chan struct{}, 100)
	j.fdatasync = func(fd int) error {
		syncs <- struct{}{}
		return syscall.Fdatasync(fd)
	}
	appendBatches(t, j, 2, 3)
	if n := len(syncs); n != 0 {
		t.Fatalf("%d fdatasyncs on the append path", n)
	}
	go j.syncLoop()
	select {
	case <-syncs:
	case <-time.After(5 * time.Second):
		t.Fatal("no background fdatasync")
	}
	close(j.stop)
	<-j.syncDone
	crash(t, j)

	j = e.open(t, true)
	defer j.Close()
	checkEvents(t, j, 5)
}

// TestJournalDeferredIndexSync: the index's commits are not synced one by
// one. The indexer syncs once a round, where no append waits for it, and
// the journal starts over from the top once everything in it is synced.
// Under appends that outrun the index it grows past journalSyncAt, and the
// appends then wait for the index to catch up and sync so that it can
// start over. A crash at any point replays what the index may lack.
func TestJournalDeferredIndexSync(t *testing.T) {
	e := newJournalEnv(t)
	j := e.open(t, true)
	if j.deferred == nil {
		t.Fatal("the SQLite index does not defer its syncs")
	}
	ctx := context.Background()
	state := func() (off, indexed, durable int64) {
		j.mu.Lock()
		defer j.mu.Unlock()
		return j.off, j.indexed, j.durable
	}
	appendBatches(t, j, 4)
	if err := j.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// The round's sync follows its commit.
	deadline := time.Now().Add(5 * time.Second)
	for {
		off, indexed, durable := state()
		if indexed == 4 && durable == 4 && off > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a small append and a round: offset %d, indexed %d, durable %d; want > 0, 4, 4", off, indexed, durable)
		}
		time.Sleep(time.Millisecond)
	}
	first, _, _ := state()
	appendBatches(t, j, 1) // everything before is synced: back to the top
	if off, _, _ := state(); off >= first {
		t.Fatalf("append after the index synced went at offset %d, after the %d bytes before it", off-first, first)
	}

	// Appends that outrun the index grow the journal past journalSyncAt.
	deadline = time.Now().Add(20 * time.Second)
	for off, _, _ := state(); off < journalSyncAt; off, _, _ = state() {
		appendBatches(t, j, 64)
		if time.Now().After(deadline) {
			t.Fatalf("journal never grew past journalSyncAt: offset %d", off)
		}
	}
	for {
		appendBatches(t, j, 1) // once the index has caught up and synced, the file starts over
		off, _, durable := state()
		if off < journalSyncAt/2 {
			if durable <= 5 {
				t.Fatalf("journal started over with the index synced to %d only", durable)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("journal never started over: offset %d, durable %d", off, durable)
		}
	}
	h, _ := j.Head(ctx)
	crash(t, j)
	j = e.open(t, true)
	defer j.Close()
	checkEvents(t, j, h.Size)
}

// failingSync is an index whose syncs fail while err is set.
type failingSync struct {
	deferredSync
	mu  sync.Mutex
	err error
}

func (f *failingSync) SyncIndex() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	return f.deferredSync.SyncIndex()
}

// TestJournalIndexSyncFailure: after a failed sync of the index (the one
// each index round ends with) nothing the index took since its last good
// sync is known to be on disk. Appends are refused until a restart, even
// once syncs succeed again, and the journal never starts over, so the
// restart replays those events.
func TestJournalIndexSyncFailure(t *testing.T) {
	e := newJournalEnv(t)
	j := e.openIdle(t, JournalOptions{})
	f := &failingSync{deferredSync: j.deferred, err: syscall.EIO}
	j.deferred = f
	go j.indexLoop()
	close(j.syncDone)
	ctx := context.Background()
	appendBatches(t, j, 3)
	if err := j.Flush(ctx); err != nil { // the round's sync follows, and fails
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		j.mu.Lock()
		broken := j.indexBroken != nil
		j.mu.Unlock()
		if broken {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the round's failed sync did not break the index")
		}
	}
	err := j.AppendEvents(ctx, []Record{jrec(3)}, jhead(4))
	if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "until the gateway restarts") {
		t.Fatalf("append after a failed index sync: err = %v, want EIO, refused until a restart", err)
	}
	f.mu.Lock()
	f.err = nil
	f.mu.Unlock()
	time.Sleep(journalRetry + 100*time.Millisecond) // the indexer's retry
	if err := j.AppendEvents(ctx, []Record{jrec(3)}, jhead(4)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("append once syncs succeed again: err = %v, want still refused", err)
	}
	j.mu.Lock()
	durable, off := j.durable, j.off
	j.mu.Unlock()
	if durable != 0 || off == 0 {
		t.Fatalf("after the failed sync: durable %d, offset %d; want 0 and the journal kept", durable, off)
	}
	crash(t, j)
	j = e.open(t, true)
	defer j.Close()
	checkEvents(t, j, 3)
	appendBatches(t, j, 1) // a restart takes appends again
	checkEvents(t, j, 4)
}
