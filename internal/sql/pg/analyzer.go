package pg

import (
	"container/list"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pganalyze/pg_query_go/v6/parser"
)

// maxCachedText bounds the length of a text kept as a cache key, so that a
// cache of n entries cannot be made to hold n huge statements.
const maxCachedText = 16 << 10

// SyntaxError is returned by Analyze, together with the flagged Analysis,
// for text PostgreSQL's grammar rejects.
type SyntaxError struct {
	Message string
	// Cursor is the 1-based byte offset the parser reported, 0 if none.
	Cursor int
}

func (e *SyntaxError) Error() string {
	if e.Cursor > 0 {
		return fmt.Sprintf("%s (at byte %d)", e.Message, e.Cursor)
	}
	return e.Message
}

// Analyzer turns SQL text into Statement facts with PostgreSQL's own
// grammar (libpg_query) and caches the results. It is safe for concurrent
// use.
//
// The cache maps a text to the analysis of exactly that text, so a hit can
// never return the facts of a different statement. Texts that differ only in
// constants share an entry through pg_query.Normalize, which replaces each
// constant with $n using the server's lexer: on a miss the Analyzer analyses
// the normalised text itself and stores it under that text. The facts are
// then a function of the key by construction. When a fact depends on a
// constant's value (set_config's parameter name, SET client_encoding), or
// when the normalised text does not parse ($n where the grammar wants a
// literal, as in interval '1 day'), the original text is analysed and cached
// under itself. Keys are full texts, never hashes, so collisions cannot be
// engineered.
//
// Normalize is a cgo call that parses the text; a statement run again with
// other constants first looks for its template (see templateKeyOf), a key
// made in Go of the text Normalize would return and the kinds of the
// constants it would replace. An analysis is filed under a template only
// once Normalize has returned that very template for a text, and found
// there only by texts that differ from that one in the values of its
// constants alone, which the template's rules keep single tokens.
type Analyzer struct {
	mu    sync.Mutex // guards cache and lru
	cache map[string]*list.Element
	lru   *list.List // of *cacheEntry, most recently used first
	size  int
	// normalize is pg_query.Normalize; tests count its calls.
	normalize func(string) (string, error)
}

type cacheEntry struct {
	key string
	an  *Analysis
}

// NewAnalyzer returns an Analyzer caching up to cacheSize analyses (at
// least 1).
func NewAnalyzer(cacheSize int) *Analyzer {
	if cacheSize < 1 {
		cacheSize = 1
	}
	return &Analyzer{cache: make(map[string]*list.Element, cacheSize), lru: list.New(), size: cacheSize,
		normalize: pg_query.Normalize}
}

// Analyze returns the facts of every statement in sql. It always returns a
// non-nil Analysis. When sql does not parse, the Analysis holds one
// Statement with ParseError set and the error is a *SyntaxError; policy
// denies such a statement. The returned Analysis may be shared: do not
// modify it.
func (a *Analyzer) Analyze(sql string) (*Analysis, error) {
	if strings.IndexByte(sql, 0) >= 0 {
		// Refused (see analyzeText), and never looked up: a template's
		// key holds a NUL (see templateKeyOf), a text must not find it.
		an := analyzeText(sql, false)
		return an, an.syntaxError()
	}
	if an, ok := a.get(sql); ok {
		return an, an.syntaxError()
	}
	// A text like one analysed before but for its constants finds that
	// analysis under its template without the normaliser (see templateKeyOf).
	key, n, templated := templateKeyOf(sql)
	if templated {
		if an, ok := a.get(key); ok {
			return an, nil
		}
	}
	norm, err := a.normalize(sql)
	if err != nil || !utf8.ValidString(sql) {
		an := analyzeText(sql, false)
		a.put(sql, an)
		return an, an.syntaxError()
	}
	if norm != sql && !gluedParam(norm) && !minusOnConstant(sql) {
		// Only an analysis that holds for every text normalising to norm
		// may stand in for this one; an entry stored under norm as some
		// other client's literal text (a parse error, set_config($1, …))
		// may not.
		an, ok := a.get(norm)
		if !ok || !an.shareable {
			if an = analyzeText(norm, true); an != nil && an.shareable {
				a.put(norm, an)
			}
		}
		if an != nil && an.shareable {
			// The normaliser agreed with the template: texts with the
			// template and constants of the same kinds may share it.
			if templated && key[:n] == norm {
				a.put(key, an)
			}
			return an, nil
		}
	}
	an := analyzeText(sql, false)
	a.put(sql, an)
	return an, an.syntaxError()
}

// gluedParam reports whether a $n placeholder in normalised text follows an
// identifier character. Normalize replaces only the string of a typed
// literal written without a space (text'x', N'x'), and "text$1" then lexes
// as one identifier: the normalised text is a different statement, whose
// facts must not stand in for the original's.
func gluedParam(norm string) bool {
	for i := 0; ; i++ {
		j := strings.IndexByte(norm[i:], '$')
		if j < 0 {
			return false
		}
		i += j
		if i == 0 || i+1 >= len(norm) || norm[i+1] < '0' || norm[i+1] > '9' {
			continue
		}
		c := norm[i-1]
		if c == '_' || c == '$' || c >= 0x80 || '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'z' {
			return true
		}
	}
}

// minusOnConstant reports whether sql may hold a minus sign on a constant
// that is not a number: -'x', -E'x', -B'1', -X'1F', -U&'x', -$$x$$, -TRUE,
// -FALSE, - NULL. The grammar (doNegate) folds a minus into a number, but
// moves the position it reports for any constant to the sign, and
// Normalize replaces from there: "b = -'x'" normalises to "b = $1", a
// different statement (the minus stays an operator applied to the string,
// which makes b's test an expression, not a lookup), whose analysis must
// not stand in for this one. It over-approximates (a '-' inside a string
// or a comment, an operator ending in '-', a minus before a comment): such
// a text is analysed as itself, which costs only the sharing. Found by
// FuzzAnalyze (its input is in testdata/fuzz/FuzzAnalyze).
func minusOnConstant(sql string) bool {
	for i := strings.IndexByte(sql, '-'); i >= 0; {
		rest := strings.TrimLeft(sql[i+1:], " \t\n\r\f\v")
		if nonNumericConstantStart(rest) {
			return true
		}
		next := strings.IndexByte(sql[i+1:], '-')
		if next < 0 {
			return false
		}
		i += 1 + next
	}
	return false
}

// nonNumericConstantStart reports whether s may start with a constant that
// is not a number, or with a comment (which may hide one).
func nonNumericConstantStart(s string) bool {
	if s == "" {
		return false
	}
	switch c := s[0] | 0x20; {
	case s[0] == '\'', s[0] == '$', s[0] == '-', s[0] == '/':
		return true
	case (c == 'e' || c == 'b' || c == 'x' || c == 'n') && len(s) > 1 && s[1] == '\'',
		c == 'u' && len(s) > 2 && s[1] == '&' && s[2] == '\'':
		return true
	}
	return keywordAt(s, "true") || keywordAt(s, "false") || keywordAt(s, "null")
}

// keywordAt reports whether s starts with the keyword kw (lower case), in
// any case, not followed by an identifier character.
func keywordAt(s, kw string) bool {
	return len(s) >= len(kw) && strings.EqualFold(s[:len(kw)], kw) && (len(s) == len(kw) || !isIdentChar(s[len(kw)]))
}

// analyzeText parses and walks text. With normalized set it returns nil when
// the facts depend on a constant the normalisation replaced.
func analyzeText(text string, normalized bool) *Analysis {
	if strings.IndexByte(text, 0) >= 0 {
		// libpg_query reads a C string: it would stop at the NUL and judge
		// a prefix. The server also stops there, but refusing is simpler
		// than proving the two agree.
		return parseFailure("statement contains a NUL byte", 0)
	}
	if !utf8.ValidString(text) {
		// The server (UTF-8 encoded, as Gatehouse requires) rejects such
		// text too. Normalize would accept it and hide the bad bytes
		// behind $n, so this check comes before any cache lookup by
		// normalised text.
		return parseFailure("statement is not valid UTF-8", 0)
	}
	tree, err := pg_query.Parse(text)
	if err != nil {
		msg, cursor := err.Error(), 0
		var perr *parser.Error
		if errors.As(err, &perr) {
			msg, cursor = perr.Message, perr.Cursorpos
		}
		return parseFailure(msg, cursor)
	}
	an := &Analysis{Statements: make([]*Statement, 0, len(tree.Stmts)), shareable: true}
	for _, raw := range tree.Stmts {
		st := &Statement{Command: commandTag(raw.Stmt)}
		w := walker{st: st, normalized: normalized}
		w.walk(raw.Stmt)
		w.finishColumns()
		if w.err != nil {
			return nil
		}
		if w.paramDependent {
			an.shareable = false
		}
		if st.Into.Target != "" {
			st.Into.Reads = slices.Clip(st.Reads)
		}
		an.Statements = append(an.Statements, st)
	}
	for _, st := range an.Statements {
		st.marshal()
	}
	return an
}

func parseFailure(msg string, cursor int) *Analysis {
	se := &SyntaxError{Message: msg, Cursor: cursor}
	st := &Statement{ParseError: true, Error: se.Error()}
	st.marshal()
	return &Analysis{Statements: []*Statement{st}, syntax: se}
}

func (an *Analysis) syntaxError() error {
	if an.syntax != nil {
		return an.syntax
	}
	return nil
}

func (a *Analyzer) get(key string) (*Analysis, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.cache[key]
	if !ok {
		return nil, false
	}
	a.lru.MoveToFront(e)
	return e.Value.(*cacheEntry).an, true
}

func (a *Analyzer) put(key string, an *Analysis) {
	if len(key) > maxCachedText {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.cache[key]; ok {
		a.lru.MoveToFront(e)
		return
	}
	a.cache[key] = a.lru.PushFront(&cacheEntry{key: key, an: an})
	for a.lru.Len() > a.size {
		old := a.lru.Back()
		a.lru.Remove(old)
		delete(a.cache, old.Value.(*cacheEntry).key)
	}
}
