package audit

import (
	"fmt"
	"slices"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/gatehouse/gatehouse/internal/store"
)

// TestExtendBatches extends heads of every shape up to 300 leaves by
// batches of 1 to 70 leaves, as Log.commit does, and checks the root
// against tlog's, that the head extended from is untouched, and that
// ownHead left room for the whole batch.
func TestExtendBatches(t *testing.T) {
	var recs []store.Record
	for i := range 300 {
		recs = append(recs, store.Record{Data: fmt.Appendf(nil, `{"n":%d}`, i)})
	}
	// heads[n] is the head of the first n leaves.
	heads := []store.Head{{}}
	for i, r := range recs {
		h := ownHead(heads[i], 1)
		extend(&h, tlog.RecordHash(r.Data))
		heads = append(heads, h)
	}
	for _, n := range []int{1, 2, 7, 64, 255, 300} {
		if got, want := rootHash(heads[n]), ReferenceRoot(t, recs[:n]); got != want {
			t.Fatalf("root of %d leaves %x, tlog's %x", n, got, want)
		}
	}
	for start := range len(recs) {
		for _, k := range []int{1, 2, 3, 5, 31, 70} {
			if start+k > len(recs) {
				continue
			}
			from := heads[start]
			before := slices.Clone(from.Hashes)
			// Spare capacity in the head extended from is where aliasing
			// would show: give it some.
			from.Hashes = append(make([]tlog.Hash, 0, len(before)+8), before...)
			h := ownHead(from, int64(k))
			c := cap(h.Hashes)
			for _, r := range recs[start : start+k] {
				extend(&h, tlog.RecordHash(r.Data))
			}
			if cap(h.Hashes) != c {
				t.Errorf("%d + %d leaves: hashes grew from capacity %d to %d", start, k, c, cap(h.Hashes))
			}
			if want := heads[start+k]; h.Size != want.Size || !slices.Equal(h.Hashes, want.Hashes) {
				t.Fatalf("%d + %d leaves: head %d/%x, want %d/%x", start, k, h.Size, h.Hashes, want.Size, want.Hashes)
			}
			if !slices.Equal(from.Hashes, before) || !slices.Equal(from.Hashes[:len(before)+1][len(before):], make([]tlog.Hash, 1)) {
				t.Fatalf("%d + %d leaves: the head extended from was changed", start, k)
			}
		}
	}
}

// ReferenceRoot is the tree hash of recs computed the reference way, with
// tlog's stored hashes, to check the log's own compact-range arithmetic.
// Exported for the external tests (audit_test).
func ReferenceRoot(t *testing.T, recs []store.Record) tlog.Hash {
	var hashes []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	for i, rec := range recs {
		hs, err := tlog.StoredHashes(int64(i), rec.Data, r)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, hs...)
	}
	root, err := tlog.TreeHash(int64(len(recs)), r)
	if err != nil {
		t.Fatal(err)
	}
	return root
}
