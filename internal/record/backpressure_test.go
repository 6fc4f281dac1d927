package record_test

import (
	"context"
	"crypto/rand"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/record"
	"github.com/gatehouse/gatehouse/internal/store"
)

// stallingStore holds every AppendChunk until release is closed, as a slow
// disk holds a commit's fsync.
type stallingStore struct {
	store.Store
	entered chan struct{} // receives once per AppendChunk call
	release chan struct{}
}

func (s *stallingStore) AppendChunk(ctx context.Context, c store.Chunk) error {
	s.entered <- struct{}{}
	<-s.release
	return s.Store.AppendChunk(ctx, c)
}

// A slow store write must not hold up the relay while the pipeline has
// room (one chunk being stored, two queued, one being filled), and must
// hold it up once it has none, so that a session's memory stays bounded.
func TestSlowStoreBackPressure(t *testing.T) {
	ctx := context.Background()
	st := &stallingStore{Store: sqlite(t), entered: make(chan struct{}, 100), release: make(chan struct{})}
	r, err := record.New(ctx, st, "slow", meta, record.Options{ChunkBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	// One row per chunk: two do not fit in 1024 bytes.
	value := make([]byte, 600)
	rand.Read(value)
	const rows = 20
	var done atomic.Int64
	finished := make(chan error, 1)
	go func() {
		for range rows {
			if err := r.Row(time.Now(), [][]byte{value}); err != nil {
				finished <- err
				return
			}
			done.Add(1)
		}
		finished <- nil
	}()
	<-st.entered // the first chunk is stuck in the store
	// Let the relay go as far as it can, then check that it stopped.
	var stuckAt int64
	for deadline := time.Now().Add(10 * time.Second); ; {
		before := done.Load()
		time.Sleep(300 * time.Millisecond)
		if stuckAt = done.Load(); stuckAt == before && stuckAt >= 4 || time.Now().After(deadline) {
			break
		}
	}
	// Rows 2 to 4 each hand the previous chunk over without waiting (to
	// the store, then to the queue); the fifth has nowhere to put chunk 3.
	if stuckAt != 4 {
		t.Fatalf("with the store stalled the relay recorded %d rows before waiting, want 4", stuckAt)
	}
	close(st.release)
	if err := <-finished; err != nil {
		t.Fatal(err)
	}
	sum, err := r.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Chunks != rows || len(sum.SHA256) != rows {
		t.Fatalf("stored %d chunks (%d digests), want %d", sum.Chunks, len(sum.SHA256), rows)
	}
	chunks, err := st.Chunks(ctx, "slow", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range chunks {
		if c.Seq != int64(i) || record.Hash(c.SHA256) != sum.SHA256[i] {
			t.Fatalf("chunk %d: seq %d, digest %x; want in order with the summary's digests", i, c.Seq, c.SHA256)
		}
	}
}

// slowCreateStore holds CreateRecording until release is closed.
type slowCreateStore struct {
	store.Store
	release chan struct{}
}

func (s *slowCreateStore) CreateRecording(ctx context.Context, r store.Recording) error {
	<-s.release
	return s.Store.CreateRecording(ctx, r)
}

// With CreateAsync, New does not wait for the recording's row: the relay
// records at once, chunks wait for the row, and what was recorded
// meanwhile is all stored. A row that cannot be created fails the
// recorder: the calls after it and Close report it.
func TestCreateAsync(t *testing.T) {
	ctx := context.Background()
	st := &slowCreateStore{Store: sqlite(t), release: make(chan struct{})}
	r, err := record.New(ctx, st, "async", meta, record.Options{ChunkBytes: 1024, CreateAsync: true})
	if err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 600) // a chunk per row
	rand.Read(value)
	for range 2 { // both fit in the pipeline while the row waits
		if err := r.Row(time.Now(), [][]byte{value}); err != nil {
			t.Fatal(err)
		}
	}
	if cs, _ := st.Store.Chunks(ctx, "async", 0, 10); len(cs) != 0 {
		t.Fatalf("%d chunks stored before the recording's row was created", len(cs))
	}
	close(st.release)
	for range 3 {
		if err := r.Row(time.Now(), [][]byte{value}); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := r.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := record.Open(ctx, st.Store, "async")
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for e, err := range rd.Entries(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Type == record.EntryRow {
			rows++
		}
	}
	if p := rd.Problems(); len(p) != 0 || rows != 5 || sum.Chunks < 5 {
		t.Fatalf("read %d rows back from %d chunks (problems %v), want 5", rows, sum.Chunks, p)
	}

	// The same session again: its row exists, so creating it fails.
	r, err = record.New(ctx, st.Store, "async", meta, record.Options{CreateAsync: true})
	if err != nil {
		t.Fatalf("New with CreateAsync waited for the row: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for err == nil && time.Now().Before(deadline) {
		err = r.Row(time.Now(), [][]byte{value})
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("Row after a failed creation: %v, want ErrExists", err)
	}
	if _, err := r.Close(ctx); !errors.Is(err, store.ErrExists) {
		t.Fatalf("Close after a failed creation: %v, want ErrExists", err)
	}
}
