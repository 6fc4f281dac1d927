package pg

import (
	"errors"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// errNeedRaw aborts an analysis of normalised text (constants replaced by
// $n) when a fact depends on a constant's value, such as the parameter name
// given to set_config. The caller then analyses the original text and caches
// it under that text instead.
var errNeedRaw = errors.New("fact depends on a constant")

// walker collects the facts of one statement. It visits every message of the
// parse tree through protobuf reflection, so a node kind it has no case for
// is still searched for relations and function calls below it; the cases only
// decide what a relation in a particular position means.
type walker struct {
	st *Statement
	// normalized is set when the text being analysed came from Normalize:
	// a ParamRef may then stand for a constant the user wrote.
	normalized bool
	// planOnly counts enclosing EXPLAINs without ANALYZE: what they wrap is
	// planned, not executed, so its targets count as reads only.
	planOnly int
	// paramDependent is set when a fact depended on the value of a $n
	// parameter and was judged as unknown. Such an analysis is right for its
	// own text but must not stand in for texts that normalise to it.
	paramDependent bool
	err            error

	// Column facts (columns.go): the scope of the query level being
	// walked, what column references met now are used for, the sources of
	// the SELECT-list entry being walked, and columns to attribute once the
	// statement's reads are all known.
	scope   *scope
	ctx     colCtx
	collect *[]string
	pending []pendingCol
	// inRecursive is set while the CTEs of a WITH RECURSIVE are walked.
	inRecursive bool
}

func nodeMessage(n *pg_query.Node) proto.Message {
	if n == nil {
		return nil
	}
	m := n.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().Get(0))
	if fd == nil {
		return nil
	}
	return m.Get(fd).Message().Interface()
}

// walk visits one message.
func (w *walker) walk(msg proto.Message) {
	if msg == nil || w.err != nil {
		return
	}
	st := w.st
	switch n := msg.(type) {
	case *pg_query.Node:
		w.walk(nodeMessage(n))
		return

	case *pg_query.RangeVar:
		add(&st.Reads, rangeVarName(n))
		return

	case *pg_query.ColumnRef:
		w.columnRef(n)
		return

	case *pg_query.SubLink:
		w.subLink(n)
		return

	case *pg_query.InsertStmt:
		w.insertStmt(n)
		return

	case *pg_query.UpdateStmt:
		w.updateStmt(n)
		return

	case *pg_query.DeleteStmt:
		w.deleteStmt(n)
		return

	case *pg_query.MergeStmt:
		w.mergeStmt(n)
		return

	case *pg_query.CommonTableExpr:
		// Met outside a WITH list the walker handles: walk it all the same.
		w.cteQuery(n)
		return

	case *pg_query.SelectStmt:
		w.selectStmt(n, false)
		return

	case *pg_query.CreateTableAsStmt:
		if w.planOnly == 0 {
			w.into(n.Into, n.Objtype)
		}
		w.children(n, "into")
		return

	case *pg_query.CopyStmt:
		c := &st.Copy
		c.Direction, c.Target = "out", "stdio"
		if n.IsFrom {
			c.Direction = "in"
		}
		switch {
		case n.IsProgram:
			c.Target = "program"
		case n.Filename != "":
			c.Target = "file"
		}
		if n.Relation != nil {
			c.Relation = rangeVarName(n.Relation)
			if n.IsFrom {
				add(&st.Inserts, c.Relation)
			} else {
				add(&st.Reads, c.Relation)
			}
		}
		c.Query = n.Query != nil
		w.children(n, "relation")
		return

	case *pg_query.ExplainStmt:
		if explainAnalyze(n.Options) && w.planOnly == 0 {
			st.ExplainAnalyze = true
			w.walk(n.Query)
		} else {
			w.planOnly++
			w.walk(n.Query)
			w.planOnly--
		}
		return

	case *pg_query.PrepareStmt:
		st.Prepare.Name = n.Name

	case *pg_query.ExecuteStmt:
		// EXPLAIN EXECUTE without ANALYZE only plans the prepared statement,
		// so it needs no resolution.
		if w.planOnly == 0 {
			st.Execute.Name = n.Name
		}

	case *pg_query.DeallocateStmt:
		st.Deallocate = Deallocate{Name: n.Name, All: n.Isall}
		return

	case *pg_query.DiscardStmt:
		if n.Target == pg_query.DiscardMode_DISCARD_ALL {
			st.Deallocate.All = true
		}
		return

	case *pg_query.FuncCall:
		w.funcCall(n)

	case *pg_query.DoStmt:
		w.opaque("DO block runs procedural code")
		return // the body is a string; nothing else to see

	case *pg_query.CallStmt:
		w.opaque("CALL runs a procedure")

	case *pg_query.CreateFunctionStmt:
		kind := "function"
		if n.IsProcedure {
			kind = "procedure"
		}
		w.object("create", kind, nameList(n.Funcname), false)
		w.opaque("creates a " + kind)

	case *pg_query.RuleStmt:
		add(&st.Alters, rangeVarName(n.Relation))
		w.object("create", "rule", n.Rulename, false)
		w.opaque("creates a rule")
		w.children(n, "relation")
		return

	case *pg_query.CreateTrigStmt:
		add(&st.Alters, rangeVarName(n.Relation))
		w.object("create", "trigger", n.Trigname, false)
		w.opaque("creates a trigger")
		w.children(n, "relation")
		return

	case *pg_query.CreateEventTrigStmt:
		w.object("create", "event_trigger", n.Trigname, false)
		w.opaque("creates an event trigger")

	case *pg_query.ViewStmt:
		w.object("create", "view", rangeVarName(n.View), false)
		w.opaque("creates a view")
		w.children(n, "view")
		return

	case *pg_query.CreateExtensionStmt:
		w.object("create", "extension", n.Extname, false)
		w.opaque("installs an extension")
	case *pg_query.AlterExtensionStmt, *pg_query.AlterExtensionContentsStmt:
		w.opaque("changes an extension")
	case *pg_query.LoadStmt:
		w.opaque("loads a shared library")
	case *pg_query.CreatePLangStmt:
		w.opaque("creates a procedural language")
	case *pg_query.CreateTransformStmt:
		w.opaque("creates a transform")
	case *pg_query.CreateCastStmt:
		w.opaque("creates a cast")
	case *pg_query.CreateConversionStmt:
		w.opaque("creates a conversion")
	case *pg_query.DefineStmt:
		switch n.Kind {
		case pg_query.ObjectType_OBJECT_AGGREGATE, pg_query.ObjectType_OBJECT_OPERATOR, pg_query.ObjectType_OBJECT_TYPE:
			// Aggregates, operators and base types call functions that
			// never appear by name in the statements that use them.
			w.opaque("creates an " + objectKind(n.Kind) + " backed by functions")
		}
		w.object("create", objectKind(n.Kind), nameList(n.Defnames), false)
	case *pg_query.CreateSubscriptionStmt, *pg_query.AlterSubscriptionStmt,
		*pg_query.CreateForeignServerStmt, *pg_query.AlterForeignServerStmt,
		*pg_query.CreateFdwStmt, *pg_query.AlterFdwStmt,
		*pg_query.CreateUserMappingStmt, *pg_query.AlterUserMappingStmt,
		*pg_query.ImportForeignSchemaStmt, *pg_query.CreateForeignTableStmt,
		*pg_query.CreatePublicationStmt, *pg_query.AlterPublicationStmt:
		w.opaque("reaches outside the database")

	case *pg_query.DropStmt:
		w.drop(n)
		return
	case *pg_query.DropdbStmt:
		w.object("drop", "database", n.Dbname, false)
		return
	case *pg_query.DropTableSpaceStmt:
		w.object("drop", "tablespace", n.Tablespacename, false)
		return
	case *pg_query.DropSubscriptionStmt:
		w.object("drop", "subscription", n.Subname, n.Behavior == pg_query.DropBehavior_DROP_CASCADE)
		return
	case *pg_query.DropOwnedStmt:
		for _, r := range n.Roles {
			st.Objects = append(st.Objects, Object{Action: "drop", Kind: "owned", Name: objectName(r),
				Cascade: n.Behavior == pg_query.DropBehavior_DROP_CASCADE})
		}
		return

	case *pg_query.TruncateStmt:
		for _, r := range n.Relations {
			add(&st.Truncates, rangeVarName(r.GetRangeVar()))
		}
		return

	case *pg_query.RenameStmt:
		w.rename(n)
		return
	case *pg_query.AlterObjectSchemaStmt:
		name := rangeVarName(n.Relation)
		if n.Relation == nil {
			name = objectName(n.Object)
		}
		w.object("rename", objectKind(n.ObjectType), name, false)
		add(&st.Alters, name)
		return

	case *pg_query.AlterTableStmt:
		name := rangeVarName(n.Relation)
		w.object("alter", objectKind(n.Objtype), name, false)
		for _, c := range n.Cmds {
			cmd := c.GetAlterTableCmd()
			if cmd == nil {
				continue
			}
			switch cmd.Subtype {
			case pg_query.AlterTableType_AT_ChangeOwner:
				st.Privileges = append(st.Privileges, Privilege{Action: "owner", Kind: objectKind(n.Objtype),
					Objects: []string{name}, Grantees: []string{roleName(cmd.Newowner)}})
			case pg_query.AlterTableType_AT_DisableTrig, pg_query.AlterTableType_AT_DisableTrigAll,
				pg_query.AlterTableType_AT_DisableTrigUser:
				// Triggers are a common way to audit a table.
				st.Logging = true
			}
		}
		w.children(n, "relation")
		return
	case *pg_query.AlterOwnerStmt:
		name := rangeVarName(n.Relation)
		if n.Relation == nil {
			name = objectName(n.Object)
		}
		st.Privileges = append(st.Privileges, Privilege{Action: "owner", Kind: objectKind(n.ObjectType),
			Objects: []string{name}, Grantees: []string{roleName(n.Newowner)}})
		return
	case *pg_query.AlterFunctionStmt:
		w.object("alter", objectKind(n.Objtype), objectName(&pg_query.Node{Node: &pg_query.Node_ObjectWithArgs{ObjectWithArgs: n.Func}}), false)
		return
	case *pg_query.AlterEventTrigStmt:
		w.object("alter", "event_trigger", n.Trigname, false)
		st.Logging = true // event triggers are used for DDL auditing
		return

	case *pg_query.GrantStmt:
		w.grant(n, "")
		return
	case *pg_query.AlterDefaultPrivilegesStmt:
		w.grant(n.Action, "default_")
		return
	case *pg_query.GrantRoleStmt:
		p := Privilege{Action: "revoke", Kind: "role"}
		if n.IsGrant {
			p.Action = "grant"
		}
		for _, r := range n.GrantedRoles {
			p.Privileges = append(p.Privileges, grantedRoleName(r))
		}
		for _, r := range n.GranteeRoles {
			p.Grantees = append(p.Grantees, objectName(r))
		}
		st.Privileges = append(st.Privileges, p)
		return
	case *pg_query.ReassignOwnedStmt:
		p := Privilege{Action: "reassign", Kind: "owned", Grantees: []string{roleName(n.Newrole)}}
		for _, r := range n.Roles {
			p.Objects = append(p.Objects, objectName(r))
		}
		st.Privileges = append(st.Privileges, p)
		return

	case *pg_query.CreateRoleStmt:
		st.Roles = append(st.Roles, RoleChange{Action: "create", Name: n.Role})
		return // options hold passwords and flags only
	case *pg_query.AlterRoleStmt:
		st.Roles = append(st.Roles, RoleChange{Action: "alter", Name: roleName(n.Role)})
		return
	case *pg_query.AlterRoleSetStmt:
		name := "all"
		if n.Role != nil {
			name = roleName(n.Role)
		}
		st.Roles = append(st.Roles, RoleChange{Action: "alter", Name: name})
		w.walk(n.Setstmt)
		return
	case *pg_query.DropRoleStmt:
		for _, r := range n.Roles {
			st.Roles = append(st.Roles, RoleChange{Action: "drop", Name: objectName(r)})
		}
		return

	case *pg_query.AlterDatabaseSetStmt:
		w.object("alter", "database", n.Dbname, false)
	case *pg_query.AlterDatabaseStmt:
		w.object("alter", "database", n.Dbname, false)
	case *pg_query.AlterSystemStmt:
		st.Logging = true // ALTER SYSTEM can change anything, logging included

	case *pg_query.VariableSetStmt:
		w.setting(n)
		return

	case *pg_query.CreateStmt:
		w.object("create", "table", rangeVarName(n.Relation), false)
		w.children(n, "relation")
		return
	case *pg_query.IndexStmt:
		w.object("create", "index", n.Idxname, false)
	case *pg_query.CreateSchemaStmt:
		w.object("create", "schema", n.Schemaname, false)
	case *pg_query.CreatedbStmt:
		w.object("create", "database", n.Dbname, false)
	case *pg_query.CreateSeqStmt:
		w.object("create", "sequence", rangeVarName(n.Sequence), false)
		w.children(n, "sequence")
		return
	case *pg_query.CreatePolicyStmt:
		add(&st.Alters, rangeVarName(n.Table))
		w.object("create", "policy", n.PolicyName, false)
		w.children(n, "table")
		return
	case *pg_query.RefreshMatViewStmt:
		add(&st.Updates, rangeVarName(n.Relation))
		return
	}
	w.children(msg)
}

// children visits every message-valued field of msg except the named ones.
func (w *walker) children(msg proto.Message, skip ...protoreflect.Name) {
	msg.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil {
			return true
		}
		for _, s := range skip {
			if fd.Name() == s {
				return true
			}
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				w.walk(l.Get(i).Message().Interface())
			}
		} else {
			w.walk(v.Message().Interface())
		}
		return w.err == nil
	})
}

// target records the target of a data-modifying statement, or a read when
// it is only being planned.
func (w *walker) target(list *[]string, rv *pg_query.RangeVar) {
	if w.planOnly > 0 {
		list = &w.st.Reads
	}
	add(list, rangeVarName(rv))
}

func (w *walker) opaque(reason string) {
	if w.planOnly > 0 {
		return
	}
	if !w.st.Opaque {
		w.st.Opaque, w.st.OpaqueReason = true, reason
	}
}

// object records a DDL target in Objects and the matching name list.
func (w *walker) object(action, kind, name string, cascade bool) {
	st := w.st
	st.Objects = append(st.Objects, Object{Action: action, Kind: kind, Name: name, Cascade: cascade})
	switch action {
	case "create":
		add(&st.Creates, name)
	case "alter":
		add(&st.Alters, name)
	case "drop":
		add(&st.Drops, name)
	case "rename":
		add(&st.Renames, name)
	}
}

func (w *walker) into(ic *pg_query.IntoClause, kind pg_query.ObjectType) {
	if ic == nil {
		return
	}
	name := rangeVarName(ic.Rel)
	w.st.Into.Target, w.st.Into.Kind = name, objectKind(kind)
	w.object("create", objectKind(kind), name, false)
}

func (w *walker) drop(n *pg_query.DropStmt) {
	cascade := n.Behavior == pg_query.DropBehavior_DROP_CASCADE
	kind := objectKind(n.RemoveType)
	for _, o := range n.Objects {
		switch n.RemoveType {
		case pg_query.ObjectType_OBJECT_TRIGGER, pg_query.ObjectType_OBJECT_RULE, pg_query.ObjectType_OBJECT_POLICY:
			// [table…, name]: the object belongs to a table, which changes.
			items := o.GetList().GetItems()
			if len(items) > 0 {
				add(&w.st.Alters, nameList(items[:len(items)-1]))
				w.object("drop", kind, objectName(items[len(items)-1]), cascade)
				if n.RemoveType == pg_query.ObjectType_OBJECT_TRIGGER {
					w.st.Logging = true // triggers are a common way to audit a table
				}
				continue
			}
		case pg_query.ObjectType_OBJECT_EVENT_TRIGGER:
			w.st.Logging = true
		}
		w.object("drop", kind, objectName(o), cascade)
	}
}

func (w *walker) rename(n *pg_query.RenameStmt) {
	st := w.st
	switch {
	case n.RenameType == pg_query.ObjectType_OBJECT_SCHEMA || n.RenameType == pg_query.ObjectType_OBJECT_DATABASE:
		w.object("rename", objectKind(n.RenameType), n.Subname, false)
	case n.RenameType == pg_query.ObjectType_OBJECT_ROLE:
		st.Roles = append(st.Roles, RoleChange{Action: "rename", Name: n.Subname})
	case isRelationKind(n.RenameType):
		w.object("rename", objectKind(n.RenameType), rangeVarName(n.Relation), false)
	case n.Relation != nil:
		// A column, constraint, trigger, rule or policy of a table: the
		// table is altered, not renamed.
		w.object("alter", objectKind(n.RelationType), rangeVarName(n.Relation), false)
	case n.Object != nil:
		name := objectName(n.Object)
		if n.RenameType == pg_query.ObjectType_OBJECT_TABLESPACE || name == "" {
			name = n.Subname
		}
		w.object("rename", objectKind(n.RenameType), name, false)
	default:
		w.object("rename", objectKind(n.RenameType), n.Subname, false)
	}
}

func (w *walker) grant(n *pg_query.GrantStmt, kindPrefix string) {
	if n == nil {
		return
	}
	p := Privilege{Action: "revoke", Kind: kindPrefix + objectKind(n.Objtype)}
	if n.IsGrant {
		p.Action = "grant"
	}
	if n.Targtype == pg_query.GrantTargetType_ACL_TARGET_ALL_IN_SCHEMA {
		p.Kind = "all_" + p.Kind + "s_in_schema"
	}
	if len(n.Privileges) == 0 {
		p.Privileges = []string{"all"}
	}
	for _, pr := range n.Privileges {
		if ap := pr.GetAccessPriv(); ap != nil {
			name := ap.PrivName
			if name == "" {
				name = "all"
			}
			p.Privileges = append(p.Privileges, strings.ToLower(name))
		}
	}
	for _, o := range n.Objects {
		p.Objects = append(p.Objects, objectName(o))
	}
	for _, g := range n.Grantees {
		p.Grantees = append(p.Grantees, objectName(g))
	}
	w.st.Privileges = append(w.st.Privileges, p)
}

// grantedRoleName names a role in GRANT role TO …; the grammar wraps it in
// an AccessPriv.
func grantedRoleName(n *pg_query.Node) string {
	if ap := n.GetAccessPriv(); ap != nil {
		return ap.PrivName
	}
	return objectName(n)
}

// explainAnalyze reports whether EXPLAIN options ask for ANALYZE. Any value
// other than an explicit false counts as true: PostgreSQL accepts many
// spellings of true and we must not under-report execution.
func explainAnalyze(opts []*pg_query.Node) bool {
	on := false
	for _, o := range opts {
		d := o.GetDefElem()
		if d == nil || !strings.EqualFold(d.Defname, "analyze") {
			continue
		}
		on = !isFalse(d.Arg)
	}
	return on
}

func isFalse(arg *pg_query.Node) bool {
	switch v := arg.GetNode().(type) {
	case *pg_query.Node_String_:
		switch strings.ToLower(v.String_.Sval) {
		case "false", "off", "no", "0", "f", "n", "of", "fa", "fal", "fals":
			return true
		}
	case *pg_query.Node_Integer:
		return v.Integer.Ival == 0
	case *pg_query.Node_Boolean:
		return !v.Boolean.Boolval
	case *pg_query.Node_AConst:
		if b := v.AConst.GetBoolval(); b != nil {
			return !b.Boolval
		}
		if i := v.AConst.GetIval(); i != nil {
			return i.Ival == 0
		}
	}
	return false
}

// add appends a non-empty name once.
func add(list *[]string, name string) {
	if name == "" {
		return
	}
	*list = appendUnique(*list, name)
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
