package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/record"
	"github.com/gatehouse/gatehouse/internal/store"
)

// TokenVerifier turns a bearer token into a principal. *identity.Verifier
// is one: the API trusts exactly the tokens the data path trusts.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (*identity.Principal, error)
}

// AuditAppender records an event durably. *audit.Log is one.
type AuditAppender interface {
	Append(ctx context.Context, ev audit.Event) (int64, error)
}

// Trail serves reads of the audit trail and of session recordings. Every
// read is first recorded as an audit.read event naming who read what (PCI
// DSS 10.2.1.3); if that event cannot be recorded the read is refused. The
// REST API and the offline command line both read through a Trail, so the
// rule holds for both.
type Trail struct {
	Store store.Store
	// Log records the audit.read events. Nil means reads are not recorded:
	// only the offline command line runs so, when it cannot open the log
	// (no signing key), and it says so. The REST API never does.
	Log AuditAppender
	// Verifiers check checkpoint signatures in Verify.
	Verifiers note.Verifiers
	// Now is the clock for relative times ("24h" ago); time.Now if nil.
	Now func() time.Time
}

// Who is the reader of the trail, as the audit.read event records it.
type Who struct {
	Principal *audit.Principal
	Source    string // the client's address, or "cli@host" offline
}

// AuditPrincipal converts a verified principal for the audit record.
func AuditPrincipal(p *identity.Principal) *audit.Principal {
	return &audit.Principal{Issuer: p.Issuer, Subject: p.Subject, Name: p.Name, Groups: p.Groups}
}

// read records that who performs op, with the details that say what was
// read.
func (t *Trail) read(ctx context.Context, who Who, op string, details map[string]any) error {
	if t.Log == nil {
		return nil
	}
	extra := map[string]any{"operation": op}
	for k, v := range details {
		extra[k] = v
	}
	_, err := t.Log.Append(ctx, audit.Event{
		Kind: audit.KindAuditRead, Principal: who.Principal, Source: who.Source,
		Decision: "allow", Extra: extra,
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotRecorded, err)
	}
	return nil
}

// ErrNotRecorded is returned by Trail's methods when the audit.read event
// could not be recorded, and the read was therefore refused.
var ErrNotRecorded = errors.New("read refused: it could not be recorded in the audit log")

func (t *Trail) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// EventFilters are the query parameters (and command-line flags) that
// select events.
var EventFilters = []string{"since", "until", "principal", "connection", "session", "decision", "outcome", "table", "kind", "from", "limit"}

// ParseEventQuery reads EventFilters from v. Times are RFC 3339, a date
// (2006-01-02, UTC) or a duration meaning that long before now ("24h").
func ParseEventQuery(v url.Values, now time.Time) (store.Query, error) {
	q := store.Query{
		Principal: v.Get("principal"), Connection: v.Get("connection"), SessionID: v.Get("session"),
		Decision: v.Get("decision"), Outcome: v.Get("outcome"), Table: v.Get("table"), Kind: v.Get("kind"),
	}
	var err error
	if q.Since, err = ParseTime(v.Get("since"), now); err != nil {
		return q, fmt.Errorf("since: %w", err)
	}
	if q.Until, err = ParseTime(v.Get("until"), now); err != nil {
		return q, fmt.Errorf("until: %w", err)
	}
	if s := v.Get("from"); s != "" {
		if q.From, err = strconv.ParseInt(s, 10, 64); err != nil || q.From < 0 {
			return q, fmt.Errorf("from: %q is not an event index", s)
		}
	}
	if q.Limit, err = parseLimit(v.Get("limit")); err != nil {
		return q, err
	}
	return q, nil
}

// ParseSessionQuery reads since, until, principal, connection and limit.
func ParseSessionQuery(v url.Values, now time.Time) (store.RecordingQuery, error) {
	q := store.RecordingQuery{Principal: v.Get("principal"), Connection: v.Get("connection")}
	var err error
	if q.Since, err = ParseTime(v.Get("since"), now); err != nil {
		return q, fmt.Errorf("since: %w", err)
	}
	if q.Until, err = ParseTime(v.Get("until"), now); err != nil {
		return q, fmt.Errorf("until: %w", err)
	}
	q.Limit, err = parseLimit(v.Get("limit"))
	return q, err
}

// maxLimit caps one page of a JSON answer; export streams without a cap.
const maxLimit = 10000

func parseLimit(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxLimit {
		return 0, fmt.Errorf("limit: %q is not a number from 1 to %d", s, maxLimit)
	}
	return n, nil
}

// ParseTime parses an RFC 3339 time, a date (UTC midnight) or a duration
// before now. The empty string is the zero time.
func ParseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time (RFC 3339, 2006-01-02, or a duration such as 24h)", s)
}

func queryDetails(v url.Values) map[string]any {
	f := map[string]any{}
	for _, k := range EventFilters {
		if s := v.Get(k); s != "" {
			f[k] = s
		}
	}
	if len(f) == 0 {
		return nil
	}
	return map[string]any{"filters": f}
}

// Events returns the events v selects, as export lines (index, leaf hash
// and the leaf bytes untouched, so a client can check each hash).
func (t *Trail) Events(ctx context.Context, who Who, v url.Values) ([]audit.ExportLine, error) {
	q, err := ParseEventQuery(v, t.now())
	if err != nil {
		return nil, badRequest(err)
	}
	if err := t.read(ctx, who, "audit.query", queryDetails(v)); err != nil {
		return nil, err
	}
	recs, err := t.Store.Events(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]audit.ExportLine, len(recs))
	for i, r := range recs {
		out[i] = audit.ExportLine{Index: r.Index, Hash: r.Hash, Event: r.Data}
	}
	return out, nil
}

// VerifyResult is audit.Verify's report on the wire.
type VerifyResult struct {
	OK                  bool            `json:"ok"`
	TreeSize            int64           `json:"tree_size"`
	Root                string          `json:"root"` // base64, as in checkpoints
	Checkpoints         int             `json:"checkpoints"`
	VerifiedCheckpoints int             `json:"verified_checkpoints"`
	LatestVerified      int64           `json:"latest_verified"`
	Unsigned            int64           `json:"unsigned"`
	FirstBad            int64           `json:"first_bad"` // -1 if none
	Findings            []audit.Finding `json:"findings"`
}

// Verify checks the whole audit log (audit.Verify).
func (t *Trail) Verify(ctx context.Context, who Who) (*VerifyResult, error) {
	if t.Verifiers == nil {
		return nil, errors.New("no checkpoint verifier key is configured")
	}
	if err := t.read(ctx, who, "audit.verify", nil); err != nil {
		return nil, err
	}
	rep, err := audit.Verify(ctx, t.Store, t.Verifiers)
	if err != nil {
		return nil, err
	}
	res := &VerifyResult{
		OK: rep.OK(), TreeSize: rep.TreeSize, Root: base64.StdEncoding.EncodeToString(rep.Root[:]),
		Checkpoints: rep.Checkpoints, VerifiedCheckpoints: rep.VerifiedCheckpoints,
		LatestVerified: rep.LatestVerified, Unsigned: rep.Unsigned, FirstBad: rep.FirstBad,
		Findings: rep.Findings,
	}
	if res.Findings == nil {
		res.Findings = []audit.Finding{}
	}
	return res, nil
}

// Export writes the events v selects (every one when v has no limit) to w
// as JSON lines: format "jsonl" (audit.ExportJSONL) or "ocsf"
// (audit.ExportOCSF).
func (t *Trail) Export(ctx context.Context, who Who, w io.Writer, format string, v url.Values) error {
	q, err := ParseEventQuery(v, t.now())
	if err != nil {
		return badRequest(err)
	}
	if v.Get("limit") == "" {
		q.Limit = -1
	}
	export := map[string]func(context.Context, io.Writer, store.Store, store.Query) error{
		"jsonl": audit.ExportJSONL, "ocsf": audit.ExportOCSF,
	}[format]
	if export == nil {
		return badRequest(fmt.Errorf("format: %q is not jsonl or ocsf", format))
	}
	details := queryDetails(v)
	if details == nil {
		details = map[string]any{}
	}
	details["format"] = format
	if err := t.read(ctx, who, "audit.export", details); err != nil {
		return err
	}
	return export(ctx, w, t.Store, q)
}

// Session is a recording's row on the wire.
type Session struct {
	ID         string     `json:"id"`
	Principal  string     `json:"principal"`
	Connection string     `json:"connection"`
	Role       string     `json:"role"`
	Started    time.Time  `json:"started"`
	Ended      *time.Time `json:"ended,omitempty"` // absent while running
	Bytes      int64      `json:"bytes"`
	Chunks     int64      `json:"chunks"`
	Truncated  bool       `json:"truncated"`
}

func sessionOf(r store.Recording) Session {
	s := Session{
		ID: r.SessionID, Principal: r.Principal, Connection: r.Connection, Role: r.Role,
		Started: r.Started, Bytes: r.Bytes, Chunks: r.Chunks, Truncated: r.Truncated,
	}
	if !r.Ended.IsZero() {
		e := r.Ended
		s.Ended = &e
	}
	return s
}

// SessionDetail is a recording's row, what it holds, and whether it is
// intact.
type SessionDetail struct {
	Session
	Meta       *record.Meta `json:"meta,omitempty"` // as recorded in the first chunk
	Statements int64        `json:"statements"`     // client entries
	Rows       int64        `json:"rows"`
	Errors     int64        `json:"errors"`
	// AuditIndex is the leaf index of the session.end audit event whose
	// chunk digests the recording was checked against; absent when there
	// is none (running, or the gateway stopped without ending the session).
	AuditIndex *int64           `json:"audit_index,omitempty"`
	Intact     bool             `json:"intact"`
	Problems   []record.Problem `json:"problems"`
}

// Sessions lists recordings, newest first.
func (t *Trail) Sessions(ctx context.Context, who Who, v url.Values) ([]Session, error) {
	q, err := ParseSessionQuery(v, t.now())
	if err != nil {
		return nil, badRequest(err)
	}
	details := queryDetails(v)
	if err := t.read(ctx, who, "sessions.list", details); err != nil {
		return nil, err
	}
	rs, err := t.Store.Recordings(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]Session, len(rs))
	for i, r := range rs {
		out[i] = sessionOf(r)
	}
	return out, nil
}

// openRecording opens id's recording, checked against its session.end
// audit event when there is one.
func (t *Trail) openRecording(ctx context.Context, id string) (*record.Reader, *int64, error) {
	rd, err := record.Open(ctx, t.Store, id)
	if err != nil {
		return nil, nil, err
	}
	sum, idx, err := record.AuditedSummary(ctx, t.Store, id)
	switch {
	case errors.Is(err, record.ErrNotAudited):
		return rd, nil, nil
	case err != nil:
		return nil, nil, err
	}
	rd.Expect(sum)
	return rd, &idx, nil
}

// Session reads and verifies one recording.
func (t *Trail) Session(ctx context.Context, who Who, id string) (*SessionDetail, error) {
	if err := t.read(ctx, who, "sessions.show", map[string]any{"recording": id}); err != nil {
		return nil, err
	}
	rd, idx, err := t.openRecording(ctx, id)
	if err != nil {
		return nil, err
	}
	d := &SessionDetail{Session: sessionOf(rd.Info()), AuditIndex: idx}
	for e, err := range rd.Entries(ctx) {
		if err != nil {
			return nil, err
		}
		switch e.Type {
		case record.EntryMeta:
			d.Meta = e.Meta
		case record.EntryClient:
			d.Statements++
		case record.EntryRow:
			d.Rows++
		case record.EntryError:
			d.Errors++
		}
	}
	d.Problems = rd.Problems()
	if d.Problems == nil {
		d.Problems = []record.Problem{}
	}
	d.Intact = len(d.Problems) == 0
	return d, nil
}

// Replay writes recording id's transcript (record.Replay) to w and returns
// the problems found in it, which the transcript also shows in place.
func (t *Trail) Replay(ctx context.Context, who Who, id string, w io.Writer, opts record.ReplayOptions) ([]record.Problem, error) {
	if err := t.read(ctx, who, "sessions.replay", map[string]any{"recording": id}); err != nil {
		return nil, err
	}
	rd, _, err := t.openRecording(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := record.Replay(w, rd.Entries(ctx), opts); err != nil {
		return nil, err
	}
	return rd.Problems(), nil
}

// errBadRequest marks errors in the caller's parameters.
type errBadRequest struct{ error }

func badRequest(err error) error { return errBadRequest{err} }

func (e errBadRequest) Unwrap() error { return e.error }

// ProblemsTrailer is the HTTP trailer of a replay that counts the problems
// found in the recording, since they are only known once the transcript
// has been sent.
const ProblemsTrailer = "Gatehouse-Recording-Problems"

// auditAPI serves /api/v1/audit and /api/v1/sessions.
type auditAPI struct {
	trail    *Trail
	verifier TokenVerifier
	auditors []string
	log      *slog.Logger
}

func registerAudit(mux *http.ServeMux, opts Options) {
	a := &auditAPI{
		trail:    &Trail{Store: opts.Store, Log: opts.Audit, Verifiers: opts.CheckpointVerifiers, Now: opts.Now},
		verifier: opts.Verifier,
		auditors: opts.AuditorGroups,
		log:      opts.Logger,
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	mux.HandleFunc("GET /api/v1/audit/events", a.auth(a.events))
	mux.HandleFunc("GET /api/v1/audit/verify", a.auth(a.verify))
	mux.HandleFunc("GET /api/v1/audit/export", a.auth(a.export))
	mux.HandleFunc("GET /api/v1/sessions", a.auth(a.sessions))
	mux.HandleFunc("GET /api/v1/sessions/{id}", a.auth(a.session))
	mux.HandleFunc("GET /api/v1/sessions/{id}/replay", a.auth(a.replay))
}

// auth admits requests bearing a valid token of a principal in an auditor
// group. Refusals are recorded in the audit log too (PCI DSS 10.2.1.4):
// invalid tokens as auth.failure, non-auditors as a denied audit.read.
func (a *auditAPI) auth(next func(http.ResponseWriter, *http.Request, Who)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		source := r.RemoteAddr
		token, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
			writeError(w, http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer <token>")
			return
		}
		if a.trail.Log == nil || a.verifier == nil {
			// Reads must be audited and callers verified; without either
			// the API refuses rather than serve unaudited.
			writeError(w, http.StatusServiceUnavailable, "the audit API is not available: no audit log or token verifier")
			return
		}
		p, err := a.verifier.Verify(r.Context(), token)
		if err != nil {
			a.refuse(r, audit.Event{Kind: audit.KindAuthFailure, Source: source, Reason: "api: invalid token",
				Extra: map[string]any{"path": r.URL.Path}})
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", error="invalid_token"`)
			// No detail: it would help someone guessing tokens.
			writeError(w, http.StatusUnauthorized, "invalid token")
			return
		}
		who := Who{Principal: AuditPrincipal(p), Source: source}
		if !a.isAuditor(p) {
			a.refuse(r, audit.Event{Kind: audit.KindAuditRead, Principal: who.Principal, Source: source, Decision: "deny",
				Reason: "not in an auditor group", Extra: map[string]any{"path": r.URL.Path}})
			writeError(w, http.StatusForbidden, fmt.Sprintf("%s is not in an auditor group (api.auditor_groups)", p.Name))
			return
		}
		next(w, r, who)
	}
}

// refuse records a refused request. The refusal stands whether or not it
// could be recorded; a failure is logged.
func (a *auditAPI) refuse(r *http.Request, ev audit.Event) {
	if _, err := a.trail.Log.Append(r.Context(), ev); err != nil {
		a.log.Error("api: refusal not recorded in the audit log", "kind", ev.Kind, "err", err)
	}
}

func (a *auditAPI) isAuditor(p *identity.Principal) bool {
	for _, g := range a.auditors {
		if p.InGroup(g) {
			return true
		}
	}
	return false
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func (a *auditAPI) events(w http.ResponseWriter, r *http.Request, who Who) {
	lines, err := a.trail.Events(r.Context(), who, r.URL.Query())
	if err != nil {
		a.fail(w, err)
		return
	}
	if lines == nil {
		lines = []audit.ExportLine{}
	}
	writeJSON(w, http.StatusOK, lines)
}

func (a *auditAPI) verify(w http.ResponseWriter, r *http.Request, who Who) {
	res, err := a.trail.Verify(r.Context(), who)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (a *auditAPI) export(w http.ResponseWriter, r *http.Request, who Who) {
	v := r.URL.Query()
	format := v.Get("format")
	if format == "" {
		format = "jsonl"
	}
	sw := &startWriter{w: w, contentType: "application/x-ndjson"}
	if err := a.trail.Export(r.Context(), who, sw, format, v); err != nil {
		if !sw.started {
			a.fail(w, err)
			return
		}
		// Part of the export is out with a 200: break the connection so
		// that the client sees an error instead of a short export.
		a.log.Error("api: audit export failed midway", "err", err)
		panic(http.ErrAbortHandler)
	}
}

func (a *auditAPI) sessions(w http.ResponseWriter, r *http.Request, who Who) {
	ss, err := a.trail.Sessions(r.Context(), who, r.URL.Query())
	if err != nil {
		a.fail(w, err)
		return
	}
	if ss == nil {
		ss = []Session{}
	}
	writeJSON(w, http.StatusOK, ss)
}

func (a *auditAPI) session(w http.ResponseWriter, r *http.Request, who Who) {
	d, err := a.trail.Session(r.Context(), who, r.PathValue("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (a *auditAPI) replay(w http.ResponseWriter, r *http.Request, who Who) {
	opts := record.ReplayOptions{Unaligned: r.URL.Query().Get("format") == "unaligned", Null: r.URL.Query().Get("null")}
	w.Header().Set("Trailer", ProblemsTrailer)
	sw := &startWriter{w: w, contentType: "text/plain; charset=utf-8"}
	problems, err := a.trail.Replay(r.Context(), who, r.PathValue("id"), sw, opts)
	if err != nil {
		if !sw.started {
			a.fail(w, err)
			return
		}
		a.log.Error("api: replay failed midway", "err", err)
		panic(http.ErrAbortHandler)
	}
	if !sw.started {
		sw.start()
	}
	w.Header().Set(ProblemsTrailer, strconv.Itoa(len(problems)))
}

// fail answers with the status err calls for.
func (a *auditAPI) fail(w http.ResponseWriter, err error) {
	var bad errBadRequest
	switch {
	case errors.As(err, &bad):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, record.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrNotRecorded):
		a.log.Error("api: audit read refused", "err", err)
		writeError(w, http.StatusServiceUnavailable, ErrNotRecorded.Error())
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads the answer.
	default:
		// Details (store errors) go to the log, not to the client.
		a.log.Error("api: audit read failed", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error; the gateway's log has the details")
	}
}

// startWriter sets the content type and status on the first write, so that
// an error before any output can still be answered with its own status.
type startWriter struct {
	w           http.ResponseWriter
	contentType string
	started     bool
}

func (s *startWriter) start() {
	s.started = true
	s.w.Header().Set("Content-Type", s.contentType)
	s.w.WriteHeader(http.StatusOK)
}

func (s *startWriter) Write(p []byte) (int, error) {
	if !s.started {
		s.start()
	}
	return s.w.Write(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	// Leaf bytes inside export lines must stay as stored for their hashes
	// to check: no HTML escaping.
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// Error is the body of every error answer.
type Error struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, Error{Error: msg})
}
