package pg

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// Buffer sizes of the relay. Reads are buffered so that one syscall brings
// many small messages; writes are flushed only when the reader has nothing
// more buffered, which coalesces a pipeline into few writes.
const (
	readBufSize  = 32 << 10
	writeBufSize = 32 << 10
)

// Session is one client connection relayed to one target connection.
type Session struct {
	ID         string
	Principal  *identity.Principal
	Connection *config.Connection
	Role       *config.Role
	ClientAddr string
	Start      time.Time

	server       *Server
	client       net.Conn
	target       *target
	protocol     uint32
	clientPID    uint32
	clientSecret []byte
	log          *slog.Logger

	bytesIn, bytesOut atomic.Int64
	lastActivity      atomic.Int64 // unix nanos of the last message either way
	// inFlight counts Query, Sync and FunctionCall messages sent to the
	// target whose ReadyForQuery has not come back: a session waiting on
	// its target is busy, not idle.
	inFlight atomic.Int32
	killReason        atomic.Pointer[pgError]
	closeOnce         sync.Once
}

// run relays until either side ends, then closes both.
func (s *Session) run(ctx context.Context) {
	srv := s.server
	m := srv.opts.Metrics
	m.SessionsActive.WithLabelValues(s.Connection.Name).Inc()
	m.SessionsTotal.WithLabelValues(s.Connection.Name).Inc()
	s.log.Info("session started", "principal_groups", s.Principal.Groups, "target_user", s.Role.User)
	s.touch()

	var wg sync.WaitGroup
	var clientErr, targetErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		clientErr = s.clientToTarget(ctx)
		s.closeBoth()
	}()
	go func() {
		defer wg.Done()
		targetErr = s.targetToClient()
		s.closeBoth()
	}()
	wg.Wait()

	srv.unregister(s)
	m.SessionsActive.WithLabelValues(s.Connection.Name).Dec()
	in, out := s.bytesIn.Load(), s.bytesOut.Load()
	m.Bytes.WithLabelValues(s.Connection.Name, "client_to_target").Add(float64(in))
	m.Bytes.WithLabelValues(s.Connection.Name, "target_to_client").Add(float64(out))
	attrs := []any{
		"bytes_client_to_target", in,
		"bytes_target_to_client", out,
		"duration_ms", srv.opts.Now().Sub(s.Start).Milliseconds(),
	}
	if r := s.killReason.Load(); r != nil {
		attrs = append(attrs, "reason", r.Message)
	}
	if clientErr != nil && !isClosedErr(clientErr) {
		attrs = append(attrs, "client_err", clientErr.Error())
	}
	if targetErr != nil && !isClosedErr(targetErr) {
		attrs = append(attrs, "target_err", targetErr.Error())
		m.TargetErrors.WithLabelValues(s.Connection.Name, "relay").Inc()
	}
	s.log.Info("session ended", attrs...)
}

// closeBoth ends the session: the first direction to finish closes both
// connections, which ends the other.
func (s *Session) closeBoth() {
	s.closeOnce.Do(func() {
		s.client.Close()
		s.target.conn.Close()
	})
}

// terminate ends the session from outside (shutdown, idle timeout): reason
// is sent to the client by the target→client direction, which owns the
// client writer, once closing the target unblocks it.
func (s *Session) terminate(reason *pgError) {
	if s.killReason.CompareAndSwap(nil, reason) {
		s.target.conn.Close()
	}
}

func (s *Session) touch() { s.lastActivity.Store(time.Now().UnixNano()) }

// clientToTarget relays client messages to the target.
func (s *Session) clientToTarget(ctx context.Context) error {
	lim := s.server.listener
	r := newMsgReader(s.client, readBufSize, lim.MaxMessageBytes)
	w := bufio.NewWriterSize(s.target.conn, writeBufSize)
	idle := lim.IdleTimeout
	for {
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
			_ = s.client.SetReadDeadline(time.Now().Add(idle))
		}
		typ, body, raw, err := r.Next()
		if err != nil {
			if isTimeout(err) && s.killReason.Load() == nil {
				// Idle means neither side spoke: a client waiting on a long
				// query is not idle.
				if since := time.Since(time.Unix(0, s.lastActivity.Load())); since < idle || s.inFlight.Load() > 0 {
					continue
				}
				s.log.Info("idle timeout", "idle_timeout", idle.String())
				s.terminate(fatal(codeIdleSessionTimeout, "terminating connection due to idle-session timeout", "gatehouse closes sessions idle longer than listeners.postgres.idle_timeout"))
				return nil
			}
			if errors.Is(err, ErrMessageTooLarge) {
				s.log.Warn("client message too large", "err", err)
				s.terminate(&pgError{Severity: "FATAL", Code: codeProtocolViolation, Message: "message too large", Detail: err.Error(), Hint: "gatehouse's listeners.postgres.max_message_bytes caps client messages"})
				return err
			}
			return err
		}
		s.touch()
		n := len(body) + 5
		s.bytesIn.Add(int64(n))
		if typ == 'X' {
			// Terminate: pass it on so the target ends cleanly, then stop.
			_ = writeMsg(w, typ, body, raw)
			_ = w.Flush()
			return nil
		}
		switch typ {
		case 'Q', 'S', 'F':
			s.inFlight.Add(1)
		}
		if err := writeMsg(w, typ, body, raw); err != nil {
			return err
		}
	}
}

// targetToClient relays target messages to the client.
func (s *Session) targetToClient() error {
	r := newMsgReader(s.target.conn, readBufSize, 1<<30)
	w := bufio.NewWriterSize(s.client, writeBufSize)
	for {
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
		typ, body, raw, err := r.Next()
		if err != nil {
			if reason := s.killReason.Load(); reason != nil {
				_, _ = w.Write(reason.appendTo(nil))
				_ = w.Flush()
				return nil
			}
			_ = w.Flush()
			return err
		}
		s.touch()
		s.bytesOut.Add(int64(len(body) + 5))
		if typ == 'Z' {
			s.inFlight.Add(-1)
		}
		if err := writeMsg(w, typ, body, raw); err != nil {
			return err
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF)
}
