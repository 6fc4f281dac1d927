package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ExportCursor implements ExportCursors.
func (s *SQLite) ExportCursor(ctx context.Context, name string) (int64, error) {
	var pos int64
	err := s.db.QueryRowContext(ctx, `SELECT position FROM audit_export_cursors WHERE name = ?`, name).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: export cursor %q: %w", name, err)
	}
	return pos, nil
}

// AdvanceExportCursor implements ExportCursors. The compare and the write
// are one statement, which SQLite's write lock makes atomic.
func (s *SQLite) AdvanceExportCursor(ctx context.Context, name string, from, to int64) error {
	if err := checkCursorAdvance(name, from, to); err != nil {
		return err
	}
	var n int64
	res, err := s.exec(ctx, cursorAdvanceSQL(from, func(i int) string { return "?" + strconv.Itoa(i) }), name, to, time.Now().UnixNano(), from)
	if err == nil {
		n, err = res.RowsAffected()
	}
	return cursorAdvanceResult(name, from, to, n, err)
}
