package record_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/record"
	"github.com/gatehouse/gatehouse/internal/store"
)

// A session is recorded as it runs, then read back, verified and replayed
// as a transcript.
func ExampleReplay() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "record-example-")
	defer os.RemoveAll(dir)
	st, _ := store.OpenSQLite(filepath.Join(dir, "gatehouse.db"))
	defer st.Close()

	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	rec, _ := record.New(ctx, st, "s1", record.Meta{
		Principal: "ci-agent", Connection: "shop", Role: "reader", Started: t0,
	}, record.Options{Now: func() time.Time { return ms(50) }})

	// What the proxy passes, already masked.
	rec.Client(ms(1), "query", "SELECT id, pan FROM payments", nil)
	rec.Columns(ms(2), []string{"id", "pan"})
	rec.Row(ms(2), [][]byte{[]byte("1"), []byte("411111******1111")})
	rec.Row(ms(2), [][]byte{[]byte("2"), nil})
	rec.Result(ms(3), "SELECT 2")
	rec.Client(ms(10), "query", "DELETE FROM payments", nil)
	rec.Error(ms(11), "42501", `denied by rule "payments-no-delete"`)
	sum, _ := rec.Close(ctx) // sum goes into the session.end audit event

	rd, _ := record.Open(ctx, st, "s1")
	rd.Expect(sum)
	record.Replay(os.Stdout, rd.Entries(ctx), record.ReplayOptions{Null: "(null)"})
	// Output:
	// -- ci-agent as reader on shop
	// -- 2025-01-02 UTC
	// [03:04:05.000] connected
	// [03:04:05.001] => SELECT id, pan FROM payments
	//  id |       pan
	// ----+------------------
	//  1  | 411111******1111
	//  2  | (null)
	// [03:04:05.003] SELECT 2
	// [03:04:05.010] => DELETE FROM payments
	// [03:04:05.011] ERROR: 42501: denied by rule "payments-no-delete"
	// [03:04:05.050] disconnected
}

// The bytes of a chunk, decompressed: the header and one entry per line,
// as the package doc lays them out.
func Example_chunk() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "record-example-")
	defer os.RemoveAll(dir)
	st, _ := store.OpenSQLite(filepath.Join(dir, "gatehouse.db"))
	defer st.Close()

	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	rec, _ := record.New(ctx, st, "s1", record.Meta{Started: t0}, record.Options{Now: func() time.Time { return t0 }})
	rec.Client(t0, "query", "SELECT 1", nil)
	rec.Close(ctx)

	chunks, _ := st.Chunks(ctx, "s1", 0, 0)
	zr, _ := gzip.NewReader(bytes.NewReader(chunks[0].Data))
	raw, _ := io.ReadAll(zr)
	for _, n := range []int{18, 8, 18, 4} {
		fmt.Printf("% x\n", raw[:n])
		raw = raw[n:]
	}
	fmt.Println(len(raw), "bytes left")
	// Output:
	// 47 48 52 43 01 02 73 31 00 80 c8 99 ef dd c7 e0 96 30
	// 4d 00 00 00 00 00 00 00
	// 51 00 05 71 75 65 72 79 08 53 45 4c 45 43 54 20 31 00
	// 5a 00 00 00
	// 0 bytes left
}

// BenchmarkRow is the hot path: one 4-column row per op. Chunks are
// compressed and stored (SQLite) in the background as they fill.
func BenchmarkRow(b *testing.B) {
	ctx := context.Background()
	st, err := store.OpenSQLite(filepath.Join(b.TempDir(), "gatehouse.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	r, err := record.New(ctx, st, "bench", record.Meta{}, record.Options{MaxBytes: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	row := [][]byte{[]byte("12345"), []byte("411111******1111"), nil, []byte("2025-01-02 03:04:05")}
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(row[0]) + len(row[1]) + len(row[3])))
	for b.Loop() {
		if err := r.Row(now, row); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if _, err := r.Close(ctx); err != nil {
		b.Fatal(err)
	}
}
