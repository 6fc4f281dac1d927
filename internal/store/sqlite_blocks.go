package store

import sqlite3 "modernc.org/sqlite/lib"

// ownerBlockMemo remembers which sessions and principals already have a row
// in the owner-block tables (0009_audit_owner_blocks.sql) for the block
// being appended to, so that an event costs a map lookup rather than a
// statement. It only saves work: the rows are inserted OR IGNORE, so one
// written by another connection, or forgotten here, is merely written
// again.
type ownerBlockMemo struct {
	block      int64 // the block the sets are for; -1 when none
	sessions   map[string]struct{}
	principals map[string]struct{}
}

// forget drops what the memo knows, for a transaction that failed: its
// rows may have been rolled back.
func (m *ownerBlockMemo) forget() {
	m.block = -1
	clear(m.sessions)
	clear(m.principals)
}

// blockOwnersLocked writes r's session and principal rows for r's block
// unless the memo says they are there.
func (a *sqliteConn) blockOwnersLocked(r *Record) error {
	m := &a.blocks
	block := r.Index >> ownerBlockShift
	if m.sessions == nil {
		m.sessions, m.principals = map[string]struct{}{}, map[string]struct{}{}
		m.block = -1
	}
	if block != m.block {
		clear(m.sessions)
		clear(m.principals)
		m.block = block
	}
	for _, o := range [...]struct {
		owner string
		seen  map[string]struct{}
		stmt  int
	}{
		{r.SessionID, m.sessions, stmtSessionBlock},
		{r.Principal, m.principals, stmtPrincipalBlock},
	} {
		if o.owner == "" {
			continue
		}
		if _, ok := o.seen[o.owner]; ok {
			continue
		}
		if err := a.growLocked(len(o.owner)); err != nil {
			return err
		}
		w := a.writer()
		p, n := w.put(o.owner)
		s := a.stmts[o.stmt]
		sqlite3.Xsqlite3_bind_text(a.tls, s, 1, p, n, 0)
		sqlite3.Xsqlite3_bind_int64(a.tls, s, 2, block)
		if err := a.stepLocked(o.stmt); err != nil {
			return err
		}
		o.seen[o.owner] = struct{}{}
	}
	return nil
}
