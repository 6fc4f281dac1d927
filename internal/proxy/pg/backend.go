package pg

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// target is the session's leg to the real PostgreSQL, after pgconn has
// authenticated it and handed over the raw connection.
type target struct {
	conn     net.Conn
	pid      uint32
	secret   []byte
	params   map[string]string
	txStatus byte
	cfg      *pgconn.Config // kept for cancel: same host, port and TLS
}

// dialTarget connects to the connection's target as role, authenticating
// with the role's credential (SCRAM-SHA-256 or md5, whichever the target
// asks for), and hijacks the connection for raw relaying.
func dialTarget(ctx context.Context, cn *config.Connection, role *config.Role, runtime map[string]string) (*target, error) {
	cfg, err := targetConfig(cn, role, runtime)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cn.ConnectTimeout)
	defer cancel()
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	hc, err := pc.Hijack()
	if err != nil {
		pc.Close(context.Background())
		return nil, fmt.Errorf("hijack target connection: %w", err)
	}
	return &target{
		conn:     hc.Conn,
		pid:      hc.PID,
		secret:   hc.SecretKey,
		params:   hc.ParameterStatuses,
		txStatus: hc.TxStatus,
		cfg:      cfg,
	}, nil
}

func targetConfig(cn *config.Connection, role *config.Role, runtime map[string]string) (*pgconn.Config, error) {
	host, port, err := net.SplitHostPort(cn.Address)
	if err != nil {
		return nil, fmt.Errorf("connection %s: address: %w", cn.Name, err)
	}
	// Build from explicit settings only: ParseConfig also reads PG*
	// environment variables and service files, which must not change where
	// or how Gatehouse connects.
	kv := []string{
		"host=" + quoteConnValue(host),
		"port=" + quoteConnValue(port),
		"dbname=" + quoteConnValue(cn.Database),
		"user=" + quoteConnValue(role.User),
		"sslmode=" + quoteConnValue(cn.TLS.Mode),
		"max_protocol_version=3.0",
		"target_session_attrs=any",
		"passfile=/dev/null",
		"servicefile=/dev/null",
	}
	if cn.TLS.Mode == "verify-full" {
		kv = append(kv, "sslrootcert="+quoteConnValue(cn.TLS.CAFile))
	}
	cfg, err := pgconn.ParseConfig(strings.Join(kv, " "))
	if err != nil {
		return nil, fmt.Errorf("connection %s: %w", cn.Name, err)
	}
	// require: encrypt but do not verify, as libpq's sslmode=require. A
	// prefer-style plaintext fallback would be a silent downgrade.
	cfg.Fallbacks = nil
	if cn.TLS.ServerName != "" && cfg.TLSConfig != nil {
		cfg.TLSConfig.ServerName = cn.TLS.ServerName
	}
	cfg.Password = role.Password.Value()
	cfg.ConnectTimeout = cn.ConnectTimeout
	cfg.RuntimeParams = runtime
	return cfg, nil
}

func quoteConnValue(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// isAuthRefused reports whether the target rejected the credential, as
// opposed to being unreachable.
func isAuthRefused(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == codeInvalidPassword || pe.Code == codeInvalidAuthorization
	}
	return false
}

// cancel sends a CancelRequest for the target backend on a new connection,
// with the same TLS the session uses.
func (t *target) cancel(ctx context.Context) error {
	ctx, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	addr := net.JoinHostPort(t.cfg.Host, fmt.Sprint(t.cfg.Port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if t.cfg.TLSConfig != nil {
		req, _ := (&pgproto3.SSLRequest{}).Encode(nil)
		if _, err := conn.Write(req); err != nil {
			return err
		}
		var b [1]byte
		if _, err := conn.Read(b[:]); err != nil {
			return err
		}
		if b[0] != 'S' {
			return errors.New("target refused TLS for the cancel request")
		}
		tc := tls.Client(conn, t.cfg.TLSConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return err
		}
		conn = tc
	}
	msg, err := (&pgproto3.CancelRequest{ProcessID: t.pid, SecretKey: t.secret}).Encode(nil)
	if err != nil {
		return err
	}
	if _, err := conn.Write(msg); err != nil {
		return err
	}
	// The server closes the connection when done; wait for it so the
	// cancel has been delivered when we return.
	var b [1]byte
	_, _ = conn.Read(b[:])
	return nil
}
