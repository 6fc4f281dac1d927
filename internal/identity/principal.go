package identity

// Principal is a verified caller: who presented the token and what the
// configuration says they are. It is immutable once returned by a Verifier.
type Principal struct {
	// Issuer is the OIDC issuer URL, or "static" for configured tokens.
	Issuer string
	// Subject is the token's sub claim, or the static identity's name.
	Subject string
	// Name is the display name used in policy, logs and audit records.
	Name string
	// Groups are the groups the configuration maps this caller into.
	Groups []string
	// Claims holds the token's claims (empty for static identities).
	Claims map[string]any
}

// InGroup reports whether p is a member of group.
func (p *Principal) InGroup(group string) bool {
	for _, g := range p.Groups {
		if g == group {
			return true
		}
	}
	return false
}
