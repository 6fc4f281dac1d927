package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// firstAtOrAfterSQL finds the first event stamped at the time bound to
// param or later. It bisects the primary key over the events from
// ordered_from on (see *_audit_time_*.sql), whose index order is their time
// order: each step seeks the first event at or after the midpoint (twice:
// neither planner reuses the subquery), which also steps over a pruned
// prefix. It ends with lo = hi: that event's index, or one past the last
// event if all are earlier; an empty log gives no row. With before, an
// event before ordered_from that is stamped late enough comes first: those
// are read, not bisected. min and max are separate subqueries: together in
// one SELECT, SQLite reads a whole index to find them.
func firstAtOrAfterSQL(param string, before bool) string {
	result := "lo"
	if before {
		// idx + 0: PostgreSQL would otherwise walk the primary key for the
		// minimum, filtering on time, instead of taking the few events a
		// late start leaves through its time index.
		result = `coalesce((SELECT min(idx + 0) FROM audit_events
			WHERE idx < (SELECT ordered_from FROM audit_head WHERE id = 1) AND ts >= $T), lo)`
	}
	// ordered_from is clamped into [min, max + 1]: a prune takes a prefix,
	// so it cannot pass the log's end, but a bound past it would find
	// nothing rather than fail.
	return strings.ReplaceAll(`WITH RECURSIVE b(lo, hi) AS (
	SELECT CASE WHEN m.lo >= m.ordered THEN m.lo WHEN m.ordered > m.hi THEN m.hi ELSE m.ordered END, m.hi
	FROM (SELECT (SELECT min(idx) FROM audit_events) AS lo, (SELECT max(idx) FROM audit_events) + 1 AS hi,
		(SELECT ordered_from FROM audit_head WHERE id = 1) AS ordered) m
	UNION ALL
	SELECT CASE WHEN (SELECT ts FROM audit_events WHERE idx >= (lo + hi) / 2 ORDER BY idx LIMIT 1) >= $T
	            THEN lo ELSE (lo + hi) / 2 + 1 END,
	       CASE WHEN (SELECT ts FROM audit_events WHERE idx >= (lo + hi) / 2 ORDER BY idx LIMIT 1) >= $T
	            THEN (lo + hi) / 2 ELSE hi END
	FROM b WHERE lo < hi
)
SELECT `+result+` FROM b WHERE lo = hi`, "$T", param)
}

// narrowTime turns q's time range into a range of indexes, which the
// primary key finds where an index on time would leave the planner to
// choose (and SQLite and PostgreSQL both chose to walk the primary key from
// the log's start, filtering on time). first returns the index of the first
// event stamped t or later, or one past the last event if there is none,
// and false if the log holds no events; before makes it look among the
// events from before time order was kept too (see firstAtOrAfterSQL). The
// end of the range need not: those events all come before the ordered
// ones, and buildEvents' conditions on time sort them. none reports that no
// event can match.
func narrowTime(ctx context.Context, q Query, first func(ctx context.Context, t time.Time, before bool) (int64, bool, error)) (_ Query, none bool, _ error) {
	if !q.Since.IsZero() {
		lo, ok, err := first(ctx, q.Since, true)
		if err != nil || !ok {
			return q, true, err
		}
		q.From = max(q.From, lo)
	}
	if !q.Until.IsZero() {
		hi, ok, err := first(ctx, q.Until, false)
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
func bisector(param string, noRows error, queryRow func(ctx context.Context, query string, args ...any) scanner) func(context.Context, time.Time, bool) (int64, bool, error) {
	queries := [2]string{firstAtOrAfterSQL(param, false), firstAtOrAfterSQL(param, true)}
	return func(ctx context.Context, t time.Time, before bool) (int64, bool, error) {
		query := queries[0]
		if before {
			query = queries[1]
		}
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
