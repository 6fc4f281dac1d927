package pg

import (
	"github.com/jackc/pgx/v5/pgproto3"
)

// SQLSTATEs Gatehouse answers with (DESIGN.md, "Contracts").
const (
	codeInvalidPassword       = "28P01" // bad token
	codeInvalidAuthorization  = "28000" // principal may not use connection/role; TLS required
	codeInvalidCatalogName    = "3D000" // unknown connection
	codeInsufficientPrivilege = "42501" // policy denial
	codeConnectionFailure     = "08006" // target unreachable or refused us
	codeProtocolViolation     = "08P01"
	codeFeatureNotSupported   = "0A000"
	codeTooManyConnections    = "53300"
	codeAdminShutdown         = "57P01"
	codeIdleSessionTimeout    = "57P05"
	codeInternalError         = "XX000"
)

// pgError is an error destined for the client as an ErrorResponse.
// Message, Detail and Hint are shown to the (untrusted) client, so they
// never carry secrets or anything that helps guess a token.
type pgError struct {
	Severity string // ERROR or FATAL
	Code     string
	Message  string
	Detail   string
	Hint     string
}

func (e *pgError) Error() string { return e.Code + ": " + e.Message }

func fatal(code, msg, hint string) *pgError {
	return &pgError{Severity: "FATAL", Code: code, Message: msg, Hint: hint}
}

func (e *pgError) response() *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{
		Severity:            e.Severity,
		SeverityUnlocalized: e.Severity,
		Code:                e.Code,
		Message:             e.Message,
		Detail:              e.Detail,
		Hint:                e.Hint,
	}
}

// appendTo appends the ErrorResponse message to dst.
func (e *pgError) appendTo(dst []byte) []byte {
	out, err := e.response().Encode(dst)
	if err != nil {
		// Encode fails only for messages over 1 GiB; ours are tiny.
		return dst
	}
	return out
}
