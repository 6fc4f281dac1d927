package pg

import "slices"

// PreparedSet is one session's prepared statements by name, so that
// EXECUTE name can be judged by what name was prepared as. SQL-level PREPARE
// and the extended protocol's named Parse share one namespace in PostgreSQL,
// and so must callers: record both here. A PreparedSet belongs to one
// session and is not safe for concurrent use.
type PreparedSet struct {
	m map[string]*Statement
}

// NewPreparedSet returns an empty set.
func NewPreparedSet() *PreparedSet {
	return &PreparedSet{m: make(map[string]*Statement)}
}

// Prepare records name as prepared with the facts of stmts (normally one
// statement: the inner statement of PREPARE, or the query of a Parse
// message). Call it once the server has accepted the statement. Several
// statements are merged, so nothing is lost if a caller passes more.
func (ps *PreparedSet) Prepare(name string, stmts ...*Statement) {
	merged := &Statement{Command: "PREPARE", Prepare: Prepare{Name: name}}
	for _, st := range stmts {
		if st == nil {
			continue
		}
		if len(stmts) == 1 && st.Command != "PREPARE" {
			merged.Command = st.Command
		}
		mergeFacts(merged, st)
	}
	ps.m[name] = merged
}

// Lookup returns the facts name was prepared with.
func (ps *PreparedSet) Lookup(name string) (*Statement, bool) {
	st, ok := ps.m[name]
	return st, ok
}

// Deallocate forgets name.
func (ps *PreparedSet) Deallocate(name string) { delete(ps.m, name) }

// DeallocateAll forgets every name (DEALLOCATE ALL, DISCARD ALL).
func (ps *PreparedSet) DeallocateAll() { clear(ps.m) }

// Apply updates the set after st has run successfully: PREPARE records,
// DEALLOCATE and DISCARD ALL forget.
func (ps *PreparedSet) Apply(st *Statement) {
	switch {
	case st.Prepare.Name != "":
		ps.Prepare(st.Prepare.Name, st)
	case st.Deallocate.All:
		ps.DeallocateAll()
	case st.Deallocate.Name != "":
		ps.Deallocate(st.Deallocate.Name)
	}
}

// Resolve returns the facts of st with those of the prepared statement it
// EXECUTEs merged in (EXECUTE, EXPLAIN ANALYZE EXECUTE, CREATE TABLE AS
// EXECUTE). st itself is returned when it executes nothing. An unknown name
// yields a copy flagged Opaque: the server would reject it, but Gatehouse's
// view of the session may lag the server's (a Parse it never saw), so the
// safe answer is that the effect is unknown.
func (a *Analyzer) Resolve(st *Statement, ps *PreparedSet) *Statement {
	if st == nil || st.Execute.Name == "" || st.Execute.Resolved {
		return st
	}
	out := cloneStatement(st)
	out.Execute.Resolved = true
	var prep *Statement
	if ps != nil {
		prep, _ = ps.Lookup(st.Execute.Name)
	}
	if prep == nil {
		if !out.Opaque {
			out.Opaque, out.OpaqueReason = true, "EXECUTE of unknown prepared statement "+st.Execute.Name
		}
		return out
	}
	mergeFacts(out, prep)
	return out
}

// cloneStatement copies st deeply enough that appending to or changing the
// copy leaves st alone.
func cloneStatement(st *Statement) *Statement {
	c := *st
	c.marshalled = nil // the copy is for changing
	c.Reads = slices.Clone(st.Reads)
	c.Inserts = slices.Clone(st.Inserts)
	c.Updates = slices.Clone(st.Updates)
	c.Deletes = slices.Clone(st.Deletes)
	c.Truncates = slices.Clone(st.Truncates)
	c.Drops = slices.Clone(st.Drops)
	c.Alters = slices.Clone(st.Alters)
	c.Renames = slices.Clone(st.Renames)
	c.Creates = slices.Clone(st.Creates)
	c.Objects = slices.Clone(st.Objects)
	c.Functions = slices.Clone(st.Functions)
	c.ColumnExprs = slices.Clone(st.ColumnExprs)
	c.WholeRowReads = slices.Clone(st.WholeRowReads)
	c.FilterColumns = slices.Clone(st.FilterColumns)
	c.FilterExprs = slices.Clone(st.FilterExprs)
	c.Privileges = slices.Clone(st.Privileges)
	c.Roles = slices.Clone(st.Roles)
	c.Settings = slices.Clone(st.Settings)
	c.MergeActions = slices.Clone(st.MergeActions)
	c.Into.Reads = slices.Clone(st.Into.Reads)
	return &c
}

// mergeFacts adds src's facts to dst: lists are unioned, flags ORed, and the
// first COPY/INTO description kept. Command, Prepare, Execute and
// Deallocate stay dst's own.
func mergeFacts(dst, src *Statement) {
	union := func(d *[]string, s []string) {
		for _, x := range s {
			add(d, x)
		}
	}
	union(&dst.Reads, src.Reads)
	union(&dst.Inserts, src.Inserts)
	union(&dst.Updates, src.Updates)
	union(&dst.Deletes, src.Deletes)
	union(&dst.Truncates, src.Truncates)
	union(&dst.Drops, src.Drops)
	union(&dst.Alters, src.Alters)
	union(&dst.Renames, src.Renames)
	union(&dst.Creates, src.Creates)
	union(&dst.Functions, src.Functions)
	union(&dst.ColumnExprs, src.ColumnExprs)
	union(&dst.WholeRowReads, src.WholeRowReads)
	union(&dst.FilterColumns, src.FilterColumns)
	union(&dst.FilterExprs, src.FilterExprs)
	union(&dst.Settings, src.Settings)
	union(&dst.MergeActions, src.MergeActions)
	dst.Objects = append(dst.Objects, src.Objects...)
	dst.Privileges = append(dst.Privileges, src.Privileges...)
	dst.Roles = append(dst.Roles, src.Roles...)
	dst.Logging = dst.Logging || src.Logging
	dst.ModifyingCTE = dst.ModifyingCTE || src.ModifyingCTE
	dst.ExplainAnalyze = dst.ExplainAnalyze || src.ExplainAnalyze
	if dst.Copy == (Copy{}) {
		dst.Copy = src.Copy
	}
	if dst.Into.Target == "" {
		dst.Into = src.Into
		dst.Into.Reads = slices.Clone(src.Into.Reads)
	}
	if src.Opaque && !dst.Opaque {
		dst.Opaque, dst.OpaqueReason = true, src.OpaqueReason
	}
	if src.ParseError && !dst.ParseError {
		dst.ParseError, dst.Error = true, src.Error
	}
}
