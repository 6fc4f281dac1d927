package pg

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/approval"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/mask"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/store"
)

// TokenVerifier turns the password a client sent into a Principal.
// *identity.Verifier implements it.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (*identity.Principal, error)
}

// Approvals is the approval broker as the data path uses it;
// *approval.Broker implements it.
type Approvals interface {
	Request(ctx context.Context, r approval.Request) (*approval.Request, error)
	Wait(ctx context.Context, id string) (*approval.Request, error)
	Withdraw(ctx context.Context, id, reason string) error
	Bind(statement string, params [][]byte) string
}

// Options configure a Server. Gateway, Verifier, Logger and Metrics are
// required.
type Options struct {
	Gateway  *config.Config
	TLS      *tls.Config // nil only when every client is on loopback and plaintext is allowed
	Verifier TokenVerifier
	// Inspection judges statements; nil relays without inspecting.
	Inspection *Inspection
	// Masker masks responses; nil relays responses unmasked (relay-only
	// benchmarks). ColumnRules need a Masker.
	Masker *mask.Masker
	// Audit receives every session and statement event; a statement runs
	// only after its event is durable. nil disables auditing.
	Audit *audit.Log
	// Approvals holds review decisions for a human; nil refuses them.
	Approvals Approvals
	// Recordings stores session recordings; nil disables recording.
	Recordings  store.Store
	ColumnRules []ColumnRule
	Logger      *slog.Logger
	Metrics     *metrics.Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server accepts PostgreSQL clients on one listener.
type Server struct {
	opts     Options
	listener *config.PostgresListener
	log      *slog.Logger

	mu       sync.Mutex // guards ln, sessions, closing
	ln       net.Listener
	sessions map[uint32]*Session // by the process ID Gatehouse gave the client
	closing  bool

	wg sync.WaitGroup // every connection goroutine

	columns *columnResolver
}

// NewServer checks opts and returns a Server ready to Serve.
func NewServer(opts Options) (*Server, error) {
	if opts.Gateway == nil || opts.Gateway.Listeners.Postgres == nil {
		return nil, errors.New("pg: no postgres listener configured")
	}
	if opts.Verifier == nil || opts.Logger == nil || opts.Metrics == nil {
		return nil, errors.New("pg: verifier, logger and metrics are required")
	}
	if opts.TLS == nil && !opts.Gateway.Listeners.Postgres.AllowPlaintextLoopback {
		return nil, errors.New("pg: a TLS configuration is required unless allow_plaintext_loopback is set")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Server{
		opts:     opts,
		listener: opts.Gateway.Listeners.Postgres,
		log:      opts.Logger,
		sessions: map[uint32]*Session{},
		columns:  newColumnResolver(opts.ColumnRules),
	}, nil
}

// Listen binds the configured address. Separate from Serve so callers know
// the port is bound (and can report it) before serving starts.
func (s *Server) Listen() (net.Addr, error) {
	ln, err := net.Listen("tcp", s.listener.Address)
	if err != nil {
		return nil, fmt.Errorf("pg: listen %s: %w", s.listener.Address, err)
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	return ln.Addr(), nil
}

// Serve accepts connections until Shutdown. It returns nil after Shutdown.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	if ln == nil {
		return errors.New("pg: Serve called before Listen")
	}
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTemporaryAccept) {
				backoff = min(max(backoff*2, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			// EMFILE and friends are temporary too; log and back off rather
			// than spin or stop serving.
			s.log.Error("accept failed", "err", err)
			backoff = min(max(backoff*2, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(ctx, conn)
		}()
	}
}

var errTemporaryAccept = errors.New("temporary accept error")

// Shutdown stops accepting, lets sessions finish until ctx is done, then
// closes the remaining ones with 57P01 and waits for every goroutine.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	if s.ln != nil {
		s.ln.Close()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for _, sess := range s.sessions {
		sess.terminate(fatal(codeAdminShutdown, "terminating connection due to administrator command", "gatehouse is shutting down; reconnect"))
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

// ActiveSessions returns the number of open sessions.
func (s *Server) ActiveSessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// register gives sess a unique process ID and secret for its BackendKeyData.
func (s *Server) register(sess *Session, keyLen int) error {
	secret := make([]byte, keyLen)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return errShuttingDown
	}
	if max := s.listener.MaxSessions; max > 0 && len(s.sessions) >= max {
		return errTooManySessions
	}
	for {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		pid := binary.BigEndian.Uint32(b[:]) & 0x7fffffff // positive, like a real PID
		if _, taken := s.sessions[pid]; pid != 0 && !taken {
			sess.clientPID, sess.clientSecret = pid, secret
			s.sessions[pid] = sess
			return nil
		}
	}
}

func (s *Server) unregister(sess *Session) {
	s.mu.Lock()
	delete(s.sessions, sess.clientPID)
	s.mu.Unlock()
}

var (
	errShuttingDown    = errors.New("gateway is shutting down")
	errTooManySessions = errors.New("too many sessions")
)

// cancel forwards a client's CancelRequest to the target of the session it
// names. A request that names no session, or with the wrong secret, is
// dropped silently, as PostgreSQL does, so it reveals nothing.
func (s *Server) cancel(ctx context.Context, pid uint32, secret []byte) {
	s.mu.Lock()
	sess := s.sessions[pid]
	s.mu.Unlock()
	if sess == nil || subtle.ConstantTimeCompare(sess.clientSecret, secret) != 1 {
		s.log.Warn("cancel request for an unknown session dropped")
		return
	}
	if sess.cancelHold() {
		sess.log.Info("cancel request withdrew a statement held for approval")
		return
	}
	if err := sess.target.cancel(ctx); err != nil {
		sess.log.Warn("cancel request to target failed", "err", err)
		return
	}
	sess.log.Info("cancel request forwarded to target")
}

func newSessionID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // the runtime guarantees it does not
	}
	return hex.EncodeToString(b[:])
}
