package audit

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/gatehouse/gatehouse/internal/store"
)

// PruneResult says what Prune deleted, or PlanPrune would delete: the
// events with index in [From, Below). From == Below when there is nothing
// to prune.
type PruneResult struct {
	From, Below int64
	// Checkpoint is the signed checkpoint of size Below that bridges the
	// pruned prefix; zero when nothing is pruned.
	Checkpoint store.Checkpoint
	// Root is the tree hash at Below, the checkpoint's root.
	Root tlog.Hash
	// Newest is the time of the last pruned event (index Below-1).
	Newest time.Time
	// HeldBack is set when events old enough to prune, and covered by a
	// checkpoint, were kept because they lie at or past the limit (an
	// export sink has not accepted them yet).
	HeldBack bool

	head store.Head // the compact range at Below
}

// Events is how many events the prune removes.
func (r PruneResult) Events() int64 { return r.Below - r.From }

// NoPruneLimit is the limit of a prune that nothing holds back.
const NoPruneLimit int64 = math.MaxInt64

// ExportHold returns the lowest export cursor of the sinks names: the index
// of the first event one of them has not accepted, which retention must
// keep so that the sink still gets it. sink names that sink; limit is
// NoPruneLimit when names is empty.
func ExportHold(ctx context.Context, st store.ExportCursors, names []string) (limit int64, sink string, err error) {
	limit = NoPruneLimit
	for _, name := range names {
		pos, err := st.ExportCursor(ctx, name)
		if err != nil {
			return 0, "", fmt.Errorf("audit: export cursor of %s: %w", name, err)
		}
		if pos < limit {
			limit, sink = pos, name
		}
	}
	return limit, sink, nil
}

// PlanPrune works out what Prune would delete for before, changing
// nothing. It picks the largest signed checkpoint (one that verifies with
// verifiers) of size S beyond the current start of the log such that event
// S-1, and so every event before it, is older than before, and S is at
// most limit (ExportHold; NoPruneLimit for none). It then recomputes the
// tree from the log's start to S and refuses with an error if the events
// there do not hash to that checkpoint's root: pruning must never erase
// the evidence of tampering.
func PlanPrune(ctx context.Context, st store.Store, verifiers note.Verifiers, before time.Time, limit int64) (PruneResult, error) {
	if verifiers == nil {
		return PruneResult{}, errors.New("audit: prune: no checkpoint verifier")
	}
	var start store.Head
	prunes, err := st.Prunes(ctx)
	if err != nil {
		return PruneResult{}, fmt.Errorf("audit: prune: %w", err)
	}
	for _, p := range prunes {
		if p.Head.Size > start.Size {
			start = p.Head
		}
	}
	if err := checkHead(start); err != nil {
		return PruneResult{}, fmt.Errorf("audit: prune: stored prune marker: %w", err)
	}
	res := PruneResult{From: start.Size, Below: start.Size}
	h, err := st.Head(ctx)
	if err != nil {
		return PruneResult{}, fmt.Errorf("audit: prune: %w", err)
	}
	cps, err := st.Checkpoints(ctx)
	if err != nil {
		return PruneResult{}, fmt.Errorf("audit: prune: %w", err)
	}
	// Candidates: signed checkpoints past the start, one per size.
	type cand struct {
		c  store.Checkpoint
		th TreeHead
	}
	var cands []cand
	for _, c := range cps {
		if c.Size <= start.Size || c.Size > h.Size {
			continue
		}
		th, err := OpenCheckpoint(c.Note, verifiers)
		if err != nil || th.Size != c.Size {
			continue // Verify reports it; it cannot bridge
		}
		if n := len(cands); n > 0 && cands[n-1].c.Size == c.Size {
			continue
		}
		cands = append(cands, cand{c, th})
	}
	// Event times never go back as the index grows, so "event S-1 is older
	// than before" holds for a prefix of the candidates.
	var readErr error
	newest := map[int64]time.Time{}
	i := sort.Search(len(cands), func(i int) bool {
		if readErr != nil {
			return true
		}
		idx := cands[i].c.Size - 1
		recs, err := st.Events(ctx, store.Query{From: idx, Limit: 1})
		if err != nil {
			readErr = err
			return true
		}
		if len(recs) == 0 || recs[0].Index != idx {
			readErr = fmt.Errorf("event %d is missing: run gatehouse audit verify", idx)
			return true
		}
		newest[idx] = recs[0].Time
		return !recs[0].Time.Before(before)
	})
	if readErr != nil {
		return PruneResult{}, fmt.Errorf("audit: prune: %w", readErr)
	}
	// cands[:i] are old enough; the limit may keep the latest of them.
	j := i
	for j > 0 && cands[j-1].c.Size > limit {
		j--
	}
	res.HeldBack = j < i
	if j == 0 {
		return res, nil
	}
	target := cands[j-1]
	// Rebuild the tree from the start to the target; every event must be
	// there and hash to its leaf.
	head := ownHead(start, target.c.Size-start.Size)
	for head.Size < target.c.Size {
		recs, err := st.Events(ctx, store.Query{From: head.Size, To: target.c.Size, Limit: verifyPage})
		if err != nil {
			return PruneResult{}, fmt.Errorf("audit: prune: %w", err)
		}
		if len(recs) == 0 {
			return PruneResult{}, fmt.Errorf("audit: prune: event %d is missing: run gatehouse audit verify", head.Size)
		}
		for _, r := range recs {
			if r.Index != head.Size {
				return PruneResult{}, fmt.Errorf("audit: prune: event %d is missing: run gatehouse audit verify", head.Size)
			}
			leaf := tlog.RecordHash(r.Data)
			if leaf != r.Hash {
				return PruneResult{}, fmt.Errorf("audit: prune: event %d does not match its leaf hash: run gatehouse audit verify", r.Index)
			}
			extend(&head, leaf)
		}
	}
	if root := rootHash(head); root != target.th.Root {
		return PruneResult{}, fmt.Errorf("audit: prune: events before %d do not match their signed checkpoint: run gatehouse audit verify", target.c.Size)
	}
	res.Below, res.Checkpoint, res.Root, res.head = target.c.Size, target.c, target.th.Root, head
	res.Newest = newest[target.c.Size-1]
	return res, nil
}

// Prune deletes the events older than before that a signed checkpoint
// covers, up to limit (see PlanPrune), keeping in the store the compact range of the
// tree at the prune point and the checkpoint that signs it, so that Verify
// goes on from there. An audit.pruned event saying what goes and which
// checkpoint bridges it is made durable first: a prune marker without one
// is a Verify finding. Prune is for retention (PCI DSS 10.5.1); run it no
// more often than needed, since every prune reads the events it removes.
func (l *Log) Prune(ctx context.Context, verifiers note.Verifiers, before time.Time, limit int64) (PruneResult, error) {
	res, err := PlanPrune(ctx, l.store, verifiers, before, limit)
	if err != nil || res.Events() == 0 {
		return res, err
	}
	ev := Event{
		Kind:   KindAuditPruned,
		Reason: "retention",
		Extra: map[string]any{
			"from":            res.From,
			"below":           res.Below,
			"before":          before.UTC().Format(time.RFC3339Nano),
			"newest_pruned":   res.Newest.UTC().Format(time.RFC3339Nano),
			"checkpoint_size": res.Checkpoint.Size,
			"checkpoint_root": base64.StdEncoding.EncodeToString(res.Root[:]),
		},
	}
	if _, err := l.Append(ctx, ev); err != nil {
		return PruneResult{}, fmt.Errorf("audit: prune: %w", err)
	}
	p := store.Prune{After: res.From, Head: res.head, Checkpoint: res.Checkpoint.Note, Time: l.clock().UTC()}
	if err := l.store.PruneEvents(ctx, p); err != nil {
		return PruneResult{}, fmt.Errorf("audit: prune: %w", err)
	}
	l.logger.Info("audit log pruned", "from", res.From, "below", res.Below, "newest_pruned", res.Newest)
	return res, nil
}
