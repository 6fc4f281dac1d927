package record

import (
	"bufio"
	"fmt"
	"io"
	"iter"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ReplayOptions shape a transcript.
type ReplayOptions struct {
	// Unaligned prints rows as psql -A does, values separated by '|',
	// instead of in aligned columns.
	Unaligned bool
	// Location is the time zone of the timestamps; UTC when nil.
	Location *time.Location
	// Null is how SQL NULL is shown (psql's \pset null); empty by default,
	// as in psql.
	Null string
	// AlignRows is how many rows are aligned together (default 1000): a
	// longer result is printed in blocks, each with its own widths, so that
	// replaying a big result needs bounded memory.
	AlignRows int
}

// Replay writes entries as a psql-like transcript: a header naming the
// session, then each statement the client sent as "=> …" with its
// timestamp, result rows, command tags, errors ("ERROR: 42501: …") and
// notices, and "!!" lines where the recording was truncated or damaged.
//
// Recorded text is untrusted: control characters other than newline and
// tab, and invalid UTF-8, are printed as escapes, so that replaying a
// recording cannot drive the reader's terminal.
//
// The error is the first from entries or from writing to w.
func Replay(w io.Writer, entries iter.Seq2[Entry, error], opts ReplayOptions) error {
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if opts.AlignRows <= 0 {
		opts.AlignRows = 1000
	}
	p := &printer{w: bufio.NewWriter(w), opts: opts}
	for e, err := range entries {
		if err != nil {
			p.flushRows()
			p.w.Flush()
			return err
		}
		p.entry(e)
	}
	p.flushRows()
	return p.w.Flush()
}

type printer struct {
	w    *bufio.Writer
	opts ReplayOptions
	day  string // date of the last timestamp printed

	names   []string   // columns of the result being printed
	rows    [][]string // rows waiting to be aligned
	printed bool       // the current result's header is out
}

func (p *printer) stamp(t time.Time) string {
	t = t.In(p.opts.Location)
	if d := t.Format("2006-01-02"); d != p.day {
		p.day = d
		fmt.Fprintf(p.w, "-- %s %s\n", d, t.Format("MST"))
	}
	return "[" + t.Format("15:04:05.000") + "] "
}

func (p *printer) entry(e Entry) {
	if e.Type != EntryRow {
		p.flushRows()
	}
	switch e.Type {
	case EntryMeta:
		m := e.Meta
		fmt.Fprintf(p.w, "-- %s as %s on %s", clean(m.Principal, false), clean(m.Role, false), clean(m.Connection, false))
		if m.Database != "" {
			fmt.Fprintf(p.w, " (database %s)", clean(m.Database, false))
		}
		if m.Source != "" {
			fmt.Fprintf(p.w, " from %s", clean(m.Source, false))
		}
		p.w.WriteString("\n")
		fmt.Fprintf(p.w, "%sconnected\n", p.stamp(e.Time))
	case EntryClient:
		s := p.stamp(e.Time)
		indent := strings.Repeat(" ", utf8.RuneCountInString(s)+3)
		switch e.Kind {
		case "query":
			fmt.Fprintf(p.w, "%s=> %s\n", s, indented(clean(e.Text, true), indent))
		case "copy":
			fmt.Fprintf(p.w, "%s>> %s\n", s, indented(clean(e.Text, true), indent))
		default:
			fmt.Fprintf(p.w, "%s=> [%s] %s\n", s, clean(e.Kind, false), indented(clean(e.Text, true), indent))
		}
		if len(e.Params) > 0 {
			parts := make([]string, len(e.Params))
			for i, v := range e.Params {
				if v == nil {
					parts[i] = fmt.Sprintf("$%d = NULL", i+1)
				} else {
					parts[i] = fmt.Sprintf("$%d = '%s'", i+1, strings.ReplaceAll(clean(*v, false), "'", "''"))
				}
			}
			fmt.Fprintf(p.w, "%s%s\n", indent, strings.Join(parts, ", "))
		}
	case EntryColumns:
		p.names = make([]string, len(e.Names))
		for i, n := range e.Names {
			p.names[i] = clean(n, false)
		}
		p.printed = false
	case EntryRow:
		row := make([]string, len(e.Values))
		for i, v := range e.Values {
			if v == nil {
				row[i] = p.opts.Null
			} else {
				row[i] = clean(string(v), false)
			}
		}
		p.rows = append(p.rows, row)
		if len(p.rows) >= p.opts.AlignRows {
			p.flushRows()
		}
	case EntryResult:
		fmt.Fprintf(p.w, "%s%s\n", p.stamp(e.Time), clean(e.Text, false))
		p.endResult()
	case EntryError:
		fmt.Fprintf(p.w, "%sERROR: %s: %s\n", p.stamp(e.Time), clean(e.SQLState, false), clean(e.Text, false))
		p.endResult()
	case EntryNotice:
		fmt.Fprintf(p.w, "%sNOTICE: %s\n", p.stamp(e.Time), clean(e.Text, false))
	case EntryTruncated:
		fmt.Fprintf(p.w, "%s!! recording truncated at its cap of %d bytes: what follows was not recorded\n", p.stamp(e.Time), e.Limit)
	case EntryEnd:
		fmt.Fprintf(p.w, "%sdisconnected", p.stamp(e.Time))
		if e.DroppedEntries > 0 {
			fmt.Fprintf(p.w, " (%d entries, about %d bytes, not recorded past the cap)", e.DroppedEntries, e.DroppedBytes)
		}
		p.w.WriteString("\n")
	case EntryDamaged:
		fmt.Fprintf(p.w, "!! DAMAGED: %s\n", clean(e.Text, false))
	}
}

func (p *printer) endResult() {
	p.names = nil
	p.printed = false
}

// flushRows prints the rows waiting, aligned (or not) as the options say.
func (p *printer) flushRows() {
	if len(p.rows) == 0 {
		return
	}
	if p.opts.Unaligned {
		if !p.printed && p.names != nil {
			p.w.WriteString(strings.Join(p.names, "|") + "\n")
		}
		for _, r := range p.rows {
			p.w.WriteString(strings.Join(r, "|") + "\n")
		}
	} else {
		p.aligned()
	}
	p.printed = true
	p.rows = p.rows[:0]
}

// aligned prints p.rows like psql's aligned format: a centred header, a
// rule, values padded to the column's width. Values are left-aligned: the
// recording does not keep column types.
func (p *printer) aligned() {
	n := len(p.names)
	for _, r := range p.rows {
		n = max(n, len(r))
	}
	width := make([]int, n)
	header := !p.printed && p.names != nil
	if header {
		for i, name := range p.names {
			width[i] = utf8.RuneCountInString(name)
		}
	}
	for _, r := range p.rows {
		for i, v := range r {
			width[i] = max(width[i], utf8.RuneCountInString(v))
		}
	}
	line := func(cells []string, center bool) {
		var b strings.Builder
		for i := range n {
			v := ""
			if i < len(cells) {
				v = cells[i]
			}
			pad := width[i] - utf8.RuneCountInString(v)
			left := 0
			if center {
				left = pad / 2
			}
			if i > 0 {
				b.WriteString("| ")
			} else {
				b.WriteString(" ")
			}
			b.WriteString(strings.Repeat(" ", left))
			b.WriteString(v)
			if i < n-1 {
				b.WriteString(strings.Repeat(" ", pad-left+1))
			}
		}
		p.w.WriteString(b.String() + "\n")
	}
	if header {
		line(p.names, true)
		parts := make([]string, n)
		for i := range n {
			parts[i] = strings.Repeat("-", width[i]+2)
		}
		p.w.WriteString(strings.Join(parts, "+") + "\n")
	}
	for _, r := range p.rows {
		line(r, false)
	}
}

// clean escapes what must not reach a terminal: control and format
// characters (keeping newline and tab when multiline) and invalid UTF-8.
func clean(s string, multiline bool) string {
	safe := true
	for _, r := range s {
		if r == utf8.RuneError || (hidden(r) && !(multiline && (r == '\n' || r == '\t'))) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case multiline && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case hidden(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// hidden reports whether r changes a terminal's state or the text's
// apparent order rather than showing a glyph: control characters, and
// format characters such as bidirectional overrides ("Trojan Source").
func hidden(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }

// indented indents the lines after the first of a multi-line statement
// under its first line.
func indented(s, indent string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+indent)
}
