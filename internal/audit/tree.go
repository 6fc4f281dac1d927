package audit

import (
	"fmt"
	"math/bits"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/gatehouse/gatehouse/internal/store"
)

// The Merkle tree is RFC 6962's, as golang.org/x/mod/sumdb/tlog computes it:
// leaf hash SHA-256(0x00 || data) (tlog.RecordHash), interior node
// SHA-256(0x01 || left || right) (tlog.NodeHash). Gatehouse never needs old
// interior nodes, only the end of the tree: the roots of its complete
// subtrees, one per set bit of the size, largest first (a "compact range").
// The head row in the store keeps exactly that, so any writer can extend the
// tree and any reader can compute the root without reading old leaves.

// extend appends the leaf hash to h in place. It writes past h.Hashes'
// length, so h must own its array (ownHead): extending a copy of a shared
// head would overwrite the other holder's spare capacity.
func extend(h *store.Head, leaf tlog.Hash) {
	hashes := append(h.Hashes, leaf)
	// Each trailing one bit of the old size is a complete subtree of the
	// same height as the one the new leaf completes: merge them.
	for n := h.Size; n&1 == 1; n >>= 1 {
		l := len(hashes)
		hashes = append(hashes[:l-2], tlog.NodeHash(hashes[l-2], hashes[l-1]))
	}
	h.Size++
	h.Hashes = hashes
}

// ownHead returns a copy of h with an array of its own, with room to be
// extended by leaves leaves without growing: one allocation per batch
// instead of one per leaf (a 20-hash head is 640 bytes).
func ownHead(h store.Head, leaves int64) store.Head {
	// Before the j-th leaf merges, the hashes number popcount(size+j)+1
	// <= len + popcount(j)+1 <= len + bits.Len(leaves), for j < leaves.
	hashes := make([]tlog.Hash, len(h.Hashes), len(h.Hashes)+bits.Len64(uint64(max(leaves, 0))))
	copy(hashes, h.Hashes)
	return store.Head{Size: h.Size, Hashes: hashes}
}

// rootHash returns the tree hash of h: the subtree roots folded right to
// left, which is RFC 6962's MTH for a tree of h.Size leaves.
func rootHash(h store.Head) tlog.Hash {
	if len(h.Hashes) == 0 {
		return tlog.Hash{}
	}
	root := h.Hashes[len(h.Hashes)-1]
	for i := len(h.Hashes) - 2; i >= 0; i-- {
		root = tlog.NodeHash(h.Hashes[i], root)
	}
	return root
}

// checkHead reports whether h is shaped like a compact range of its size.
func checkHead(h store.Head) error {
	if h.Size < 0 || len(h.Hashes) != bits.OnesCount64(uint64(h.Size)) {
		return fmt.Errorf("audit: head of size %d has %d subtree hashes", h.Size, len(h.Hashes))
	}
	return nil
}
