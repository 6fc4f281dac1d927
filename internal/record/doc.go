// Package record owns session recordings: what a client sent through the
// gateway and what came back, with timing, kept for replay (DESIGN.md,
// step 6). It writes them (Recorder), reads and verifies them (Open,
// Reader), prints them as a psql-like transcript (Replay) and deletes them
// when they are past retention (Prune).
//
// Everything recorded is already masked: the caller passes the statement
// text, parameters, row values and messages after the masker has run,
// because a recording is kept as long as the audit trail and is read by
// people who must not see card numbers (PCI DSS 3.4.1).
//
// # Storage
//
// A recording is a row in the store (store.Recording: who, which
// connection and role, when, how many bytes) and a sequence of chunks
// (store.Chunk), numbered from 0. Each chunk is self-contained: it can be
// decoded without the chunks before it. A chunk is written once, when it
// fills (Options.ChunkBytes of entries) and when the recording closes, and
// never rewritten. The store keeps the SHA-256 of each chunk's stored bytes
// next to it, and Recorder.Close returns every digest in a Summary, which
// the caller writes into the session.end audit event (Summary.AuditExtra).
// The digests are thereby covered by the audit log's Merkle tree and signed
// checkpoints: editing, removing or reordering a chunk is detected by
// comparing the chunks with the audit event, even by someone who also
// rewrote the store's digest column (Reader, AuditedSummary).
//
// A recording has a size cap (Options.MaxBytes of entries). When an entry
// would pass it, a truncation entry is written instead and every later
// entry is dropped and counted; the end entry and the Summary say how many
// entries and bytes were lost. Truncation is never silent.
//
// # Chunk format
//
// A chunk is stored gzip-compressed (RFC 1952, no file name, modification
// time zero). Decompressed, it is
//
//	chunk   = magic version session seq base entry*
//	magic   = "GHRC"
//	version = 0x01
//	session = str              the session ID, so a chunk cannot be moved to another recording
//	seq     = uvarint          the chunk's number, so it cannot be moved within one
//	base    = varint           Unix nanoseconds of the chunk's first entry
//	entry   = type:byte dt:uvarint body
//	dt      = nanoseconds since the previous entry of the chunk (the first: since base);
//	          never negative: entries are in time order
//	str     = len:uvarint bytes
//	nstr    = 0:uvarint (SQL NULL) | (len+1):uvarint bytes
//
// where uvarint and varint are encoding/binary's (LEB128; varint
// zig-zag), and each type has one body:
//
//	'M' meta       str principal, str connection, str role, str database, str source, str protocol
//	               (first entry of chunk 0)
//	'Q' client     str kind (query, parse, bind, execute, copy, …), str text,
//	               n:uvarint, n × nstr parameter
//	'T' columns    n:uvarint, n × str name (a result's column names)
//	'D' row        n:uvarint, n × nstr value (values as text, NULL as NULL)
//	'C' result     str command tag ("SELECT 2", "UPDATE 1")
//	'E' error      str sqlstate, str message
//	'N' notice     str message
//	'!' truncated  limit:uvarint (Options.MaxBytes); entries after it were dropped
//	'Z' end        dropped entries:uvarint, dropped bytes:uvarint (last entry of the last chunk)
//
// A reader that meets an unknown type stops decoding that chunk and reports
// it: types are only ever added with a new version byte.
//
// For example, the recording of a session "s1" with empty Meta that sent
// one query at 2025-01-02T03:04:05Z and closed at once is one chunk which,
// decompressed, reads (Example_chunk prints it)
//
//	47 48 52 43 01 02 73 31 00 80 c8 99 ef dd c7 e0 96 30   "GHRC" 1 "s1" seq 0 base
//	4d 00 00 00 00 00 00 00                                 'M' dt 0, six empty strings
//	51 00 05 71 75 65 72 79 08 53 45 4c 45 43 54 20 31 00   'Q' dt 0 "query" "SELECT 1" no params
//	5a 00 00 00                                             'Z' dt 0, nothing dropped
//
// # Concurrency and cost
//
// A Recorder is safe for concurrent use, because a session's two relay
// directions both call it: statements arrive on the client→target
// goroutine, rows on the target→client one. A mutex guards its buffer.
// Row appends to that buffer with no allocation once it has grown. Every
// 64 KiB of entries is compressed at once, by the caller, while it is
// still in the core's cache: each segment of a chunk is a deflate stream
// of its own ending in a sync flush, so no compressor is held between
// segments and the chunk is still one plain gzip member. Completed chunks
// are hashed and stored by one background goroutine per Recorder (started
// with the first, so a session that records little has none), so the
// relay does not wait for the store unless it falls three chunks behind
// (then it waits: memory stays bounded at a segment of entries and four
// compressed chunks per session, about a tenth of a chunk's size each for
// result rows).
//
// A store failure is sticky: every later call returns it, and so does
// Close. The caller decides whether a session that can no longer be
// recorded may continue; Gatehouse's data path ends it (fail closed).
package record
