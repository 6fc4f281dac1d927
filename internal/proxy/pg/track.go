package pg

import (
	"encoding/binary"
	"sync"
	"time"
)

// The tracker pairs target responses with the client messages that caused
// them. The client→target direction pushes one pending item per message that
// the target answers; the target→client direction pops items as their
// responses complete. With it the relay knows, for every DataRow, which
// statement and result formats it belongs to (for masking), and for every
// CommandComplete or ErrorResponse which statement it ends (for the audit
// outcome and for denials), even in a pipeline.

// itemKind is what a pending item waits for.
type itemKind uint8

const (
	itemQuery          itemKind = iota + 1 // simple Query: ends at ReadyForQuery
	itemParse                              // ParseComplete
	itemBind                               // BindComplete
	itemDescribeStmt                       // ParameterDescription, then RowDescription or NoData
	itemDescribePortal                     // RowDescription or NoData
	itemExecute                            // DataRow*, then CommandComplete, EmptyQueryResponse or PortalSuspended
	itemClose                              // CloseComplete
	itemSync                               // ReadyForQuery
	itemFunctionCall                       // FunctionCallResponse, then ReadyForQuery
)

// item is one pending client request.
type item struct {
	kind itemKind
	name string // statement (Parse, Describe S) or portal (Describe P, Execute)
	// stmt is the statement an Execute's portal was bound from.
	stmt string
	// formats are the result format codes of an Execute's Bind: none means
	// all text, one applies to every column.
	formats []int16
	// stmtID links the item to the audited statement it carries out (0:
	// none). Set for Query and Execute.
	stmtID uint64
	// denial, when set, is the policy decision that replaced this item's
	// statement with the sentinel; its error is rewritten into 42501.
	denial *denial
	// params are an Execute's bind parameters, masked, for its audited
	// outcome.
	params []*string
	// start is when a Query or Execute was forwarded, for the statement
	// latency histogram.
	start time.Time
}

// tracker is the queue shared by the two relay directions.
type tracker struct {
	mu    sync.Mutex // guards items
	items []item     // pending, oldest first; a ring would save copies but the queue is short
	head  int
}

func (t *tracker) push(it item) {
	t.mu.Lock()
	if t.head > 0 && t.head == len(t.items) {
		t.items, t.head = t.items[:0], 0
	}
	t.items = append(t.items, it)
	t.mu.Unlock()
}

// front returns the oldest pending item, if any.
func (t *tracker) front() (item, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.head == len(t.items) {
		return item{}, false
	}
	return t.items[t.head], true
}

// pop removes the oldest pending item.
func (t *tracker) pop() (item, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.head == len(t.items) {
		return item{}, false
	}
	it := t.items[t.head]
	t.items[t.head] = item{}
	t.head++
	return it, true
}

// skipToSync drops the items the target skips after an error in the
// extended protocol: everything up to (not including) the next Sync.
func (t *tracker) skipToSync(dropped func(item)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.head < len(t.items) && t.items[t.head].kind != itemSync {
		if dropped != nil {
			dropped(t.items[t.head])
		}
		t.items[t.head] = item{}
		t.head++
	}
}

// portalInfo is what the client→target direction remembers of a portal
// to fill items: which statement it was bound from and with which result
// formats. Only that goroutine touches it.
type portalInfo struct {
	stmt    string
	formats []int16
	stmtID  uint64 // the audited statement the portal runs
	params  []*string
	// review is set when the portal's statement needs approval before it
	// runs; sql and raw (the bind values) bind the approval request.
	review *denial
	sql    string
	raw    [][]byte
}

// bind is a parsed Bind message. values alias the message body: valid
// until the reader's next message.
type bind struct {
	portal, stmt string
	values       [][]byte // nil for NULL
	paramFormats []byte   // the raw int16 parameter format codes
	formats      []int16  // result format codes
}

// binary reports whether parameter i is in binary format.
func (b *bind) binary(i int) bool {
	switch n := len(b.paramFormats) / 2; {
	case n == 1:
		return binary.BigEndian.Uint16(b.paramFormats) == 1
	case i < n:
		return binary.BigEndian.Uint16(b.paramFormats[2*i:]) == 1
	}
	return false
}

// parseBind parses a Bind once for everything the relay needs of it: the
// portal and statement, the parameters (for approvals, recordings and
// audit) and the result format codes (for masking).
func parseBind(body []byte) (b bind, ok bool) {
	p, rest, ok := cstring(body)
	if !ok {
		return b, false
	}
	st, rest, ok := cstring(rest)
	if !ok || len(rest) < 2 {
		return b, false
	}
	b.portal, b.stmt = string(p), string(st)
	nf := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) < 2*nf {
		return b, false
	}
	b.paramFormats, rest = rest[:2*nf], rest[2*nf:]
	if len(rest) < 2 {
		return b, false
	}
	n := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if n > 0 {
		b.values = make([][]byte, n)
	}
	for i := 0; i < n; i++ {
		if len(rest) < 4 {
			return b, false
		}
		l := int32(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		if l >= 0 {
			if int(l) > len(rest) {
				return b, false
			}
			b.values[i], rest = rest[:l], rest[l:]
		}
	}
	if len(rest) < 2 {
		return b, false
	}
	n = int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) < 2*n {
		return b, false
	}
	if n > 0 {
		b.formats = make([]int16, n)
		for i := range b.formats {
			b.formats[i] = int16(binary.BigEndian.Uint16(rest[2*i:]))
		}
	}
	return b, true
}

// formatOf returns the result format of column i under Bind's codes.
func formatOf(formats []int16, i int) int16 {
	switch len(formats) {
	case 0:
		return 0
	case 1:
		return formats[0]
	default:
		if i < len(formats) {
			return formats[i]
		}
		return 0
	}
}
