package pg

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/identity"
	sqlpg "github.com/gatehouse/gatehouse/internal/sql/pg"
	"github.com/jackc/pgx/v5/pgproto3"
)

// maxStartupBytes caps the startup packet; PostgreSQL's own limit is 10000.
const maxStartupBytes = 10000

// forwardedParams are the startup parameters passed to the target. Anything
// else is refused: `options` could switch settings (log_statement, ...)
// past the policy, and `replication` would leave the SQL protocol entirely.
var forwardedParams = map[string]bool{
	"application_name":   true,
	"client_encoding":    true,
	"DateStyle":          true,
	"datestyle":          true,
	"TimeZone":           true,
	"timezone":           true,
	"IntervalStyle":      true,
	"intervalstyle":      true,
	"extra_float_digits": true,
	"search_path":        true,
}

// startup is what the front end learned before the session began.
type startup struct {
	conn       net.Conn // TLS-wrapped when the client negotiated TLS
	backend    *pgproto3.Backend
	protocol   uint32
	params     map[string]string
	tls        bool
	clientAddr string
}

// handle runs one client connection from accept to close.
func (s *Server) handle(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	clientAddr := conn.RemoteAddr().String()
	log := s.log.With("client_addr", clientAddr)

	deadline := s.opts.Now().Add(s.listener.StartupTimeout)
	_ = conn.SetDeadline(deadline)
	st, err := s.negotiate(ctx, conn, clientAddr, log)
	if err != nil {
		s.reject(st, conn, log, err)
		return
	}
	if st == nil {
		return // a CancelRequest: handled, nothing more to say
	}
	sess, err := s.authenticate(ctx, st, log)
	if err != nil {
		s.reject(st, conn, log, err)
		return
	}
	_ = st.conn.SetDeadline(time.Time{})
	sess.run(ctx)
}

// negotiate handles SSLRequest, GSSENCRequest and CancelRequest until a
// StartupMessage arrives. It returns nil, nil after a CancelRequest.
func (s *Server) negotiate(ctx context.Context, conn net.Conn, clientAddr string, log *slog.Logger) (*startup, error) {
	st := &startup{conn: conn, clientAddr: clientAddr}
	st.backend = pgproto3.NewBackend(conn, conn)
	st.backend.SetMaxBodyLen(maxStartupBytes)
	for {
		msg, err := st.backend.ReceiveStartupMessage()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return st, errClientGone
			}
			return st, &pgError{Severity: "FATAL", Code: codeProtocolViolation, Message: "invalid startup packet", Detail: trimErr(err)}
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest:
			if st.tls || s.opts.TLS == nil {
				if _, err := conn.Write([]byte{'N'}); err != nil {
					return st, errClientGone
				}
				continue
			}
			if _, err := conn.Write([]byte{'S'}); err != nil {
				return st, errClientGone
			}
			tc := tls.Server(conn, s.opts.TLS)
			if err := tc.HandshakeContext(ctx); err != nil {
				log.Info("client TLS handshake failed", "err", err)
				return nil, errClientGone
			}
			st.conn, st.tls = tc, true
			st.backend = pgproto3.NewBackend(tc, tc)
			st.backend.SetMaxBodyLen(maxStartupBytes)
		case *pgproto3.GSSEncRequest:
			// GSSAPI encryption is not offered; 'N' tells the client to fall
			// back to SSLRequest or plaintext, as PostgreSQL does.
			if _, err := st.conn.Write([]byte{'N'}); err != nil {
				return st, errClientGone
			}
		case *pgproto3.CancelRequest:
			s.cancel(ctx, m.ProcessID, m.SecretKey)
			return nil, nil
		case *pgproto3.StartupMessage:
			st.protocol = m.ProtocolVersion
			st.params = m.Parameters
			return st, nil
		default:
			return st, &pgError{Severity: "FATAL", Code: codeProtocolViolation, Message: "unexpected startup message"}
		}
	}
}

var errClientGone = errors.New("client closed the connection")

// authenticate asks for the token, verifies it, authorizes the principal
// for the connection and role, and dials the target.
func (s *Server) authenticate(ctx context.Context, st *startup, log *slog.Logger) (*Session, error) {
	user, dbname := st.params["user"], st.params["database"]
	if dbname == "" {
		dbname = user // libpq's default, kept so errors read as expected
	}
	log = log.With("connection", dbname, "role", user)
	if user == "" {
		return nil, fatal(codeInvalidAuthorization, "no PostgreSQL user name specified in startup packet", "user is the role name, e.g. user=reader")
	}
	if !st.tls && !(s.listener.AllowPlaintextLoopback && isLoopback(st.conn.RemoteAddr())) {
		s.opts.Metrics.AuthFailures.WithLabelValues("tls_required").Inc()
		log.Warn("client refused: TLS required")
		return nil, fatal(codeInvalidAuthorization, "gatehouse requires TLS: the token is a credential", "connect with sslmode=require (or verify-full with gatehouse's certificate)")
	}
	for k := range st.params {
		if k == "user" || k == "database" || forwardedParams[k] {
			continue
		}
		s.opts.Metrics.AuthFailures.WithLabelValues("startup_parameter").Inc()
		return nil, &pgError{Severity: "FATAL", Code: codeFeatureNotSupported,
			Message: fmt.Sprintf("startup parameter %q is not supported by gatehouse", k),
			Hint:    "settings pass through policy: run SET after connecting"}
	}

	if enc, ok := st.params["client_encoding"]; ok && unsafeClientEncoding(enc) {
		s.opts.Metrics.AuthFailures.WithLabelValues("startup_parameter").Inc()
		return nil, &pgError{Severity: "FATAL", Code: codeFeatureNotSupported,
			Message: fmt.Sprintf("client_encoding %q is not supported by gatehouse", enc),
			Hint:    "use UTF8: in this encoding a multibyte character can hide a quote from the statement analyser"}
	}

	// Ask for the token as a cleartext password: it is already inside TLS,
	// and SCRAM would need the verifier to know the token in advance.
	st.backend.Send(&pgproto3.AuthenticationCleartextPassword{})
	if err := st.backend.Flush(); err != nil {
		return nil, errClientGone
	}
	if err := st.backend.SetAuthType(pgproto3.AuthTypeCleartextPassword); err != nil {
		return nil, err
	}
	msg, err := st.backend.Receive()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			// psql hangs up here to prompt for a password and reconnects.
			return nil, errClientGone
		}
		return nil, &pgError{Severity: "FATAL", Code: codeProtocolViolation, Message: "expected a password message"}
	}
	pw, ok := msg.(*pgproto3.PasswordMessage)
	if !ok {
		return nil, &pgError{Severity: "FATAL", Code: codeProtocolViolation, Message: fmt.Sprintf("expected a password message, got %T", msg)}
	}
	authFailed := fatal(codeInvalidPassword, fmt.Sprintf("password authentication failed for user %q", user), "")
	principal, err := s.opts.Verifier.Verify(ctx, pw.Password)
	if err != nil {
		reason := "invalid_token"
		var te *identity.TokenError
		if errors.As(err, &te) {
			reason = te.Reason.String()
		}
		s.opts.Metrics.AuthFailures.WithLabelValues(reason).Inc()
		// The log gets the reason; the client gets no detail that helps
		// guess (DESIGN.md: 28P01 without detail).
		log.Warn("authentication failed", "reason", reason, "err", err)
		s.auditAuth(ctx, st, nil, dbname, user, "failure", reason)
		return nil, authFailed
	}
	log = log.With("principal", principal.Name, "issuer", principal.Issuer)

	conn := s.opts.Gateway.Connection(dbname)
	if conn == nil {
		s.opts.Metrics.AuthFailures.WithLabelValues("unknown_connection").Inc()
		log.Warn("unknown connection")
		s.auditAuth(ctx, st, principal, dbname, user, "failure", "unknown_connection")
		return nil, fatal(codeInvalidCatalogName, fmt.Sprintf("database %q does not exist", dbname), "dbname is a gatehouse connection name")
	}
	role := conn.Role(user)
	if role == nil || !role.Admits(principal.Name, principal.Groups) {
		s.opts.Metrics.AuthFailures.WithLabelValues("not_authorized").Inc()
		log.Warn("principal may not use connection/role")
		s.auditAuth(ctx, st, principal, dbname, user, "failure", "not_authorized")
		// Same answer for an unknown role and a forbidden one: the client
		// learns nothing about which roles exist.
		return nil, fatal(codeInvalidAuthorization, fmt.Sprintf("%s may not use role %q on connection %q", principal.Name, user, dbname), "ask an administrator for access to this role")
	}

	sess := &Session{
		ID:         newSessionID(),
		Principal:  principal,
		Connection: conn,
		Role:       role,
		ClientAddr: st.clientAddr,
		Start:      s.opts.Now(),
		server:     s,
		client:     st.conn,
		protocol:   st.protocol,
		sentinels:  newSentinels(),
		prepared:   sqlpg.NewPreparedSet(),
	}
	sess.log = log.With("session", sess.ID)
	sess.tls = st.tls
	sess.auditPrin = auditPrincipal(principal)
	if _, ok := s.auditAuth(ctx, st, principal, dbname, user, "success", ""); !ok {
		return nil, fatal(codeIOError, "gatehouse cannot write its audit log; the session was not started", "gatehouse fails closed when its audit log is unavailable; retry later")
	}
	authOKSent, err := s.admit(ctx, st, sess)
	if err != nil {
		return nil, err
	}
	keyLen := 4
	if st.protocol == pgproto3.ProtocolVersion32 {
		keyLen = 32
	}
	if err := s.register(sess, keyLen); err != nil {
		if errors.Is(err, errTooManySessions) {
			return nil, fatal(codeTooManyConnections, "sorry, too many clients already", "")
		}
		return nil, fatal(codeAdminShutdown, "gatehouse is shutting down", "reconnect")
	}
	runtime := map[string]string{}
	for k, v := range st.params {
		if forwardedParams[k] {
			runtime[k] = v
		}
	}
	tgt, err := dialTarget(ctx, conn, role, runtime)
	if err != nil {
		s.unregister(sess)
		kind := "connect"
		if isAuthRefused(err) {
			kind = "auth"
		}
		s.opts.Metrics.TargetErrors.WithLabelValues(conn.Name, kind).Inc()
		log.Error("target connection failed", "kind", kind, "err", redactErr(err, role.Password.Value()))
		msg := fmt.Sprintf("could not connect to connection %q", conn.Name)
		if kind == "auth" {
			msg = fmt.Sprintf("connection %q refused gatehouse's credential for role %q", conn.Name, role.Name)
		}
		return nil, fatal(codeConnectionFailure, msg, "the target is down or misconfigured; gatehouse's log has the details")
	}
	sess.target = tgt
	sess.txStatus.Store(uint32(tgt.txStatus))
	if s.opts.Masker != nil {
		cols, err := s.columns.resolve(ctx, conn, tgt.cfg)
		if err != nil {
			s.unregister(sess)
			tgt.conn.Close()
			s.opts.Metrics.MaskFailures.Inc()
			log.Error("cannot resolve column masking rules; refusing the session", "err", redactErr(err, role.Password.Value()))
			return nil, fatal(codeConnectionFailure, fmt.Sprintf("gatehouse cannot apply the masking rules of connection %q", conn.Name), "gatehouse's log has the details")
		}
		sess.columns = cols
	}

	// The client now sees the target's own startup reply, with Gatehouse's
	// BackendKeyData in place of the target's so cancels come to us.
	if !authOKSent {
		st.backend.Send(&pgproto3.AuthenticationOk{})
	}
	for k, v := range tgt.params {
		st.backend.Send(&pgproto3.ParameterStatus{Name: k, Value: v})
	}
	st.backend.Send(&pgproto3.BackendKeyData{ProcessID: sess.clientPID, SecretKey: sess.clientSecret})
	st.backend.Send(&pgproto3.ReadyForQuery{TxStatus: tgt.txStatus})
	if err := st.backend.Flush(); err != nil {
		s.unregister(sess)
		tgt.conn.Close()
		return nil, errClientGone
	}
	return sess, nil
}

// reject sends err to the client (when it is a pgError) and logs it.
func (s *Server) reject(st *startup, conn net.Conn, log *slog.Logger, err error) {
	var pe *pgError
	if !errors.As(err, &pe) {
		if !errors.Is(err, errClientGone) {
			log.Warn("connection failed during startup", "err", err)
		}
		return
	}
	if pe.Code == codeProtocolViolation {
		log.Warn("bad startup", "err", pe.Message, "detail", pe.Detail)
	}
	w := conn
	if st != nil && st.conn != nil {
		w = st.conn
	}
	_, _ = w.Write(pe.appendTo(nil))
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// trimErr shortens a decoder error for a client-facing detail.
func trimErr(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// redactErr removes a secret from an error text before it is logged; pgconn
// errors never contain the password today, but that is theirs to change.
func redactErr(err error, secret string) string {
	s := err.Error()
	if secret != "" {
		s = strings.ReplaceAll(s, secret, "[REDACTED]")
	}
	return s
}

// auditAuth records an authentication outcome. Failures are recorded best
// effort (the client is refused either way); a success that cannot be
// recorded refuses the session.
func (s *Server) auditAuth(ctx context.Context, st *startup, p *identity.Principal, conn, role, result, reason string) (int64, bool) {
	kind := audit.KindAuthSuccess
	if result != "success" {
		kind = audit.KindAuthFailure
	}
	return s.appendAudit(ctx, audit.Event{
		Kind: kind, Principal: auditPrincipal(p), Source: st.clientAddr,
		Connection: conn, Role: role, Protocol: "postgres", Reason: reason,
	})
}

// unsafeClientEncoding reports encodings whose multibyte characters may
// contain ASCII bytes such as ' and \: the server would read a statement
// differently from the analyser (which reads UTF-8), a known injection
// route. PostgreSQL allows them as client encodings only.
func unsafeClientEncoding(enc string) bool {
	e := strings.ToUpper(strings.NewReplacer("-", "", "_", "").Replace(enc))
	switch e {
	case "SJIS", "SHIFTJIS", "SHIFTJIS2004", "MSKANJI", "BIG5", "GBK", "GB18030", "UHC", "JOHAB",
		"WIN932", "WIN936", "WIN949", "WIN950", "CP932", "CP936", "CP949", "CP950":
		return true
	}
	return false
}
