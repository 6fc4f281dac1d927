package audit

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// checkEncode fails t unless appendEvent and marshal agree on e: the same
// bytes, or both an error with the same message.
func checkEncode(t testing.TB, e *Event) {
	t.Helper()
	want, wantErr := marshal(*e)
	// A prefix checks that appendEvent appends rather than overwrites.
	got, gotErr := appendEvent([]byte("prefix"), e)
	switch {
	case wantErr != nil || gotErr != nil:
		if wantErr == nil || gotErr == nil || wantErr.Error() != gotErr.Error() {
			t.Fatalf("event %#v:\nappendEvent error: %v\nmarshal error:     %v", e, gotErr, wantErr)
		}
	case !bytes.HasPrefix(got, []byte("prefix")) || !bytes.Equal(got[len("prefix"):], want):
		t.Fatalf("event %#v:\nappendEvent: %s\nmarshal:     %s", e, got, want)
	}
	// What the log encodes is the canonical form, whose facts
	// appendCanonicalEvent copies without compacting: the same bytes.
	ce, err := e.canonical(nil)
	if err != nil {
		return // facts that are not JSON: the log refuses them before encoding
	}
	want, wantErr = marshal(ce)
	got, gotErr = appendCanonicalEvent(nil, &ce)
	if wantErr != nil || gotErr != nil {
		if wantErr == nil || gotErr == nil || wantErr.Error() != gotErr.Error() {
			t.Fatalf("canonical event %#v:\nappendCanonicalEvent error: %v\nmarshal error:              %v", ce, gotErr, wantErr)
		}
		return
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("canonical event %#v:\nappendCanonicalEvent: %s\nmarshal:              %s", ce, got, want)
	}
	// A re-stamp rewrites the time in the encoding (restampData): the
	// bytes must be those of the event stamped at the new time, whatever
	// the other fields hold (a kind or statement that looks like a time
	// field, say).
	for _, when := range []time.Time{ce.Time.Add(time.Hour + 123456789), time.Unix(1741964966, 0).UTC(), time.Unix(0, 1).UTC()} {
		re, reErr := restampData(got, when)
		moved := ce
		moved.Time = when
		want, err := marshal(moved)
		if err != nil || reErr != nil {
			// A time out of JSON's range: both must refuse it.
			if err == nil || reErr == nil {
				t.Fatalf("canonical event %#v re-stamped %v: restampData error %v, marshal error %v", ce, when, reErr, err)
			}
			continue
		}
		if !bytes.Equal(re, want) {
			t.Fatalf("canonical event %#v re-stamped %v:\nrestampData: %s\nmarshal:     %s", ce, when, re, want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

var testTime = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

func TestAppendEvent(t *testing.T) {
	weird := "q\" b\\ nl\n cr\r tab\t bs\b ff\f nul\x00 us\x1f del\x7f bad\xff\xc3 trunc\xe2\x80 ls\u2028 ps\u2029 html<>& é 日本 🙂"
	cet := time.FixedZone("CET", 3600)
	for _, tc := range []struct {
		name string
		e    Event
	}{
		{"zero", Event{}},
		{"kind only", Event{Kind: KindGatewayStart, Time: testTime}},
		{"statement", statementEvent(1)},
		{"every field", Event{
			Kind:       KindStatementOutcome,
			Time:       testTime,
			SessionID:  "s1",
			Principal:  &Principal{Issuer: "https://idp", Subject: "u1", Name: "Ann", Groups: []string{"a", "b"}},
			Source:     "[::1]:5432",
			Connection: "shop",
			Role:       "writer",
			Database:   "shop",
			Protocol:   "postgres",
			Statement:  "UPDATE t SET a = $1 WHERE b = $2",
			Params:     []*string{ptr("1"), nil, ptr("")},
			Tables:     []string{"t", "u"},
			Facts:      json.RawMessage(`{"command":"UPDATE","writes":["t"]}`),
			Decision:   "allow",
			Rule:       "writers",
			Outcome:    &Outcome{CommandTag: "UPDATE 3", Rows: 3, SQLState: "00000", Message: "ok"},
			Reason:     "ticket 42",
			Extra:      map[string]any{"b": 1, "a": "x"},
		}},
		{"flat extra", Event{Kind: KindStatementOutcome, Extra: map[string]any{"statement_index": uint64(41),
			"z": int64(-7), "\u2028k\"": "v\x00", "b": true}}},
		{"flat extra, max uint64", Event{Extra: map[string]any{"n": uint64(1<<64 - 1), "f": false}}},
		{"extra past the flat size", Event{Extra: map[string]any{"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}}},
		{"extra with a float", Event{Extra: map[string]any{"a": 1, "b": 2.5}}},
		{"empty principal and outcome", Event{Kind: KindStatement, Principal: &Principal{}, Outcome: &Outcome{}}},
		{"empty groups", Event{Principal: &Principal{Name: "n", Groups: []string{}}}},
		{"principal groups only", Event{Principal: &Principal{Groups: []string{""}}}},
		{"outcome rows only", Event{Outcome: &Outcome{Rows: 1}}},
		{"negative rows", Event{Outcome: &Outcome{Rows: -9223372036854775808, SQLState: "22003"}}},
		{"empty slices and maps", Event{Params: []*string{}, Tables: []string{}, Facts: json.RawMessage{}, Extra: map[string]any{}}},
		{"nil params", Event{Params: []*string{nil, nil}}},
		{"empty strings in slices", Event{Params: []*string{ptr("")}, Tables: []string{"", ""}}},
		{"weird strings", Event{
			Kind:      Kind(weird),
			SessionID: weird,
			Principal: &Principal{Issuer: weird, Subject: weird, Name: weird, Groups: []string{weird}},
			Source:    weird, Connection: weird, Role: weird, Database: weird, Protocol: weird,
			Statement: weird, Params: []*string{&weird, nil}, Tables: []string{weird},
			Decision: weird, Rule: weird,
			Outcome: &Outcome{CommandTag: weird, SQLState: weird, Message: weird},
			Reason:  weird,
			Extra:   map[string]any{weird: weird},
		}},
		{"every control byte", Event{Statement: func() string {
			var b strings.Builder
			for c := range 0x80 {
				b.WriteByte(byte(c))
			}
			return b.String()
		}()}},
		{"sql comparisons", Event{Statement: "SELECT 1 WHERE a < b AND c > d AND e && f"}},
		{"zero nanoseconds", Event{Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}},
		{"trailing zero nanoseconds", Event{Time: time.Date(2025, 1, 2, 3, 4, 5, 120000000, time.UTC)}},
		{"one nanosecond", Event{Time: time.Date(2025, 1, 2, 3, 4, 5, 1, time.UTC)}},
		{"non-UTC", Event{Time: time.Date(2025, 1, 2, 3, 4, 5, 6, cet)}},
		{"negative offset", Event{Time: time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("", -(9*3600+30*60)))}},
		{"local", Event{Time: time.Date(2025, 1, 2, 3, 4, 5, 6, time.Local)}},
		{"monotonic", Event{Time: time.Now()}},
		{"year 0", Event{Time: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"year 9999", Event{Time: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)}},
		{"year 10000", Event{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"year -1", Event{Time: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"offset of 24 hours", Event{Time: time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600))}},
		{"offset with seconds", Event{Time: time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("", 3600+30))}},
		{"facts with spaces", Event{Facts: json.RawMessage(" {\n\"b\" : [1, 2] ,\t\"a\":\"x y\"}\r\n")}},
		{"facts with html and separators", Event{Facts: json.RawMessage(`{"s":"<a>&` + "\u2028\u2029" + `"}`)}},
		{"facts scalar", Event{Facts: json.RawMessage(`null`)}},
		{"time fields later on", Event{Kind: KindStatement, Time: testTime,
			Facts: json.RawMessage(`{"a":1,"time":"2020-01-01T00:00:00Z"}`),
			Extra: map[string]any{"a": 1, "time": "2021-01-01T00:00:00Z"}}},
		{"facts invalid", Event{Facts: json.RawMessage(`{"a":`)}},
		{"facts trailing data", Event{Facts: json.RawMessage(`{} {}`)}},
		{"facts invalid after bad time", Event{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Facts: json.RawMessage(`x`)}},
		{"extra nested", Event{Extra: map[string]any{
			"z": map[string]any{"y": 1, "x": []any{map[string]any{"d": nil, "c": true}}},
			"a": 1.5,
			"m": map[string]int{"b": 2, "a": 1},
			"h": "<&>",
		}}},
		{"extra unsupported", Event{Extra: map[string]any{"c": make(chan int)}}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkEncode(t, &tc.e) })
	}
}

// statementEvent is a typical canonical statement event, like stmt in
// audit_test.go.
func statementEvent(i int) Event {
	e := Event{
		Kind:       KindStatement,
		Time:       testTime,
		SessionID:  "s" + string(rune('0'+i%3)),
		Principal:  &Principal{Issuer: "static", Subject: "ci-agent", Name: "ci-agent", Groups: []string{"agents"}},
		Source:     "127.0.0.1:5000",
		Connection: "shop",
		Role:       "reader",
		Database:   "shop",
		Protocol:   "postgres",
		Statement:  "SELECT * FROM payments WHERE id < 1",
		Tables:     []string{"payments"},
		Facts:      []byte(`{"command":"SELECT","reads":["payments"]}`),
		Decision:   "allow",
		Rule:       "default",
	}
	ce, err := e.canonical(nil)
	if err != nil {
		panic(err)
	}
	return ce
}

func TestAppendEventRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		e := randomEvent(r)
		checkEncode(t, &e)
	}
}

// randomString draws from bytes that encoding/json treats specially, and
// from ordinary ones.
func randomString(r *rand.Rand) string {
	if r.IntN(4) == 0 {
		return ""
	}
	pieces := []string{
		"a", "Z", "0", " ", "\"", "\\", "/", "<", ">", "&", "\n", "\r", "\t", "\b", "\f",
		"\x00", "\x01", "\x1f", "\x7f", "\x80", "\xff", "\xc3", "\xe2\x80", "\xed\xa0\x80",
		"é", "日", "🙂", "\u2028", "\u2029", "\u2027", "\ufffd", "\xef\xbf\xbd",
	}
	var b strings.Builder
	for range r.IntN(12) {
		if r.IntN(8) == 0 {
			b.WriteByte(byte(r.UintN(256)))
		} else {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
	}
	return b.String()
}

func randomStrings(r *rand.Rand) []string {
	switch r.IntN(4) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	ss := make([]string, 1+r.IntN(3))
	for i := range ss {
		ss[i] = randomString(r)
	}
	return ss
}

func randomTime(r *rand.Rand) time.Time {
	locs := []*time.Location{
		time.UTC, time.Local, time.FixedZone("", 3600), time.FixedZone("X", -(5*3600 + 45*60)),
		time.FixedZone("", 7), time.FixedZone("", 24*3600),
	}
	var sec int64
	switch r.IntN(4) {
	case 0: // years 0 to 9999 and a little beyond on both sides
		sec = r.Int64N(320000000000) - 62300000000
	default: // recent
		sec = 1700000000 + r.Int64N(100000000)
	}
	var nsec int64
	switch r.IntN(3) {
	case 0:
	case 1:
		nsec = r.Int64N(1000) * 1000000
	default:
		nsec = r.Int64N(1e9)
	}
	return time.Unix(sec, nsec).In(locs[r.IntN(len(locs))])
}

func randomJSON(r *rand.Rand, depth int) any {
	switch n := r.IntN(7); {
	case n == 0 && depth < 3:
		return randomMap(r, depth)
	case n == 1 && depth < 3:
		a := make([]any, r.IntN(3))
		for i := range a {
			a[i] = randomJSON(r, depth+1)
		}
		return a
	case n == 2:
		return r.Int64()
	case n == 3:
		return r.Float64() * 1e6
	case n == 4:
		return r.IntN(2) == 0
	case n == 5:
		return nil
	default:
		return randomString(r)
	}
}

func randomMap(r *rand.Rand, depth int) map[string]any {
	m := map[string]any{}
	for range r.IntN(4) {
		m[randomString(r)] = randomJSON(r, depth+1)
	}
	return m
}

func randomFacts(r *rand.Rand) json.RawMessage {
	switch r.IntN(6) {
	case 0:
		return nil
	case 1:
		return json.RawMessage{}
	case 2: // indented, so there is something to compact
		b, _ := json.MarshalIndent(randomJSON(r, 0), " ", "\t")
		return b
	case 3: // broken
		b, _ := json.Marshal(randomJSON(r, 0))
		return b[:r.IntN(len(b))]
	}
	b, _ := marshal(randomJSON(r, 0))
	return b
}

func randomEvent(r *rand.Rand) Event {
	s := func() string { return randomString(r) }
	e := Event{
		Kind: Kind(s()), Time: randomTime(r), SessionID: s(), Source: s(), Connection: s(),
		Role: s(), Database: s(), Protocol: s(), Statement: s(), Tables: randomStrings(r),
		Facts: randomFacts(r), Decision: s(), Rule: s(), Reason: s(),
	}
	if r.IntN(2) == 0 {
		e.Principal = &Principal{Issuer: s(), Subject: s(), Name: s(), Groups: randomStrings(r)}
	}
	if r.IntN(2) == 0 {
		rows := []int64{0, 1, -1, r.Int64(), -r.Int64()}[r.IntN(5)]
		e.Outcome = &Outcome{CommandTag: s(), Rows: rows, SQLState: s(), Message: s()}
	}
	if ps := randomStrings(r); ps != nil {
		e.Params = make([]*string, len(ps))
		for i := range ps {
			if r.IntN(3) > 0 {
				e.Params[i] = &ps[i]
			}
		}
	}
	switch r.IntN(4) {
	case 0:
		e.Extra = map[string]any{}
	case 1:
		e.Extra = randomMap(r, 0)
	case 2:
		e.Extra = map[string]any{s(): randomJSON(r, 0), s(): randomJSON(r, 1)}
	}
	return e
}

func FuzzAppendEvent(f *testing.F) {
	f.Add("statement", "SELECT * FROM t WHERE a < $1", "1", "payments", []byte(`{"command":"SELECT"}`), int64(1741964966), int64(535897932), 0, int64(3), uint16(0xffff))
	f.Add("", "", "", "", []byte(nil), int64(0), int64(0), 0, int64(0), uint16(0))
	f.Add("k\"\\\n", "\x00\x1f\x7f\b\f\xff\u2028\u2029<>&", "\xc3", "", []byte(" { \"a\" : 1 } "), int64(-62135596800), int64(1), 3600, int64(-1), uint16(0x5555))
	f.Add("x", "y", "z", "w", []byte(`{"a":`), int64(253402300800), int64(0), -3600, int64(0), uint16(0xaaaa))
	f.Add("x", "y", "z", "w", []byte(`[1, "x\u2028"]`), int64(1), int64(999999999), 86400, int64(1<<62), uint16(0x0f0f))
	f.Add(`","time":"`, `,"time":"2020-01-01T00:00:00Z"`, `"`, `,"time":"`, []byte(`{"time":"x"}`), int64(1), int64(5), 0, int64(1), uint16(0xffff))
	f.Fuzz(func(t *testing.T, kind, stmt, param, table string, facts []byte, sec, nsec int64, offset int, rows int64, flags uint16) {
		// flags chooses which optional parts are present, so that
		// omitempty sees every combination.
		has := func(bit int) bool { return flags&(1<<bit) != 0 }
		e := Event{
			Kind: Kind(kind),
			Time: time.Unix(sec, nsec).In(time.FixedZone("", offset%(48*3600))),
		}
		if has(0) {
			e.SessionID, e.Source, e.Connection, e.Role = stmt, param, table, kind
		}
		if has(1) {
			e.Principal = &Principal{}
			if has(2) {
				e.Principal = &Principal{Issuer: kind, Subject: stmt, Name: param, Groups: []string{table, param}}
			}
		}
		if has(3) {
			e.Database, e.Protocol, e.Statement = table, kind, stmt
		}
		if has(4) {
			e.Params = []*string{&param, nil, &stmt}
		}
		if has(5) {
			e.Tables = []string{table}
		}
		if has(6) {
			e.Facts = facts
		}
		if has(7) {
			e.Decision, e.Rule, e.Reason = kind, table, param
		}
		if has(8) {
			e.Outcome = &Outcome{}
			if has(9) {
				e.Outcome = &Outcome{CommandTag: kind, Rows: rows, SQLState: table, Message: stmt}
			}
		}
		if has(10) {
			e.Extra = map[string]any{stmt: param, table: map[string]any{kind: rows, param: []any{stmt}}}
		}
		checkEncode(t, &e)
	})
}

// BenchmarkAppendEvent encodes a statement event whose facts are the size
// of pgbench's SELECT's: compacted again (appendEvent) and copied as the
// log does (appendCanonicalEvent).
func BenchmarkAppendEvent(b *testing.B) {
	e := statementEvent(1)
	e.Facts = []byte(`{"column_exprs":["public.pgbench_accounts.abalance"],"command":"SELECT",` +
		`"filter_columns":["public.pgbench_accounts.aid"],"filter_exprs":["public.pgbench_accounts.aid = $1"],` +
		`"reads":["public.pgbench_accounts"]}`)
	for _, bc := range []struct {
		name   string
		encode func([]byte, *Event) ([]byte, error)
	}{{"compact", appendEvent}, {"canonical", appendCanonicalEvent}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				// A fresh buffer each time, as enqueue needs: the bytes are kept.
				if _, err := bc.encode(make([]byte, 0, eventSizeHint(&e)), &e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMarshalEvent(b *testing.B) {
	e := statementEvent(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := marshal(e); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCanonicalTables checks that an event's tables come out sorted and
// without duplicates, that the caller's slice is left as it was, and that
// tables already in order are kept without a copy.
func TestCanonicalTables(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"payments"}, []string{"payments"}},
		{[]string{"orders", "payments"}, []string{"orders", "payments"}},
		{[]string{"payments", "orders"}, []string{"orders", "payments"}},
		{[]string{"orders", "orders"}, []string{"orders"}},
		{[]string{"b", "a", "b", "c", "a"}, []string{"a", "b", "c"}},
	} {
		in := append([]string(nil), tc.in...)
		ce, err := Event{Kind: KindStatement, Tables: in}.canonical(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ce.Tables, tc.want) {
			t.Errorf("canonical tables of %q = %q, want %q", tc.in, ce.Tables, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("canonical changed the caller's tables %q to %q", tc.in, in)
		}
		if copied := &ce.Tables[0] != &in[0]; copied != !slices.Equal(tc.in, tc.want) {
			t.Errorf("tables %q: copied %v, want a copy only when they are out of order", tc.in, copied)
		}
	}
}
