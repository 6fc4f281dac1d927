package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// firstAtOrAfterSQL bisects the primary key for the first event stamped at
// the time bound to param or later: index order is time order (see
// ConflictError). Each step seeks the first event at or after the midpoint
// (twice: neither planner reuses the subquery), which also steps over a
// pruned prefix. It ends with lo = hi: that event's index, or one past the
// last event if all are earlier; an empty log gives no row. min and max are
// separate subqueries: together in one SELECT, SQLite reads a whole index to
// find them.
func firstAtOrAfterSQL(param string) string {
	return strings.ReplaceAll(`WITH RECURSIVE b(lo, hi) AS (
	SELECT (SELECT min(idx) FROM audit_events), (SELECT max(idx) FROM audit_events) + 1
	UNION ALL
	SELECT CASE WHEN (SELECT ts FROM audit_events WHERE idx >= (lo + hi) / 2 ORDER BY idx LIMIT 1) >= $T
	            THEN lo ELSE (lo + hi) / 2 + 1 END,
	       CASE WHEN (SELECT ts FROM audit_events WHERE idx >= (lo + hi) / 2 ORDER BY idx LIMIT 1) >= $T
	            THEN (lo + hi) / 2 ELSE hi END
	FROM b WHERE lo < hi
)
SELECT lo FROM b WHERE lo = hi`, "$T", param)
}

// narrowTime turns q's time range into a range of indexes, which the
// primary key finds where an index on time would leave the planner to
// choose (and SQLite and PostgreSQL both chose to walk the primary key from
// the log's start, filtering on time). first returns the index of the first
// event stamped t or later, or one past the last event if there is none,
// and false if the log holds no events. none reports that no event can
// match.
func narrowTime(ctx context.Context, q Query, first func(context.Context, time.Time) (int64, bool, error)) (_ Query, none bool, _ error) {
	if !q.Since.IsZero() {
		lo, ok, err := first(ctx, q.Since)
		if err != nil || !ok {
			return q, true, err
		}
		q.From = max(q.From, lo)
	}
	if !q.Until.IsZero() {
		hi, ok, err := first(ctx, q.Until)
		if err != nil || !ok {
			return q, true, err
		}
		if hi <= q.From {
			return q, true, nil // and a To of 0 would mean no bound
		}
		if q.To == 0 || hi < q.To {
			q.To = hi
		}
	}
	return q, false, nil
}

// bisector returns narrowTime's first for a store: queryRow runs one
// single-row query with param as the placeholder of its argument, and
// noRows is the error its driver's Scan returns for no row.
func bisector(param string, noRows error, queryRow func(ctx context.Context, query string, args ...any) scanner) func(context.Context, time.Time) (int64, bool, error) {
	query := firstAtOrAfterSQL(param)
	return func(ctx context.Context, t time.Time) (int64, bool, error) {
		var idx int64
		err := queryRow(ctx, query, t.UnixNano()).Scan(&idx)
		if errors.Is(err, noRows) {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, fmt.Errorf("store: events: find time %s: %w", t.UTC().Format(time.RFC3339Nano), err)
		}
		return idx, true, nil
	}
}
