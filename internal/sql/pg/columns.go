package pg

import (
	"slices"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Column facts: how a statement uses column values, for rules that protect
// a column the gateway masks. The masker's column rules find a column by the
// table OID and attribute number PostgreSQL reports in RowDescription, and
// PostgreSQL reports those only for a plain column reference in a SELECT
// list or RETURNING (also through subqueries in FROM and CTEs). Anything
// else — reverse(pan), pan::bytea, (SELECT pan …) as a value, a whole-row
// value, UNION — arrives without them; and a predicate on a column (pan LIKE
// '4111%', ORDER BY pan) leaks its content without returning it at all.
//
// The walker tracks scopes the way PostgreSQL's parser does, without the
// catalog: each SELECT, INSERT, UPDATE, DELETE and MERGE opens a scope that
// holds its FROM items (tables, subqueries, CTE references, functions, joins
// with aliases) under the names the statement may use for them, and sees
// the scopes around it (correlated subqueries, LATERAL). A column reference
// is resolved to "table.column" pairs:
//
//   - qualified (p.pan, public.payments.pan): the FROM item of that name in
//     the innermost scope that has one;
//   - unqualified: every FROM item of every enclosing scope that may hold a
//     column of that name (a table always may). Without the catalog the
//     walker cannot tell which one does, so it attributes the column to all
//     of them: a deny rule then over-matches, the safe side;
//   - through a subquery in FROM or a CTE: to the columns the subquery's
//     output column is made of, by name (or by position under a column
//     alias list), and through SELECT * to "table.column" of the tables it
//     expands; when the names cannot be known (a column alias list over *,
//     a recursive CTE) every output column stands for every source, and a
//     table read through * for "table.*";
//   - otherwise (no FROM item can hold it): to every relation the
//     statement reads, once the whole statement has been walked.
//
// None of this depends on a constant's value except the positions of ORDER
// BY, GROUP BY and DISTINCT ON items; those are handled like constString
// (see ordering), so normalised caching stays correct.

// colCtx says what a column reference met during the walk is used for.
type colCtx uint8

const (
	ctxNone   colCtx = iota // not reported (DDL expressions, plain SELECT-list references)
	ctxOutput               // its value is read through an expression
	ctxFilter               // tested in a predicate other than a lookup
	ctxOrder                // sorted, grouped or partitioned on
	ctxLookup               // compared for equality with a constant or $n (or IS NULL)
)

// relation is one FROM item (or a DML target) in a scope. Exactly one of
// table, derived and members is set, or none for a source whose columns
// come from no table (a function, XMLTABLE, INSERT's EXCLUDED).
type relation struct {
	// names are the ways the statement may qualify its columns: the alias,
	// or the table name bare, with its schema and with its catalog.
	names []string
	table string // normalised table (or view …) name
	// anyColumn is set for a table under a column alias list (FROM
	// payments p(a, b, c)): without the catalog a column name says nothing
	// about which table column it is.
	anyColumn bool
	derived   *derived    // a subquery in FROM, a CTE, VALUES
	members   []*relation // a join with an alias
}

// outCol is one output column of a subquery, with the columns it is made of.
type outCol struct {
	name string
	srcs []string
}

// derived is what a subquery's output columns are made of.
type derived struct {
	cols []outCol
	// stars are the tables (and sources without table columns) whose every
	// column the output carries: SELECT *, SELECT t.*.
	stars []*relation
	// merged is set when output names say nothing (a column alias list
	// over *, a recursive CTE): every name stands for every source.
	merged bool
	// unknown is set when not even the sources are known (a recursive CTE
	// whose sources did not settle): every column stands for every column
	// of every relation the statement reads.
	unknown bool
}

// scope is the FROM items and CTEs one query level sees; parent is the
// level around it.
type scope struct {
	parent *scope
	rels   []*relation
	ctes   map[string]*derived
}

// pendingCol is a column no FROM item could hold, to be attributed to
// every relation the statement reads once the walk is done.
type pendingCol struct {
	ctx colCtx
	col string
}

// target is one output column of a SELECT list or RETURNING, for ORDER BY
// and GROUP BY by name or position.
type target struct {
	name string
	srcs []string
}

func (w *walker) push() *scope {
	s := &scope{parent: w.scope}
	w.scope = s
	return s
}

// enter starts a query level: a new scope, and column references outside
// any clause not reported. The returned function restores the outer level.
func (w *walker) enter() func() {
	ctx, collect, s := w.ctx, w.collect, w.push()
	w.ctx, w.collect = ctxNone, nil
	return func() { w.scope, w.ctx, w.collect = s.parent, ctx, collect }
}

// inCtx walks n with column references counted as c.
func (w *walker) inCtx(c colCtx, n *pg_query.Node) {
	if n == nil || n.Node == nil {
		return
	}
	saved := w.ctx
	w.ctx = c
	w.walk(n)
	w.ctx = saved
}

func (w *walker) inCtxList(c colCtx, list []*pg_query.Node) {
	for _, n := range list {
		w.inCtx(c, n)
	}
}

// query walks a statement that produces rows (SELECT, VALUES, set
// operations, or INSERT/UPDATE/DELETE/MERGE … RETURNING) and returns what
// its output is made of.
func (w *walker) query(n *pg_query.Node) *derived {
	switch v := n.GetNode().(type) {
	case *pg_query.Node_SelectStmt:
		return w.selectStmt(v.SelectStmt, false)
	case *pg_query.Node_InsertStmt:
		return w.insertStmt(v.InsertStmt)
	case *pg_query.Node_UpdateStmt:
		return w.updateStmt(v.UpdateStmt)
	case *pg_query.Node_DeleteStmt:
		return w.deleteStmt(v.DeleteStmt)
	case *pg_query.Node_MergeStmt:
		return w.mergeStmt(v.MergeStmt)
	}
	w.walk(n)
	return &derived{}
}

// selectStmt walks a SELECT, VALUES or set operation. arm is set for an
// operand of UNION, INTERSECT or EXCEPT: PostgreSQL reports no table for a
// set operation's output columns, so even its plain references reach the
// client unseen by column masking and count as expression reads.
func (w *walker) selectStmt(n *pg_query.SelectStmt, arm bool) *derived {
	if n.IntoClause != nil && w.planOnly == 0 {
		w.into(n.IntoClause, pg_query.ObjectType_OBJECT_TABLE)
	}
	leave := w.enter()
	defer leave()
	w.withClause(n.WithClause)
	var out *derived
	var targets []target
	switch {
	case n.Larg != nil || n.Rarg != nil:
		l := w.selectStmt(orEmpty(n.Larg), true)
		r := w.selectStmt(orEmpty(n.Rarg), true)
		out = unionDerived(l, r)
		if !out.merged {
			for _, c := range out.cols {
				targets = append(targets, target(c))
			}
		}
	case len(n.ValuesLists) > 0:
		out = w.values(n.ValuesLists)
	default:
		for _, f := range n.FromClause {
			w.fromItem(f)
		}
		out, targets = w.targetList(n.TargetList)
		w.predicate(n.WhereClause)
		w.ordering(n.GroupClause, targets, true)
		w.predicate(n.HavingClause)
		for _, wd := range n.WindowClause {
			w.window(wd)
		}
		w.ordering(n.DistinctClause, targets, true)
	}
	w.ordering(n.SortClause, targets, true)
	w.inCtx(ctxOutput, n.LimitOffset)
	w.inCtx(ctxOutput, n.LimitCount)
	w.children(n, "into_clause", "with_clause", "larg", "rarg", "values_lists", "from_clause", "target_list",
		"where_clause", "group_clause", "having_clause", "window_clause", "distinct_clause", "sort_clause",
		"limit_offset", "limit_count")
	if arm {
		w.record(ctxOutput, out.all())
	}
	return out
}

func orEmpty(s *pg_query.SelectStmt) *pg_query.SelectStmt {
	if s == nil {
		return &pg_query.SelectStmt{}
	}
	return s
}

// unionDerived combines the operands of a set operation column by column.
func unionDerived(l, r *derived) *derived {
	if l.merged || r.merged || l.unknown || r.unknown || len(l.stars) > 0 || len(r.stars) > 0 {
		return mergedOf(l, r)
	}
	out := &derived{cols: make([]outCol, len(l.cols))}
	for i, c := range l.cols {
		out.cols[i] = outCol{name: c.name, srcs: slices.Clone(c.srcs)}
		if i < len(r.cols) {
			out.cols[i].srcs = appendAll(out.cols[i].srcs, r.cols[i].srcs)
		}
	}
	for i := len(l.cols); i < len(r.cols); i++ {
		out.cols = append(out.cols, outCol{srcs: slices.Clone(r.cols[i].srcs)})
	}
	return out
}

// mergedOf is a derived whose every column stands for every source of ds.
func mergedOf(ds ...*derived) *derived {
	out := &derived{merged: true}
	var all []string
	for _, d := range ds {
		out.unknown = out.unknown || d.unknown
		all = appendAll(all, d.all())
	}
	out.cols = []outCol{{srcs: all}}
	return out
}

func appendAll(dst, src []string) []string {
	for _, s := range src {
		dst = appendUnique(dst, s)
	}
	return dst
}

// all lists every source of d's output: its columns' sources and "table.*"
// for every table expanded by *. For an unknown derived it is "*", which
// the end of the walk attributes to every relation read.
func (d *derived) all() []string {
	if d.unknown {
		return []string{"*"}
	}
	var out []string
	for _, c := range d.cols {
		out = appendAll(out, c.srcs)
	}
	for _, r := range d.stars {
		if r.table != "" {
			out = appendUnique(out, r.table+".*")
		}
	}
	return out
}

// values walks VALUES lists; column i of the output is made of whatever
// the i-th expressions of the rows reference.
func (w *walker) values(lists []*pg_query.Node) *derived {
	out := &derived{}
	for _, l := range lists {
		items := l.GetList().GetItems()
		for i, it := range items {
			for len(out.cols) <= i {
				out.cols = append(out.cols, outCol{name: "column" + strconv.Itoa(len(out.cols)+1)})
			}
			w.collecting(&out.cols[i].srcs, func() { w.inCtx(ctxOutput, it) })
		}
	}
	return out
}

// collecting runs f with every recorded source also appended to dst.
func (w *walker) collecting(dst *[]string, f func()) {
	saved := w.collect
	w.collect = dst
	f()
	w.collect = saved
}

// targetList walks a SELECT list or RETURNING. Plain column references
// (pan, p.pan, *, p.*) are what column masking sees; every other expression
// is an expression read of the columns it references.
func (w *walker) targetList(list []*pg_query.Node) (*derived, []target) {
	out := &derived{}
	targets := make([]target, 0, len(list))
	for _, n := range list {
		rt := n.GetResTarget()
		if rt == nil || rt.Val == nil {
			w.inCtx(ctxOutput, n)
			continue
		}
		t := target{name: rt.Name}
		cr := rt.Val.GetColumnRef()
		switch {
		case cr != nil && len(rt.Indirection) == 0 && isStar(cr):
			before := len(out.cols)
			rels := w.starRels(cr)
			for _, r := range rels {
				expand(out, r)
			}
			var srcs []string
			for _, c := range out.cols[before:] {
				srcs = appendAll(srcs, c.srcs)
			}
			for _, r := range rels {
				srcs = appendAll(srcs, r.allColumns())
			}
			targets = append(targets, target{srcs: srcs})
			continue
		case cr != nil && len(rt.Indirection) == 0:
			t.srcs = w.resolve(cr)
			if t.name == "" {
				t.name = lastField(cr)
			}
		default:
			w.collecting(&t.srcs, func() {
				w.inCtx(ctxOutput, rt.Val)
				w.inCtxList(ctxOutput, rt.Indirection)
			})
			if t.name == "" {
				t.name = colName(rt.Val)
			}
		}
		out.cols = append(out.cols, outCol(t))
		targets = append(targets, t)
	}
	return out, targets
}

// setList walks UPDATE … SET, ON CONFLICT DO UPDATE SET and MERGE's UPDATE
// SET and INSERT column lists. Every value counts as an expression read,
// plain column references included: SET note = p.pan copies the card number
// into a column no masking rule knows.
func (w *walker) setList(list []*pg_query.Node) {
	for _, n := range list {
		rt := n.GetResTarget()
		if rt == nil {
			w.inCtx(ctxOutput, n)
			continue
		}
		w.inCtx(ctxOutput, rt.Val)
		w.inCtxList(ctxOutput, rt.Indirection)
	}
}

// expand adds what SELECT * over r outputs to out.
func expand(out *derived, r *relation) {
	switch {
	case r.derived != nil:
		d := r.derived
		out.cols = append(out.cols, d.cols...)
		out.stars = append(out.stars, d.stars...)
		out.merged = out.merged || d.merged
		out.unknown = out.unknown || d.unknown
	case r.members != nil:
		for _, m := range r.members {
			expand(out, m)
		}
	default:
		out.stars = append(out.stars, r)
	}
}

// allColumns is every column of r as sources ("table.*" for a table).
func (r *relation) allColumns() []string {
	switch {
	case r.derived != nil:
		return r.derived.all()
	case r.members != nil:
		var out []string
		for _, m := range r.members {
			out = appendAll(out, m.allColumns())
		}
		return out
	case r.table != "":
		return []string{r.table + ".*"}
	}
	return nil
}

// column resolves column name c in r: its sources, and whether r may hold
// a column of that name.
func (r *relation) column(c string) ([]string, bool) {
	switch {
	case r.derived != nil:
		d := r.derived
		if d.unknown {
			return []string{"*"}, true
		}
		if d.merged {
			return d.all(), true
		}
		var srcs []string
		found := false
		for _, oc := range d.cols {
			if oc.name == c {
				srcs, found = appendAll(srcs, oc.srcs), true
			}
		}
		for _, s := range d.stars {
			if s.table != "" {
				srcs = appendUnique(srcs, s.table+"."+c)
			}
			found = true
		}
		return srcs, found
	case r.members != nil:
		var srcs []string
		found := false
		for _, m := range r.members {
			s, ok := m.column(c)
			srcs, found = appendAll(srcs, s), found || ok
		}
		return srcs, found
	case r.table != "":
		if r.anyColumn {
			return []string{r.table + ".*"}, true
		}
		return []string{r.table + "." + c}, true
	}
	return nil, true
}

// wholeRow records r read as one composite value and returns its sources.
func (w *walker) wholeRow(r *relation) []string {
	switch {
	case r.table != "":
		add(&w.st.WholeRowReads, r.table)
	case r.derived != nil:
		for _, s := range r.derived.stars {
			if s.table != "" {
				add(&w.st.WholeRowReads, s.table)
			}
		}
	case r.members != nil:
		for _, m := range r.members {
			w.wholeRow(m)
		}
	}
	return r.allColumns()
}

func isStar(cr *pg_query.ColumnRef) bool {
	return len(cr.Fields) > 0 && cr.Fields[len(cr.Fields)-1].GetAStar() != nil
}

// fieldNames returns the String fields of a column reference (without a
// trailing *).
func fieldNames(cr *pg_query.ColumnRef) []string {
	out := make([]string, 0, len(cr.Fields))
	for _, f := range cr.Fields {
		if s := f.GetString_(); s != nil {
			out = append(out, s.Sval)
		}
	}
	return out
}

func lastField(cr *pg_query.ColumnRef) string {
	names := fieldNames(cr)
	if len(names) == 0 {
		return ""
	}
	return names[len(names)-1]
}

// colName is PostgreSQL's name for an unnamed output expression, as far
// as an outer query may refer to it (FigureColname, simplified).
func colName(n *pg_query.Node) string {
	switch v := n.GetNode().(type) {
	case *pg_query.Node_ColumnRef:
		return lastField(v.ColumnRef)
	case *pg_query.Node_AIndirection:
		for i := len(v.AIndirection.Indirection) - 1; i >= 0; i-- {
			if s := v.AIndirection.Indirection[i].GetString_(); s != nil {
				return s.Sval
			}
		}
		return colName(v.AIndirection.Arg)
	case *pg_query.Node_FuncCall:
		_, bare := splitLast(nameList(v.FuncCall.Funcname))
		return bare
	case *pg_query.Node_TypeCast:
		if name := colName(v.TypeCast.Arg); name != "?column?" {
			return name
		}
		_, bare := splitLast(nameList(v.TypeCast.TypeName.GetNames()))
		return bare
	case *pg_query.Node_CaseExpr:
		return "case"
	}
	return "?column?"
}

// findRels returns the FROM items named qual in the innermost scope that
// has one.
func (w *walker) findRels(qual string) []*relation {
	for s := w.scope; s != nil; s = s.parent {
		var out []*relation
		for _, r := range s.rels {
			if slices.Contains(r.names, qual) {
				out = append(out, r)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

// starRels returns what * (every FROM item of the innermost scope that has
// any) or t.* stands for.
func (w *walker) starRels(cr *pg_query.ColumnRef) []*relation {
	names := fieldNames(cr)
	if len(names) > 0 {
		return w.findRels(strings.Join(names, "."))
	}
	for s := w.scope; s != nil; s = s.parent {
		var out []*relation
		for _, r := range s.rels {
			if r.members == nil { // a join's members are in the scope themselves
				out = append(out, r)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

// resolve returns the sources of a column reference. A reference that
// names a whole row (p, p.*, public.payments) is recorded in
// whole_row_reads and its columns as read through an expression: a row
// value's text carries them unmasked.
func (w *walker) resolve(cr *pg_query.ColumnRef) []string {
	names := fieldNames(cr)
	var srcs []string
	if isStar(cr) {
		for _, r := range w.starRels(cr) {
			srcs = appendAll(srcs, w.wholeRow(r))
		}
		w.recordWholeRow(srcs)
		return srcs
	}
	if len(names) == 0 {
		return nil
	}
	var whole []string
	for _, r := range w.findRels(strings.Join(names, ".")) {
		whole = appendAll(whole, w.wholeRow(r))
	}
	w.recordWholeRow(whole)
	col := names[len(names)-1]
	if len(names) == 1 {
		found := false
		for s := w.scope; s != nil; s = s.parent {
			for _, r := range s.rels {
				if r.members != nil {
					continue // its members are in the scope themselves
				}
				if c, ok := r.column(col); ok {
					srcs, found = appendAll(srcs, c), true
				}
			}
		}
		if !found && len(whole) == 0 {
			srcs = append(srcs, col)
		}
		return appendAll(srcs, whole)
	}
	// qualifier.column, and beyond it fields of a composite column.
	for k := len(names) - 1; k >= 1; k-- {
		rels := w.findRels(strings.Join(names[:k], "."))
		if len(rels) == 0 {
			continue
		}
		for _, r := range rels {
			c, _ := r.column(names[k])
			srcs = appendAll(srcs, c)
		}
		return appendAll(srcs, whole)
	}
	if len(whole) == 0 {
		srcs = append(srcs, col) // unknown qualifier
	}
	return appendAll(srcs, whole)
}

// recordWholeRow records the columns of a whole-row value as read through
// an expression (in a predicate, as filtered).
func (w *walker) recordWholeRow(srcs []string) {
	switch w.ctx {
	case ctxFilter, ctxOrder:
		w.record(w.ctx, srcs)
	case ctxLookup:
		w.record(ctxFilter, srcs)
	default:
		w.record(ctxOutput, srcs)
	}
}

// columnRef records a column reference met inside an expression.
func (w *walker) columnRef(cr *pg_query.ColumnRef) {
	if w.ctx == ctxNone {
		return
	}
	w.record(w.ctx, w.resolve(cr))
}

// record adds sources to the fact lists of c (and to the collector of the
// SELECT-list entry being walked). A bare name, which no FROM item could
// hold, waits for the end of the walk.
func (w *walker) record(c colCtx, srcs []string) {
	if len(srcs) == 0 {
		return
	}
	if w.collect != nil {
		*w.collect = appendAll(*w.collect, srcs)
	}
	for _, s := range srcs {
		if !strings.Contains(s, ".") {
			w.pending = append(w.pending, pendingCol{c, s})
		}
		w.addColumn(c, s)
	}
}

func (w *walker) addColumn(c colCtx, s string) {
	st := w.st
	switch c {
	case ctxOutput:
		addColumn(&st.ColumnExprs, s)
	case ctxFilter, ctxOrder:
		addColumn(&st.FilterColumns, s)
		addColumn(&st.FilterExprs, s)
	case ctxLookup:
		addColumn(&st.FilterColumns, s)
	}
}

// addColumn adds "table.column" and the bare column name. A bare "*" (some
// column of an unknown relation) is left to finishColumns.
func addColumn(list *[]string, s string) {
	if s == "*" {
		return
	}
	add(list, s)
	if i := strings.LastIndexByte(s, '.'); i >= 0 && s[i+1:] != "*" {
		add(list, s[i+1:])
	}
}

// finishColumns attributes the columns no FROM item could hold to every
// relation the statement reads.
func (w *walker) finishColumns() {
	for _, p := range w.pending {
		for _, r := range w.st.Reads {
			w.addColumn(p.ctx, r+"."+p.col)
		}
	}
	w.pending = nil
}

// predicate walks a WHERE, ON or HAVING condition. A top-level (ANDed)
// lookup — column = constant or $n, column IS [NOT] NULL — records its
// column as a lookup; everything else as filtered.
func (w *walker) predicate(n *pg_query.Node) {
	if n == nil || n.Node == nil {
		return
	}
	if b := n.GetBoolExpr(); b != nil && b.Boolop == pg_query.BoolExprType_AND_EXPR {
		for _, a := range b.Args {
			w.predicate(a)
		}
		return
	}
	if cr, other := lookup(n); cr != nil {
		saved := w.ctx
		w.ctx = ctxLookup
		w.record(ctxLookup, w.resolve(cr))
		w.ctx = saved
		w.inCtx(ctxFilter, other)
		return
	}
	w.inCtx(ctxFilter, n)
}

// lookup recognises column = constant (either way round, constants and $n
// possibly cast) and column IS [NOT] NULL, returning the column reference
// and the other side.
func lookup(n *pg_query.Node) (*pg_query.ColumnRef, *pg_query.Node) {
	switch v := n.GetNode().(type) {
	case *pg_query.Node_AExpr:
		e := v.AExpr
		if e.Kind != pg_query.A_Expr_Kind_AEXPR_OP {
			return nil, nil
		}
		if op := nameList(e.Name); op != "=" && op != "pg_catalog.=" {
			return nil, nil
		}
		if cr := e.Lexpr.GetColumnRef(); cr != nil && !isStar(cr) && isConstant(e.Rexpr) {
			return cr, e.Rexpr
		}
		if cr := e.Rexpr.GetColumnRef(); cr != nil && !isStar(cr) && isConstant(e.Lexpr) {
			return cr, e.Lexpr
		}
	case *pg_query.Node_NullTest:
		if cr := v.NullTest.Arg.GetColumnRef(); cr != nil && !isStar(cr) {
			return cr, nil
		}
	}
	return nil, nil
}

func isConstant(n *pg_query.Node) bool {
	switch v := n.GetNode().(type) {
	case *pg_query.Node_AConst, *pg_query.Node_ParamRef:
		return true
	case *pg_query.Node_TypeCast:
		return isConstant(v.TypeCast.Arg)
	}
	return false
}

// ordering walks ORDER BY, GROUP BY or DISTINCT ON items (positional: an
// integer names an output column, and so may a bare name) or a window's
// PARTITION BY and ORDER BY. Sorting and grouping compare values, so the
// columns count as filtered: ORDER BY pan orders rows by card number.
func (w *walker) ordering(items []*pg_query.Node, targets []target, positional bool) {
	for _, it := range items {
		n := it
		if sb := it.GetSortBy(); sb != nil {
			n = sb.Node
			w.children(sb, "node")
		}
		if gs := n.GetGroupingSet(); gs != nil {
			w.ordering(gs.Content, targets, positional)
			continue
		}
		if positional {
			if c := n.GetAConst(); c != nil && c.GetIval() != nil {
				if k := int(c.GetIval().Ival); k >= 1 && k <= len(targets) {
					w.record(ctxOrder, targets[k-1].srcs)
				}
				continue
			}
			if n.GetParamRef() != nil {
				// Normalize may turn a position (DISTINCT ON (1)) into $n;
				// which column it names depends on the constant.
				if w.normalized {
					w.err = errNeedRaw
					return
				}
				w.paramDependent = true
			}
			if cr := n.GetColumnRef(); cr != nil && len(cr.Fields) == 1 {
				name := lastField(cr)
				for _, t := range targets {
					if t.name == name {
						w.record(ctxOrder, t.srcs)
					}
				}
			}
		}
		w.inCtx(ctxOrder, n)
	}
}

func (w *walker) window(n *pg_query.Node) {
	wd := n.GetWindowDef()
	if wd == nil {
		w.inCtx(ctxOrder, n)
		return
	}
	w.ordering(wd.PartitionClause, nil, false)
	w.ordering(wd.OrderClause, nil, false)
	w.children(wd, "partition_clause", "order_clause")
}

// fromItem walks one FROM item, adds what it makes visible to the current
// scope and returns it.
func (w *walker) fromItem(n *pg_query.Node) *relation {
	var r *relation
	switch v := n.GetNode().(type) {
	case *pg_query.Node_RangeVar:
		w.walk(n)
		r = w.rangeVarRel(v.RangeVar)
	case *pg_query.Node_RangeSubselect:
		rs := v.RangeSubselect
		d := w.query(rs.Subquery)
		r = &relation{derived: renamed(d, rs.Alias.GetColnames()), names: aliasNames(rs.Alias)}
		w.children(rs, "subquery")
	case *pg_query.Node_JoinExpr:
		return w.join(v.JoinExpr)
	case *pg_query.Node_RangeFunction:
		rf := v.RangeFunction
		w.inCtxList(ctxOutput, rf.Functions)
		w.children(rf, "functions")
		r = &relation{names: aliasNames(rf.Alias)}
	case *pg_query.Node_RangeTableSample:
		ts := v.RangeTableSample
		r = w.fromItem(ts.Relation)
		w.children(ts, "relation")
		return r
	case *pg_query.Node_RangeTableFunc:
		w.inCtx(ctxOutput, n)
		r = &relation{names: aliasNames(v.RangeTableFunc.Alias)}
	case *pg_query.Node_JsonTable:
		w.inCtx(ctxOutput, n)
		r = &relation{names: aliasNames(v.JsonTable.Alias)}
	default:
		w.inCtx(ctxOutput, n)
		return &relation{}
	}
	w.scope.rels = append(w.scope.rels, r)
	return r
}

// join walks a JoinExpr: both sides join the scope; USING and NATURAL
// compare columns like ON does.
func (w *walker) join(j *pg_query.JoinExpr) *relation {
	l, r := w.fromItem(j.Larg), w.fromItem(j.Rarg)
	for _, u := range j.UsingClause {
		if s := u.GetString_(); s != nil {
			a, _ := l.column(s.Sval)
			b, _ := r.column(s.Sval)
			w.record(ctxFilter, appendAll(a, b))
		}
	}
	if j.IsNatural {
		// Compares every column the two sides have in common, which only
		// the catalog knows.
		w.record(ctxFilter, appendAll(l.allColumns(), r.allColumns()))
	}
	w.predicate(j.Quals)
	w.children(j, "larg", "rarg", "quals")
	jr := &relation{members: []*relation{l, r}}
	if j.Alias != nil || j.JoinUsingAlias != nil {
		jr.names = append(aliasNames(j.Alias), aliasNames(j.JoinUsingAlias)...)
		w.scope.rels = append(w.scope.rels, jr)
	}
	return jr
}

func aliasNames(a *pg_query.Alias) []string {
	if a == nil || a.Aliasname == "" {
		return nil
	}
	return []string{a.Aliasname}
}

// rangeVarRel is the relation a RangeVar in FROM (or a DML target) makes
// visible: a CTE when an unqualified name matches one in scope, a table
// otherwise.
func (w *walker) rangeVarRel(rv *pg_query.RangeVar) *relation {
	r := &relation{}
	if rv.Alias != nil {
		r.names = []string{rv.Alias.Aliasname}
	} else {
		r.names = []string{rv.Relname}
		if rv.Schemaname != "" {
			r.names = append(r.names, rv.Schemaname+"."+rv.Relname)
			if rv.Catalogname != "" {
				r.names = append(r.names, rv.Catalogname+"."+rv.Schemaname+"."+rv.Relname)
			}
		}
	}
	colnames := rv.Alias.GetColnames()
	if rv.Schemaname == "" && rv.Catalogname == "" {
		if d := w.cte(rv.Relname); d != nil {
			r.derived = renamed(d, colnames)
			return r
		}
	}
	r.table = rangeVarName(rv)
	r.anyColumn = len(colnames) > 0
	return r
}

// cte returns the CTE named name visible from the current scope.
func (w *walker) cte(name string) *derived {
	for s := w.scope; s != nil; s = s.parent {
		if d, ok := s.ctes[name]; ok {
			return d
		}
	}
	return nil
}

// renamed applies a column alias list to d's output columns by position.
func renamed(d *derived, names []*pg_query.Node) *derived {
	if len(names) == 0 {
		return d
	}
	if len(d.stars) > 0 || d.merged || d.unknown {
		// Where * expands to is not known, so neither are positions.
		return mergedOf(d)
	}
	c := &derived{cols: slices.Clone(d.cols)}
	for i, n := range names {
		if s := n.GetString_(); s != nil && i < len(c.cols) {
			c.cols[i].name = s.Sval
		}
	}
	return c
}

// maxRecursivePasses bounds how often a WITH RECURSIVE list is walked
// while the sources of its CTEs grow.
const maxRecursivePasses = 3

// withClause walks a WITH list and makes its CTEs visible in the current
// scope.
func (w *walker) withClause(wc *pg_query.WithClause) {
	if wc == nil {
		return
	}
	sc := w.scope
	if sc.ctes == nil {
		sc.ctes = make(map[string]*derived, len(wc.Ctes))
	}
	if !wc.Recursive {
		for _, n := range wc.Ctes {
			cte := n.GetCommonTableExpr()
			if cte == nil {
				w.walk(n)
				continue
			}
			sc.ctes[cte.Ctename] = renamed(w.cteQuery(cte), cte.Aliascolnames)
		}
		return
	}
	// WITH RECURSIVE: a CTE may read itself and any other of the list, so
	// each is merged (every column stands for every source) and the list
	// walked again until no CTE gains a source. If that does not settle
	// quickly, the CTEs become unknown — every column of every relation
	// the statement reads — and the list is walked once more with that.
	//
	// A WITH RECURSIVE inside another one's passes starts unknown and is
	// walked once: repeated passes at every level would cost exponential
	// time in the nesting depth.
	ph := make(map[string]*derived, len(wc.Ctes))
	for _, n := range wc.Ctes {
		if cte := n.GetCommonTableExpr(); cte != nil {
			d := &derived{merged: true, cols: []outCol{{}}, unknown: w.inRecursive}
			ph[cte.Ctename], sc.ctes[cte.Ctename] = d, d
		}
	}
	outer := w.inRecursive
	w.inRecursive = true
	defer func() { w.inRecursive = outer }()
	for pass := 0; ; pass++ {
		changed := false
		for _, n := range wc.Ctes {
			cte := n.GetCommonTableExpr()
			if cte == nil {
				w.walk(n)
				continue
			}
			got := w.cteQuery(cte)
			d := ph[cte.Ctename]
			before := len(d.cols[0].srcs)
			d.cols[0].srcs = appendAll(d.cols[0].srcs, got.all())
			if got.unknown && !d.unknown {
				d.unknown, changed = true, true
			}
			changed = changed || len(d.cols[0].srcs) != before
		}
		if !changed || w.err != nil || pass == maxRecursivePasses || outer {
			break
		}
		if pass == maxRecursivePasses-1 {
			for _, d := range ph {
				d.unknown = true
			}
		}
	}
}

// cteQuery walks one CTE's query.
func (w *walker) cteQuery(cte *pg_query.CommonTableExpr) *derived {
	switch cte.Ctequery.GetNode().(type) {
	case *pg_query.Node_InsertStmt, *pg_query.Node_UpdateStmt, *pg_query.Node_DeleteStmt, *pg_query.Node_MergeStmt:
		if w.planOnly == 0 {
			w.st.ModifyingCTE = true
		}
	}
	d := w.query(cte.Ctequery)
	w.children(cte, "ctequery")
	return d
}

// targetRel adds the target table of a DML statement to the scope.
func (w *walker) targetRel(rv *pg_query.RangeVar) {
	if rv == nil {
		return
	}
	r := &relation{table: rangeVarName(rv), names: []string{rv.Relname}}
	if rv.Alias != nil {
		r.names = []string{rv.Alias.Aliasname}
	} else if rv.Schemaname != "" {
		r.names = append(r.names, rv.Schemaname+"."+rv.Relname)
	}
	w.scope.rels = append(w.scope.rels, r)
}

func (w *walker) insertStmt(n *pg_query.InsertStmt) *derived {
	st := w.st
	name := rangeVarName(n.Relation)
	if w.planOnly > 0 {
		add(&st.Reads, name)
	} else {
		add(&st.Inserts, name)
		if oc := n.OnConflictClause; oc != nil && oc.Action == pg_query.OnConflictAction_ONCONFLICT_UPDATE {
			add(&st.Updates, name)
		}
	}
	leave := w.enter()
	defer leave()
	w.withClause(n.WithClause)
	if n.SelectStmt != nil {
		w.query(n.SelectStmt)
	}
	w.targetRel(n.Relation)
	if oc := n.OnConflictClause; oc != nil {
		// EXCLUDED holds the row the client proposed.
		w.scope.rels = append(w.scope.rels, &relation{names: []string{"excluded"}})
		w.setList(oc.TargetList)
		w.predicate(oc.WhereClause)
		w.children(oc, "target_list", "where_clause")
	}
	out, _ := w.targetList(n.ReturningList)
	w.children(n, "relation", "select_stmt", "on_conflict_clause", "returning_list", "with_clause")
	return out
}

func (w *walker) updateStmt(n *pg_query.UpdateStmt) *derived {
	w.target(&w.st.Updates, n.Relation)
	leave := w.enter()
	defer leave()
	w.withClause(n.WithClause)
	w.targetRel(n.Relation)
	for _, f := range n.FromClause {
		w.fromItem(f)
	}
	w.setList(n.TargetList)
	w.predicate(n.WhereClause)
	out, _ := w.targetList(n.ReturningList)
	w.children(n, "relation", "target_list", "where_clause", "from_clause", "returning_list", "with_clause")
	return out
}

func (w *walker) deleteStmt(n *pg_query.DeleteStmt) *derived {
	w.target(&w.st.Deletes, n.Relation)
	leave := w.enter()
	defer leave()
	w.withClause(n.WithClause)
	w.targetRel(n.Relation)
	for _, f := range n.UsingClause {
		w.fromItem(f)
	}
	w.predicate(n.WhereClause)
	out, _ := w.targetList(n.ReturningList)
	w.children(n, "relation", "using_clause", "where_clause", "returning_list", "with_clause")
	return out
}

func (w *walker) mergeStmt(n *pg_query.MergeStmt) *derived {
	st := w.st
	name := rangeVarName(n.Relation)
	add(&st.Reads, name) // MERGE reads its target to match rows
	for _, c := range n.MergeWhenClauses {
		wc := c.GetMergeWhenClause()
		if wc == nil {
			continue
		}
		action := strings.ToLower(strings.TrimPrefix(wc.CommandType.String(), "CMD_"))
		if w.planOnly == 0 {
			add(&st.MergeActions, action)
		}
		switch wc.CommandType {
		case pg_query.CmdType_CMD_UPDATE:
			w.target(&st.Updates, n.Relation)
		case pg_query.CmdType_CMD_INSERT:
			w.target(&st.Inserts, n.Relation)
		case pg_query.CmdType_CMD_DELETE:
			w.target(&st.Deletes, n.Relation)
		}
	}
	leave := w.enter()
	defer leave()
	w.withClause(n.WithClause)
	w.targetRel(n.Relation)
	w.fromItem(n.SourceRelation)
	w.predicate(n.JoinCondition)
	for _, c := range n.MergeWhenClauses {
		wc := c.GetMergeWhenClause()
		if wc == nil {
			w.walk(c)
			continue
		}
		w.predicate(wc.Condition)
		w.setList(wc.TargetList)
		w.inCtxList(ctxOutput, wc.Values)
		w.children(wc, "condition", "target_list", "values")
	}
	out, _ := w.targetList(n.ReturningList)
	w.children(n, "relation", "source_relation", "join_condition", "merge_when_clauses", "returning_list", "with_clause")
	return out
}

// subLink walks a subquery used as a value or in a test. Its output is
// consumed by the expression around it (EXISTS excepted), which column
// masking never sees: a plain SELECT pan inside counts as an expression
// read (in a predicate, as filtered), wherever the subquery is.
func (w *walker) subLink(n *pg_query.SubLink) {
	w.walk(n.Testexpr)
	d := w.query(n.Subselect)
	if n.SubLinkType != pg_query.SubLinkType_EXISTS_SUBLINK {
		c := w.ctx
		switch c {
		case ctxLookup:
			c = ctxFilter
		case ctxNone: // TABLESAMPLE arguments and the like: still a value
			c = ctxOutput
		}
		w.record(c, d.all())
	}
	w.children(n, "testexpr", "subselect")
}
