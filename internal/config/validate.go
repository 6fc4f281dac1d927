package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Defaults applied by provision.
const (
	DefaultMaxMessageBytes = 16 << 20
	DefaultStartupTimeout  = 10 * time.Second
	DefaultIdleTimeout     = time.Hour
	DefaultConnectTimeout  = 5 * time.Second
	DefaultDrainTimeout    = 30 * time.Second
	MaxClockSkew           = 60 * time.Second
	DefaultExportBatchSize = 500
	MaxExportBatchSize     = 10000
	DefaultExportInterval  = 2 * time.Second
	DefaultExportTimeout   = 10 * time.Second
)

// ErrorAt builds an Error for a field path of this config, with its line.
// Packages that validate parts of the config further (policy compilation,
// masking) use it so their errors carry file:line too.
func (c *Config) ErrorAt(path, hint string, err error) *Error {
	return &Error{File: c.Path, Line: lineFor(c.lines, path), Path: path, Msg: err.Error(), Hint: hint}
}

func lineFor(lines map[string]int, path string) int {
	l := loader{lines: lines}
	return l.line(path)
}

func (l *loader) provision(c *Config) {
	c.lines = l.lines
	if pl := c.Listeners.Postgres; pl != nil {
		if pl.MaxMessageBytes == 0 {
			pl.MaxMessageBytes = DefaultMaxMessageBytes
		}
		if pl.StartupTimeout == 0 {
			pl.StartupTimeout = DefaultStartupTimeout
		}
		if pl.IdleTimeout == 0 {
			pl.IdleTimeout = DefaultIdleTimeout
		}
	}
	if c.Shutdown.DrainTimeout == 0 {
		c.Shutdown.DrainTimeout = DefaultDrainTimeout
	}
	if c.Identities.MaxClockSkew == 0 {
		c.Identities.MaxClockSkew = MaxClockSkew
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.Masking.PANStyle == "" {
		c.Masking.PANStyle = "first6-last4"
	}
	if c.Masking.Detectors.PAN == nil {
		on := true
		c.Masking.Detectors.PAN = &on
	}
	for i := range c.Identities.Static {
		id := &c.Identities.Static[i]
		l.secret(&id.Token, fmt.Sprintf("identities.static[%d].token", i))
	}
	for i := range c.Identities.OIDC {
		o := &c.Identities.OIDC[i]
		if o.Name == "" {
			o.Name = o.Issuer
		}
		if o.NameClaim == "" {
			o.NameClaim = "sub"
		}
	}
	for i := range c.Connections {
		cn := &c.Connections[i]
		if cn.Protocol == "" {
			cn.Protocol = "postgres"
		}
		if cn.TLS.Mode == "" {
			cn.TLS.Mode = "disable"
		}
		if cn.ConnectTimeout == 0 {
			cn.ConnectTimeout = DefaultConnectTimeout
		}
		if cn.DefaultAction == "" {
			cn.DefaultAction = "allow"
		}
		if cn.Database == "" {
			cn.Database = cn.Name
		}
		for j := range cn.Roles {
			l.secret(&cn.Roles[j].Password, fmt.Sprintf("connections[%d].roles[%d].password", i, j))
		}
	}
	if c.Store.Driver == "" {
		c.Store.Driver = "sqlite"
	}
	if c.Store.DSN.ref != "" {
		l.secret(&c.Store.DSN, "store.dsn")
	}
	if c.Store.Driver == "sqlite" && c.Store.Path == "" && c.DataDir != "" {
		c.Store.Path = filepath.Join(c.DataDir, "gatehouse.db")
	}
	if c.Approvals.Timeout == 0 {
		c.Approvals.Timeout = 15 * time.Minute
	}
	if w := c.Approvals.Notify.Webhook; w != nil {
		l.secret(&w.Secret, "approvals.notify.webhook.secret")
	}
	if sl := c.Approvals.Notify.Slack; sl != nil {
		l.secret(&sl.URL, "approvals.notify.slack.url")
	}
	if c.Approvals.MaxGrant == 0 {
		c.Approvals.MaxGrant = 8 * time.Hour
	}
	for i := range c.Policy.Rules {
		if c.Policy.Rules[i].Approvals == 0 {
			c.Policy.Rules[i].Approvals = 1
		}
		if c.Policy.Rules[i].Grant == 0 {
			c.Policy.Rules[i].Grant = min(time.Hour, c.Approvals.MaxGrant)
		}
	}
	if c.Audit.Durability == "" {
		c.Audit.Durability = DurabilityFsync
	}
	if c.Audit.CheckpointInterval == 0 {
		c.Audit.CheckpointInterval = 5 * time.Second
	}
	if c.Masking.HashKey.ref != "" {
		l.secret(&c.Masking.HashKey, "masking.hash_key")
	}
	for i := range c.Audit.Export {
		e := &c.Audit.Export[i]
		if e.Format == "" {
			e.Format = "jsonl"
		}
		if e.BatchSize == 0 {
			e.BatchSize = DefaultExportBatchSize
		}
		if e.Interval == 0 {
			e.Interval = DefaultExportInterval
		}
		if e.Timeout == 0 {
			e.Timeout = DefaultExportTimeout
		}
		if e.Secret.ref != "" {
			l.secret(&e.Secret, fmt.Sprintf("audit.export[%d].secret", i))
		}
	}
}

func (l *loader) secret(s *Secret, path string) {
	if err := s.Resolve(l.env); err != nil {
		l.errorf(path, "secrets are references: env:NAME or file:/path", "%v", err)
		return
	}
	if s.IsLiteral() {
		l.warnf(path, "secret is written inline; prefer env:NAME or file:/path")
	}
}

func (l *loader) validate(c *Config) {
	if c.DataDir == "" {
		l.errorf("data_dir", "a directory Gatehouse may write, e.g. /var/lib/gatehouse", "is required")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		l.errorf("log.level", "one of debug, info, warn, error", "unknown level %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		l.errorf("log.format", "json or text", "unknown format %q", c.Log.Format)
	}
	if c.Listeners.Postgres == nil {
		l.errorf("listeners", "add listeners.postgres.address, e.g. 127.0.0.1:15432", "no postgres listener")
	} else {
		pl := c.Listeners.Postgres
		l.address("listeners.postgres.address", pl.Address)
		if (pl.TLS.CertFile == "") != (pl.TLS.KeyFile == "") {
			l.errorf("listeners.postgres.tls", "set both cert_file and key_file, or neither for a generated certificate", "cert_file and key_file go together")
		}
		for _, f := range []struct{ path, file string }{{"listeners.postgres.tls.cert_file", pl.TLS.CertFile}, {"listeners.postgres.tls.key_file", pl.TLS.KeyFile}} {
			if f.file != "" {
				if _, err := os.Stat(f.file); err != nil {
					l.errorf(f.path, "", "%v", err)
				}
			}
		}
		if pl.MaxMessageBytes < 1024 {
			l.errorf("listeners.postgres.max_message_bytes", "at least 1024", "too small: %d", pl.MaxMessageBytes)
		}
	}
	if a := c.Listeners.API; a != nil {
		l.address("listeners.api.address", a.Address)
	}
	if c.Identities.MaxClockSkew < 0 || c.Identities.MaxClockSkew > MaxClockSkew {
		l.errorf("identities.max_clock_skew", "at most 60s", "out of range: %s", c.Identities.MaxClockSkew)
	}

	groups := map[string]bool{}
	names := map[string]string{}
	uniqueName := func(path, name string) {
		if name == "" {
			l.errorf(path, "", "name is required")
			return
		}
		if prev, ok := names[name]; ok {
			l.errorf(path, "identity names must be unique", "name %q is also used at %s", name, prev)
			return
		}
		names[name] = path
	}
	for i, id := range c.Identities.Static {
		path := fmt.Sprintf("identities.static[%d]", i)
		uniqueName(path+".name", id.Name)
		for _, g := range id.Groups {
			groups[g] = true
		}
	}
	for i, o := range c.Identities.OIDC {
		path := fmt.Sprintf("identities.oidc[%d]", i)
		if !strings.HasPrefix(o.Issuer, "https://") && !strings.HasPrefix(o.Issuer, "http://") {
			l.errorf(path+".issuer", "the issuer URL, e.g. https://token.actions.githubusercontent.com", "not a URL: %q", o.Issuer)
		}
		if o.Audience == "" {
			l.errorf(path+".audience", "tokens must be minted for Gatehouse, e.g. audience: gatehouse", "is required")
		}
		if len(o.Mappings) == 0 {
			l.errorf(path+".mappings", "map claims to groups, e.g. {claims: {repository: acme/shop}, groups: [agents]}", "at least one mapping is required")
		}
		for j, m := range o.Mappings {
			if len(m.Claims) == 0 {
				l.errorf(fmt.Sprintf("%s.mappings[%d].claims", path, j), "a mapping without claims would admit every token of the issuer", "is required")
			}
			for _, g := range m.Groups {
				groups[g] = true
			}
		}
	}

	conns := map[string]bool{}
	for i, cn := range c.Connections {
		path := fmt.Sprintf("connections[%d]", i)
		if cn.Name == "" {
			l.errorf(path+".name", "", "is required")
		} else if conns[cn.Name] {
			l.errorf(path+".name", "connection names must be unique", "duplicate connection %q", cn.Name)
		}
		conns[cn.Name] = true
		if cn.Protocol != "postgres" {
			l.errorf(path+".protocol", "only postgres is supported today", "unknown protocol %q", cn.Protocol)
		}
		l.address(path+".address", cn.Address)
		switch cn.TLS.Mode {
		case "disable", "require":
		case "verify-full":
			if cn.TLS.CAFile == "" {
				l.errorf(path+".tls.ca_file", "verify-full checks the target's certificate against this CA bundle", "is required with mode verify-full")
			}
		default:
			l.errorf(path+".tls.mode", "disable, require or verify-full", "unknown mode %q", cn.TLS.Mode)
		}
		switch cn.DefaultAction {
		case "allow", "deny", "review":
		default:
			l.errorf(path+".default_action", "allow, deny or review", "unknown action %q", cn.DefaultAction)
		}
		if len(cn.Roles) == 0 {
			l.errorf(path+".roles", "a role maps a name clients use to a target user", "at least one role is required")
		}
		roles := map[string]bool{}
		for j, r := range cn.Roles {
			rp := fmt.Sprintf("%s.roles[%d]", path, j)
			if r.Name == "" {
				l.errorf(rp+".name", "", "is required")
			} else if roles[r.Name] {
				l.errorf(rp+".name", "role names must be unique per connection", "duplicate role %q", r.Name)
			}
			roles[r.Name] = true
			if r.User == "" {
				l.errorf(rp+".user", "the target database user", "is required")
			}
			if len(r.Groups) == 0 && len(r.Principals) == 0 {
				l.errorf(rp, "add groups: [...] or principals: [...]", "nobody may use role %q", r.Name)
			}
			for k, g := range r.Groups {
				if !groups[g] {
					l.errorf(fmt.Sprintf("%s.groups[%d]", rp, k), "groups come from identities.static[].groups or identities.oidc[].mappings[].groups", "no identity is in group %q", g)
				}
			}
		}
	}
	if len(c.Connections) == 0 {
		l.errorf("connections", "add a connection with a target address and roles", "at least one connection is required")
	}

	for i, r := range c.Policy.Rules {
		path := fmt.Sprintf("policy.rules[%d]", i)
		if r.Name == "" {
			l.errorf(path+".name", "rules are named in denials and the audit log", "is required")
		}
		if strings.TrimSpace(r.When) == "" {
			l.errorf(path+".when", "a CEL condition, e.g. 'stmt.command == \"DROP TABLE\"'", "is required")
		}
		switch r.Action {
		case "allow", "deny":
		case "review":
			if len(r.Reviewers) == 0 {
				l.errorf(path+".reviewers", "groups whose members may approve", "a review rule needs reviewers")
			}
		default:
			l.errorf(path+".action", "allow, deny or review", "unknown action %q", r.Action)
		}
	}

	if c.Approvals.Timeout < time.Minute || c.Approvals.Timeout > 24*time.Hour {
		l.errorf("approvals.timeout", "between 1m and 24h", "out of range: %s", c.Approvals.Timeout)
	}
	if w := c.Approvals.Notify.Webhook; w != nil {
		if !strings.HasPrefix(w.URL, "https://") && !strings.HasPrefix(w.URL, "http://127.") && !strings.HasPrefix(w.URL, "http://localhost") {
			l.errorf("approvals.notify.webhook.url", "https, or http on loopback", "bad webhook URL %q", w.URL)
		}
	}
	for i, r := range c.Policy.Rules {
		if r.Grant < 0 || r.Grant > c.Approvals.MaxGrant {
			l.errorf(fmt.Sprintf("policy.rules[%d].grant", i), fmt.Sprintf("at most approvals.max_grant (%s)", c.Approvals.MaxGrant), "out of range: %s", r.Grant)
		}
		if r.Approvals < 1 || (r.Approvals > 1 && r.Action != "review") {
			l.errorf(fmt.Sprintf("policy.rules[%d].approvals", i), "at least 1, and more only on review rules", "bad value %d", r.Approvals)
		}
	}
	switch c.Store.Driver {
	case "sqlite":
	case "postgres":
		if c.Store.DSN.Value() == "" {
			l.errorf("store.dsn", "a PostgreSQL connection string, e.g. env:GATEHOUSE_STORE_DSN", "is required with driver postgres")
		}
	default:
		l.errorf("store.driver", "sqlite or postgres", "unknown driver %q", c.Store.Driver)
	}
	if c.Audit.CheckpointInterval < time.Second {
		l.errorf("audit.checkpoint_interval", "at least 1s", "too short: %s", c.Audit.CheckpointInterval)
	}
	l.retention("audit.retention", c.Audit.Retention)
	switch {
	case c.Audit.Durability != DurabilityFsync && c.Audit.Durability != DurabilityWrite:
		l.errorf("audit.durability", "fsync (on disk before the statement runs) or write (survives a gateway crash; on disk within 10ms)",
			"unknown value %q", c.Audit.Durability)
	case c.Audit.Durability == DurabilityWrite && c.Store.Driver == "postgres":
		l.errorf("audit.durability", "fsync with store.driver postgres: PostgreSQL commits each batch synchronously",
			"write applies to the embedded SQLite store only")
	}
	l.auditExport(c.Audit.Export)
	l.retention("recordings.retention", c.Recordings.Retention)
	switch c.Masking.PANStyle {
	case "first6-last4", "last4":
	default:
		l.errorf("masking.pan_style", "first6-last4 (the PCI DSS maximum) or last4", "unknown style %q", c.Masking.PANStyle)
	}
	hashes := false
	for i, cr := range c.Masking.Columns {
		path := fmt.Sprintf("masking.columns[%d]", i)
		if parts := strings.Split(cr.Column, "."); len(parts) < 2 || len(parts) > 3 {
			l.errorf(path+".column", "table.column or schema.table.column", "bad column %q", cr.Column)
		}
		if cr.Connection != "" && !conns[cr.Connection] {
			l.errorf(path+".connection", "", "unknown connection %q", cr.Connection)
		}
		switch cr.Strategy {
		case "redact", "last4", "first6-last4", "null":
		case "hash":
			hashes = true
		default:
			l.errorf(path+".strategy", "redact, last4, first6-last4, hash or null", "unknown strategy %q", cr.Strategy)
		}
	}
	if hashes && c.Masking.HashKey.Value() == "" {
		l.errorf("masking.hash_key", "the hash strategy needs a key: hash_key: env:NAME", "is required when a column rule hashes")
	}
}

// auditExport checks the streaming export sinks.
func (l *loader) auditExport(sinks []AuditExport) {
	names := map[string]string{}
	for i, e := range sinks {
		path := fmt.Sprintf("audit.export[%d]", i)
		switch prev, dup := names[e.Name]; {
		case e.Name == "":
			l.errorf(path+".name", "it keys the sink's delivery cursor, e.g. name: siem", "is required")
		case !validSinkName(e.Name):
			l.errorf(path+".name", "letters, digits, '.', '_' and '-', at most 64", "bad name %q", e.Name)
		case dup:
			l.errorf(path+".name", "sink names must be unique: each has its own delivery cursor", "name %q is also used at %s", e.Name, prev)
		default:
			names[e.Name] = path
		}
		// Errors name the scheme and host only: a collector URL's path or
		// query is often its token.
		u, err := url.Parse(e.URL)
		switch {
		case e.URL == "":
			l.errorf(path+".url", "the receiver, e.g. https://siem.example/gatehouse", "is required")
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			l.errorf(path+".url", "an http or https URL, e.g. https://siem.example/gatehouse", "not an http or https URL")
		case u.Scheme == "http" && !loopbackHost(u.Hostname()):
			l.warnf(path+".url", "audit events to http://%s travel unencrypted; prefer https", u.Host)
		}
		switch e.Format {
		case "jsonl", "ocsf":
		default:
			l.errorf(path+".format", "jsonl or ocsf, as gatehouse audit export writes", "unknown format %q", e.Format)
		}
		if e.BatchSize < 1 || e.BatchSize > MaxExportBatchSize {
			l.errorf(path+".batch_size", fmt.Sprintf("1 to %d events per POST", MaxExportBatchSize), "out of range: %d", e.BatchSize)
		}
		if e.Interval < 100*time.Millisecond || e.Interval > time.Hour {
			l.errorf(path+".interval", "between 100ms and 1h", "out of range: %s", e.Interval)
		}
		if e.Timeout < 100*time.Millisecond || e.Timeout > 10*time.Minute {
			l.errorf(path+".timeout", "between 100ms and 10m", "out of range: %s", e.Timeout)
		}
	}
}

func validSinkName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		if r != '.' && r != '_' && r != '-' && (r < '0' || r > '9') && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') {
			return false
		}
	}
	return true
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// MinRetention is the shortest retention a config file may set. Tests that
// need less construct their config in code.
const MinRetention = 24 * time.Hour

// retention checks a retention period: 0 (keep forever) or at least
// MinRetention.
func (l *loader) retention(path string, d time.Duration) {
	switch {
	case d < 0:
		l.errorf(path, "0 to keep forever, or a duration such as 8784h (a year)", "negative: %s", d)
	case d > 0 && d < MinRetention:
		l.errorf(path, "0 to keep forever, or at least 24h; PCI DSS 10.5.1 asks for a year (8784h)", "too short: %s", d)
	}
}

func (l *loader) address(path, addr string) {
	if addr == "" {
		l.errorf(path, "host:port", "is required")
		return
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		l.errorf(path, "host:port, e.g. 127.0.0.1:5432", "%v", err)
	}
}
