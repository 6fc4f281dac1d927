package pg

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// templateKeyOf returns the key Analyze files sql's template under, when
// sql is simple enough to tell its template without the server's lexer:
// the template (the text pg_query.Normalize would make of sql), a NUL
// (which keeps the key apart from every text: Analyze looks up no text
// holding one), and the kinds of the constants it replaced, one byte
// each: 'i' for an integer that fits in 32 bits, 'f' for one that does not
// (the lexer makes it a numeric), 's' for a string; 'I' and 'F' for the
// integers written with a minus sign that the template takes in with them.
// n is the template's length: the key is one allocation, the template a
// prefix of it. Otherwise ok is false.
//
// Analyze files analyses it has already made under the key: a statement
// run again with other constants then costs no call to the normaliser (a
// cgo call: 8% of the gateway's CPU under pgbench, where every statement
// differs from the last in a constant). It is a key, not a normaliser: an
// analysis goes in under a template only after Normalize returned that
// template for some text (see Analyze), and a text finds it only if its
// constants are of the same kinds at the same places and everything
// between them is the same, byte for byte. The rules below make each
// constant one token that nothing around it joins or changes, so such a
// text lexes and parses as the first one did, constants aside, and
// normalises the same way:
//
//   - outside string constants, no quoted identifier, comment, dollar sign
//     (parameter, dollar quoting) or backslash;
//   - constants are decimal integers and single-quoted strings holding no
//     quote, backslash or line break (so neither
//     standard_conforming_strings nor string continuation changes them);
//   - a constant follows white space, '(', '[', ',', ':', '=', '<', '>'
//     or '-' (the lexer never joins a '-' to the number or string after
//     it, and a '-' the template keeps is in every text under the key);
//     so no prefix (E'x', U&'x', B'x', a type name) touches it;
//   - a constant is followed by the end, white space, ')', ',', ';', ':'
//     or ']', and not (past white space) by '[', '.' or another quote.
//
// A sign is not a value: "x = -5" and "x = 5" differ in a token, so they
// never share a key, though Normalize gives both the template "x = $1"
// (the grammar folds a minus into the number after it, and the normaliser
// replaces the two together, as pg_stat_statements does). Where that
// folding is likely, a '-' right before an integer, after white space, '('
// or ',' that follow '(', ',' or an operator ending in '=', '<', '>', '+'
// or '-' (an operand comes next: no operator is postfix), goes into the
// template with the number and makes its kind 'I' or 'F'; every text
// under such a key has the '-' there. Where the guess is wrong (-5::int is
// -(5::int)), Normalize disagrees with the template and nothing is filed.
//
// TestTemplatesMatchNormalize, FuzzTemplateOf and FuzzAnalyze hold the
// keys to pg_query's normaliser.
func templateKeyOf(sql string) (key string, n int, ok bool) {
	if len(sql) > maxCachedText || !utf8.ValidString(sql) {
		return "", 0, false
	}
	var (
		b    strings.Builder
		kbuf [16]byte
		k    = kbuf[:0]
		// from is where the text not yet copied into b starts: plain runs
		// are copied whole, when a constant or the end is reached.
		from = 0
	)
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		start := i // where the constant's digits or quote start
		switch c {
		case '"', '`', '\\', '$', 0:
			return "", 0, false
		case '/':
			if i+1 < len(sql) && sql[i+1] == '*' {
				return "", 0, false
			}
			continue
		case '-':
			if i+1 < len(sql) && sql[i+1] == '-' {
				return "", 0, false
			}
			if !signFolds(sql, i) {
				continue
			}
			start++ // the number after the sign
		case '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			if i > 0 && isIdentChar(sql[i-1]) {
				continue // part of a name
			}
		case '\'':
		default:
			continue
		}
		end, ok := constantEnd(sql, start)
		if !ok || !constantBefore(sql, start) || !constantAfter(sql, end) {
			return "", 0, false
		}
		if len(k) == 0 {
			b.Grow(len(sql) + 16)
		}
		kind := constantKind(sql[start:end])
		if c == '-' {
			kind -= 'a' - 'A'
		}
		k = append(k, kind)
		b.WriteString(sql[from:i])
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(len(k)))
		from = end
		i = end - 1
	}
	if len(k) > 0 {
		b.WriteString(sql[from:])
	}
	if len(k) == 0 {
		return "", 0, false // nothing to normalise: the text is its own key
	}
	n = b.Len()
	b.WriteByte(0)
	b.Write(k)
	return b.String(), n, true
}

// constantKind is the kind of constant c (see templateKeyOf).
func constantKind(c string) byte {
	if c[0] == '\'' {
		return 's'
	}
	// Leading zeros are allowed; past int64 it is a numeric anyway.
	v, err := strconv.ParseInt(c, 10, 64)
	if err != nil || v > 1<<31-1 {
		return 'f'
	}
	return 'i'
}

// constantEnd returns where the constant starting at i ends: digits, or a
// quoted string of the plain kind templateKeyOf accepts.
func constantEnd(sql string, i int) (int, bool) {
	if sql[i] != '\'' {
		j := i
		for j < len(sql) && isDigit(sql[j]) {
			j++
		}
		return j, true
	}
	for j := i + 1; j < len(sql); j++ {
		switch sql[j] {
		case '\'':
			return j + 1, true
		case '\\', '\n', '\r', 0:
			return 0, false
		}
	}
	return 0, false // unterminated
}

// signFolds reports whether sql[i] is a '-' that templateKeyOf takes into
// the integer right after it (see there).
func signFolds(sql string, i int) bool {
	if sql[i] != '-' || i == 0 || i+1 >= len(sql) || !isDigit(sql[i+1]) {
		return false
	}
	switch sql[i-1] {
	case ' ', '\t', '\n', '\r', '(', ',':
	default:
		return false
	}
	j := i - 1
	for j >= 0 && isSpace(sql[j]) {
		j--
	}
	return j >= 0 && strings.IndexByte("(,=<>+-", sql[j]) >= 0
}

// constantBefore reports whether what precedes the constant at i leaves it a
// token of its own.
func constantBefore(sql string, i int) bool {
	if i == 0 {
		return false
	}
	switch sql[i-1] {
	case ' ', '\t', '\n', '\r', '(', '[', ',', ':', '=', '<', '>', '-':
		return true
	}
	return false
}

// constantAfter reports whether what follows a constant ending at end
// leaves it a token of its own that nothing subscripts or continues.
func constantAfter(sql string, end int) bool {
	if end == len(sql) {
		return true
	}
	switch sql[end] {
	case ' ', '\t', '\n', '\r', ')', ',', ';', ':', ']':
	default:
		return false
	}
	j := end
	for j < len(sql) && isSpace(sql[j]) {
		j++
	}
	return j == len(sql) || sql[j] != '[' && sql[j] != '.' && sql[j] != '\''
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// isIdentChar reports whether c can continue an identifier (or a number):
// PostgreSQL's ident_cont, with every byte of a multi-byte character.
func isIdentChar(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 || isDigit(c) || 'a' <= c|0x20 && c|0x20 <= 'z'
}
