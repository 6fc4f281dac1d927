// Package audit owns Gatehouse's tamper-evident audit trail (PCI DSS
// 10.2/10.3): the events, the log that makes them durable before the gateway
// acts, signed checkpoints, verification, queries and export.
//
// # Events and leaves
//
// Every event is a leaf of an RFC 6962 Merkle tree (the tree of
// golang.org/x/mod/sumdb/tlog and Certificate Transparency). Leaf i is the
// event's canonical JSON, as Event.MarshalCanonical produces it:
//
//   - one JSON object, compact (no insignificant white space), UTF-8, no
//     trailing newline;
//   - fields in this order, absent when empty: kind, time, session_id,
//     principal {issuer, subject, name, groups}, source, connection, role,
//     database, protocol, statement, params, tables, facts, decision, rule,
//     outcome {command_tag, rows, sqlstate, message}, reason, extra;
//   - time in UTC, RFC 3339 with up to nine fractional digits
//     ("2025-01-02T03:04:05.123456789Z");
//   - object keys inside facts and extra sorted bytewise; numbers in facts as
//     the analyser wrote them; tables sorted without duplicates;
//   - '<', '>' and '&' not escaped, so statements read as written.
//
// The leaf hash is SHA-256(0x00 || leaf) and an interior node is
// SHA-256(0x01 || left || right) (tlog.RecordHash, tlog.NodeHash). The leaf
// index is the event's position, not part of the leaf: an event cannot be
// moved without changing the tree. Statement, parameters and messages are
// masked by the caller before they reach Append, because a leaf is forever.
//
// For example, the leaf
//
//	{"kind":"statement","time":"2025-01-02T03:04:05Z","session_id":"s1","principal":{"subject":"ci","name":"ci-agent","groups":["agents"]},"connection":"shop","role":"reader","statement":"SELECT 1","decision":"allow","rule":"default"}
//
// hashes to SHA-256 of a zero byte followed by exactly those bytes.
//
// # Checkpoints
//
// A checkpoint is a signed note (golang.org/x/mod/sumdb/note) whose text is a
// C2SP tlog-checkpoint body, three lines each ending in a newline:
//
//	<origin>
//	<tree size, decimal>
//	<root hash, standard base64 with padding>
//
// followed by the note's blank line and one signature line per signer,
// "— <key name> <base64(key hash || Ed25519 signature)>". The origin is the
// signer's key name unless WithOrigin says otherwise. A checkpoint of size N
// commits to events 0 … N-1 and, because every tree of size M > N contains
// the tree of size N, to every later checkpoint being an extension of it:
// rebuilding the tree from the stored events and comparing roots at every
// checkpoint size is what Verify does.
//
// # Group commit and failure
//
// Log.Append returns once the event is durable in the store (audit before
// forward). Concurrent Appends are queued and a single committer writes
// everything queued in one store transaction, so N concurrent callers cost one
// fsync, not N. If the store fails, every event in the batch gets an error
// and the caller refuses the command (fail closed); the first batch that
// commits afterwards starts with a store.failure_window event (start, end,
// failed_events, failed_batches, last_error) so the outage itself is on the
// record (PCI DSS 10.7). A process that stops during an outage loses that
// window's summary; its slog error remains.
//
// # Retention
//
// Log.Prune deletes the prefix of the log below the size S of a signed
// checkpoint whose events are all older than a cut-off. It appends an
// audit.pruned event (extra: from, below, before, newest_pruned,
// checkpoint_size, checkpoint_root) and then, in one store transaction,
// records a marker — S, the compact range of the tree of S leaves (the
// subtree roots, as the head row keeps them) and the checkpoint's signed
// note — and deletes the events below S. Verify continues the tree from the
// newest marker's range once it folds to that checkpoint's root.
//
// # Export
//
// ExportJSONL writes one ExportLine per event with the leaf bytes untouched;
// ExportOCSF maps events onto OCSF Datastore Activity (class 6005, see OCSF).
// Each line is one JSON object followed by a newline (JSONLLine, OCSFLine).
//
// A Streamer sends the same lines to a webhook as the log grows: each POST
// carries consecutive events (Content-Type application/x-ndjson) with the
// headers
//
//	X-Gatehouse-Export: <sink name>
//	X-Gatehouse-Events: <first leaf index>-<last leaf index>
//	X-Gatehouse-Signature: sha256=<hex HMAC-SHA256 of the body>   (with a secret)
//
// and the sink's cursor in the store (the index of the next event to send)
// moves past them once the receiver answers 2xx. Delivery is at least once:
// receivers drop indexes they already have.
package audit
