package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Query returns the events matching q, decoded, with their indexes.
func Query(ctx context.Context, st store.Store, q store.Query) ([]IndexedEvent, error) {
	recs, err := st.Events(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]IndexedEvent, 0, len(recs))
	for _, r := range recs {
		ev, err := ParseEvent(r.Data)
		if err != nil {
			return nil, fmt.Errorf("audit: event %d: %w", r.Index, err)
		}
		out = append(out, IndexedEvent{Index: r.Index, Hash: r.Hash, Event: ev})
	}
	return out, nil
}

// IndexedEvent is an event with its place in the log.
type IndexedEvent struct {
	Index int64
	Hash  tlog.Hash
	Event Event
}

// ExportLine is one line of the JSON lines export. Event holds the leaf bytes
// exactly as stored, so RecordHash(Event) == Hash can be checked by anyone.
type ExportLine struct {
	Index int64           `json:"index"`
	Hash  tlog.Hash       `json:"hash"` // base64, as tlog.Hash marshals
	Event json.RawMessage `json:"event"`
}

// each pages through the records matching q (q.Limit, if positive, caps the
// total) and calls fn for each.
func each(ctx context.Context, st store.Store, q store.Query, fn func(store.Record) error) error {
	total := q.Limit
	seen := 0
	for {
		page := q
		page.Limit = store.DefaultLimit
		if total > 0 {
			page.Limit = min(page.Limit, total-seen)
		}
		recs, err := st.Events(ctx, page)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
		}
		seen += len(recs)
		if len(recs) < page.Limit || (total > 0 && seen >= total) {
			return nil
		}
		q.From = recs[len(recs)-1].Index + 1
	}
}

// ExportJSONL writes the events matching q as JSON lines (ExportLine), in
// index order, reading the store a page at a time.
func ExportJSONL(ctx context.Context, w io.Writer, st store.Store, q store.Query) error {
	return exportLines(ctx, w, st, q, JSONLLine)
}

// ExportOCSF writes the events matching q as JSON lines of OCSF events (see
// OCSF).
func ExportOCSF(ctx context.Context, w io.Writer, st store.Store, q store.Query) error {
	return exportLines(ctx, w, st, q, OCSFLine)
}

// JSONLLine returns r as one line of the JSON lines export (an ExportLine),
// without the newline.
func JSONLLine(r store.Record) ([]byte, error) {
	// marshal, not json.Marshal: HTML escaping would rewrite the leaf bytes
	// inside Event and break the hash check.
	b, err := marshal(ExportLine{Index: r.Index, Hash: r.Hash, Event: r.Data})
	if err != nil {
		return nil, fmt.Errorf("event %d: %w", r.Index, err)
	}
	return b, nil
}

// OCSFLine returns r as one line of the OCSF export, without the newline.
func OCSFLine(r store.Record) ([]byte, error) {
	ev, err := ParseEvent(r.Data)
	if err != nil {
		return nil, fmt.Errorf("event %d: %w", r.Index, err)
	}
	b, err := marshal(OCSF(r.Index, r.Hash, &ev))
	if err != nil {
		return nil, fmt.Errorf("event %d: %w", r.Index, err)
	}
	return b, nil
}

// The export formats, named as the command line, the API and the config's
// audit.export know them.
const (
	FormatJSONL = "jsonl"
	FormatOCSF  = "ocsf"
)

// LineEncoder returns the function that encodes one record as a line of
// format (FormatJSONL or FormatOCSF), or false for an unknown format.
func LineEncoder(format string) (func(store.Record) ([]byte, error), bool) {
	switch format {
	case FormatJSONL:
		return JSONLLine, true
	case FormatOCSF:
		return OCSFLine, true
	}
	return nil, false
}

// exportLines writes line(r) and a newline for each record matching q.
func exportLines(ctx context.Context, w io.Writer, st store.Store, q store.Query, line func(store.Record) ([]byte, error)) error {
	bw := bufio.NewWriter(w)
	err := each(ctx, st, q, func(r store.Record) error {
		b, err := line(r)
		if err != nil {
			return err
		}
		bw.Write(b)
		return bw.WriteByte('\n')
	})
	if err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	return bw.Flush()
}

// OCSFVersion is the OCSF schema version OCSF maps to.
const OCSFVersion = "1.1.0"

// OCSF maps an event to an Open Cybersecurity Schema Framework event.
//
// The class is Datastore Activity (class_uid 6005, category 6 Application
// Activity), because Gatehouse's events are about a database: the statement,
// the database, the tables, the actor and the outcome map onto its fields
// (query_info, database, actor, src_endpoint, status). API Activity (6003)
// would describe the gateway's own API instead. Exceptions: auth.success and
// auth.failure are Authentication (3002, Logon); gateway.start and
// gateway.stop are Application Lifecycle (6002, Start/Stop).
//
// Activities: session.start is Connect (3), statement is Query (4),
// audit.read is Read (1), everything else Other (99). Gatehouse fields with no
// OCSF home (decision, rule, connection, role, facts, leaf index and hash)
// are under "unmapped", so nothing is lost.
func OCSF(index int64, hash tlog.Hash, ev *Event) map[string]any {
	class, category, activity, name := 6005, 6, 99, "Other"
	switch ev.Kind {
	case KindAuthSuccess, KindAuthFailure:
		class, category, activity, name = 3002, 3, 1, "Logon"
	case KindGatewayStart:
		class, activity, name = 6002, 3, "Start"
	case KindGatewayStop:
		class, activity, name = 6002, 4, "Stop"
	case KindSessionStart:
		activity, name = 3, "Connect"
	case KindStatement:
		activity, name = 4, "Query"
	case KindAuditRead:
		activity, name = 1, "Read"
	}
	status, statusID, severity := "Success", 1, 1 // Informational
	failed := ev.Kind == KindAuthFailure || ev.Decision == "deny" || ev.Kind == KindStoreFailureWindow ||
		(ev.Outcome != nil && !ev.Outcome.Success())
	if failed {
		status, statusID, severity = "Failure", 2, 3 // Medium
	}
	o := map[string]any{
		"class_uid":     class,
		"category_uid":  category,
		"activity_id":   activity,
		"activity_name": name,
		"type_uid":      class*100 + activity,
		"time":          ev.Time.UnixMilli(),
		"severity_id":   severity,
		"status":        status,
		"status_id":     statusID,
		"message":       string(ev.Kind),
		"metadata": map[string]any{
			"version":  OCSFVersion,
			"uid":      strconv.FormatInt(index, 10),
			"log_name": "gatehouse-audit",
			"product":  map[string]any{"name": "Gatehouse", "vendor_name": "Gatehouse"},
		},
	}
	if ev.Principal != nil {
		user := map[string]any{"name": ev.Principal.Name, "uid": ev.Principal.Subject}
		if ev.Principal.Issuer != "" {
			user["domain"] = ev.Principal.Issuer
		}
		if len(ev.Principal.Groups) > 0 {
			var gs []map[string]any
			for _, g := range ev.Principal.Groups {
				gs = append(gs, map[string]any{"name": g})
			}
			user["groups"] = gs
		}
		actor := map[string]any{"user": user}
		if ev.SessionID != "" {
			actor["session"] = map[string]any{"uid": ev.SessionID}
		}
		o["actor"] = actor
		if class == 3002 {
			o["user"] = user
		}
	}
	if ev.Source != "" {
		ep := map[string]any{}
		if host, port, err := net.SplitHostPort(ev.Source); err == nil {
			ep["ip"] = host
			if p, err := strconv.Atoi(port); err == nil {
				ep["port"] = p
			}
		} else {
			ep["ip"] = ev.Source
		}
		o["src_endpoint"] = ep
	}
	if ev.Database != "" {
		o["database"] = map[string]any{"name": ev.Database, "type": ev.Protocol}
	}
	if len(ev.Tables) > 0 {
		o["table"] = map[string]any{"name": ev.Tables[0]}
	}
	if ev.Statement != "" {
		o["query_info"] = map[string]any{"query_string": ev.Statement}
	}
	if ev.Outcome != nil {
		if ev.Outcome.SQLState != "" {
			o["status_code"] = ev.Outcome.SQLState
		}
		if ev.Outcome.Message != "" {
			o["status_detail"] = ev.Outcome.Message
		}
	}
	if ev.Reason != "" && o["status_detail"] == nil {
		o["status_detail"] = ev.Reason
	}
	unmapped := map[string]any{"index": index, "leaf_hash": hash.String(), "kind": string(ev.Kind)}
	for k, v := range map[string]string{"decision": ev.Decision, "rule": ev.Rule, "connection": ev.Connection,
		"role": ev.Role, "protocol": ev.Protocol} {
		if v != "" {
			unmapped[k] = v
		}
	}
	if len(ev.Tables) > 0 {
		unmapped["tables"] = ev.Tables
	}
	if len(ev.Params) > 0 {
		unmapped["params"] = ev.Params
	}
	if len(ev.Facts) > 0 {
		unmapped["facts"] = ev.Facts
	}
	if ev.Outcome != nil {
		unmapped["outcome"] = ev.Outcome
	}
	if len(ev.Extra) > 0 {
		unmapped["extra"] = ev.Extra
	}
	o["unmapped"] = unmapped
	return o
}
