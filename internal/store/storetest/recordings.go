package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

func recording(i int) store.Recording {
	return store.Recording{
		SessionID:  fmt.Sprintf("sess-%d", i),
		Principal:  []string{"ci-agent", "approver"}[i%2],
		Connection: []string{"shop", "ledger", "shop"}[i%3],
		Role:       "reader",
		Started:    t0.Add(time.Duration(i) * time.Minute),
	}
}

func chunk(id string, seq int64) store.Chunk {
	data := []byte(fmt.Sprintf("chunk %d of %s", seq, id))
	if seq == 2 {
		// As large as a real chunk: it spans many overflow pages.
		data = append(data, make([]byte, 300<<10)...)
		for i := range data {
			data[i] ^= byte(i * 131 >> 3)
		}
	}
	return store.Chunk{SessionID: id, Seq: seq, Time: t0.Add(time.Duration(seq) * time.Second), Data: data, SHA256: sha256.Sum256(data)}
}

func ids(rs []store.Recording) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.SessionID)
	}
	return out
}

func testRecordings(t *testing.T, db DB, open func() store.Store) {
	ctx := context.Background()
	s := open()
	if _, err := s.Recording(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Recording(unknown) err = %v, want ErrNotFound", err)
	}
	r := recording(1)
	if err := s.CreateRecording(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRecording(ctx, r); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second CreateRecording err = %v, want ErrExists", err)
	}
	if err := s.CreateRecording(ctx, store.Recording{}); err == nil {
		t.Fatal("CreateRecording without a session id succeeded")
	}
	for seq := int64(0); seq < 3; seq++ {
		if err := s.AppendChunk(ctx, chunk(r.SessionID, seq)); err != nil {
			t.Fatalf("AppendChunk %d: %v", seq, err)
		}
	}
	for name, c := range map[string]store.Chunk{
		"again":   chunk(r.SessionID, 1),
		"gap":     chunk(r.SessionID, 5),
		"unknown": chunk("nope", 0),
	} {
		if err := s.AppendChunk(ctx, c); err == nil {
			t.Errorf("AppendChunk %s: succeeded", name)
		}
	}
	if err := s.AppendChunk(ctx, chunk("nope", 0)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AppendChunk to an unknown recording: err = %v, want ErrNotFound", err)
	}
	got, err := s.Recording(ctx, r.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	want := r
	want.Chunks = 3
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Recording while running:\n got %+v\nwant %+v", got, want)
	}
	want.Ended, want.Bytes, want.Truncated = t0.Add(time.Hour), 12345, true
	if err := s.FinishRecording(ctx, want); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRecording(ctx, store.Recording{SessionID: "nope"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("FinishRecording(unknown) err = %v, want ErrNotFound", err)
	}
	if got, err = s.Recording(ctx, r.SessionID); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Recording after finish:\n got %+v, %v\nwant %+v", got, err, want)
	}
	all, err := s.Chunks(ctx, r.SessionID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("Chunks = %d, want 3", len(all))
	}
	for i, c := range all {
		if w := chunk(r.SessionID, int64(i)); !reflect.DeepEqual(c, w) {
			t.Errorf("chunk %d:\n got %+v\nwant %+v", i, c, w)
		}
	}
	page, err := s.Chunks(ctx, r.SessionID, 1, 1)
	if err != nil || len(page) != 1 || page[0].Seq != 1 {
		t.Errorf("Chunks(from 1, limit 1) = %+v, %v", page, err)
	}
	if none, err := s.Chunks(ctx, "nope", 0, 0); err != nil || len(none) != 0 {
		t.Errorf("Chunks(unknown) = %+v, %v; want none", none, err)
	}
}

func testRecordingQuery(t *testing.T, db DB, open func() store.Store) {
	ctx := context.Background()
	s := open()
	for i := range 6 {
		if err := s.CreateRecording(ctx, recording(i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		q    store.RecordingQuery
		want []string
	}{
		{"all, newest first", store.RecordingQuery{}, []string{"sess-5", "sess-4", "sess-3", "sess-2", "sess-1", "sess-0"}},
		{"limit", store.RecordingQuery{Limit: 2}, []string{"sess-5", "sess-4"}},
		{"principal", store.RecordingQuery{Principal: "approver"}, []string{"sess-5", "sess-3", "sess-1"}},
		{"connection", store.RecordingQuery{Connection: "ledger"}, []string{"sess-4", "sess-1"}},
		{"time", store.RecordingQuery{Since: t0.Add(2 * time.Minute), Until: t0.Add(4 * time.Minute)}, []string{"sess-3", "sess-2"}},
		{"nothing", store.RecordingQuery{Principal: "nobody"}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := s.Recordings(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(rs); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Recordings(%+v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}

func testDeleteRecordings(t *testing.T, db DB, open func() store.Store) {
	ctx := context.Background()
	s := open()
	// ended long ago; ended recently; running with a recent chunk; running
	// and silent since it started long ago.
	old, recent, busy, stale := recording(0), recording(1), recording(2), recording(3)
	old.Ended = t0.Add(time.Hour)
	recent.Ended = t0.Add(30 * 24 * time.Hour)
	for _, r := range []store.Recording{old, recent, busy, stale} {
		if err := s.CreateRecording(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FinishRecording(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRecording(ctx, recent); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{old.SessionID, busy.SessionID} {
		if err := s.AppendChunk(ctx, chunk(id, 0)); err != nil {
			t.Fatal(err)
		}
	}
	c := chunk(busy.SessionID, 1)
	c.Time = t0.Add(40 * 24 * time.Hour)
	if err := s.AppendChunk(ctx, c); err != nil {
		t.Fatal(err)
	}
	gone, err := s.DeleteRecordings(ctx, t0.Add(7*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{old.SessionID, stale.SessionID}; !reflect.DeepEqual(sortedCopy(gone), want) {
		t.Errorf("DeleteRecordings = %v, want %v", gone, want)
	}
	left, err := s.Recordings(ctx, store.RecordingQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(left), []string{busy.SessionID, recent.SessionID}; !reflect.DeepEqual(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
	if cs, err := s.Chunks(ctx, old.SessionID, 0, 0); err != nil || len(cs) != 0 {
		t.Errorf("chunks of a deleted recording: %d, %v", len(cs), err)
	}
	if gone, err := s.DeleteRecordings(ctx, t0.Add(7*24*time.Hour)); err != nil || len(gone) != 0 {
		t.Errorf("second DeleteRecordings = %v, %v; want nothing", gone, err)
	}
}

func sortedCopy(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}

// testChunksAppendOnly checks that the schema refuses to rewrite a chunk
// through an ordinary connection.
func testChunksAppendOnly(t *testing.T, db DB, open func() store.Store) {
	ctx := context.Background()
	s := open()
	r := recording(0)
	if err := s.CreateRecording(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendChunk(ctx, chunk(r.SessionID, 0)); err != nil {
		t.Fatal(err)
	}
	if err := db.Exec(`UPDATE recording_chunks SET data = data WHERE seq = 0`); err == nil {
		t.Error("UPDATE recording_chunks succeeded")
	}
}
