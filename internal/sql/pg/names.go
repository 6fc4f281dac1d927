package pg

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// MatchName reports whether the normalised object name (as found in a
// Statement) matches pattern.
//
//   - An unqualified pattern ("payments") matches the name in any schema:
//     "payments", "public.payments", "evil.payments", "shop.public.payments".
//     Without the catalog Gatehouse cannot know which schema search_path
//     resolves an unqualified name to, so it over-matches: for a deny or
//     review rule that is the safe side.
//   - A qualified pattern ("public.payments") matches that qualified name and
//     also the bare name "payments", which search_path may resolve to it.
//   - A pattern ending in "*" matches names whose last part starts with the
//     rest ("dblink*" matches "dblink_exec" and "public.dblink").
//
// Comparison is exact otherwise: a quoted "Payments" is a different table
// from payments in PostgreSQL, and MatchName agrees.
func MatchName(name, pattern string) bool {
	if name == pattern {
		return true
	}
	pSchema, pBare := splitLast(pattern)
	nSchema, nBare := splitLast(name)
	if pre, ok := strings.CutSuffix(pBare, "*"); ok {
		if !strings.HasPrefix(nBare, pre) {
			return false
		}
	} else if nBare != pBare {
		return false
	}
	if pSchema == "" || nSchema == "" {
		return true
	}
	// Both qualified: the schema parts must agree, allowing the name to carry
	// a catalog ("shop.public.payments" against "public.payments").
	return nSchema == pSchema || strings.HasSuffix(nSchema, "."+pSchema)
}

// MatchColumn reports whether a column as a Statement's column facts list
// it ("payments.pan", "public.payments.pan", "payments.*" for any column of
// payments, or a bare "pan") matches pattern.
//
//   - A qualified pattern ("payments.pan", "public.payments.pan") matches
//     entries for that column, or for any column ("payments.*"), of a table
//     matching the pattern's table by MatchName. Bare entries never match
//     it: the analyser lists every column it can attribute with its table,
//     and attributes one it cannot to every relation the statement reads, so
//     a bare "pan" also appears as "payments.pan" exactly when the
//     statement reads payments.
//   - A bare pattern ("pan") matches that column, or any column, of any
//     table, and the bare entry.
//   - A pattern "payments.*" matches every column of payments.
func MatchColumn(name, pattern string) bool {
	pRel, pCol := splitLast(pattern)
	nRel, nCol := splitLast(name)
	if nCol != pCol && nCol != "*" && pCol != "*" {
		return false
	}
	if pRel == "" {
		return true
	}
	return nRel != "" && MatchName(nRel, pRel)
}

// splitLast splits "a.b.c" into "a.b" and "c".
func splitLast(s string) (qual, last string) {
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return "", s
}

// rangeVarName is the normalised name of a RangeVar.
func rangeVarName(rv *pg_query.RangeVar) string {
	if rv == nil {
		return ""
	}
	parts := make([]string, 0, 3)
	for _, p := range []string{rv.Catalogname, rv.Schemaname, rv.Relname} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ".")
}

// nameList joins a list of String nodes ("pg_catalog", "pg_read_file").
func nameList(nodes []*pg_query.Node) string {
	parts := make([]string, 0, len(nodes))
	for _, n := range nodes {
		if s := n.GetString_(); s != nil {
			parts = append(parts, s.Sval)
		} else if n.GetAStar() != nil {
			parts = append(parts, "*")
		}
	}
	return strings.Join(parts, ".")
}

// objectName is the name of an object as DROP, COMMENT, GRANT and friends
// spell it: a String, a List of Strings, an ObjectWithArgs, a TypeName or a
// RangeVar.
func objectName(n *pg_query.Node) string {
	switch v := n.GetNode().(type) {
	case *pg_query.Node_String_:
		return v.String_.Sval
	case *pg_query.Node_List:
		return nameList(v.List.Items)
	case *pg_query.Node_ObjectWithArgs:
		return nameList(v.ObjectWithArgs.Objname)
	case *pg_query.Node_TypeName:
		return nameList(v.TypeName.Names)
	case *pg_query.Node_RangeVar:
		return rangeVarName(v.RangeVar)
	case *pg_query.Node_RoleSpec:
		return roleName(v.RoleSpec)
	}
	return ""
}

// roleName names a RoleSpec; the special forms get their keyword.
func roleName(r *pg_query.RoleSpec) string {
	if r == nil {
		return ""
	}
	switch r.Roletype {
	case pg_query.RoleSpecType_ROLESPEC_CSTRING:
		return r.Rolename
	case pg_query.RoleSpecType_ROLESPEC_PUBLIC:
		return "public"
	case pg_query.RoleSpecType_ROLESPEC_CURRENT_USER:
		return "current_user"
	case pg_query.RoleSpecType_ROLESPEC_SESSION_USER:
		return "session_user"
	case pg_query.RoleSpecType_ROLESPEC_CURRENT_ROLE:
		return "current_role"
	}
	return r.Rolename
}

// objectKind turns OBJECT_MATVIEW into "materialized_view" and the rest
// into their lower-case names ("table", "foreign_table", …).
func objectKind(t pg_query.ObjectType) string {
	switch t {
	case pg_query.ObjectType_OBJECT_MATVIEW:
		return "materialized_view"
	case pg_query.ObjectType_OBJECT_FDW:
		return "foreign_data_wrapper"
	case pg_query.ObjectType_OBJECT_TABCONSTRAINT, pg_query.ObjectType_OBJECT_DOMCONSTRAINT:
		return "constraint"
	case pg_query.ObjectType_OBJECT_STATISTIC_EXT:
		return "statistics"
	case pg_query.ObjectType_OBJECT_TYPE_UNDEFINED:
		return "object"
	}
	return strings.ToLower(strings.TrimPrefix(t.String(), "OBJECT_"))
}

// objectWord is the kind as it appears in a command tag ("MATERIALIZED VIEW").
func objectWord(t pg_query.ObjectType) string {
	switch t {
	case pg_query.ObjectType_OBJECT_FDW:
		return "FOREIGN DATA WRAPPER"
	case pg_query.ObjectType_OBJECT_FOREIGN_SERVER:
		return "SERVER"
	case pg_query.ObjectType_OBJECT_STATISTIC_EXT:
		return "STATISTICS"
	case pg_query.ObjectType_OBJECT_TSCONFIGURATION:
		return "TEXT SEARCH CONFIGURATION"
	case pg_query.ObjectType_OBJECT_TSDICTIONARY:
		return "TEXT SEARCH DICTIONARY"
	case pg_query.ObjectType_OBJECT_TSPARSER:
		return "TEXT SEARCH PARSER"
	case pg_query.ObjectType_OBJECT_TSTEMPLATE:
		return "TEXT SEARCH TEMPLATE"
	case pg_query.ObjectType_OBJECT_LARGEOBJECT:
		return "LARGE OBJECT"
	case pg_query.ObjectType_OBJECT_DOMCONSTRAINT, pg_query.ObjectType_OBJECT_TABCONSTRAINT:
		return "CONSTRAINT"
	}
	return strings.ToUpper(strings.ReplaceAll(objectKind(t), "_", " "))
}

// isRelationKind reports whether renames and drops of kind t concern a
// relation, schema or database (what renames and drops list by name).
func isRelationKind(t pg_query.ObjectType) bool {
	switch t {
	case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_VIEW,
		pg_query.ObjectType_OBJECT_MATVIEW, pg_query.ObjectType_OBJECT_FOREIGN_TABLE,
		pg_query.ObjectType_OBJECT_INDEX, pg_query.ObjectType_OBJECT_SEQUENCE,
		pg_query.ObjectType_OBJECT_SCHEMA, pg_query.ObjectType_OBJECT_DATABASE:
		return true
	}
	return false
}
