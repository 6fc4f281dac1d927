package pg

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// dynamicSQLFunctions run SQL, or read tables, named by a string argument:
// what they touch cannot be seen in the statement that calls them.
var dynamicSQLFunctions = map[string]bool{
	"query_to_xml":                  true,
	"query_to_xmlschema":            true,
	"query_to_xml_and_xmlschema":    true,
	"table_to_xml":                  true,
	"table_to_xmlschema":            true,
	"table_to_xml_and_xmlschema":    true,
	"schema_to_xml":                 true,
	"schema_to_xmlschema":           true,
	"schema_to_xml_and_xmlschema":   true,
	"database_to_xml":               true,
	"database_to_xmlschema":         true,
	"database_to_xml_and_xmlschema": true,
	"ts_stat":                       true,
}

func (w *walker) funcCall(n *pg_query.FuncCall) {
	name := nameList(n.Funcname)
	add(&w.st.Functions, name)
	_, bare := splitLast(name)
	schema, _ := splitLast(name)
	if schema != "" && schema != "pg_catalog" {
		// A function of another schema merely shares the name.
		return
	}
	if dynamicSQLFunctions[bare] {
		w.opaque(bare + " runs SQL given as text")
		return
	}
	if bare != "set_config" || len(n.Args) == 0 {
		return
	}
	setting, ok := w.constString(n.Args[0])
	if w.err != nil {
		return
	}
	if !ok {
		// The parameter name is computed or bound later: it could be
		// anything, logging parameters included.
		add(&w.st.Settings, "*")
		w.st.Logging = true
		w.opaque("set_config with a parameter name that is not a constant")
		return
	}
	setting = strings.ToLower(setting)
	add(&w.st.Settings, setting)
	if isLoggingSetting(setting) {
		w.st.Logging = true
	}
	if lexerSettings[setting] != nil {
		var value string
		if len(n.Args) > 1 {
			value, ok = w.constString(n.Args[1])
			if w.err != nil {
				return
			}
		}
		if !ok || !lexerSettings[setting][strings.ToLower(value)] {
			w.opaque("changes how the server lexes SQL (" + setting + ")")
		}
	}
}

// constString returns the value of a string constant. In normalised text a
// ParamRef may hide the user's constant: the analysis must then be redone on
// the original text.
func (w *walker) constString(n *pg_query.Node) (string, bool) {
	if tc := n.GetTypeCast(); tc != nil {
		n = tc.Arg
	}
	if c := n.GetAConst(); c != nil {
		if s := c.GetSval(); s != nil {
			return s.Sval, true
		}
		return "", false
	}
	if n.GetParamRef() != nil {
		if w.normalized {
			w.err = errNeedRaw
		}
		w.paramDependent = true
	}
	return "", false
}

// lexerSettings are parameters that change how PostgreSQL lexes SQL text,
// with the values that keep it lexing as the analyser does (libpg_query
// assumes standard_conforming_strings=on and UTF-8). Any other value would
// let a statement mean one thing to Gatehouse and another to the server.
var lexerSettings = map[string]map[string]bool{
	"standard_conforming_strings": {"on": true, "true": true, "yes": true, "1": true},
	"client_encoding":             {"utf8": true, "utf-8": true, "unicode": true},
}

// isLoggingSetting reports whether a parameter controls logging or auditing.
func isLoggingSetting(name string) bool {
	return strings.HasPrefix(name, "log_") ||
		strings.HasPrefix(name, "pgaudit.") ||
		strings.HasSuffix(name, "_preload_libraries") || // unloading pgaudit
		name == "session_replication_role" // "replica" silences ordinary triggers, audit triggers too
}

func (w *walker) setting(n *pg_query.VariableSetStmt) {
	name := strings.ToLower(n.Name)
	if n.Kind == pg_query.VariableSetKind_VAR_RESET_ALL {
		// RESET ALL returns every parameter to its configured value, which
		// for logging is the value the administrator chose.
		name = "all"
	}
	add(&w.st.Settings, name)
	if isLoggingSetting(name) {
		w.st.Logging = true
	}
	safe := lexerSettings[name]
	if safe == nil {
		return
	}
	switch n.Kind {
	case pg_query.VariableSetKind_VAR_SET_VALUE:
		value, ok := "", len(n.Args) == 1
		if ok {
			value, ok = w.constString(n.Args[0])
			if w.err != nil {
				return
			}
			if !ok {
				// SET takes identifiers and numbers too: on, 1.
				if c := n.Args[0].GetAConst(); c != nil && c.GetIval() != nil {
					value, ok = itoa(c.GetIval().Ival), true
				}
			}
		}
		if !ok || !safe[strings.ToLower(value)] {
			w.opaque("changes how the server lexes SQL (" + name + ")")
		}
	case pg_query.VariableSetKind_VAR_SET_DEFAULT, pg_query.VariableSetKind_VAR_RESET:
		// Back to the configured value, which the administrator controls.
	default:
		w.opaque("changes how the server lexes SQL (" + name + ")")
	}
}

func itoa(i int32) string {
	if i == 0 {
		return "0"
	}
	if i == 1 {
		return "1"
	}
	return "other"
}
