package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
)

// ApprovalStore keeps approval requests: statements (or sessions) held for a
// reviewer's decision. Both *SQLite and *Postgres implement it. It is a
// separate interface from Store so that the approval package asks for no
// more than it uses.
//
// The store does not interpret requests: Data is the approval package's
// encoding and is authoritative; the other fields are copies used to find
// rows, written by the caller from Data.
type ApprovalStore interface {
	// CreateApproval stores a new request with version 1 (a.Version is
	// ignored). It returns ErrExists if the id is taken.
	CreateApproval(ctx context.Context, a Approval) error
	// Approval returns the request id, or ErrNotFound.
	Approval(ctx context.Context, id string) (Approval, error)
	// Approvals returns the requests matching q, newest first.
	Approvals(ctx context.Context, q ApprovalQuery) ([]Approval, error)
	// UpdateApproval replaces the request a.ID if its stored version is
	// still a.Version, and sets the version to a.Version+1. It returns
	// ErrChanged if another writer updated it since the caller read it
	// (read again and redo the decision), and ErrNotFound if there is no
	// such request. Created cannot change.
	UpdateApproval(ctx context.Context, a Approval) error
}

// ApprovalWatcher is implemented by stores that can push changes of
// approval requests across processes: *Postgres, with LISTEN/NOTIFY. Callers
// find it by type assertion; without it they must poll Approvals.
type ApprovalWatcher interface {
	// WatchApprovals calls changed with the id of every request created or
	// updated by any process, until ctx ends or the connection fails; it
	// returns the error (ctx.Err() after cancellation). listening is called
	// once changes are being delivered: anything updated before that may
	// have been missed, so the caller re-reads what it waits for then.
	// Delivery is at most once: a caller restarting after an error must
	// re-read too. The callbacks run on the watching goroutine and must not
	// block.
	WatchApprovals(ctx context.Context, listening func(), changed func(id string)) error
}

var (
	_ ApprovalStore   = (*SQLite)(nil)
	_ ApprovalStore   = (*Postgres)(nil)
	_ ApprovalWatcher = (*Postgres)(nil)
)

// ErrChanged is returned by UpdateApproval when the request was updated by
// someone else after the caller read it.
var ErrChanged = errors.New("store: changed since it was read")

// ApprovalChannel is the PostgreSQL NOTIFY channel of approval changes; the
// payload is the request id.
const ApprovalChannel = "gatehouse_approvals"

// Approval is one approval request as stored.
type Approval struct {
	ID         string
	Status     string // pending, approved, denied, expired, withdrawn
	Principal  string // the requester's name
	Connection string
	Holder     string    // the replica whose client waits for the decision
	Created    time.Time // UTC
	Expires    time.Time // UTC
	Version    int64     // 1 when created, one more on each update
	Data       []byte    // the approval package's encoding of the request
}

// ApprovalQuery selects approval requests. Zero fields do not filter.
type ApprovalQuery struct {
	Status     string
	Principal  string
	Connection string
	Holder     string
	IDs        []string  // only these requests
	ExpiresBy  time.Time // only requests whose Expires is at or before this
	Limit      int       // at most this many; 0 means DefaultLimit, negative means no limit
}

const approvalColumns = "id, status, principal, connection, holder, created, expires, version, data"

// buildApprovals returns the SELECT for q with placeholders made by ph(n),
// shared by both dialects so their filters cannot drift apart.
func buildApprovals(q ApprovalQuery, ph func(n int) string) (string, []any) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", ph(len(args))))
	}
	for _, f := range []struct{ col, v string }{
		{"status", q.Status}, {"principal", q.Principal}, {"connection", q.Connection}, {"holder", q.Holder},
	} {
		if f.v != "" {
			add(f.col+" = ?", f.v)
		}
	}
	if q.IDs != nil {
		// An explicit empty list selects nothing, not everything.
		if len(q.IDs) == 0 {
			where = append(where, "1 = 0")
		}
		var in []string
		for _, id := range q.IDs {
			args = append(args, id)
			in = append(in, ph(len(args)))
		}
		if len(in) > 0 {
			where = append(where, "id IN ("+strings.Join(in, ", ")+")")
		}
	}
	if !q.ExpiresBy.IsZero() {
		add("expires <= ?", q.ExpiresBy.UnixNano())
	}
	sql := "SELECT " + approvalColumns + " FROM approvals"
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY created DESC, id DESC"
	limit := q.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit > 0 {
		sql += " LIMIT " + strconv.Itoa(limit)
	}
	return sql, args
}

func scanApproval(s scanner) (Approval, error) {
	var (
		a                Approval
		created, expires int64
		data             string
	)
	if err := s.Scan(&a.ID, &a.Status, &a.Principal, &a.Connection, &a.Holder, &created, &expires, &a.Version, &data); err != nil {
		return Approval{}, err
	}
	a.Created, a.Expires = time.Unix(0, created).UTC(), time.Unix(0, expires).UTC()
	a.Data = []byte(data)
	return a, nil
}

func checkApproval(a Approval) error {
	switch {
	case a.ID == "":
		return errors.New("store: approval without an id")
	case a.Status == "":
		return errors.New("store: approval without a status")
	case len(a.Data) == 0:
		return errors.New("store: approval without data")
	}
	return nil
}

func wrapApproval(op, id string, err error) error {
	if err == nil {
		return nil
	}
	return &approvalError{op: op, id: id, err: err}
}

// approvalError keeps the sentinel reachable with errors.Is while naming
// the operation and request.
type approvalError struct {
	op, id string
	err    error
}

func (e *approvalError) Error() string { return "store: " + e.op + " " + e.id + ": " + e.err.Error() }
func (e *approvalError) Unwrap() error { return e.err }
