package pg

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync/atomic"
)

// denial is a policy decision to keep a statement from the target.
type denial struct {
	rule    string
	review  bool // a review rule: held for approval once approvals land; refused until then
	message string
	hint    string
	marker  string // the sentinel's marker, to recognise its error
	code    string // SQLSTATE; 42501 when empty
	// reviewers are the groups that may approve a review decision.
	reviewers []string
	// decided marks a review that a reviewer (or expiry) turned down.
	decided bool
	detail  string
}

// sentinels replace denied statements. A denied statement must still make
// the target do what PostgreSQL does on an error — abort the transaction
// block, skip to Sync in the extended protocol, answer in pipeline order —
// so the target is given a statement that fails in parse analysis, before
// it can touch anything, and whose error names a marker that only this
// session knows. The target→client direction swaps that error for the
// denial. (In an aborted transaction the target answers 25P02 before it
// looks at any statement, exactly as it would have for the original.)
type sentinels struct {
	nonce string // random per session, so a client cannot forge a marker
	seq   atomic.Uint64
}

func newSentinels() *sentinels {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &sentinels{nonce: hex.EncodeToString(b[:])}
}

// next returns a fresh marker and the SQL text that fails with it.
func (s *sentinels) next() (marker, sql string) {
	marker = "gatehouse-denied-" + s.nonce + "-" + strconv.FormatUint(s.seq.Add(1), 10)
	return marker, "SELECT '" + marker + "'::pg_catalog.int4"
}

// isSentinelError reports whether an ErrorResponse body is the failure of
// the sentinel carrying marker.
func isSentinelError(body []byte, marker string) bool {
	return bytes.Contains(body, []byte("C22P02\x00")) && bytes.Contains(body, []byte(marker))
}

// errorFor is the ErrorResponse the client gets for d. The rule's name is
// in the message itself, since many clients show only the message.
func (d *denial) errorFor() *pgError {
	what := "statement denied by rule"
	if d.code == codeIOError {
		what = "statement refused under"
	}
	detail := ""
	switch {
	case d.decided:
		what = "statement not approved under rule"
	case d.code == codeQueryCanceled:
		what = "statement withdrawn from review under rule"
	case d.review:
		what = "statement requires approval under rule"
		detail = "review rules hold a statement for a reviewer's approval; approvals are not enabled on this gateway, so it was refused"
	}
	if d.detail != "" {
		detail = d.detail
	}
	msg := fmt.Sprintf("gatehouse: %s %q", what, d.rule)
	if d.message != "" {
		msg += ": " + d.message
	}
	hint := d.hint
	if hint == "" {
		hint = "gatehouse's policy forbids this statement; ask an administrator if you need it"
	}
	code := d.code
	if code == "" {
		code = codeInsufficientPrivilege
	}
	return &pgError{Severity: "ERROR", Code: code, Message: msg, Detail: detail, Hint: hint}
}

// appendQuery appends a Query message for sql to dst.
func appendQuery(dst []byte, sql string) []byte {
	return appendMsg(dst, 'Q', func(b []byte) []byte {
		b = append(b, sql...)
		return append(b, 0)
	})
}

// appendParse appends a Parse message naming stmt with sql and no
// parameter types.
func appendParse(dst []byte, stmt, sql string) []byte {
	return appendMsg(dst, 'P', func(b []byte) []byte {
		b = append(b, stmt...)
		b = append(b, 0)
		b = append(b, sql...)
		b = append(b, 0)
		return append(b, 0, 0)
	})
}
