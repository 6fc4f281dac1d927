package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"math/bits"
	"reflect"
	"slices"
	"sort"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/gatehouse/gatehouse/internal/store"
)

// FindingKind classifies a Verify finding.
type FindingKind string

// The kinds of finding.
const (
	// FindingAltered: the event's bytes do not hash to its stored leaf hash,
	// or are not a valid event.
	FindingAltered FindingKind = "altered"
	// FindingMissing: an index is absent (an event was deleted).
	FindingMissing FindingKind = "missing"
	// FindingTimeOrder: the event is newer than the one after it (events
	// moved or swapped). The stores refuse appends out of time order, and
	// replicas re-stamp; only events a PostgreSQL store took before it kept
	// time order (0007_audit_time_order.sql) may have it from clock skew.
	FindingTimeOrder FindingKind = "time-order"
	// FindingColumns: the stored search columns disagree with the event
	// bytes (someone edited them to hide the event from queries).
	FindingColumns FindingKind = "columns"
	// FindingRootMismatch: a signed checkpoint's root differs from the tree
	// rebuilt from the stored events: events at or after Index, and before
	// the checkpoint's size, were altered, removed, inserted or reordered.
	FindingRootMismatch FindingKind = "root-mismatch"
	// FindingTruncated: the log is shorter than a checkpoint (or its head
	// row) says: events from Index on were removed.
	FindingTruncated FindingKind = "truncated"
	// FindingBadCheckpoint: a checkpoint's signature does not verify or
	// its body is malformed. Index is -1.
	FindingBadCheckpoint FindingKind = "bad-checkpoint"
	// FindingHead: the head row disagrees with the events.
	FindingHead FindingKind = "head"
	// FindingPrune: a retention prune marker is not what Prune records: its
	// bridging checkpoint does not verify or is of another size, its stored
	// tree hashes do not fold to that checkpoint's root, markers go
	// backwards, or no audit.pruned event announces it. Index is the
	// marker's (the first index it says remains).
	FindingPrune FindingKind = "prune"
)

// Finding is one problem Verify found.
type Finding struct {
	Kind    FindingKind `json:"kind"`
	Index   int64       `json:"index"` // the first event index concerned, -1 if none
	Message string      `json:"message"`
}

// Report is the result of Verify.
type Report struct {
	TreeSize            int64     // events read
	Root                tlog.Hash // root of the tree rebuilt from them
	Checkpoints         int       // checkpoints stored
	VerifiedCheckpoints int       // of which signature and root check out
	LatestVerified      int64     // size of the largest verified checkpoint
	Findings            []Finding // sorted by index
	FirstBad            int64     // smallest finding index, -1 if none
	Unsigned            int64     // events after the last verified checkpoint: intact as far as hashes show, but not yet covered by a signature
	PrunedBelow         int64     // events before this index were pruned for retention (0 if none); the tree is rebuilt from the marker's stored hashes
}

// OK reports whether Verify found nothing wrong.
func (r *Report) OK() bool { return len(r.Findings) == 0 }

// verifyPage is how many events Verify reads at a time: memory stays bounded
// whatever the log's size.
const verifyPage = 2000

// Verify checks the whole log in st: it recomputes every leaf hash from the
// stored event bytes, rebuilds the Merkle tree, checks every checkpoint's
// signature with verifiers and that its root equals the rebuilt tree's root
// at its size (which also proves each checkpoint consistent with every other
// one), and checks indexes, time order, search columns and the head row. It
// returns an error only when it cannot read the store; problems in the log
// are Findings.
//
// When the log was pruned (Log.Prune), the rebuild starts from the newest
// prune marker's stored tree hashes instead of the first leaf, after
// checking that they fold to the root of the marker's checkpoint, whose
// signature must verify; checkpoints smaller than the marker are no longer
// checked against events. Every marker must be announced by an
// audit.pruned event at or after it.
func Verify(ctx context.Context, st store.Store, verifiers note.Verifiers) (*Report, error) {
	rep := &Report{FirstBad: -1}
	cps, err := st.Checkpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: verify: %w", err)
	}
	rep.Checkpoints = len(cps)
	// Checkpoints that verify, by size, to compare as the tree passes them.
	want := map[int64][]TreeHead{}
	var sizes []int64
	for _, c := range cps {
		th, err := OpenCheckpoint(c.Note, verifiers)
		if err != nil {
			rep.add(FindingBadCheckpoint, -1, fmt.Sprintf("checkpoint of size %d: %v", c.Size, err))
			continue
		}
		if th.Size != c.Size {
			rep.add(FindingBadCheckpoint, -1, fmt.Sprintf("checkpoint row says size %d, signed note says %d", c.Size, th.Size))
			continue
		}
		if len(want[th.Size]) == 0 {
			sizes = append(sizes, th.Size)
		}
		want[th.Size] = append(want[th.Size], th)
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })

	var (
		head     store.Head
		prevTime int64 = -1 << 63
		next     int64 // the index expected next
		good     int64 // size of the last checkpoint that matched
		si       int   // next entry of sizes to check
	)
	prunes, err := st.Prunes(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: verify: %w", err)
	}
	if start, ok := checkPrunes(rep, prunes, verifiers); start.Size > 0 {
		head, next = ownHead(start, 0), start.Size // grows as it goes
		rep.PrunedBelow = start.Size
		if ok {
			good = start.Size
		}
		for si < len(sizes) && sizes[si] < start.Size {
			si++ // their events are gone
		}
	}
	announced := map[int64]int64{} // audit.pruned events: below → from
	// blame returns the first index in [lo, hi) that an event-level finding
	// already names, or lo: a root mismatch explained by an altered or
	// missing event should point at that event, not at the range.
	blame := func(lo, hi int64) int64 {
		first := hi
		for _, f := range rep.Findings {
			if f.Index >= lo && f.Index < first && f.Kind != FindingRootMismatch {
				first = f.Index
			}
		}
		if first == hi {
			return lo
		}
		return first
	}
	check := func() {
		for si < len(sizes) && sizes[si] == head.Size {
			root := rootHash(head)
			for _, th := range want[head.Size] {
				if th.Root == root {
					rep.VerifiedCheckpoints++
					good = head.Size
				} else {
					rep.add(FindingRootMismatch, blame(good, next), fmt.Sprintf(
						"checkpoint of size %d (%s) does not match the stored events: something in [%d, %d) changed",
						th.Size, th.Origin, good, th.Size))
				}
			}
			si++
		}
	}
	check() // a checkpoint at the prune marker
	var (
		sh     store.Head // the head row, read once the events are
		headed bool       // sh was read before the last page was
	)
	for {
		recs, err := st.Events(ctx, store.Query{From: next, Limit: verifyPage})
		if err != nil {
			return nil, fmt.Errorf("audit: verify: %w", err)
		}
		for _, r := range recs {
			if r.Index != next {
				// Deleted events: the tree is rebuilt from what remains,
				// so every later checkpoint will also disagree.
				rep.add(FindingMissing, next, fmt.Sprintf("events %d to %d are missing", next, r.Index-1))
			}
			next = r.Index + 1
			leaf := tlog.RecordHash(r.Data)
			if leaf != r.Hash {
				rep.add(FindingAltered, r.Index, fmt.Sprintf("event %d does not match its leaf hash", r.Index))
			} else if ev, err := ParseEvent(r.Data); err != nil {
				rep.add(FindingAltered, r.Index, fmt.Sprintf("event %d is not a valid event: %v", r.Index, err))
			} else {
				if err := sameColumns(&ev, r); err != nil {
					rep.add(FindingColumns, r.Index, fmt.Sprintf("event %d: %v", r.Index, err))
				}
				// The event itself is the evidence; the time column is a copy.
				// Blame the earlier event: when two events swap places, the
				// first one out of order is the first that moved.
				t := ev.Time.UnixNano()
				if t < prevTime {
					rep.add(FindingTimeOrder, r.Index-1, fmt.Sprintf("event %d is newer than event %d after it", r.Index-1, r.Index))
				}
				prevTime = t
				if ev.Kind == KindAuditPruned {
					b, ok1 := extraInt(ev.Extra["below"])
					from, ok2 := extraInt(ev.Extra["from"])
					if ok1 && ok2 {
						announced[b] = from
					}
				}
			}
			extend(&head, leaf)
			check()
		}
		if len(recs) < verifyPage {
			// A head row ahead of the events is a log that grew while they
			// were read (a live gateway appends during a verify): read on.
			// The store writes an event and the head row that counts it
			// together, so when nothing comes after a head row read first,
			// the events it counts are gone: the log's tail is missing.
			if len(recs) == 0 && headed {
				break
			}
			if sh, err = st.Head(ctx); err != nil {
				return nil, fmt.Errorf("audit: verify: %w", err)
			}
			if sh.Size <= next {
				break
			}
			headed = true
		}
	}
	rep.TreeSize = head.Size
	rep.Root = rootHash(head)
	// The newest marker's audit.pruned event follows it, and names the
	// marker before it: the chain of prunes is on the record. (Older
	// markers' events may themselves have been pruned since.)
	if n := len(prunes); n > 0 {
		last, prev := prunes[n-1].Head.Size, int64(0)
		if n > 1 {
			prev = prunes[n-2].Head.Size
		}
		if from, ok := announced[last]; !ok {
			rep.add(FindingPrune, last, fmt.Sprintf(
				"events before %d were pruned but no audit.pruned event records it", last))
		} else if from != prev {
			rep.add(FindingPrune, last, fmt.Sprintf(
				"the audit.pruned event for %d says the log started at %d, the markers say %d", last, from, prev))
		}
	}
	// Checkpoints the rebuilt tree never reached: the log is shorter than
	// they say, by a cut tail or by events removed from the middle.
	for ; si < len(sizes); si++ {
		if next < sizes[si] {
			rep.add(FindingTruncated, next, fmt.Sprintf(
				"log ends at index %d but a signed checkpoint covers %d events", next, sizes[si]))
			break
		}
		rep.add(FindingRootMismatch, blame(good, next), fmt.Sprintf(
			"checkpoint of size %d cannot match: only %d events remain", sizes[si], head.Size))
	}
	if good > 0 {
		rep.LatestVerified = good
	}
	rep.Unsigned = head.Size - good
	switch {
	case sh.Size > next:
		rep.add(FindingTruncated, next, fmt.Sprintf("log ends at %d events but its head row says %d", next, sh.Size))
	case sh.Size < next:
		rep.add(FindingHead, sh.Size, fmt.Sprintf("head row says %d events, the log has %d", sh.Size, next))
	case !reflect.DeepEqual(sh.Hashes, head.Hashes) && !(len(sh.Hashes) == 0 && len(head.Hashes) == 0):
		rep.add(FindingHead, -1, "head row's tree hashes do not match the stored events")
	}
	sort.SliceStable(rep.Findings, func(i, j int) bool { return rep.Findings[i].Index < rep.Findings[j].Index })
	for _, f := range rep.Findings {
		if f.Index >= 0 && (rep.FirstBad < 0 || f.Index < rep.FirstBad) {
			rep.FirstBad = f.Index
		}
	}
	return rep, nil
}

func (r *Report) add(kind FindingKind, index int64, msg string) {
	r.Findings = append(r.Findings, Finding{Kind: kind, Index: index, Message: msg})
}

// sameColumns checks the record's search columns against its event.
func sameColumns(ev *Event, r store.Record) error {
	w := record(ev, r.Data)
	switch {
	case !w.Time.Equal(r.Time):
		return fmt.Errorf("time column %v, event says %v", r.Time, w.Time)
	case w.Kind != r.Kind, w.SessionID != r.SessionID, w.Principal != r.Principal,
		w.Connection != r.Connection, w.Decision != r.Decision, w.Outcome != r.Outcome:
		return fmt.Errorf("search columns %q, event says %q",
			[]string{r.Kind, r.SessionID, r.Principal, r.Connection, r.Decision, r.Outcome},
			[]string{w.Kind, w.SessionID, w.Principal, w.Connection, w.Decision, w.Outcome})
	case !slices.Equal(w.Tables, r.Tables):
		return fmt.Errorf("tables %q, event says %q", r.Tables, w.Tables)
	}
	return nil
}

// checkPrunes checks the retention markers and returns the compact range
// the rebuild starts from (the newest marker's; empty if none) and whether
// it is bridged by a verified checkpoint.
func checkPrunes(rep *Report, prunes []store.Prune, verifiers note.Verifiers) (store.Head, bool) {
	var (
		start store.Head
		ok    bool
	)
	for i, p := range prunes {
		b := p.Head.Size
		if b <= start.Size {
			rep.add(FindingPrune, b, fmt.Sprintf("prune marker %d (below %d) follows one below %d: markers only move forward", i, b, start.Size))
			continue
		}
		start, ok = p.Head, false
		if err := checkHead(p.Head); err != nil {
			rep.add(FindingPrune, b, fmt.Sprintf("prune marker below %d: stored tree hashes are malformed: %v", b, err))
			// Go on from a range of the right shape, so later checkpoints
			// are still compared (and fail).
			start = store.Head{Size: b, Hashes: make([]tlog.Hash, bits.OnesCount64(uint64(b)))}
			continue
		}
		th, err := OpenCheckpoint(p.Checkpoint, verifiers)
		switch {
		case err != nil:
			rep.add(FindingPrune, b, fmt.Sprintf("prune marker below %d: bridging checkpoint: %v", b, err))
		case th.Size != b:
			rep.add(FindingPrune, b, fmt.Sprintf("prune marker below %d: bridging checkpoint is of size %d", b, th.Size))
		case th.Root != rootHash(p.Head):
			rep.add(FindingPrune, b, fmt.Sprintf("prune marker below %d: stored tree hashes do not match the bridging checkpoint's root", b))
		default:
			ok = true
		}
	}
	return start, ok
}

// extraInt reads an integer that an event's extra map holds as a JSON
// number.
func extraInt(v any) (int64, bool) {
	switch n := v.(type) {
	case float64:
		return int64(n), float64(int64(n)) == n
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	}
	return 0, false
}
