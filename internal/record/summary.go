package record

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Hash is a chunk's SHA-256 digest; it reads and writes as lowercase hex.
type Hash [sha256.Size]byte

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText implements encoding.TextMarshaler.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *Hash) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(h) {
		return fmt.Errorf("record: digest %q is not %d bytes of hex", b, len(h))
	}
	_, err := hex.Decode(h[:], b)
	return err
}

// Summary is what Recorder.Close stored: the facts the session.end audit
// event carries so that the recording shares the audit log's tamper
// evidence.
type Summary struct {
	SessionID      string `json:"session_id,omitempty"`
	Chunks         int64  `json:"chunks"`
	Bytes          int64  `json:"bytes"`        // entry bytes recorded, uncompressed
	StoredBytes    int64  `json:"stored_bytes"` // compressed, as stored
	Truncated      bool   `json:"truncated"`
	DroppedEntries int64  `json:"dropped_entries"` // entries not recorded past the cap
	DroppedBytes   int64  `json:"dropped_bytes"`   // their approximate size
	SHA256         []Hash `json:"sha256"`          // digest of each chunk as stored, by sequence number
}

// AuditExtraKey is the key of audit.Event.Extra under which the
// session.end event carries the recording's Summary.
const AuditExtraKey = "recording"

// AuditExtra returns s as the value to put in the session.end event's
// Extra under AuditExtraKey:
//
//	ev.Extra = map[string]any{record.AuditExtraKey: sum.AuditExtra()}
//
// It is a map, not the struct, because the audit leaf format sorts the keys
// of Extra's objects.
func (s Summary) AuditExtra() map[string]any {
	hs := make([]string, len(s.SHA256))
	for i, h := range s.SHA256 {
		hs[i] = h.String()
	}
	return map[string]any{
		"chunks":          s.Chunks,
		"bytes":           s.Bytes,
		"stored_bytes":    s.StoredBytes,
		"truncated":       s.Truncated,
		"dropped_entries": s.DroppedEntries,
		"dropped_bytes":   s.DroppedBytes,
		"sha256":          hs,
	}
}

// SummaryFromEvent returns the Summary a session.end event carries, and
// false if it carries none.
func SummaryFromEvent(ev audit.Event) (Summary, bool, error) {
	v, ok := ev.Extra[AuditExtraKey]
	if !ok {
		return Summary{}, false, nil
	}
	// Through JSON because a parsed event holds generic maps and float64s.
	b, err := json.Marshal(v)
	if err != nil {
		return Summary{}, true, err
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return Summary{}, true, fmt.Errorf("record: session.end event of %s: %w", ev.SessionID, err)
	}
	s.SessionID = ev.SessionID
	return s, true, nil
}

// ErrNotAudited is returned by AuditedSummary when no session.end event in
// the audit log carries the recording's digests: the session is still
// running, the gateway stopped without ending it, or the event was removed
// (which audit verify reports).
var ErrNotAudited = errors.New("record: no session.end audit event carries the recording's digests")

// AuditedSummary finds the session.end event of session id in the audit
// log kept in st and returns the Summary it carries and its leaf index.
// The event is only as trustworthy as the log: audit.Verify checks that.
func AuditedSummary(ctx context.Context, st store.Store, id string) (Summary, int64, error) {
	evs, err := audit.Query(ctx, st, store.Query{Kind: string(audit.KindSessionEnd), SessionID: id, Limit: -1})
	if err != nil {
		return Summary{}, 0, fmt.Errorf("record: %w", err)
	}
	for i := len(evs) - 1; i >= 0; i-- {
		s, ok, err := SummaryFromEvent(evs[i].Event)
		if err != nil {
			return Summary{}, evs[i].Index, err
		}
		if ok {
			return s, evs[i].Index, nil
		}
	}
	return Summary{}, 0, ErrNotAudited
}
