package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendEvent appends the encoding of e to dst: the bytes marshal(*e)
// returns, error for error. It exists because encoding/json's reflection,
// when enqueue used marshal, cost about 6% of the gateway's CPU under load.
// Leaf bytes are hashed into the tree and must never change, so the tests
// (encode_test.go: table, randomised and fuzz) hold it byte-identical to
// marshal; any change to Event needs the same change here.
func appendEvent(dst []byte, e *Event) ([]byte, error) {
	return appendEventFacts(dst, e, false)
}

// appendCanonicalEvent is appendEvent for an event that canonical returned:
// its facts are marshal's output already, compact and valid, so they are
// copied rather than compacted again (json.Compact was 2.5% of the
// gateway's CPU under pgbench).
func appendCanonicalEvent(dst []byte, e *Event) ([]byte, error) {
	return appendEventFacts(dst, e, true)
}

// timeKey precedes an encoded event's time. Time is the second field, after
// kind, whose value is a JSON string and so cannot hold these unescaped
// quotes: the first match in an encoding is the time field's.
const timeKey = `,"time":"`

// restampData returns a copy of data, an event as appendEventFacts encodes
// it, with its time set to t: the bytes appendEventFacts would write for
// the event stamped t, since no other field depends on the time.
func restampData(data []byte, t time.Time) ([]byte, error) {
	i := bytes.Index(data, []byte(timeKey))
	if i < 0 {
		return nil, errors.New("encoded event has no time")
	}
	start := i + len(timeKey)
	n := bytes.IndexByte(data[start:], '"')
	if n < 0 {
		return nil, errors.New("encoded event's time is not terminated")
	}
	out, err := t.AppendText(append(make([]byte, 0, len(data)+8), data[:start]...))
	if err != nil {
		return nil, err
	}
	return append(out, data[start+n:]...), nil
}

func appendEventFacts(dst []byte, e *Event, compactFacts bool) ([]byte, error) {
	dst = append(dst, `{"kind":`...)
	dst = appendString(dst, string(e.Kind))
	dst = append(dst, timeKey...)
	t, err := e.Time.AppendText(dst)
	if err != nil {
		// AppendText and MarshalJSON word the error differently; report
		// MarshalJSON's, as encoding/json does.
		_, err = e.Time.MarshalJSON()
		return nil, &json.MarshalerError{Type: reflect.TypeFor[time.Time](), Err: err}
	}
	dst = append(t, '"')
	dst = appendStringField(dst, `,"session_id":`, e.SessionID)
	if p := e.Principal; p != nil {
		dst = append(dst, `,"principal":`...)
		n := len(dst)
		dst = appendStringField(dst, `,"issuer":`, p.Issuer)
		dst = appendStringField(dst, `,"subject":`, p.Subject)
		dst = appendStringField(dst, `,"name":`, p.Name)
		if len(p.Groups) > 0 {
			dst = append(dst, `,"groups":`...)
			dst = appendStrings(dst, p.Groups)
		}
		dst = closeObject(dst, n)
	}
	dst = appendStringField(dst, `,"source":`, e.Source)
	dst = appendStringField(dst, `,"connection":`, e.Connection)
	dst = appendStringField(dst, `,"role":`, e.Role)
	dst = appendStringField(dst, `,"database":`, e.Database)
	dst = appendStringField(dst, `,"protocol":`, e.Protocol)
	dst = appendStringField(dst, `,"statement":`, e.Statement)
	if len(e.Params) > 0 {
		dst = append(dst, `,"params":[`...)
		for i, p := range e.Params {
			if i > 0 {
				dst = append(dst, ',')
			}
			if p == nil {
				dst = append(dst, "null"...)
			} else {
				dst = appendString(dst, *p)
			}
		}
		dst = append(dst, ']')
	}
	if len(e.Tables) > 0 {
		dst = append(dst, `,"tables":`...)
		dst = appendStrings(dst, e.Tables)
	}
	switch {
	case len(e.Facts) == 0:
	case compactFacts:
		dst = append(dst, `,"facts":`...)
		dst = append(dst, e.Facts...)
	default:
		dst = append(dst, `,"facts":`...)
		// encoding/json compacts and validates a RawMessage.
		buf := bytes.NewBuffer(dst)
		if err := json.Compact(buf, e.Facts); err != nil {
			return nil, &json.MarshalerError{Type: reflect.TypeFor[json.RawMessage](), Err: err}
		}
		dst = buf.Bytes()
	}
	dst = appendStringField(dst, `,"decision":`, e.Decision)
	dst = appendStringField(dst, `,"rule":`, e.Rule)
	if o := e.Outcome; o != nil {
		dst = append(dst, `,"outcome":`...)
		n := len(dst)
		dst = appendStringField(dst, `,"command_tag":`, o.CommandTag)
		if o.Rows != 0 {
			dst = append(dst, `,"rows":`...)
			dst = strconv.AppendInt(dst, o.Rows, 10)
		}
		dst = appendStringField(dst, `,"sqlstate":`, o.SQLState)
		dst = appendStringField(dst, `,"message":`, o.Message)
		dst = closeObject(dst, n)
	}
	dst = appendStringField(dst, `,"reason":`, e.Reason)
	if len(e.Extra) > 0 {
		dst = append(dst, `,"extra":`...)
		if out, ok := appendFlatExtra(dst, e.Extra); ok {
			dst = out
		} else {
			// Any other value: encoding/json sorts the keys of the map and
			// of any map inside it.
			b, err := marshal(e.Extra)
			if err != nil {
				return nil, err
			}
			dst = append(dst, b...)
		}
	}
	return append(dst, '}'), nil
}

// maxFlatExtra is the most keys appendFlatExtra encodes itself.
const maxFlatExtra = 4

// appendFlatExtra encodes m as encoding/json would when it has a few keys
// whose values are strings, integers or booleans, as every statement
// outcome's {"statement_index": n} does; ok is false, with dst untouched,
// for any other map.
func appendFlatExtra(dst []byte, m map[string]any) (_ []byte, ok bool) {
	if len(m) > maxFlatExtra {
		return dst, false
	}
	var buf [maxFlatExtra]string
	keys := buf[:0]
	for k, v := range m {
		switch v.(type) {
		case string, int, int64, uint64, bool:
		default:
			return dst, false
		}
		keys = append(keys, k)
	}
	slices.Sort(keys) // byte order, as encoding/json sorts map keys
	for i, k := range keys {
		if i == 0 {
			dst = append(dst, '{')
		} else {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		switch v := m[k].(type) {
		case string:
			dst = appendString(dst, v)
		case int:
			dst = strconv.AppendInt(dst, int64(v), 10)
		case int64:
			dst = strconv.AppendInt(dst, v, 10)
		case uint64:
			dst = strconv.AppendUint(dst, v, 10)
		case bool:
			dst = strconv.AppendBool(dst, v)
		}
	}
	return append(dst, '}'), true
}

// appendStringField appends key and s unless s is empty (omitempty).
func appendStringField(dst []byte, key, s string) []byte {
	if s == "" {
		return dst
	}
	return appendString(append(dst, key...), s)
}

// closeObject ends an object whose fields were appended from dst[n:], each
// with a leading comma: the first comma becomes the opening brace, so no
// field needs to know whether another came before it.
func closeObject(dst []byte, n int) []byte {
	if len(dst) == n {
		return append(dst, "{}"...)
	}
	dst[n] = '{'
	return append(dst, '}')
}

func appendStrings(dst []byte, ss []string) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}

// appendString mirrors encoding/json's appendString (go1.26 encode.go)
// with HTML escaping off, as marshal sets it.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= ' ' && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// encoding/json escapes these even without HTML escaping: they
		// end lines in JavaScript.
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// eventSizeHint is a capacity for e's encoding that is usually enough, so
// that appendEvent allocates once: room for the short fields, plus the
// lengths of those that can be long.
func eventSizeHint(e *Event) int {
	n := 384 + len(e.Statement) + len(e.Facts) + len(e.Reason)
	for _, p := range e.Params {
		if p != nil {
			n += len(*p) + 3
		}
	}
	if e.Outcome != nil {
		n += len(e.Outcome.Message)
	}
	return n
}
