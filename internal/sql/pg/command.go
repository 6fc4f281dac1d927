package pg

import (
	"strings"
	"unicode"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// commandTag names a top-level statement the way PostgreSQL's command tags
// do (utility.c's CreateCommandName), so rules and audit records read like the
// server's own "DROP TABLE" or "ALTER SYSTEM". Statements without an entry
// get a name derived from the parse node ("CreateSeqStmt" → "CREATE SEQ"),
// which is stable if not always PostgreSQL's spelling.
func commandTag(n *pg_query.Node) string {
	switch v := n.GetNode().(type) {
	case *pg_query.Node_SelectStmt:
		if v.SelectStmt.IntoClause != nil {
			return "SELECT INTO"
		}
		return "SELECT"
	case *pg_query.Node_InsertStmt:
		return "INSERT"
	case *pg_query.Node_UpdateStmt:
		return "UPDATE"
	case *pg_query.Node_DeleteStmt:
		return "DELETE"
	case *pg_query.Node_MergeStmt:
		return "MERGE"
	case *pg_query.Node_TruncateStmt:
		return "TRUNCATE"
	case *pg_query.Node_CopyStmt:
		return "COPY"
	case *pg_query.Node_ExplainStmt:
		return "EXPLAIN"
	case *pg_query.Node_PrepareStmt:
		return "PREPARE"
	case *pg_query.Node_ExecuteStmt:
		return "EXECUTE"
	case *pg_query.Node_DeallocateStmt:
		if v.DeallocateStmt.Isall {
			return "DEALLOCATE ALL"
		}
		return "DEALLOCATE"
	case *pg_query.Node_DoStmt:
		return "DO"
	case *pg_query.Node_CallStmt:
		return "CALL"
	case *pg_query.Node_TransactionStmt:
		switch v.TransactionStmt.Kind {
		case pg_query.TransactionStmtKind_TRANS_STMT_BEGIN:
			return "BEGIN"
		case pg_query.TransactionStmtKind_TRANS_STMT_START:
			return "START TRANSACTION"
		case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT:
			return "COMMIT"
		case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK, pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
			return "ROLLBACK"
		case pg_query.TransactionStmtKind_TRANS_STMT_SAVEPOINT:
			return "SAVEPOINT"
		case pg_query.TransactionStmtKind_TRANS_STMT_RELEASE:
			return "RELEASE"
		case pg_query.TransactionStmtKind_TRANS_STMT_PREPARE:
			return "PREPARE TRANSACTION"
		case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED:
			return "COMMIT PREPARED"
		case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
			return "ROLLBACK PREPARED"
		}
	case *pg_query.Node_VariableSetStmt:
		if k := v.VariableSetStmt.Kind; k == pg_query.VariableSetKind_VAR_RESET || k == pg_query.VariableSetKind_VAR_RESET_ALL {
			return "RESET"
		}
		return "SET"
	case *pg_query.Node_VariableShowStmt:
		return "SHOW"
	case *pg_query.Node_AlterSystemStmt:
		return "ALTER SYSTEM"
	case *pg_query.Node_GrantStmt:
		if v.GrantStmt.IsGrant {
			return "GRANT"
		}
		return "REVOKE"
	case *pg_query.Node_GrantRoleStmt:
		if v.GrantRoleStmt.IsGrant {
			return "GRANT ROLE"
		}
		return "REVOKE ROLE"
	case *pg_query.Node_AlterDefaultPrivilegesStmt:
		return "ALTER DEFAULT PRIVILEGES"
	case *pg_query.Node_CreateRoleStmt:
		switch v.CreateRoleStmt.StmtType {
		case pg_query.RoleStmtType_ROLESTMT_USER:
			return "CREATE USER"
		case pg_query.RoleStmtType_ROLESTMT_GROUP:
			return "CREATE GROUP"
		}
		return "CREATE ROLE"
	case *pg_query.Node_AlterRoleStmt, *pg_query.Node_AlterRoleSetStmt:
		return "ALTER ROLE"
	case *pg_query.Node_DropRoleStmt:
		return "DROP ROLE"
	case *pg_query.Node_DropStmt:
		return "DROP " + objectWord(v.DropStmt.RemoveType)
	case *pg_query.Node_DropdbStmt:
		return "DROP DATABASE"
	case *pg_query.Node_DropOwnedStmt:
		return "DROP OWNED"
	case *pg_query.Node_ReassignOwnedStmt:
		return "REASSIGN OWNED"
	case *pg_query.Node_AlterTableStmt:
		return "ALTER " + objectWord(v.AlterTableStmt.Objtype)
	case *pg_query.Node_RenameStmt:
		return "ALTER " + objectWord(renameTagType(v.RenameStmt))
	case *pg_query.Node_AlterObjectSchemaStmt:
		return "ALTER " + objectWord(v.AlterObjectSchemaStmt.ObjectType)
	case *pg_query.Node_AlterOwnerStmt:
		return "ALTER " + objectWord(v.AlterOwnerStmt.ObjectType)
	case *pg_query.Node_AlterDatabaseStmt, *pg_query.Node_AlterDatabaseSetStmt, *pg_query.Node_AlterDatabaseRefreshCollStmt:
		return "ALTER DATABASE"
	case *pg_query.Node_CreateStmt:
		return "CREATE TABLE"
	case *pg_query.Node_CreateTableAsStmt:
		switch {
		case v.CreateTableAsStmt.Objtype == pg_query.ObjectType_OBJECT_MATVIEW:
			return "CREATE MATERIALIZED VIEW"
		case v.CreateTableAsStmt.IsSelectInto:
			return "SELECT INTO"
		}
		return "CREATE TABLE AS"
	case *pg_query.Node_ViewStmt:
		return "CREATE VIEW"
	case *pg_query.Node_IndexStmt:
		return "CREATE INDEX"
	case *pg_query.Node_CreateSchemaStmt:
		return "CREATE SCHEMA"
	case *pg_query.Node_CreatedbStmt:
		return "CREATE DATABASE"
	case *pg_query.Node_CreateSeqStmt:
		return "CREATE SEQUENCE"
	case *pg_query.Node_AlterSeqStmt:
		return "ALTER SEQUENCE"
	case *pg_query.Node_CreateFunctionStmt:
		if v.CreateFunctionStmt.IsProcedure {
			return "CREATE PROCEDURE"
		}
		return "CREATE FUNCTION"
	case *pg_query.Node_AlterFunctionStmt:
		return "ALTER " + objectWord(v.AlterFunctionStmt.Objtype)
	case *pg_query.Node_RuleStmt:
		return "CREATE RULE"
	case *pg_query.Node_CreateTrigStmt:
		return "CREATE TRIGGER"
	case *pg_query.Node_CreateEventTrigStmt:
		return "CREATE EVENT TRIGGER"
	case *pg_query.Node_AlterEventTrigStmt:
		return "ALTER EVENT TRIGGER"
	case *pg_query.Node_CreateExtensionStmt:
		return "CREATE EXTENSION"
	case *pg_query.Node_AlterExtensionStmt, *pg_query.Node_AlterExtensionContentsStmt:
		return "ALTER EXTENSION"
	case *pg_query.Node_DefineStmt:
		return "CREATE " + objectWord(v.DefineStmt.Kind)
	case *pg_query.Node_CreatePolicyStmt:
		return "CREATE POLICY"
	case *pg_query.Node_AlterPolicyStmt:
		return "ALTER POLICY"
	case *pg_query.Node_CommentStmt:
		return "COMMENT"
	case *pg_query.Node_LockStmt:
		return "LOCK TABLE"
	case *pg_query.Node_VacuumStmt:
		if v.VacuumStmt.IsVacuumcmd {
			return "VACUUM"
		}
		return "ANALYZE"
	case *pg_query.Node_RefreshMatViewStmt:
		return "REFRESH MATERIALIZED VIEW"
	case *pg_query.Node_DeclareCursorStmt:
		return "DECLARE CURSOR"
	case *pg_query.Node_FetchStmt:
		if v.FetchStmt.Ismove {
			return "MOVE"
		}
		return "FETCH"
	case *pg_query.Node_ClosePortalStmt:
		return "CLOSE CURSOR"
	case *pg_query.Node_DiscardStmt:
		switch v.DiscardStmt.Target {
		case pg_query.DiscardMode_DISCARD_ALL:
			return "DISCARD ALL"
		case pg_query.DiscardMode_DISCARD_PLANS:
			return "DISCARD PLANS"
		case pg_query.DiscardMode_DISCARD_TEMP:
			return "DISCARD TEMP"
		case pg_query.DiscardMode_DISCARD_SEQUENCES:
			return "DISCARD SEQUENCES"
		}
	case *pg_query.Node_LoadStmt:
		return "LOAD"
	case *pg_query.Node_CheckPointStmt:
		return "CHECKPOINT"
	case *pg_query.Node_ListenStmt:
		return "LISTEN"
	case *pg_query.Node_UnlistenStmt:
		return "UNLISTEN"
	case *pg_query.Node_NotifyStmt:
		return "NOTIFY"
	case *pg_query.Node_CreateSubscriptionStmt:
		return "CREATE SUBSCRIPTION"
	case *pg_query.Node_CreatePublicationStmt:
		return "CREATE PUBLICATION"
	case *pg_query.Node_CreateForeignServerStmt:
		return "CREATE SERVER"
	case *pg_query.Node_CreateForeignTableStmt:
		return "CREATE FOREIGN TABLE"
	case *pg_query.Node_CreateFdwStmt:
		return "CREATE FOREIGN DATA WRAPPER"
	case *pg_query.Node_CreateUserMappingStmt:
		return "CREATE USER MAPPING"
	case *pg_query.Node_ImportForeignSchemaStmt:
		return "IMPORT FOREIGN SCHEMA"
	case *pg_query.Node_CreatePlangStmt:
		return "CREATE LANGUAGE"
	case *pg_query.Node_ConstraintsSetStmt:
		return "SET CONSTRAINTS"
	}
	return derivedTag(n)
}

// renameTagType is the object type a RenameStmt's tag names: renaming a
// column of a table is an ALTER TABLE.
func renameTagType(r *pg_query.RenameStmt) pg_query.ObjectType {
	switch r.RenameType {
	case pg_query.ObjectType_OBJECT_COLUMN, pg_query.ObjectType_OBJECT_ATTRIBUTE, pg_query.ObjectType_OBJECT_TABCONSTRAINT:
		return r.RelationType
	}
	return r.RenameType
}

// derivedTag turns the parse node's message name into words.
func derivedTag(n *pg_query.Node) string {
	inner := nodeMessage(n)
	if inner == nil {
		return "UNKNOWN"
	}
	name := strings.TrimSuffix(string(inner.ProtoReflect().Descriptor().Name()), "Stmt")
	var b strings.Builder
	for i, r := range name {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}
