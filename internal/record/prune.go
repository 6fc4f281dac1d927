package record

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Prune deletes the recordings whose last activity (their end; for a
// session still running, its newest chunk or its start) is before
// olderThan, and returns their session IDs. A session silent for longer
// than the retention period loses what it recorded so far; it keeps
// recording afterwards, into chunks whose recording row is gone, so those
// writes fail and the session ends (fail closed).
//
// The audit events of pruned sessions stay: their retention is the audit
// log's. The caller should record the pruning itself in the audit log.
func Prune(ctx context.Context, st store.Store, olderThan time.Time) ([]string, error) {
	ids, err := st.DeleteRecordings(ctx, olderThan)
	if err != nil {
		return nil, fmt.Errorf("record: prune: %w", err)
	}
	return ids, nil
}
