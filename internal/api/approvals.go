package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/approval"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// DecisionBody is the JSON body of POST /api/v1/approvals/{id}/approve and
// …/deny. The reason is optional for an approval and required for a
// denial: it is what the held client is told.
type DecisionBody struct {
	Reason string `json:"reason"`
}

// maxDecisionBody caps a decision's request body.
const maxDecisionBody = 64 << 10

// ApprovalRoutes registers the approvals API on mux:
//
//	GET  /api/v1/approvals[?status=&principal=&connection=&limit=]  list (approver groups only)
//	GET  /api/v1/approvals/{id}                                      one request
//	POST /api/v1/approvals/{id}/approve  {"reason": "…"}             approve
//	POST /api/v1/approvals/{id}/deny     {"reason": "…"}             deny (reason required)
//
// Every route needs a bearer token that v verifies. Members of
// approverGroups (config api.approver_groups) may list and read every
// request; members of a request's reviewer groups may read that request.
// Who may decide is the broker's rule (reviewer groups, the broker's
// approver groups, never the requester), so pass the same approver groups
// to the broker's Options. Requests and errors are JSON
// (approval.View, Error).
func ApprovalRoutes(mux *http.ServeMux, b *approval.Broker, v TokenVerifier, approverGroups []string) {
	a := &approvalsAPI{broker: b, verifier: v, approvers: slices.Clone(approverGroups)}
	mux.HandleFunc("GET /api/v1/approvals", a.auth(a.list))
	mux.HandleFunc("GET /api/v1/approvals/{id}", a.auth(a.get))
	mux.HandleFunc("POST /api/v1/approvals/{id}/approve", a.auth(a.decide(true)))
	mux.HandleFunc("POST /api/v1/approvals/{id}/deny", a.auth(a.decide(false)))
}

type approvalsAPI struct {
	broker    *approval.Broker
	verifier  TokenVerifier
	approvers []string
}

// auth admits requests bearing a token the verifier accepts.
func (a *approvalsAPI) auth(next func(http.ResponseWriter, *http.Request, *identity.Principal)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
			writeError(w, http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer <token>")
			return
		}
		if a.verifier == nil || a.broker == nil {
			writeError(w, http.StatusServiceUnavailable, "the approvals API is not available: approvals are not enabled on this gateway")
			return
		}
		p, err := a.verifier.Verify(r.Context(), token)
		if err != nil {
			a.broker.Logger().Info("api: approvals: invalid token", "source", r.RemoteAddr, "err", err)
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", error="invalid_token"`)
			// No detail: it would help someone guessing tokens.
			writeError(w, http.StatusUnauthorized, "invalid token")
			return
		}
		next(w, r, p)
	}
}

func (a *approvalsAPI) isApprover(p *identity.Principal) bool {
	for _, g := range a.approvers {
		if p.InGroup(g) {
			return true
		}
	}
	return false
}

func (a *approvalsAPI) list(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	if !a.isApprover(p) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("%s may not list approval requests: not in an approver group (api.approver_groups)", p.Name))
		return
	}
	q := r.URL.Query()
	f := approval.Filter{Principal: q.Get("principal"), Connection: q.Get("connection")}
	if s := q.Get("status"); s != "" {
		st, ok := approval.ParseStatus(s)
		if !ok {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("status: %q is not one of %s", s, statusNames()))
			return
		}
		f.Status = st
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit: %q is not a positive number", s))
			return
		}
		f.Limit = n
	}
	reqs, err := a.broker.List(r.Context(), f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]approval.View, 0, len(reqs))
	for i := range reqs {
		out = append(out, reqs[i].View())
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *approvalsAPI) get(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	req, err := a.broker.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if !a.isApprover(p) && !a.broker.MayDecide(p, req) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("%s may not read approval request %s: not in an approver group nor among its reviewers (%s)",
			p.Name, req.ID, strings.Join(req.Reviewers, ", ")))
		return
	}
	writeJSON(w, http.StatusOK, req.View())
}

func (a *approvalsAPI) decide(approve bool) func(http.ResponseWriter, *http.Request, *identity.Principal) {
	return func(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
		var body DecisionBody
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxDecisionBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf(`body: want {"reason": "…"}: %v`, err))
			return
		}
		if !approve && strings.TrimSpace(body.Reason) == "" {
			writeError(w, http.StatusBadRequest, "a denial needs a reason: it is what the held client is told")
			return
		}
		req, err := a.broker.Decide(r.Context(), r.PathValue("id"), p, approve, body.Reason)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, req.View())
	}
}

// fail answers with the status err calls for; the broker's errors are
// written for people and go out as they are, store errors only to the log.
func (a *approvalsAPI) fail(w http.ResponseWriter, r *http.Request, err error) {
	id := r.PathValue("id")
	switch {
	case errors.Is(err, approval.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no approval request %q", id))
	case errors.Is(err, approval.ErrSelfApproval):
		writeError(w, http.StatusForbidden, fmt.Sprintf("request %s is your own: nobody may approve or deny their own request; ask another reviewer", id))
	case errors.Is(err, approval.ErrNotReviewer):
		writeError(w, http.StatusForbidden, fmt.Sprintf("you may not decide request %s: not among its reviewers nor in an approver group", id))
	case errors.Is(err, approval.ErrNotPending), errors.Is(err, approval.ErrAlreadyApproved):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, approval.ErrReasonRequired):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, approval.ErrNotRecorded):
		a.broker.Logger().Error("api: approval decision refused", "id", id, "err", err)
		writeError(w, http.StatusServiceUnavailable, "the decision was not made: the gateway cannot record it in the audit log right now")
	case errors.Is(err, approval.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, "the gateway is shutting down")
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads the answer.
	default:
		a.broker.Logger().Error("api: approvals request failed", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error; the gateway's log has the details")
	}
}

func statusNames() string {
	var names []string
	for _, s := range approval.Statuses {
		names = append(names, string(s))
	}
	return strings.Join(names, ", ")
}
