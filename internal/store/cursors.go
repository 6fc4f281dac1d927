package store

import (
	"context"
	"errors"
	"fmt"
)

// ExportCursors is the part of Store that remembers how far each streaming
// export sink (audit.Streamer) has delivered the audit log, so that a
// restarted gateway resumes there. A position is the index of the next
// event to deliver: 0 before the first delivery.
type ExportCursors interface {
	// ExportCursor returns the position of the sink name, 0 if it has
	// never advanced.
	ExportCursor(ctx context.Context, name string) (int64, error)
	// AdvanceExportCursor moves the sink name from position from to
	// position to (0 <= from < to) if it is still at from, in one atomic
	// step. If another writer moved it first (a replica streaming to the
	// same sink), it returns an error wrapping ErrCursorMoved and changes
	// nothing, so a cursor never goes back.
	AdvanceExportCursor(ctx context.Context, name string, from, to int64) error
}

var (
	_ ExportCursors = (*SQLite)(nil)
	_ ExportCursors = (*Postgres)(nil)
)

// ErrCursorMoved is returned by AdvanceExportCursor when the cursor is no
// longer at the position the caller read.
var ErrCursorMoved = errors.New("store: export cursor moved")

func checkCursorAdvance(name string, from, to int64) error {
	switch {
	case name == "":
		return errors.New("store: export cursor without a name")
	case from < 0 || to <= from:
		return fmt.Errorf("store: export cursor %q: cannot advance from %d to %d", name, from, to)
	}
	return nil
}

// cursorAdvanceResult turns the rows an advance changed into its error.
func cursorAdvanceResult(name string, from, to, changed int64, err error) error {
	if err == nil && changed == 0 {
		err = ErrCursorMoved
	}
	if err != nil {
		return fmt.Errorf("store: advance export cursor %q from %d to %d: %w", name, from, to, err)
	}
	return nil
}

// cursorAdvanceSQL are the statements that advance a cursor, with placeholders
// ph(1) name, ph(2) to, ph(3) updated and ph(4) from. The first advance
// inserts the row; the conflict clause makes it an update that applies only
// if the row (written by someone else meanwhile) is still at 0. Later
// advances update only a row at from, so a missing row is not recreated
// from a position nobody stored.
func cursorAdvanceSQL(from int64, ph func(int) string) string {
	if from == 0 {
		return `INSERT INTO audit_export_cursors (name, position, updated) VALUES (` + ph(1) + `, ` + ph(2) + `, ` + ph(3) + `)
			ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated = excluded.updated
			WHERE audit_export_cursors.position = ` + ph(4)
	}
	return `UPDATE audit_export_cursors SET position = ` + ph(2) + `, updated = ` + ph(3) +
		` WHERE name = ` + ph(1) + ` AND position = ` + ph(4)
}
