package pg

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/mask"
	"github.com/jackc/pgx/v5/pgconn"
)

// colKey names a table column on the target as RowDescription does.
type colKey struct {
	table  uint32 // pg_class OID
	attnum int16
}

// ColumnRule is a masking rule for one column of one connection.
type ColumnRule struct {
	Connection string // empty: every connection
	Table      string // [schema.]table, resolved with the role's search_path
	Column     string
	Strategy   mask.Strategy
}

// columnResolver maps column rules to (table OID, attnum) on each target.
// OIDs are per database, so the result is cached per connection; the cache
// expires so that tables created or recreated later are picked up.
type columnResolver struct {
	rules []ColumnRule
	ttl   time.Duration

	mu    sync.Mutex // guards cache
	cache map[string]resolvedColumns
}

type resolvedColumns struct {
	cols    map[colKey]mask.Strategy
	fetched time.Time
}

func newColumnResolver(rules []ColumnRule) *columnResolver {
	return &columnResolver{rules: rules, ttl: time.Minute, cache: map[string]resolvedColumns{}}
}

// rulesFor returns the rules that apply to connection name.
func (r *columnResolver) rulesFor(name string) []ColumnRule {
	var out []ColumnRule
	for _, cr := range r.rules {
		if cr.Connection == "" || cr.Connection == name {
			out = append(out, cr)
		}
	}
	return out
}

// resolve returns the column strategies of the session's target, looking
// them up with cfg (the session's own role and credential) when the cache is
// stale. A lookup failure is returned: the caller refuses the session rather
// than serve it without its column rules (fail closed).
func (r *columnResolver) resolve(ctx context.Context, cn *config.Connection, cfg *pgconn.Config) (map[colKey]mask.Strategy, error) {
	rules := r.rulesFor(cn.Name)
	if len(rules) == 0 {
		return nil, nil
	}
	r.mu.Lock()
	rc, ok := r.cache[cn.Name]
	r.mu.Unlock()
	if ok && time.Since(rc.fetched) < r.ttl {
		return rc.cols, nil
	}
	ctx, cancel := context.WithTimeout(ctx, cn.ConnectTimeout)
	defer cancel()
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("column rules: connect: %w", err)
	}
	defer conn.Close(context.Background())
	cols := map[colKey]mask.Strategy{}
	for _, cr := range rules {
		// to_regclass returns NULL for a table that does not exist (yet):
		// then the rule has nothing to apply to until it does.
		res := conn.ExecParams(ctx,
			`SELECT c.oid::int8, a.attnum::int8 FROM pg_catalog.pg_class c
			 JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
			 WHERE c.oid = pg_catalog.to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped`,
			[][]byte{[]byte(cr.Table), []byte(cr.Column)}, nil, nil, nil).Read()
		if res.Err != nil {
			return nil, fmt.Errorf("column rules: resolve %s.%s: %w", cr.Table, cr.Column, res.Err)
		}
		for _, row := range res.Rows {
			var oid, att int64
			fmt.Sscan(string(row[0]), &oid)
			fmt.Sscan(string(row[1]), &att)
			cols[colKey{uint32(oid), int16(att)}] = cr.Strategy
		}
	}
	r.mu.Lock()
	r.cache[cn.Name] = resolvedColumns{cols: cols, fetched: time.Now()}
	r.mu.Unlock()
	return cols, nil
}

// ParseColumnRules turns the config's masking.columns into rules.
func ParseColumnRules(cfg *config.Config) ([]ColumnRule, error) {
	var out []ColumnRule
	for i, c := range cfg.Masking.Columns {
		s, err := mask.ParseStrategy(c.Strategy)
		if err != nil {
			return nil, cfg.ErrorAt(fmt.Sprintf("masking.columns[%d].strategy", i), "", err)
		}
		dot := strings.LastIndexByte(c.Column, '.')
		out = append(out, ColumnRule{Connection: c.Connection, Table: c.Column[:dot], Column: c.Column[dot+1:], Strategy: s})
	}
	return out, nil
}
