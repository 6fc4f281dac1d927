package config

import "time"

// Config is the whole gateway configuration.
type Config struct {
	// DataDir holds the embedded store, signing keys, the generated TLS
	// certificate and recordings.
	DataDir     string       `yaml:"data_dir"`
	Log         LogConfig    `yaml:"log"`
	Listeners   Listeners    `yaml:"listeners"`
	Identities  Identities   `yaml:"identities"`
	Connections []Connection `yaml:"connections"`
	Policy      Policy       `yaml:"policy"`
	Masking     Masking      `yaml:"masking"`
	API         API          `yaml:"api"`
	Shutdown    Shutdown     `yaml:"shutdown"`
	Store       Store        `yaml:"store"`
	Audit       Audit        `yaml:"audit"`
	Recordings  Recordings   `yaml:"recordings"`
	Approvals   Approvals    `yaml:"approvals"`

	// Path is the file the config was loaded from.
	Path string `yaml:"-"`
	// Hash is the SHA-256 of the file's bytes, recorded in the audit log on load.
	Hash string `yaml:"-"`
	// Warnings are non-fatal findings (inline secrets, ...), with file:line.
	Warnings []string `yaml:"-"`

	lines map[string]int // field path → line, for ErrorAt
}

// LogConfig selects the log format and level.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // json (default) or text
}

// Listeners are the addresses Gatehouse accepts connections on.
type Listeners struct {
	Postgres *PostgresListener `yaml:"postgres"`
	API      *APIListener      `yaml:"api"`
}

// PostgresListener is the client-facing PostgreSQL endpoint.
type PostgresListener struct {
	Address string    `yaml:"address"`
	TLS     TLSServer `yaml:"tls"`
	// AllowPlaintextLoopback permits clients on a loopback address to send
	// their token without TLS. Off by default: a token is a credential.
	AllowPlaintextLoopback bool `yaml:"allow_plaintext_loopback"`
	// MaxMessageBytes caps any single client message (default 16 MiB).
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// StartupTimeout bounds TLS handshake + startup + authentication.
	StartupTimeout time.Duration `yaml:"startup_timeout"`
	// IdleTimeout closes a session with no client traffic for this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxSessions caps concurrent sessions (0: unlimited).
	MaxSessions int `yaml:"max_sessions"`
}

// TLSServer configures the listener's certificate. With neither file set,
// a self-signed certificate is generated into the data dir.
type TLSServer struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// APIListener is the REST API, /metrics and /healthz endpoint.
type APIListener struct {
	Address string `yaml:"address"`
}

// Identities are the ways a caller proves who it is.
type Identities struct {
	Static []StaticIdentity `yaml:"static"`
	OIDC   []OIDCIssuer     `yaml:"oidc"`
	// MaxClockSkew tolerated on token times (default and maximum 60s).
	MaxClockSkew time.Duration `yaml:"max_clock_skew"`
}

// StaticIdentity is a named token with groups.
type StaticIdentity struct {
	Name   string   `yaml:"name"`
	Token  Secret   `yaml:"token"`
	Groups []string `yaml:"groups"`
}

// OIDCIssuer trusts JWTs from one issuer.
type OIDCIssuer struct {
	Name       string         `yaml:"name"`
	Issuer     string         `yaml:"issuer"`
	Audience   string         `yaml:"audience"`
	Algorithms []string       `yaml:"algorithms"`
	NameClaim  string         `yaml:"name_claim"`
	CAFile     string         `yaml:"ca_file"`
	Mappings   []ClaimMapping `yaml:"mappings"`
}

// ClaimMapping puts tokens whose claims all equal the given values into groups.
type ClaimMapping struct {
	Claims map[string]string `yaml:"claims"`
	Groups []string          `yaml:"groups"`
}

// Connection is a target resource agents reach through Gatehouse.
type Connection struct {
	Name     string    `yaml:"name"`
	Protocol string    `yaml:"protocol"` // postgres
	Address  string    `yaml:"address"`  // host:port
	Database string    `yaml:"database"`
	TLS      TLSClient `yaml:"tls"`
	// ConnectTimeout bounds dialing and authenticating to the target.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// DefaultAction applies to statements no policy rule matches: allow,
	// review or deny (default allow).
	DefaultAction string `yaml:"default_action"`
	Roles         []Role `yaml:"roles"`
}

// TLSClient configures the target leg.
type TLSClient struct {
	Mode       string `yaml:"mode"` // disable, require, verify-full
	CAFile     string `yaml:"ca_file"`
	ServerName string `yaml:"server_name"`
}

// Role maps a name clients ask for to a target user whose credential only
// Gatehouse holds.
type Role struct {
	Name     string `yaml:"name"`
	User     string `yaml:"user"`
	Password Secret `yaml:"password"`
	// Groups may use this role; Principals lists individual principal names.
	Groups     []string `yaml:"groups"`
	Principals []string `yaml:"principals"`
}

// Policy holds the statement rules.
type Policy struct {
	Rules []Rule `yaml:"rules"`
}

// Rule is one CEL condition with an action.
type Rule struct {
	Name      string   `yaml:"name"`
	When      string   `yaml:"when"`
	Action    string   `yaml:"action"`
	Reviewers []string `yaml:"reviewers"`
	Message   string   `yaml:"message"`
	Hint      string   `yaml:"hint"`
	// Approvals is how many distinct reviewers must approve a statement a
	// review rule holds (default 1).
	Approvals int `yaml:"approvals"`
	// Grant is how long an approved session lasts, for review rules that
	// match at connect time (stmt.command == ""); default 1h, at most
	// approvals.max_grant.
	Grant time.Duration `yaml:"grant"`
}

// Masking configures response masking.
type Masking struct {
	// Detectors switch content detectors on; pan defaults to on.
	Detectors Detectors `yaml:"detectors"`
	// PANStyle is first6-last4 (default, the PCI DSS maximum) or last4.
	PANStyle string `yaml:"pan_style"`
	// Columns apply a strategy to a table column whatever its content.
	Columns []ColumnRule `yaml:"columns"`
	// HashKey keys the hash strategy (HMAC); required if any rule hashes.
	HashKey Secret `yaml:"hash_key"`
}

// Detectors switches content detectors.
type Detectors struct {
	PAN    *bool            `yaml:"pan"`
	Email  bool             `yaml:"email"`
	IBAN   bool             `yaml:"iban"`
	SSN    bool             `yaml:"ssn"`
	Custom []CustomDetector `yaml:"custom"`
}

// CustomDetector masks whatever a regular expression matches.
type CustomDetector struct {
	Name        string `yaml:"name"`
	Pattern     string `yaml:"pattern"`
	Replacement string `yaml:"replacement"`
}

// ColumnRule masks one column.
type ColumnRule struct {
	Connection string `yaml:"connection"` // empty: every connection
	Column     string `yaml:"column"`     // [schema.]table.column
	Strategy   string `yaml:"strategy"`   // redact, last4, first6-last4, hash, null
}

// API configures who may use the REST API.
type API struct {
	// AuditorGroups may read the audit trail and recordings.
	AuditorGroups []string `yaml:"auditor_groups"`
	// ApproverGroups may list and decide approvals (rules name reviewers too).
	ApproverGroups []string `yaml:"approver_groups"`
	// Pprof serves Go's /debug/pprof on the API listener, for profiling.
	// Off by default: profiles reveal internals (never secrets or data).
	Pprof bool `yaml:"pprof"`
}

// Store is where the audit log, checkpoints and recordings live.
type Store struct {
	// Driver is sqlite (default: data_dir/gatehouse.db) or postgres (for
	// several gateway replicas sharing state).
	Driver string `yaml:"driver"`
	// Path is the SQLite file (default data_dir/gatehouse.db).
	Path string `yaml:"path"`
	// DSN is the PostgreSQL connection string, a secret reference since it
	// may hold a password.
	DSN Secret `yaml:"dsn"`
}

// Audit configures the tamper-evident audit log.
type Audit struct {
	// CheckpointInterval is how often a signed checkpoint is made when the
	// log grew (default 5s); one is also made on shutdown.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// SigningKeyFile holds the Ed25519 note signing key (default
	// data_dir/audit.key, generated on first start with audit.key.pub).
	SigningKeyFile string `yaml:"signing_key_file"`
	// CheckpointFile and CheckpointWebhook publish every checkpoint outside
	// the gateway's reach.
	CheckpointFile    string `yaml:"checkpoint_file"`
	CheckpointWebhook string `yaml:"checkpoint_webhook"`
	// Retention is how long events are kept (0, the default: forever; else
	// at least 24h, and PCI DSS 10.5.1 asks for a year, e.g. 8784h). Older
	// events are pruned up to a signed checkpoint, which keeps the rest
	// verifiable. Events an Export sink has not accepted are kept until it
	// has.
	Retention time.Duration `yaml:"retention"`
	// Export streams every event to webhook receivers (SIEMs), in order
	// and at least once, each resuming where it stopped.
	Export []AuditExport `yaml:"export"`
	// Durability says what "durable" means before a statement is
	// forwarded, on the embedded store: DurabilityFsync (the default), its
	// event is on disk (fdatasync returned); DurabilityWrite, it is written
	// to the journal file, which survives the gateway crashing or being
	// killed but not a power loss or kernel crash, and is on disk within
	// 10 ms.
	Durability string `yaml:"durability"`
}

// ExportNames lists the names of the Export sinks.
func (a *Audit) ExportNames() []string {
	names := make([]string, 0, len(a.Export))
	for _, sink := range a.Export {
		names = append(names, sink.Name)
	}
	return names
}

// The values of audit.durability.
const (
	DurabilityFsync = "fsync"
	DurabilityWrite = "write"
)

// AuditExport is one streaming export sink (see audit.Streamer).
type AuditExport struct {
	// Name identifies the sink: its delivery cursor in the store, the
	// X-Gatehouse-Export header and the metrics' sink label. Renaming a
	// sink delivers the whole log again.
	Name   string `yaml:"name"`
	URL    string `yaml:"url"`
	Format string `yaml:"format"` // jsonl (default) or ocsf, as `gatehouse audit export` writes
	// Secret, optional, is the HMAC-SHA256 key of X-Gatehouse-Signature.
	Secret Secret `yaml:"secret"`
	// BatchSize caps the events per POST (default 500).
	BatchSize int `yaml:"batch_size"`
	// Interval is how often to look for new events (default 2s).
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds each POST (default 10s).
	Timeout time.Duration `yaml:"timeout"`
}

// Recordings configures session recordings.
type Recordings struct {
	// Retention is how long a recording is kept after its last activity (0,
	// the default: forever; else at least 24h).
	Retention time.Duration `yaml:"retention"`
}

// Approvals configures statements held by review rules.
type Approvals struct {
	// Timeout is how long a held statement waits for a decision before it
	// expires (default 15m). Clients' own timeouts must be longer.
	Timeout time.Duration `yaml:"timeout"`
	// Replica identifies this gateway among replicas sharing a store; it
	// must be unique and stable across restarts (default: host name and
	// PostgreSQL listen address). On start a replica withdraws the requests
	// its previous run held.
	Replica string         `yaml:"replica"`
	Notify  ApprovalNotify `yaml:"notify"`
	// MaxGrant caps session grants (default 8h).
	MaxGrant time.Duration `yaml:"max_grant"`
}

// ApprovalNotify says where new requests are announced. Failed
// notifications are logged and retried; they never fail the request.
type ApprovalNotify struct {
	Webhook *ApprovalWebhook `yaml:"webhook"`
	Slack   *ApprovalSlack   `yaml:"slack"`
}

// ApprovalWebhook posts a signed JSON body per request.
type ApprovalWebhook struct {
	URL    string `yaml:"url"`
	Secret Secret `yaml:"secret"` // HMAC-SHA256 key of X-Gatehouse-Signature
}

// ApprovalSlack posts to a Slack incoming webhook.
type ApprovalSlack struct {
	URL Secret `yaml:"url"` // a secret reference: the URL is the credential
}

// Shutdown bounds a graceful stop.
type Shutdown struct {
	// DrainTimeout is how long running sessions get after SIGTERM.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
}

// Connection returns the connection named name, or nil.
func (c *Config) Connection(name string) *Connection {
	for i := range c.Connections {
		if c.Connections[i].Name == name {
			return &c.Connections[i]
		}
	}
	return nil
}

// Role returns the role named name, or nil.
func (cn *Connection) Role(name string) *Role {
	for i := range cn.Roles {
		if cn.Roles[i].Name == name {
			return &cn.Roles[i]
		}
	}
	return nil
}

// Admits reports whether a principal with this name and groups may use r.
func (r *Role) Admits(principal string, groups []string) bool {
	for _, p := range r.Principals {
		if p == principal {
			return true
		}
	}
	for _, want := range r.Groups {
		for _, g := range groups {
			if g == want {
				return true
			}
		}
	}
	return false
}
