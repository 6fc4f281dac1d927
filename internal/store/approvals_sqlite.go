package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// CreateApproval implements ApprovalStore.
func (s *SQLite) CreateApproval(ctx context.Context, a Approval) error {
	if err := checkApproval(a); err != nil {
		return err
	}
	_, err := s.exec(ctx, `INSERT INTO approvals (`+approvalColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)`,
		a.ID, a.Status, a.Principal, a.Connection, a.Holder, a.Created.UnixNano(), a.Expires.UnixNano(), string(a.Data))
	// modernc reports a primary key violation only in the message text.
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed") {
		err = ErrExists
	}
	return wrapApproval("create approval", a.ID, err)
}

// Approval implements ApprovalStore.
func (s *SQLite) Approval(ctx context.Context, id string) (Approval, error) {
	a, err := scanApproval(s.db.QueryRowContext(ctx, `SELECT `+approvalColumns+` FROM approvals WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	return a, wrapApproval("approval", id, err)
}

// Approvals implements ApprovalStore.
func (s *SQLite) Approvals(ctx context.Context, q ApprovalQuery) ([]Approval, error) {
	query, args := buildApprovals(q, func(int) string { return "?" })
	rows, err := s.db.QueryContext(ctx, query, args...)
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

// UpdateApproval implements ApprovalStore. The compare and the write are
// one UPDATE statement, so SQLite's write lock makes them atomic.
func (s *SQLite) UpdateApproval(ctx context.Context, a Approval) error {
	if err := checkApproval(a); err != nil {
		return err
	}
	res, err := s.exec(ctx, `UPDATE approvals SET status = ?, principal = ?, connection = ?, holder = ?,
		expires = ?, data = ?, version = version + 1 WHERE id = ? AND version = ?`,
		a.Status, a.Principal, a.Connection, a.Holder, a.Expires.UnixNano(), string(a.Data), a.ID, a.Version)
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n == 0 {
			var exists int
			if err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM approvals WHERE id = ?`, a.ID).Scan(&exists); err == nil {
				err = ErrChanged
				if exists == 0 {
					err = ErrNotFound
				}
			}
		}
	}
	return wrapApproval("update approval", a.ID, err)
}
