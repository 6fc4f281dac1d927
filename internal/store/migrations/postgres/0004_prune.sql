-- Retention: the audit log's prefix may be deleted, but only below a marker
-- that is recorded first. A marker keeps what verification needs to go on
-- from the pruned prefix: the compact range (tree hashes) at its index and
-- the signed checkpoint of that size, whose root the range must fold to.
-- Markers are append-only; the newest (largest below) is the one in force.
CREATE TABLE audit_prunes (
	id         bigserial PRIMARY KEY,
	below      bigint NOT NULL,
	hashes     bytea NOT NULL,
	checkpoint text NOT NULL,
	created    bigint NOT NULL
);
CREATE TRIGGER audit_prunes_append_only BEFORE UPDATE OR DELETE ON audit_prunes
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_prunes_no_truncate BEFORE TRUNCATE ON audit_prunes
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- Events (and their table rows) may now be deleted below the marker, and
-- nowhere else; UPDATE and TRUNCATE stay forbidden. As before this is
-- defence in depth: audit.Verify checks that every marker is bridged by a
-- signed checkpoint and announced by an audit.pruned event, and that
-- nothing at or above it is missing.
CREATE FUNCTION audit_prune_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF OLD.idx < (SELECT coalesce(max(below), 0) FROM audit_prunes) THEN
		RETURN OLD;
	END IF;
	RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$$;
DROP TRIGGER audit_events_append_only ON audit_events;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_events_prune_only BEFORE DELETE ON audit_events
	FOR EACH ROW EXECUTE FUNCTION audit_prune_only();
DROP TRIGGER audit_event_tables_append_only ON audit_event_tables;
CREATE TRIGGER audit_event_tables_no_update BEFORE UPDATE ON audit_event_tables
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_event_tables_prune_only BEFORE DELETE ON audit_event_tables
	FOR EACH ROW EXECUTE FUNCTION audit_prune_only();
