package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is a config problem at a place in the file.
type Error struct {
	File string
	Line int    // 0 when unknown
	Path string // field path, e.g. connections[0].roles[1].password
	Msg  string
	Hint string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString(" (hint: ")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// Errors is every problem found in one load; Load reports them all at once so
// an operator fixes a file in one round.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Options change how Load reads its environment; the zero value uses the
// process environment.
type Options struct {
	LookupEnv func(string) (string, bool)
}

// Load reads, expands, decodes, provisions and validates the config at path.
func Load(path string, opts Options) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data, opts)
}

// Parse is Load for bytes already read; path names them in errors.
func Parse(path string, data []byte, opts Options) (*Config, error) {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	l := &loader{file: path, env: opts.LookupEnv, lines: map[string]int{}}

	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		return nil, l.yamlError(err)
	}
	if len(root.Content) == 0 {
		return nil, &Error{File: path, Msg: "config is empty"}
	}
	doc := root.Content[0]
	l.expand(doc, "")
	l.checkKnown(doc, reflect.TypeOf(Config{}), "")
	if len(l.errs) > 0 {
		return nil, l.errs
	}
	var cfg Config
	if err := doc.Decode(&cfg); err != nil {
		return nil, l.yamlError(err)
	}
	sum := sha256.Sum256(data)
	cfg.Path = path
	cfg.Hash = hex.EncodeToString(sum[:])

	l.provision(&cfg)
	l.validate(&cfg)
	if len(l.errs) > 0 {
		return nil, l.errs
	}
	cfg.Warnings = l.warnings
	return &cfg, nil
}

type loader struct {
	file     string
	env      func(string) (string, bool)
	lines    map[string]int // field path → line
	errs     Errors
	warnings []string
}

func (l *loader) errorf(path, hint, format string, args ...any) {
	l.errs = append(l.errs, &Error{File: l.file, Line: l.line(path), Path: path, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

func (l *loader) warnf(path, format string, args ...any) {
	e := &Error{File: l.file, Line: l.line(path), Path: path, Msg: fmt.Sprintf(format, args...)}
	l.warnings = append(l.warnings, e.Error())
}

// line finds the closest recorded line for path, walking up to parents so
// a defaulted (absent) field still points near where it belongs.
func (l *loader) line(path string) int {
	for p := path; ; {
		if n, ok := l.lines[p]; ok {
			return n
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			return 0
		}
		p = p[:i]
	}
}

func (l *loader) yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var es Errors
		for _, m := range te.Errors {
			es = append(es, l.lineError(m))
		}
		return es
	}
	return l.lineError(err.Error())
}

// lineError turns yaml.v3's "yaml: line N: msg" / "line N: msg" into an Error.
func (l *loader) lineError(msg string) *Error {
	msg = strings.TrimPrefix(msg, "yaml: ")
	e := &Error{File: l.file, Msg: msg}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.Index(rest, ":"); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				e.Line = n
				e.Msg = strings.TrimSpace(rest[i+1:])
			}
		}
	}
	return e
}

// expand substitutes ${VAR} and ${VAR:-default} in scalar values and records
// the line of every field path.
func (l *loader) expand(n *yaml.Node, path string) {
	if path != "" {
		if _, seen := l.lines[path]; !seen {
			l.lines[path] = n.Line
		}
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if strings.Contains(n.Value, "${") {
			v, err := expandVars(n.Value, l.env)
			if err != nil {
				l.errorf(path, "export the variable or give a default: ${NAME:-value}", "%v", err)
				return
			}
			n.Value = v
			// An expanded value is a string even if it looks like a number or
			// boolean; keep the tag the author's quoting implied.
			if n.Tag == "" || n.Tag == "!!str" || n.Style != 0 {
				n.Tag = "!!str"
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			p := key
			if path != "" {
				p = path + "." + key
			}
			l.lines[p] = n.Content[i].Line
			l.expand(n.Content[i+1], p)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			l.expand(c, fmt.Sprintf("%s[%d]", path, i))
		}
	case yaml.DocumentNode:
		for _, c := range n.Content {
			l.expand(c, path)
		}
	case yaml.AliasNode:
		// Aliases would let one expansion appear in many places with one
		// line; they are rare in configs, so refuse them for clarity.
		l.errorf(path, "write the value out", "YAML aliases are not supported")
	}
}

// expandVars replaces ${NAME} and ${NAME:-default}. A "$$" is a literal "$".
func expandVars(s string, env func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i])
			b.WriteString("{")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", s)
		}
		expr := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validVarName(name) {
			return "", fmt.Errorf("bad variable name %q", name)
		}
		v, ok := env(name)
		switch {
		case ok && v != "":
			b.WriteString(v)
		case hasDef:
			b.WriteString(def)
		default:
			return "", fmt.Errorf("${%s} is not set", name)
		}
		s = s[i+end+1:]
	}
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z') || (i > 0 && r >= '0' && r <= '9') {
			continue
		}
		return false
	}
	return true
}

// checkKnown reports mapping keys the target type does not have, with the
// closest known key as a hint. yaml.v3's KnownFields only works on a
// Decoder, not on a node tree that has been expanded, hence this walk.
func (l *loader) checkKnown(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.MappingNode:
		if t.Kind() == reflect.Map {
			for i := 1; i < len(n.Content); i += 2 {
				l.checkKnown(n.Content[i], t.Elem(), path+"."+n.Content[i-1].Value)
			}
			return
		}
		if t.Kind() != reflect.Struct {
			return // the decoder reports the type mismatch
		}
		fields := yamlFields(t)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			p := key
			if path != "" {
				p = path + "." + key
			}
			if seen[key] {
				l.errorf(p, "remove one of them", "duplicate key %q", key)
			}
			seen[key] = true
			ft, ok := fields[key]
			if !ok {
				l.errorf(p, suggest(key, fields), "unknown key %q", key)
				continue
			}
			l.checkKnown(n.Content[i+1], ft, p)
		}
	case yaml.SequenceNode:
		if t.Kind() != reflect.Slice {
			return
		}
		for i, c := range n.Content {
			l.checkKnown(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

// suggest names the known key closest to key, or lists them all.
func suggest(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	best, bestD := "", 3
	for _, k := range names {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return "known keys: " + strings.Join(names, ", ")
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
