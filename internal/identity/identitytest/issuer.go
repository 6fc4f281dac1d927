// Package identitytest provides a real, in-process OIDC issuer for tests:
// discovery document, JWKS with an RSA and an EC key, and signing helpers
// for both valid and hostile tokens. It is for tests only and must never be
// imported by the gatehouse binary.
package identitytest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"hash"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Key IDs published in the issuer's JWKS.
const (
	RSAKeyID = "rsa-1"
	ECKeyID  = "ec-1"
)

// Issuer is an OIDC issuer served over HTTP on loopback. Each Issuer has its
// own keys, so a token from one never verifies against another.
type Issuer struct {
	t      testing.TB
	srv    *httptest.Server
	rsaKey *rsa.PrivateKey
	ecKey  *ecdsa.PrivateKey
	jwks   []byte

	down     atomic.Bool
	requests atomic.Int64

	foreignOnce sync.Once
	foreignKey  *rsa.PrivateKey
}

// NewIssuer starts an issuer that is closed when the test ends.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("identitytest: generating RSA key: %v", err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("identitytest: generating EC key: %v", err)
	}
	iss := &Issuer{t: t, rsaKey: rsaKey, ecKey: ecKey}
	iss.jwks, err = json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &rsaKey.PublicKey, KeyID: RSAKeyID, Algorithm: string(jose.RS256), Use: "sig"},
		{Key: &ecKey.PublicKey, KeyID: ECKeyID, Algorithm: string(jose.ES256), Use: "sig"},
	}})
	if err != nil {
		t.Fatalf("identitytest: encoding JWKS: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", iss.serveDiscovery)
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(iss.jwks)
	})
	iss.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		iss.requests.Add(1)
		if iss.down.Load() {
			http.Error(w, "issuer is down", http.StatusServiceUnavailable)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(iss.Close)
	return iss
}

func (iss *Issuer) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	u := iss.URL()
	doc := map[string]any{
		"issuer":                                u,
		"jwks_uri":                              u + "/jwks",
		"authorization_endpoint":                u + "/authorize",
		"token_endpoint":                        u + "/token",
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(doc)
}

// URL is the issuer URL: the iss of its tokens and the base of discovery.
func (iss *Issuer) URL() string { return iss.srv.URL }

// Close stops the server. It is safe to call more than once.
func (iss *Issuer) Close() { iss.srv.Close() }

// SetDown makes every endpoint answer 503 (true) or serve again (false),
// to simulate an outage.
func (iss *Issuer) SetDown(down bool) { iss.down.Store(down) }

// Requests counts the HTTP requests the issuer has received, including those
// answered 503, so tests can check that an issuer is not contacted or not
// hammered.
func (iss *Issuer) Requests() int64 { return iss.requests.Load() }

// Claims returns a valid claim set for subject and audience: iss, sub, aud,
// and iat/nbf now, exp in five minutes. Callers add or override claims.
func (iss *Issuer) Claims(subject, audience string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": iss.URL(),
		"sub": subject,
		"aud": audience,
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(),
	}
}

// Sign returns claims signed with RS256 by the issuer's published RSA key.
func (iss *Issuer) Sign(claims map[string]any) string {
	iss.t.Helper()
	return iss.SignWith("RS256", claims)
}

// SignWith signs claims with alg:
//
//   - "RS256", "RS384", "RS512", "PS256": the published RSA key;
//   - "ES256": the published EC key;
//   - "none": an unsigned token (empty signature), which go-jose will not
//     produce, so it is assembled by hand;
//   - "HS256", "HS384", "HS512": HMAC keyed with the issuer's RSA public key
//     in PEM form, the classic algorithm-confusion forgery.
//
// Any other alg fails the test.
func (iss *Issuer) SignWith(alg string, claims map[string]any) string {
	iss.t.Helper()
	switch alg {
	case "RS256", "RS384", "RS512", "PS256":
		return iss.sign(jose.SignatureAlgorithm(alg), jose.JSONWebKey{Key: iss.rsaKey, KeyID: RSAKeyID}, claims)
	case "ES256":
		return iss.sign(jose.ES256, jose.JSONWebKey{Key: iss.ecKey, KeyID: ECKeyID}, claims)
	case "none":
		return iss.compact(map[string]any{"alg": "none", "typ": "JWT"}, claims, func([]byte) []byte { return nil })
	case "HS256", "HS384", "HS512":
		secret := iss.PublicKeyPEM()
		h := map[string]func() hash.Hash{"HS256": sha256.New, "HS384": sha512.New384, "HS512": sha512.New}[alg]
		header := map[string]any{"alg": alg, "typ": "JWT", "kid": RSAKeyID}
		return iss.compact(header, claims, func(input []byte) []byte {
			m := hmac.New(h, secret)
			m.Write(input)
			return m.Sum(nil)
		})
	}
	iss.t.Fatalf("identitytest: SignWith: unsupported alg %q", alg)
	return ""
}

// SignForeign signs claims with RS256 by an RSA key the issuer does not
// publish, under the published key's kid, as a forger would.
func (iss *Issuer) SignForeign(claims map[string]any) string {
	iss.t.Helper()
	iss.foreignOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			iss.t.Fatalf("identitytest: generating foreign key: %v", err)
		}
		iss.foreignKey = k
	})
	return iss.sign(jose.RS256, jose.JSONWebKey{Key: iss.foreignKey, KeyID: RSAKeyID}, claims)
}

// PublicKeyPEM is the published RSA public key as PKIX PEM: what an
// attacker can download and try as an HMAC secret.
func (iss *Issuer) PublicKeyPEM() []byte {
	der, err := x509.MarshalPKIXPublicKey(&iss.rsaKey.PublicKey)
	if err != nil {
		iss.t.Fatalf("identitytest: encoding public key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// PublicKey returns the published RSA public key.
func (iss *Issuer) PublicKey() crypto.PublicKey { return &iss.rsaKey.PublicKey }

func (iss *Issuer) sign(alg jose.SignatureAlgorithm, key jose.JSONWebKey, claims map[string]any) string {
	iss.t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		iss.t.Fatalf("identitytest: signer: %v", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		iss.t.Fatalf("identitytest: encoding claims: %v", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		iss.t.Fatalf("identitytest: signing: %v", err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		iss.t.Fatalf("identitytest: serializing: %v", err)
	}
	return s
}

func (iss *Issuer) compact(header, claims map[string]any, sign func(input []byte) []byte) string {
	iss.t.Helper()
	hb, err := json.Marshal(header)
	if err != nil {
		iss.t.Fatalf("identitytest: encoding header: %v", err)
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		iss.t.Fatalf("identitytest: encoding claims: %v", err)
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(hb) + "." + enc.EncodeToString(cb)
	return input + "." + enc.EncodeToString(sign([]byte(input)))
}
