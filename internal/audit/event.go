package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Kind says what an event records.
type Kind string

// The kinds of event. Their names are part of the leaf format: never rename.
const (
	KindGatewayStart       Kind = "gateway.start"
	KindGatewayStop        Kind = "gateway.stop"
	KindConfigLoad         Kind = "config.load"
	KindAuthSuccess        Kind = "auth.success"
	KindAuthFailure        Kind = "auth.failure"
	KindSessionStart       Kind = "session.start"
	KindSessionEnd         Kind = "session.end"
	KindStatement          Kind = "statement"
	KindStatementOutcome   Kind = "statement.outcome"
	KindApprovalRequested  Kind = "approval.requested"
	KindApprovalDecided    Kind = "approval.decided"
	KindAuditRead          Kind = "audit.read"
	KindStoreFailureWindow Kind = "store.failure_window"
	// KindAuditPruned announces a retention prune of the log's prefix
	// (Log.Prune); it is recorded before the events go.
	KindAuditPruned Kind = "audit.pruned"
	// KindRecordingsPruned records recordings deleted by retention.
	KindRecordingsPruned Kind = "recordings.pruned"
)

// Principal is the verified caller as recorded (identity.Principal without
// the raw claims, which may hold personal data the trail does not need).
type Principal struct {
	Issuer  string   `json:"issuer,omitempty"`
	Subject string   `json:"subject,omitempty"`
	Name    string   `json:"name,omitempty"`
	Groups  []string `json:"groups,omitempty"`
}

// Outcome is the target's reply to a statement.
type Outcome struct {
	CommandTag string `json:"command_tag,omitempty"`
	Rows       int64  `json:"rows,omitempty"`
	SQLState   string `json:"sqlstate,omitempty"`
	Message    string `json:"message,omitempty"` // already masked by the caller
}

// Success reports whether the outcome is not an error: no SQLSTATE, or one of
// class 00 (success), 01 (warning) or 02 (no data).
func (o *Outcome) Success() bool {
	if o == nil || o.SQLState == "" {
		return true
	}
	c := o.SQLState[:min(2, len(o.SQLState))]
	return c == "00" || c == "01" || c == "02"
}

// Event is one audit record. The caller fills in what it knows; Log.Append
// sets Time. Statement, Params, Outcome.Message and Reason must already be
// masked: the log stores them as given, forever.
type Event struct {
	Kind       Kind            `json:"kind"`
	Time       time.Time       `json:"time"`
	SessionID  string          `json:"session_id,omitempty"`
	Principal  *Principal      `json:"principal,omitempty"`
	Source     string          `json:"source,omitempty"` // client address, host:port
	Connection string          `json:"connection,omitempty"`
	Role       string          `json:"role,omitempty"`
	Database   string          `json:"database,omitempty"` // the target database
	Protocol   string          `json:"protocol,omitempty"` // "postgres", …
	Statement  string          `json:"statement,omitempty"`
	Params     []*string       `json:"params,omitempty"` // nil element: SQL NULL
	Tables     []string        `json:"tables,omitempty"` // tables the statement touches, for queries
	Facts      json.RawMessage `json:"facts,omitempty"`  // the analyser's statement facts
	Decision   string          `json:"decision,omitempty"`
	Rule       string          `json:"rule,omitempty"`
	Outcome    *Outcome        `json:"outcome,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	Extra      map[string]any  `json:"extra,omitempty"`
}

// MarshalCanonical returns the event's leaf bytes: compact JSON, fields in
// declaration order, map keys (Extra, and objects inside Facts) sorted, time
// in UTC RFC 3339 with nanoseconds, Tables sorted without duplicates, no
// HTML escaping, no trailing newline. The same event always encodes to the
// same bytes, which is what lets anyone recompute a leaf hash.
func (e Event) MarshalCanonical() ([]byte, error) {
	c, err := e.canonical(nil)
	if err != nil {
		return nil, err
	}
	return marshal(c)
}

// canonical returns e normalised as MarshalCanonical describes. facts, if
// not nil, remembers the canonical forms of facts already seen.
func (e Event) canonical(facts *factsCache) (Event, error) {
	e.Time = e.Time.UTC()
	if len(e.Facts) > 0 {
		f, err := facts.canonical(e.Facts)
		if err != nil {
			return Event{}, fmt.Errorf("audit: facts: %w", err)
		}
		e.Facts = f
	}
	// Nearly always a statement's tables are already in order (one table,
	// or the analyser's sorted list): then e keeps them, uncopied, since
	// nothing downstream changes an event's tables.
	if len(e.Tables) > 0 && !store.TablesInOrder(e.Tables) {
		ts := append([]string(nil), e.Tables...)
		sort.Strings(ts)
		e.Tables = ts[:0]
		for i, t := range ts {
			if i == 0 || t != ts[i-1] {
				e.Tables = append(e.Tables, t)
			}
		}
	}
	return e, nil
}

// marshal encodes v compactly without HTML escaping, so that SQL such as
// "a < b" is stored as written.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// factsCache remembers the canonical form of statement facts. A
// statement's facts are its analysis, which the analyser caches by
// normalised text: the same few recur on every execution, and decoding and
// re-encoding them took 6% of the gateway's CPU under pgbench.
type factsCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

// maxCachedFacts bounds the cache; it starts over when full.
const maxCachedFacts = 4096

func (c *factsCache) canonical(raw []byte) ([]byte, error) {
	if c == nil {
		return canonicalJSON(raw)
	}
	c.mu.Lock()
	f, ok := c.m[string(raw)]
	c.mu.Unlock()
	if ok {
		return f, nil
	}
	f, err := canonicalJSON(raw)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedFacts {
		c.m = make(map[string][]byte)
	}
	c.m[string(raw)] = f
	c.mu.Unlock()
	return f, nil
}

// canonicalJSON re-encodes raw with object keys sorted, numbers kept as
// written.
func canonicalJSON(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after JSON value")
	}
	return marshal(v)
}

// ParseEvent decodes leaf bytes.
func ParseEvent(data []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(data, &e); err != nil {
		return Event{}, fmt.Errorf("audit: parse event: %w", err)
	}
	return e, nil
}

// record derives the store row for an event and its leaf bytes: the copies
// of fields used to find events. Verify recomputes them to catch edits.
func record(e *Event, data []byte) store.Record {
	r := store.Record{
		Time:       e.Time.UTC(),
		Kind:       string(e.Kind),
		SessionID:  e.SessionID,
		Connection: e.Connection,
		Decision:   e.Decision,
		Data:       data,
	}
	if e.Principal != nil {
		r.Principal = e.Principal.Name
		if r.Principal == "" {
			r.Principal = e.Principal.Subject
		}
	}
	if e.Outcome != nil {
		r.Outcome = "failure"
		if e.Outcome.Success() {
			r.Outcome = "success"
		}
	}
	if len(e.Tables) > 0 {
		// e is canonical, so Tables is sorted and unique. The record shares
		// it (the caller's own slice when it was in order already): nothing
		// changes an appended event's slices (see Log.Append).
		r.Tables = e.Tables
	}
	return r
}
