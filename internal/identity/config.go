package identity

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// StaticIdentity is a caller known by a shared secret. Static tokens suit
// scripts and the operators' own tools; CI jobs and agents should prefer
// OIDC, whose tokens expire.
type StaticIdentity struct {
	Name string
	// Token is the resolved secret, not a reference to it.
	Token  string
	Groups []string
}

// ClaimMapping grants Groups to tokens whose claims match every entry of
// Claims. A string claim matches when it equals the value; a list claim
// matches when it contains the value as a string element. Claims of any other
// type (numbers, booleans, objects) never match, so that "true" cannot be
// confused with true.
type ClaimMapping struct {
	Claims map[string]string
	Groups []string
}

// OIDCIssuer configures one trusted token issuer.
type OIDCIssuer struct {
	// Name labels the issuer in logs, errors and metrics.
	Name string
	// IssuerURL must equal the tokens' iss claim exactly (trailing slash
	// included) and serve /.well-known/openid-configuration. It must be
	// https, except on loopback hosts.
	IssuerURL string
	// Audience must be among the token's aud values.
	Audience string
	// Algorithms are the signing algorithms accepted; default RS256, ES256.
	// "none" and the HMAC family are refused: the verifier only holds public
	// keys, and accepting HS* is the classic algorithm-confusion hole.
	Algorithms []string
	// NameClaim is the claim used as Principal.Name; default "sub".
	NameClaim string
	// Mappings decide the groups; a token matching none is rejected. At
	// least one is required, and each must test at least one claim, because
	// for issuers such as GitHub Actions anyone on the internet can mint a
	// token with any audience.
	Mappings []ClaimMapping
	// CAFile optionally names a PEM bundle trusted for reaching the issuer,
	// instead of the system roots.
	CAFile string
	// HTTPClient optionally replaces the client used to reach the issuer
	// (tests inject one). Its Transport is wrapped, not modified; a zero
	// Timeout is replaced by a short one. Exclusive with CAFile.
	HTTPClient *http.Client
}

// Config is everything a [Verifier] needs.
type Config struct {
	Static []StaticIdentity
	OIDC   []OIDCIssuer
	// MaxSkew is the clock skew tolerated on exp, nbf and iat. Zero means
	// the default and maximum, 60s: a longer skew would quietly extend the
	// life of every stolen token.
	MaxSkew time.Duration
	// Now overrides the clock for tests; nil means time.Now.
	Now func() time.Time
}

const (
	// StaticIssuer is Principal.Issuer (and TokenError.Issuer) for static tokens.
	StaticIssuer = "static"

	maxSkewLimit = 60 * time.Second
	// issuerTimeout bounds every request to an issuer: a connection waits
	// on identity, so an issuer that hangs must turn into a prompt rejection.
	issuerTimeout = 5 * time.Second
)

var defaultAlgorithms = []string{"RS256", "ES256"}

// supportedAlgorithms are the asymmetric algorithms go-oidc can verify.
var supportedAlgorithms = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"EdDSA": true,
}

type staticEntry struct {
	name   string
	hash   [sha256.Size]byte
	groups []string
}

// issuerSettings is an OIDCIssuer after defaults and validation, with copies
// of every slice and map so later changes to the Config cannot reach it.
type issuerSettings struct {
	name       string
	url        string
	audience   string
	algorithms []string
	nameClaim  string
	mappings   []ClaimMapping
	client     *http.Client // base client; the breaker is added by newIssuer
}

func validateStatic(static []StaticIdentity) ([]staticEntry, error) {
	var (
		out    []staticEntry
		names  = map[string]int{}
		hashes = map[[sha256.Size]byte]int{}
	)
	for i, s := range static {
		where := fmt.Sprintf("static[%d]", i)
		if s.Name == "" {
			return nil, fmt.Errorf("%s.name: is empty", where)
		}
		if j, ok := names[s.Name]; ok {
			return nil, fmt.Errorf("%s.name: %q is already used by static[%d]", where, s.Name, j)
		}
		names[s.Name] = i
		if s.Token == "" {
			return nil, fmt.Errorf("%s.token: is empty", where)
		}
		// A secret file with a trailing newline would otherwise yield a token
		// nobody can type into a password prompt, failing much later and
		// much less clearly.
		if strings.TrimSpace(s.Token) != s.Token {
			return nil, fmt.Errorf("%s.token: has leading or trailing whitespace", where)
		}
		h := sha256.Sum256([]byte(s.Token))
		if j, ok := hashes[h]; ok {
			// Two identities behind one secret would make the audit trail
			// name whichever came first; refuse rather than guess.
			return nil, fmt.Errorf("%s.token: is the same as static[%d].token", where, j)
		}
		hashes[h] = i
		if err := validateGroups(where+".groups", s.Groups); err != nil {
			return nil, err
		}
		out = append(out, staticEntry{name: s.Name, hash: h, groups: clone(s.Groups)})
	}
	return out, nil
}

func validateIssuers(issuers []OIDCIssuer) ([]issuerSettings, error) {
	var (
		out   []issuerSettings
		names = map[string]int{}
		urls  = map[string]int{}
	)
	for i, c := range issuers {
		where := fmt.Sprintf("oidc[%d]", i)
		s, err := validateIssuer(c)
		if err != nil {
			return nil, fmt.Errorf("%s.%w", where, err)
		}
		if j, ok := names[s.name]; ok {
			return nil, fmt.Errorf("%s.name: %q is already used by oidc[%d]", where, s.name, j)
		}
		names[s.name] = i
		if j, ok := urls[s.url]; ok {
			return nil, fmt.Errorf("%s.issuer_url: %q is already used by oidc[%d]", where, s.url, j)
		}
		urls[s.url] = i
		out = append(out, s)
	}
	return out, nil
}

// validateIssuer returns errors starting with the field name, so the caller
// can prefix them with "oidc[i].".
func validateIssuer(c OIDCIssuer) (issuerSettings, error) {
	s := issuerSettings{
		name:      c.Name,
		url:       c.IssuerURL,
		audience:  c.Audience,
		nameClaim: c.NameClaim,
	}
	if s.name == "" {
		return s, errors.New("name: is empty")
	}
	if s.name == StaticIssuer {
		return s, fmt.Errorf("name: %q is reserved for static tokens", StaticIssuer)
	}
	if err := checkIssuerURL(s.url); err != nil {
		return s, fmt.Errorf("issuer_url: %w", err)
	}
	if s.audience == "" {
		return s, errors.New("audience: is empty")
	}
	algs := c.Algorithms
	if len(algs) == 0 {
		algs = defaultAlgorithms
	}
	for _, a := range algs {
		switch {
		case strings.EqualFold(a, "none"):
			return s, fmt.Errorf("algorithms: %q is not allowed", a)
		case strings.HasPrefix(strings.ToUpper(a), "HS"):
			return s, fmt.Errorf("algorithms: %q is not allowed (symmetric algorithms let anyone holding the issuer's public key forge tokens)", a)
		case !supportedAlgorithms[a]:
			return s, fmt.Errorf("algorithms: %q is not a supported algorithm", a)
		}
	}
	s.algorithms = clone(algs)
	if s.nameClaim == "" {
		s.nameClaim = "sub"
	}
	if len(c.Mappings) == 0 {
		return s, errors.New("mappings: at least one mapping is required (a token matching no mapping is rejected)")
	}
	for j, m := range c.Mappings {
		if len(m.Claims) == 0 {
			return s, fmt.Errorf("mappings[%d].claims: at least one claim is required (an empty mapping would admit every token the issuer signs)", j)
		}
		claims := make(map[string]string, len(m.Claims))
		for k, v := range m.Claims {
			if k == "" {
				return s, fmt.Errorf("mappings[%d].claims: a claim name is empty", j)
			}
			if v == "" {
				return s, fmt.Errorf("mappings[%d].claims.%s: value is empty", j, k)
			}
			claims[k] = v
		}
		if len(m.Groups) == 0 {
			return s, fmt.Errorf("mappings[%d].groups: at least one group is required", j)
		}
		if err := validateGroups(fmt.Sprintf("mappings[%d].groups", j), m.Groups); err != nil {
			return s, err
		}
		s.mappings = append(s.mappings, ClaimMapping{Claims: claims, Groups: clone(m.Groups)})
	}
	client, err := baseClient(c)
	if err != nil {
		return s, err
	}
	s.client = client
	return s, nil
}

func validateGroups(field string, groups []string) error {
	for i, g := range groups {
		if g == "" {
			return fmt.Errorf("%s[%d]: is empty", field, i)
		}
	}
	return nil
}

// checkIssuerURL insists on https because the issuer's keys are the root of
// trust for every OIDC identity; plain http is tolerated on loopback only,
// where test issuers and local sidecars live.
func checkIssuerURL(raw string) error {
	if raw == "" {
		return errors.New("is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL: %w", err)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q must not have a query or fragment", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q must use https (http is allowed for loopback hosts only)", raw)
	default:
		return fmt.Errorf("%q must use https", raw)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func baseClient(c OIDCIssuer) (*http.Client, error) {
	if c.HTTPClient != nil {
		if c.CAFile != "" {
			return nil, errors.New("ca_file: cannot be combined with an injected HTTP client")
		}
		cp := *c.HTTPClient
		if cp.Timeout == 0 {
			cp.Timeout = issuerTimeout
		}
		return &cp, nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: %s contains no PEM certificates", c.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: issuerTimeout}, nil
}

func clone[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append([]T(nil), s...)
}
