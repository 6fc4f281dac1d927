package store

import sqlite3 "modernc.org/sqlite/lib"

// blockMemo remembers which sessions, principals and tables already have a
// row in the block tables (0009_audit_owner_blocks.sql,
// 0010_audit_tables_by_event.sql) for the block being appended to, so that
// an event costs map lookups rather than statements. It only saves work:
// the rows are inserted OR IGNORE, so one written by another connection,
// or forgotten here, is merely written again.
type blockMemo struct {
	block      int64 // the block the sets are for; -1 when none
	sessions   map[string]struct{}
	principals map[string]struct{}
	tables     map[string]struct{}
}

// forget drops what the memo knows, for a transaction that failed: its
// rows may have been rolled back.
func (m *blockMemo) forget() {
	m.block = -1
	clear(m.sessions)
	clear(m.principals)
	clear(m.tables)
}

// listBlocksLocked writes the block rows of r's session, principal and
// tables that the memo does not know of.
func (a *sqliteConn) listBlocksLocked(r *Record) error {
	m := &a.blocks
	block := r.Index >> blockShift
	if m.sessions == nil {
		m.sessions, m.principals, m.tables = map[string]struct{}{}, map[string]struct{}{}, map[string]struct{}{}
		m.block = -1
	}
	if block != m.block {
		m.forget()
		m.block = block
	}
	if err := a.listBlockLocked(stmtSessionBlock, m.sessions, r.SessionID, block); err != nil {
		return err
	}
	if err := a.listBlockLocked(stmtPrincipalBlock, m.principals, r.Principal, block); err != nil {
		return err
	}
	for _, t := range r.Tables {
		if err := a.listBlockLocked(stmtTableBlock, m.tables, t, block); err != nil {
			return err
		}
	}
	return nil
}

// listBlockLocked inserts (name, block) with statement stmt unless name is
// empty (an event of no session, say) or seen.
func (a *sqliteConn) listBlockLocked(stmt int, seen map[string]struct{}, name string, block int64) error {
	if name == "" {
		return nil
	}
	if _, ok := seen[name]; ok {
		return nil
	}
	if err := a.growLocked(len(name)); err != nil {
		return err
	}
	w := a.writer()
	p, n := w.put(name)
	s := a.stmts[stmt]
	sqlite3.Xsqlite3_bind_text(a.tls, s, 1, p, n, 0)
	sqlite3.Xsqlite3_bind_int64(a.tls, s, 2, block)
	if err := a.stepLocked(stmt); err != nil {
		return err
	}
	seen[name] = struct{}{}
	return nil
}
