// Package store persists Gatehouse's state behind one small interface, Store,
// with two implementations: SQLite (the embedded default, one file in the data
// directory) and PostgreSQL (for several gateway replicas sharing one state).
//
// The store knows the audit log only as rows: an append-only sequence of
// event records, each with its leaf index, the canonical event bytes and its
// leaf hash, a head row (tree size and the compact range of the Merkle tree)
// and signed checkpoints. Building leaves and trees is the audit package's
// job; the store keeps the rows durable and in order.
//
// Appends are serialised by the head row: AppendEvents checks under the
// row's lock that the records continue the log exactly where the head says it
// ends (SQLite: the head is read inside a BEGIN IMMEDIATE transaction;
// PostgreSQL: one statement updates the head only where its size is the
// batch's first index and inserts the rows only if it did), and returns
// ErrConflict otherwise. Two replicas can therefore never give two events the
// same index, and a writer that lost the race rebuilds its batch on the new
// head.
//
// Appends are the hot path (one durable write per group of statements
// clients run), so each is one round trip on PostgreSQL. The gateway puts
// the SQLite store behind a Journal: appends are durable once written (and
// fdatasynced) to an append-only file, and an indexer moves them into SQLite
// in large transactions, on a connection of its own whose statements are
// prepared once (modernc's database/sql driver parses SQL on every
// execution). Every secondary index costs each indexed event a b-tree
// insert; see migrations/*/0001_audit.sql and *_audit_rare_decisions.sql for
// which filters have one (partial indexes, for the rare values). On SQLite,
// session, principal and table filters have none: they read the blocks of
// 1,024 events that the session, principal or table appears in, listed
// once per block (sqlite/0009_audit_owner_blocks.sql,
// 0010_audit_tables_by_event.sql, buildEvents).
//
// Index order is time order: AppendEvents refuses, as a conflict that
// carries the log's last time, a batch stamped earlier than the log's last
// event, and the writer re-stamps it (audit.Log). So Events finds a time
// range by bisecting the primary key (narrowTime), and the SQLite store has
// no index on time (0007_audit_time_by_index.sql). PostgreSQL keeps its own
// for events its replicas appended out of order before it kept time order
// (0007_audit_time_order.sql), and bisects once none of those remain.
//
// Streaming export sinks keep their delivery cursors here too
// (ExportCursors), so that a restart resumes where delivery stopped.
//
// The event, event-table and checkpoint tables reject UPDATE and DELETE with
// triggers. That is defence in depth, not the security boundary: anyone who
// can drop a trigger can edit rows, which is why the audit log is a Merkle
// tree with signed checkpoints and audit.Verify detects such edits.
//
// Session recordings are rows too: one per session (recordings) and its
// compressed chunks in sequence (recording_chunks). The record package owns
// the chunk format; the store keeps chunks in order, refuses to rewrite one,
// and deletes whole recordings for retention. On SQLite, chunks have a raw
// connection of their own too, which writes a chunk's bytes through
// incremental blob I/O rather than binding them (see appendChunkLocked).
//
// Schema changes are numbered SQL files per dialect under migrations/,
// applied in order inside transactions and recorded in schema_migrations.
package store
