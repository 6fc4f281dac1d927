package approval

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Status is where a request is in its lifecycle (see the package doc).
type Status string

// The statuses. Their names are part of the API, the command line's --json
// output and the stored format: never rename.
const (
	Pending   Status = "pending"
	Approved  Status = "approved"
	Denied    Status = "denied"
	Expired   Status = "expired"
	Withdrawn Status = "withdrawn"
)

// Statuses lists every status, in lifecycle order.
var Statuses = []Status{Pending, Approved, Denied, Expired, Withdrawn}

// ParseStatus returns the status named s.
func ParseStatus(s string) (Status, bool) {
	st := Status(s)
	return st, slices.Contains(Statuses, st)
}

// Kinds of request.
const (
	// KindStatement holds one statement; an approval lets exactly that
	// statement (text and parameters, see ParamHash) run once.
	KindStatement = "statement"
	// KindSession asks for a time-bound grant: an approval lets the
	// session run what the rule held for GrantDuration.
	KindSession = "session"
)

// SystemDecider is Decision.By for transitions nobody chose: expiry,
// shutdown, abandonment.
const SystemDecider = "gatehouse"

var (
	// ErrNotFound is returned for an unknown request id.
	ErrNotFound = errors.New("approval: no such request")
	// ErrNotPending is returned (wrapped, naming the status) when deciding
	// or withdrawing a request that is no longer pending.
	ErrNotPending = errors.New("approval: the request is no longer pending")
	// ErrNotReviewer is returned by Decide when the principal is in none of
	// the request's reviewer groups nor the broker's approver groups.
	ErrNotReviewer = errors.New("approval: not a reviewer of this request")
	// ErrSelfApproval is returned by Decide when the principal made the
	// request (same issuer and subject, or same name): nobody decides their
	// own request, neither to approve nor to deny it.
	ErrSelfApproval = errors.New("approval: nobody may decide their own request")
	// ErrAlreadyApproved is returned by Decide when the principal already
	// approved the request: N-of-M counts distinct approvers.
	ErrAlreadyApproved = errors.New("approval: you already approved this request")
	// ErrReasonRequired is returned by Decide for a denial without a reason:
	// the reason is what the held client is told.
	ErrReasonRequired = errors.New("approval: a denial needs a reason")
	// ErrNotRecorded is returned when the audit record that must precede a
	// change could not be written; the change was not made.
	ErrNotRecorded = errors.New("approval: not recorded in the audit log, so not done")
	// ErrClosed is returned by Request and Wait once Shutdown has begun.
	ErrClosed = errors.New("approval: broker is shut down")
)

// Request is one statement or session held for review.
type Request struct {
	ID     string
	Status Status
	Kind   string // KindStatement (default) or KindSession
	// Principal is the requester. Its Claims are neither stored nor
	// shown: they may hold personal data reviewers do not need.
	Principal  identity.Principal
	Connection string
	Role       string
	SessionID  string
	// Statement is the held statement as reviewers see it, already masked.
	Statement string
	// ParamHash binds an approval to the exact statement text and
	// parameters (see Bind): the session compares it before it runs the
	// approved statement.
	ParamHash string
	Rule      string
	Reviewers []string // groups whose members may decide
	Required  int      // distinct approvals needed (N of M); default 1
	Approvals []Decision
	Created   time.Time
	Expires   time.Time
	// Decided is the decision that ended the request: the last approval,
	// the denial, or the system's expiry or withdrawal.
	Decided       *Decision
	GrantDuration time.Duration // KindSession: how long the grant lasts
	// Holder is the gateway replica whose client waits for the decision.
	Holder string

	version int64 // the stored row's version, for compare-and-swap
}

// Decision is one reviewer's answer, or the system's ending of a request.
type Decision struct {
	By      string    `json:"by"` // principal name, or SystemDecider
	Issuer  string    `json:"issuer,omitempty"`
	Subject string    `json:"subject,omitempty"`
	Groups  []string  `json:"groups,omitempty"`
	Approve bool      `json:"approve"`
	Reason  string    `json:"reason,omitempty"` // masked
	At      time.Time `json:"at"`
}

// GrantedUntil is when an approved session grant ends; zero for statements
// and for requests that were not approved.
func (r *Request) GrantedUntil() time.Time {
	if r.Kind != KindSession || r.Status != Approved || r.Decided == nil {
		return time.Time{}
	}
	return r.Decided.At.Add(r.GrantDuration)
}

// Reason is the text a held client is told when its request did not pass:
// the reviewer's reason for a denial, "expired", or why it was withdrawn.
func (r *Request) Reason() string {
	switch {
	case r.Status == Expired:
		return "expired"
	case r.Decided != nil:
		return r.Decided.Reason
	}
	return ""
}

// HeldNotice is the NOTICE a held client gets at once (message and detail):
// which request, under which rule, until when, and how to approve it.
func HeldNotice(r *Request) (message, detail string) {
	message = "statement held for approval: request " + r.ID
	if r.Rule != "" {
		message += " under rule " + r.Rule
	}
	detail = fmt.Sprintf("Reviewers (%s) have until %s. Approve with: %s",
		strings.Join(r.Reviewers, ", "), r.Expires.UTC().Format(time.RFC3339), ApproveCommand(r.ID))
	if r.Required > 1 {
		detail = fmt.Sprintf("%d approvals from different reviewers are needed. %s", r.Required, detail)
	}
	return message, detail
}

// Refusal is the error (message and detail, SQLSTATE 42501) a held client
// gets when r ended without approval: denied (naming the reviewer and the
// reason), expired, or withdrawn. It is empty for approved and pending
// requests.
func Refusal(r *Request) (message, detail string) {
	under := ""
	if r.Rule != "" {
		under = " under rule " + r.Rule
	}
	switch r.Status {
	case Denied:
		message = "statement denied"
		if r.Decided != nil {
			message += " by " + r.Decided.By + ": " + r.Decided.Reason
		}
		return message, "approval request " + r.ID + under + " was denied"
	case Expired:
		return "approval request " + r.ID + " expired: no decision before " + r.Expires.UTC().Format(time.RFC3339),
			"the statement was held" + under + " and did not run"
	case Withdrawn:
		return "approval request " + r.ID + " was withdrawn: " + r.Reason(), "the statement" + under + " did not run"
	}
	return "", ""
}

// ApproveCommand is the command line that approves request id.
func ApproveCommand(id string) string { return "gatehouse approvals approve " + id }

// DenyCommand is the command line that denies request id.
func DenyCommand(id string) string { return `gatehouse approvals deny ` + id + ` --reason "…"` }

// Identity is a requester as shown and stored: identity.Principal without
// claims.
type Identity struct {
	Issuer  string   `json:"issuer,omitempty"`
	Subject string   `json:"subject,omitempty"`
	Name    string   `json:"name"`
	Groups  []string `json:"groups,omitempty"`
}

// View is a request as the REST API, the command line's --json output and
// webhooks show it. Field names are a contract: add, never rename.
type View struct {
	ID             string     `json:"id"`
	Status         Status     `json:"status"`
	Kind           string     `json:"kind"`
	Principal      string     `json:"principal"` // the requester's name
	Identity       Identity   `json:"identity"`
	Connection     string     `json:"connection"`
	Role           string     `json:"role,omitempty"`
	SessionID      string     `json:"session_id,omitempty"`
	Statement      string     `json:"statement"`
	Rule           string     `json:"rule,omitempty"`
	Reviewers      []string   `json:"reviewers"`
	Required       int        `json:"required"`
	Approvals      []Decision `json:"approvals"`
	Created        time.Time  `json:"created"`
	Expires        time.Time  `json:"expires"`
	Decided        *Decision  `json:"decided,omitempty"`
	GrantDuration  string     `json:"grant_duration,omitempty"` // Go duration, KindSession only
	Holder         string     `json:"holder,omitempty"`
	ParamHash      string     `json:"param_hash,omitempty"`
	ApproveCommand string     `json:"approve_command"`
}

// View returns r as shown outside the gateway.
func (r *Request) View() View {
	v := View{
		ID: r.ID, Status: r.Status, Kind: r.Kind, Principal: r.Principal.Name, Identity: identityOf(&r.Principal),
		Connection: r.Connection, Role: r.Role, SessionID: r.SessionID, Statement: r.Statement, Rule: r.Rule,
		Reviewers: nonNil(r.Reviewers), Required: r.Required, Approvals: r.Approvals,
		Created: r.Created, Expires: r.Expires, Decided: r.Decided, Holder: r.Holder, ParamHash: r.ParamHash,
		ApproveCommand: ApproveCommand(r.ID),
	}
	if v.Approvals == nil {
		v.Approvals = []Decision{}
	}
	if r.Kind == KindSession {
		v.GrantDuration = r.GrantDuration.String()
	}
	return v
}

func identityOf(p *identity.Principal) Identity {
	return Identity{Issuer: p.Issuer, Subject: p.Subject, Name: p.Name, Groups: slices.Clone(p.Groups)}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Bind returns the value of Request.ParamHash for statement and params (nil
// for SQL NULL): HMAC-SHA256 under key over an unambiguous encoding, hex.
//
// It is keyed, not a plain SHA-256, because the hash is stored and shown
// while the parameters may be card numbers: with the first six and last
// four digits visible in the masked statement, a plain hash of a PAN falls
// to a million guesses (PCI DSS 3.5.1 asks for keyed hashes). Only the
// replica holding the statement recomputes the hash, so a per-process
// random key (Broker.Bind) suffices.
func Bind(key []byte, statement string, params [][]byte) string {
	m := hmac.New(sha256.New, key)
	var n [binary.MaxVarintLen64]byte
	put := func(v int) { m.Write(n[:binary.PutUvarint(n[:], uint64(v))]) }
	put(len(statement))
	m.Write([]byte(statement))
	put(len(params))
	for _, p := range params {
		if p == nil {
			m.Write([]byte{0})
			continue
		}
		m.Write([]byte{1})
		put(len(p))
		m.Write(p)
	}
	return hex.EncodeToString(m.Sum(nil))
}

// newID returns a random request id: 96 bits in lowercase base32, short
// enough to type in `gatehouse approvals approve ID`. Ids are not secrets:
// deciding needs a reviewer's token.
func newID() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return idEncoding.EncodeToString(b[:]), nil
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// stored is the JSON of store.Approval.Data (see the package doc).
type stored struct {
	V             int           `json:"v"`
	ID            string        `json:"id"`
	Status        Status        `json:"status"`
	Kind          string        `json:"kind"`
	Principal     Identity      `json:"principal"`
	Connection    string        `json:"connection"`
	Role          string        `json:"role,omitempty"`
	SessionID     string        `json:"session_id,omitempty"`
	Statement     string        `json:"statement"`
	ParamHash     string        `json:"param_hash,omitempty"`
	Rule          string        `json:"rule,omitempty"`
	Reviewers     []string      `json:"reviewers"`
	Required      int           `json:"required"`
	Approvals     []Decision    `json:"approvals,omitempty"`
	Created       time.Time     `json:"created"`
	Expires       time.Time     `json:"expires"`
	Decided       *Decision     `json:"decided,omitempty"`
	GrantDuration time.Duration `json:"grant_duration_ns,omitempty"`
	Holder        string        `json:"holder"`
}

const storedVersion = 1

// row encodes r for the store.
func (r *Request) row() (store.Approval, error) {
	data, err := json.Marshal(stored{
		V: storedVersion, ID: r.ID, Status: r.Status, Kind: r.Kind, Principal: identityOf(&r.Principal),
		Connection: r.Connection, Role: r.Role, SessionID: r.SessionID, Statement: r.Statement,
		ParamHash: r.ParamHash, Rule: r.Rule, Reviewers: r.Reviewers, Required: r.Required,
		Approvals: r.Approvals, Created: r.Created, Expires: r.Expires, Decided: r.Decided,
		GrantDuration: r.GrantDuration, Holder: r.Holder,
	})
	if err != nil {
		return store.Approval{}, fmt.Errorf("approval: encode %s: %w", r.ID, err)
	}
	return store.Approval{
		ID: r.ID, Status: string(r.Status), Principal: r.Principal.Name, Connection: r.Connection,
		Holder: r.Holder, Created: r.Created, Expires: r.Expires, Version: r.version, Data: data,
	}, nil
}

// fromRow decodes a stored request.
func fromRow(a store.Approval) (*Request, error) {
	var s stored
	if err := json.Unmarshal(a.Data, &s); err != nil {
		return nil, fmt.Errorf("approval: decode %s: %w", a.ID, err)
	}
	if s.V != storedVersion {
		return nil, fmt.Errorf("approval: decode %s: unknown format version %d", a.ID, s.V)
	}
	if s.ID != a.ID {
		return nil, fmt.Errorf("approval: decode %s: data is of request %q", a.ID, s.ID)
	}
	return &Request{
		ID: s.ID, Status: s.Status, Kind: s.Kind,
		Principal: identity.Principal{
			Issuer: s.Principal.Issuer, Subject: s.Principal.Subject, Name: s.Principal.Name, Groups: s.Principal.Groups,
		},
		Connection: s.Connection, Role: s.Role, SessionID: s.SessionID, Statement: s.Statement,
		ParamHash: s.ParamHash, Rule: s.Rule, Reviewers: s.Reviewers, Required: s.Required,
		Approvals: s.Approvals, Created: s.Created, Expires: s.Expires, Decided: s.Decided,
		GrantDuration: s.GrantDuration, Holder: s.Holder, version: a.Version,
	}, nil
}
