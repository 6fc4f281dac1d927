package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Prune is a retention marker: the audit events with index below
// Head.Size were deleted, and Head is the compact range of the Merkle tree
// of that many leaves, which lets the tree go on without them. Checkpoint
// is the signed checkpoint of size Head.Size that the range must fold to,
// so that the bridge over the pruned prefix is signed. The store keeps
// markers opaque; audit.Verify checks them.
type Prune struct {
	// After is the newest earlier marker's size (0 for the first prune):
	// the caller planned from there, and the store refuses the marker if
	// another prune got in first. It is not stored: Prunes leaves it 0.
	After      int64
	Head       Head
	Checkpoint []byte    // the signed note
	Time       time.Time // when the prune ran
}

// ErrPruneOrder is returned by PruneEvents when the marker does not move
// the log's start forward, or lies beyond its end.
var ErrPruneOrder = errors.New("store: prune marker out of order")

// Pruner is the part of Store that deletes the audit log's prefix.
type Pruner interface {
	// PruneEvents records p and deletes the audit events (and their table
	// rows) with index below p.Head.Size, in one transaction. p.After must
	// be the newest marker's size and p.Head.Size greater than it and at
	// most the head's size, else
	// it returns an error wrapping ErrPruneOrder and changes nothing.
	PruneEvents(ctx context.Context, p Prune) error
	// Prunes returns every marker in the order they were recorded.
	Prunes(ctx context.Context) ([]Prune, error)
}

func checkPrune(p Prune, headSize, lastBelow int64) error {
	if p.After != lastBelow || p.Head.Size <= lastBelow || p.Head.Size > headSize {
		return fmt.Errorf("%w: below %d after %d, but the newest marker is %d and the log size %d", ErrPruneOrder, p.Head.Size, p.After, lastBelow, headSize)
	}
	return nil
}

// PruneEvents implements Pruner.
func (s *SQLite) PruneEvents(ctx context.Context, p Prune) error {
	// BEGIN IMMEDIATE (the pool's _txlock) takes the write lock first, so
	// the head and the last marker cannot change under the checks.
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var size, last int64
		if err := tx.QueryRowContext(ctx, `SELECT size FROM audit_head WHERE id = 1`).Scan(&size); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(below), 0) FROM audit_prunes`).Scan(&last); err != nil {
			return err
		}
		if err := checkPrune(p, size, last); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_prunes (below, hashes, checkpoint, created) VALUES (?, ?, ?, ?)`,
			p.Head.Size, encodeHashes(p.Head.Hashes), string(p.Checkpoint), p.Time.UnixNano()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM audit_event_tables WHERE idx < ?`, p.Head.Size); err != nil {
			return err
		}
		// Only blocks wholly below: the one the marker cuts still has
		// events above it.
		for _, blocks := range []string{"audit_session_blocks", "audit_principal_blocks", "audit_table_blocks"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+blocks+` WHERE block < ?`, p.Head.Size>>blockShift); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM audit_events WHERE idx < ?`, p.Head.Size)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: prune events: %w", err)
	}
	return nil
}

// Prunes implements Pruner.
func (s *SQLite) Prunes(ctx context.Context) ([]Prune, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT below, hashes, checkpoint, created FROM audit_prunes ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: prunes: %w", err)
	}
	defer rows.Close()
	ps, err := collect(rows, scanPrune)
	if err != nil {
		return nil, fmt.Errorf("store: prunes: %w", err)
	}
	return ps, nil
}

func scanPrune(s scanner) (Prune, error) {
	var (
		p      Prune
		hashes []byte
		note   string
		ts     int64
	)
	if err := s.Scan(&p.Head.Size, &hashes, &note, &ts); err != nil {
		return Prune{}, err
	}
	var err error
	if p.Head.Hashes, err = decodeHashes(hashes); err != nil {
		return Prune{}, err
	}
	p.Checkpoint, p.Time = []byte(note), time.Unix(0, ts).UTC()
	return p, nil
}

// PruneEvents implements Pruner.
func (p *Postgres) PruneEvents(ctx context.Context, pr Prune) error {
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		// The head row's lock serialises the prune with appends and with
		// other replicas' prunes, so the checks below hold at commit.
		var size, last int64
		if err := tx.QueryRow(ctx, `SELECT size FROM audit_head WHERE id = 1 FOR UPDATE`).Scan(&size); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(below), 0) FROM audit_prunes`).Scan(&last); err != nil {
			return err
		}
		if err := checkPrune(pr, size, last); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO audit_prunes (below, hashes, checkpoint, created) VALUES ($1, $2, $3, $4)`,
			pr.Head.Size, encodeHashes(pr.Head.Hashes), string(pr.Checkpoint), pr.Time.UnixNano()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM audit_event_tables WHERE idx < $1`, pr.Head.Size); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM audit_events WHERE idx < $1`, pr.Head.Size)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: prune events: %w", err)
	}
	return nil
}

// Prunes implements Pruner.
func (p *Postgres) Prunes(ctx context.Context) ([]Prune, error) {
	rows, err := p.pool.Query(ctx, `SELECT below, hashes, checkpoint, created FROM audit_prunes ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: prunes: %w", err)
	}
	defer rows.Close()
	ps, err := collect(rows, scanPrune)
	if err != nil {
		return nil, fmt.Errorf("store: prunes: %w", err)
	}
	return ps, nil
}
