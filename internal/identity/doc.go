// Package identity owns the first decision Gatehouse makes about a
// connection: who is calling. It turns the bearer token a client presents
// (in PostgreSQL, the startup password, like an RDS IAM token) into a
// verified [Principal], or into a [*TokenError] saying why not.
//
// Two kinds of credential are understood:
//
//   - static tokens from the configuration, compared in constant time;
//   - JWTs from configured OIDC issuers (GitHub Actions, GitLab CI,
//     Kubernetes service accounts, OAuth client credentials), verified with
//     go-oidc against the issuer's published keys, then mapped to groups by
//     the configured claim mappings. A JWT that matches no mapping is
//     rejected: being able to mint a token for an issuer is not, by itself,
//     permission to use Gatehouse.
//
// Issuers are discovered lazily, on the first token that names them, so an
// issuer that is down never blocks startup or the other issuers; its failures
// are remembered for a few seconds so that a flood of connections does not
// turn into a flood of requests to an issuer that is already struggling.
//
// The package never logs a token and never puts one, or any part of one, into
// an error. What a caller may do once identified is the policy package's
// business, not this one's.
package identity
