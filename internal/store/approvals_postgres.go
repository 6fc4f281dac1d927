package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// CreateApproval implements ApprovalStore.
func (p *Postgres) CreateApproval(ctx context.Context, a Approval) error {
	if err := checkApproval(a); err != nil {
		return err
	}
	// The CTE and pg_notify make insert and notification one statement:
	// NOTIFY is delivered at commit, so no listener hears of a row it
	// cannot read yet.
	_, err := p.pool.Exec(ctx, `WITH i AS (
			INSERT INTO approvals (`+approvalColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8) RETURNING id)
		SELECT pg_notify('`+ApprovalChannel+`', id) FROM i`,
		a.ID, a.Status, a.Principal, a.Connection, a.Holder, a.Created.UnixNano(), a.Expires.UnixNano(), string(a.Data))
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		err = ErrExists
	}
	return wrapApproval("create approval", a.ID, err)
}

// Approval implements ApprovalStore.
func (p *Postgres) Approval(ctx context.Context, id string) (Approval, error) {
	a, err := scanApproval(p.pool.QueryRow(ctx, `SELECT `+approvalColumns+` FROM approvals WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		err = ErrNotFound
	}
	return a, wrapApproval("approval", id, err)
}

// Approvals implements ApprovalStore.
func (p *Postgres) Approvals(ctx context.Context, q ApprovalQuery) ([]Approval, error) {
	query, args := buildApprovals(q, func(n int) string { return "$" + strconv.Itoa(n) })
	rows, err := p.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: approvals: %w", err)
	}
	defer rows.Close()
	out, err := collect(rows, scanApproval)
	if err != nil {
		return nil, fmt.Errorf("store: approvals: %w", err)
	}
	return out, nil
}

// UpdateApproval implements ApprovalStore. The version compare is in the
// UPDATE's WHERE clause, which PostgreSQL re-checks on the newest row
// version after waiting for a concurrent writer, so exactly one of two
// racing updates succeeds; the other finds no row and gets ErrChanged.
func (p *Postgres) UpdateApproval(ctx context.Context, a Approval) error {
	if err := checkApproval(a); err != nil {
		return err
	}
	var n int
	err := p.pool.QueryRow(ctx, `WITH u AS (
			UPDATE approvals SET status = $1, principal = $2, connection = $3, holder = $4, expires = $5, data = $6,
				version = version + 1
			WHERE id = $7 AND version = $8 RETURNING id)
		SELECT count(pg_notify('`+ApprovalChannel+`', id)) FROM u`,
		a.Status, a.Principal, a.Connection, a.Holder, a.Expires.UnixNano(), string(a.Data), a.ID, a.Version).Scan(&n)
	if err == nil && n == 0 {
		var exists bool
		if err = p.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM approvals WHERE id = $1)`, a.ID).Scan(&exists); err == nil {
			err = ErrChanged
			if !exists {
				err = ErrNotFound
			}
		}
	}
	return wrapApproval("update approval", a.ID, err)
}

// WatchApprovals implements ApprovalWatcher with LISTEN on a connection of
// its own, outside the pool: a listener holds its connection for as long as
// it listens, and the pool's few connections are for the data path.
func (p *Postgres) WatchApprovals(ctx context.Context, listening func(), changed func(id string)) error {
	conn, err := pgx.ConnectConfig(ctx, p.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("store: watch approvals: %w", err)
	}
	defer func() {
		// ctx has usually ended by now; Close gets its own short deadline.
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+ApprovalChannel); err != nil {
		return fmt.Errorf("store: watch approvals: %w", err)
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("store: watch approvals: %w", err)
		}
		changed(n.Payload)
	}
}
