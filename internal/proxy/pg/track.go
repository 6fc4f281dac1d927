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

// clientState is what the client→target direction remembers of the
// extended protocol to fill items: which statement each portal was bound
// from and with which result formats. Only that goroutine touches it.
type clientState struct {
	portals map[string]portalInfo
}

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

// parseBind reads the portal, statement and result format codes of a Bind.
func parseBind(body []byte) (portal, stmt string, formats []int16, ok bool) {
	p, rest, ok := cstring(body)
	if !ok {
		return
	}
	s, rest, ok := cstring(rest)
	if !ok {
		return
	}
	// Skip parameter format codes and values to reach the result codes.
	if len(rest) < 2 {
		return "", "", nil, false
	}
	n := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) < 2*n {
		return "", "", nil, false
	}
	rest = rest[2*n:]
	if len(rest) < 2 {
		return "", "", nil, false
	}
	n = int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	for i := 0; i < n; i++ {
		if len(rest) < 4 {
			return "", "", nil, false
		}
		l := int32(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		if l > 0 {
			if int(l) > len(rest) {
				return "", "", nil, false
			}
			rest = rest[l:]
		}
	}
	if len(rest) < 2 {
		return "", "", nil, false
	}
	n = int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) < 2*n {
		return "", "", nil, false
	}
	if n > 0 {
		formats = make([]int16, n)
		for i := range formats {
			formats[i] = int16(binary.BigEndian.Uint16(rest[2*i:]))
		}
	}
	return string(p), string(s), formats, true
}

// bindParams returns a Bind's parameter values (nil for NULL) and whether
// each is binary; used to record and audit them, masked.
func bindParams(body []byte) (values [][]byte, binaryFmt []bool, ok bool) {
	_, rest, ok := cstring(body)
	if !ok {
		return nil, nil, false
	}
	_, rest, ok = cstring(rest)
	if !ok || len(rest) < 2 {
		return nil, nil, false
	}
	nf := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) < 2*nf {
		return nil, nil, false
	}
	fcodes := rest[:2*nf]
	rest = rest[2*nf:]
	if len(rest) < 2 {
		return nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	values = make([][]byte, n)
	binaryFmt = make([]bool, n)
	for i := 0; i < n; i++ {
		if len(rest) < 4 {
			return nil, nil, false
		}
		l := int32(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		if l >= 0 {
			if int(l) > len(rest) {
				return nil, nil, false
			}
			values[i] = rest[:l]
			rest = rest[l:]
		}
		switch {
		case nf == 1:
			binaryFmt[i] = binary.BigEndian.Uint16(fcodes) == 1
		case nf > i:
			binaryFmt[i] = binary.BigEndian.Uint16(fcodes[2*i:]) == 1
		}
	}
	return values, binaryFmt, true
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
