package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is the shared store for several gateway replicas.
type Postgres struct {
	pool *pgxpool.Pool
	// firstAt is narrowTime's bisection on this database, built once.
	firstAt func(context.Context, time.Time, bool) (int64, bool, error)
}

var _ Store = (*Postgres)(nil)

// migrationLock is the advisory lock key that serialises migrations between
// replicas starting at the same time ("gatehous" in ASCII).
const migrationLock int64 = 0x6761746568_6f7573

// OpenPostgres connects to dsn (a libpq URL or key=value string) and brings the
// schema up to date.
//
// Durability is the server's: with synchronous_commit on (the default) a
// commit has been flushed to the server's WAL when AppendEvents returns.
func OpenPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	p := &Postgres{pool: pool}
	p.firstAt = bisector("$1::bigint", pgx.ErrNoRows, func(ctx context.Context, query string, args ...any) scanner {
		return p.pool.QueryRow(ctx, query, args...)
	})
	if err := p.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	return p, nil
}

func (p *Postgres) migrate(ctx context.Context) error {
	ms, err := migrations("postgres")
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		// The transaction-scoped advisory lock makes a second replica wait and
		// then find every version applied; it also covers the CREATE TABLE IF
		// NOT EXISTS race.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version integer PRIMARY KEY, name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		for _, m := range ms {
			rows, _ := tx.Query(ctx, `SELECT name FROM schema_migrations WHERE version = $1`, m.version)
			applied, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			if len(applied) > 0 {
				if err := sameMigration(m, applied[0]); err != nil {
					return err
				}
				continue
			}
			// No arguments: pgx sends it with the simple protocol, which
			// accepts several statements.
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
				return err
			}
		}
		return nil
	})
}

// pgAppendSQL appends a batch in one statement, so one round trip and one
// commit: the head update succeeds only if the head still ends where the
// batch starts and the batch is stamped no earlier than the last event in
// the log (last_ts, which a trigger keeps: 0006_audit_time_order.sql), and
// the inserts run only if it did. Under READ COMMITTED a replica whose
// UPDATE waited on the row lock re-checks the condition against the head
// the winner committed, finds it changed and writes nothing, so two
// replicas can never use the same index, nor put an event out of time
// order.
const pgAppendSQL = `WITH head AS (
	UPDATE audit_head SET size = $1, hashes = $2
	WHERE id = 1 AND size = $3 AND last_ts <= $16 RETURNING 1
), events AS (
	INSERT INTO audit_events (idx, ts, kind, session_id, principal, connection, decision, outcome, data, hash)
	SELECT * FROM unnest($4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[],
		$10::text[], $11::text[], $12::text[], $13::bytea[])
	WHERE EXISTS (SELECT FROM head)
), tables AS (
	INSERT INTO audit_event_tables (name, idx)
	SELECT * FROM unnest($14::text[], $15::bigint[])
	WHERE EXISTS (SELECT FROM head)
)
SELECT count(*) FROM head`

// AppendEvents implements Store. See pgAppendSQL for how replicas are
// serialised.
func (p *Postgres) AppendEvents(ctx context.Context, recs []Record, next Head) error {
	if err := checkAppend(recs, next); err != nil {
		return err
	}
	n := len(recs)
	var (
		idx, ts                                           = make([]int64, n), make([]int64, n)
		kind, session, principal, conn, decision, outcome = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		data                                              = make([]string, n)
		hash                                              = make([][]byte, n)
		tableName                                         []string
		tableIdx                                          []int64
	)
	for i := range recs {
		r := &recs[i]
		idx[i], ts[i] = r.Index, r.Time.UnixNano()
		kind[i], session[i], principal[i], conn[i] = r.Kind, r.SessionID, r.Principal, r.Connection
		decision[i], outcome[i], data[i], hash[i] = r.Decision, r.Outcome, string(r.Data), r.Hash[:]
		for _, t := range uniqueTables(*r) {
			tableName, tableIdx = append(tableName, t), append(tableIdx, r.Index)
		}
	}
	var appended int64
	err := p.pool.QueryRow(ctx, pgAppendSQL, next.Size, encodeHashes(next.Hashes), recs[0].Index,
		idx, ts, kind, session, principal, conn, decision, outcome, data, hash, tableName, tableIdx,
		ts[0]).Scan(&appended)
	if err == nil && appended == 0 {
		// The head moved (another replica appended first), or the batch is
		// stamped before last_ts. What is read now is at least as new as
		// what the UPDATE saw.
		c := ConflictError{}
		var last int64
		if c.Head, last, err = p.head(ctx); err != nil {
			return fmt.Errorf("store: append events: conflict: %w", err)
		}
		if last != 0 {
			c.Last = time.Unix(0, last).UTC()
		}
		return &c
	}
	if err != nil {
		return fmt.Errorf("store: append events: %w", err)
	}
	return nil
}

// Head implements Store.
func (p *Postgres) Head(ctx context.Context) (Head, error) {
	h, _, err := p.head(ctx)
	return h, err
}

// head reads the head row: the head, and the time of the log's last event.
func (p *Postgres) head(ctx context.Context) (Head, int64, error) {
	var (
		h    Head
		b    []byte
		last int64
	)
	if err := p.pool.QueryRow(ctx, `SELECT size, hashes, last_ts FROM audit_head WHERE id = 1`).Scan(&h.Size, &b, &last); err != nil {
		return Head{}, 0, fmt.Errorf("store: head: %w", err)
	}
	var err error
	h.Hashes, err = decodeHashes(b)
	return h, last, err
}

// Events implements Store.
func (p *Postgres) Events(ctx context.Context, q Query) ([]Record, error) {
	q, none, err := narrowTime(ctx, q, p.firstAt)
	if err != nil || none {
		return nil, err
	}
	query, args := buildEvents(q, eventsDialect{
		ph:         func(n int) string { return "$" + strconv.Itoa(n) },
		tablesExpr: `COALESCE((SELECT json_agg(t.name ORDER BY t.name) FROM audit_event_tables t WHERE t.idx = e.idx), '[]')::text`,
	})
	rows, err := p.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	defer rows.Close()
	recs, err := collect(rows, scanRecord)
	if err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	return recs, nil
}

// PutCheckpoint implements Store.
func (p *Postgres) PutCheckpoint(ctx context.Context, c Checkpoint) error {
	_, err := p.pool.Exec(ctx, `INSERT INTO audit_checkpoints (size, created, note) VALUES ($1, $2, $3)`,
		c.Size, c.Time.UnixNano(), string(c.Note))
	if err != nil {
		return fmt.Errorf("store: put checkpoint: %w", err)
	}
	return nil
}

// Checkpoints implements Store.
func (p *Postgres) Checkpoints(ctx context.Context) ([]Checkpoint, error) {
	return p.checkpoints(ctx, `SELECT size, created, note FROM audit_checkpoints ORDER BY size, id`)
}

// LatestCheckpoint implements Store.
func (p *Postgres) LatestCheckpoint(ctx context.Context) (Checkpoint, error) {
	cs, err := p.checkpoints(ctx, `SELECT size, created, note FROM audit_checkpoints ORDER BY size DESC, id DESC LIMIT 1`)
	if err != nil {
		return Checkpoint{}, err
	}
	if len(cs) == 0 {
		return Checkpoint{}, ErrNotFound
	}
	return cs[0], nil
}

func (p *Postgres) checkpoints(ctx context.Context, query string) ([]Checkpoint, error) {
	rows, err := p.pool.Query(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("store: checkpoints: %w", err)
	}
	defer rows.Close()
	cs, err := collect(rows, scanCheckpoint)
	if err != nil {
		return nil, fmt.Errorf("store: checkpoints: %w", err)
	}
	return cs, nil
}

// Close implements Store.
func (p *Postgres) Close() error {
	p.pool.Close()
	return nil
}
