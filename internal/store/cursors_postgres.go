package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// ExportCursor implements ExportCursors.
func (p *Postgres) ExportCursor(ctx context.Context, name string) (int64, error) {
	var pos int64
	err := p.pool.QueryRow(ctx, `SELECT position FROM audit_export_cursors WHERE name = $1`, name).Scan(&pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: export cursor %q: %w", name, err)
	}
	return pos, nil
}

// AdvanceExportCursor implements ExportCursors. The position compare is in
// the statement's WHERE clause, which PostgreSQL re-checks on the newest
// row version after waiting for a concurrent writer (and, for the first
// advance, on the row a concurrent insert committed), so of two replicas
// advancing from the same position exactly one succeeds.
func (p *Postgres) AdvanceExportCursor(ctx context.Context, name string, from, to int64) error {
	if err := checkCursorAdvance(name, from, to); err != nil {
		return err
	}
	var n int64
	tag, err := p.pool.Exec(ctx, cursorAdvanceSQL(from, func(i int) string { return "$" + strconv.Itoa(i) }), name, to, time.Now().UnixNano(), from)
	if err == nil {
		n = tag.RowsAffected()
	}
	return cursorAdvanceResult(name, from, to, n, err)
}
