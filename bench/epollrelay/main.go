// Command epollrelay is naiverelay rebuilt the way PgBouncer is built: one
// event loop on one thread, non-blocking sockets and epoll, no goroutine
// per connection and no Go netpoller on the data path. It parses nothing,
// authenticates nothing and has no TLS. bench/pgbench.sh runs it as target
// epoll-go beside naive-go, so that the share of the relay's gap to
// PgBouncer that comes from the Go runtime's scheduling (two goroutines
// per session, each parked and woken on every round trip) is measured, not
// guessed. It is a benchmark tool, not part of Gatehouse.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to accept on")
	target := flag.String("target", "", "address to relay to")
	flag.Parse()
	if *target == "" {
		fmt.Fprintln(os.Stderr, "epollrelay: --target is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen, *target); err != nil {
		fmt.Fprintln(os.Stderr, "epollrelay:", err)
		os.Exit(1)
	}
}

// end is one side of a relayed pair.
type end struct {
	fd   int
	peer *end
	// pending is what was read from peer and not yet written to fd: while
	// it is not empty, fd waits for EPOLLOUT and peer is not read.
	pending []byte
}

type loop struct {
	ep     int
	target string
	ends   map[int]*end
	buf    []byte
}

func run(ctx context.Context, listen, target string) error {
	// The event loop owns its thread, as PgBouncer's process does.
	runtime.LockOSThread()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	lfd, err := dupNonblock(ln.(*net.TCPListener))
	if err != nil {
		return err
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("epoll_create1: %w", err)
	}
	defer unix.Close(ep)
	// A pipe that becomes readable on shutdown wakes the loop.
	var wake [2]int
	if err := unix.Pipe2(wake[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		unix.Write(wake[1], []byte{0})
	}()
	for _, fd := range []int{lfd, wake[0]} {
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			return fmt.Errorf("epoll_ctl: %w", err)
		}
	}
	l := &loop{ep: ep, target: target, ends: map[int]*end{}, buf: make([]byte, 64<<10)}
	fmt.Fprintln(os.Stderr, "epollrelay started on", ln.Addr())
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(ep, events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			switch {
			case fd == wake[0]:
				for _, e := range l.ends {
					unix.Close(e.fd)
				}
				return nil
			case fd == lfd:
				l.accept(lfd)
			default:
				e := l.ends[fd]
				if e == nil {
					continue // closed earlier in this batch
				}
				if ev.Events&unix.EPOLLOUT != 0 {
					l.flush(e)
				}
				if ev.Events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 && l.ends[fd] != nil {
					l.relay(e)
				}
			}
		}
	}
}

// dupNonblock returns a non-blocking duplicate of a listener's or
// connection's descriptor, for the loop's own use.
func dupNonblock(c interface {
	File() (*os.File, error)
}) (int, error) {
	f, err := c.File()
	if err != nil {
		return -1, err
	}
	defer f.Close()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		return -1, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// accept takes a client and connects it to the target. The connect blocks
// the loop: connections are set up once per benchmark client, outside
// what is measured.
func (l *loop) accept(lfd int) {
	cfd, _, err := unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	if err != nil {
		return
	}
	t, err := net.Dial("tcp", l.target)
	if err != nil {
		fmt.Fprintln(os.Stderr, "epollrelay: dial:", err)
		unix.Close(cfd)
		return
	}
	tfd, err := dupNonblock(t.(*net.TCPConn))
	t.Close()
	if err != nil {
		unix.Close(cfd)
		return
	}
	c, s := &end{fd: cfd}, &end{fd: tfd}
	c.peer, s.peer = s, c
	for _, e := range []*end{c, s} {
		_ = unix.SetsockoptInt(e.fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		l.ends[e.fd] = e
		if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, e.fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(e.fd)}); err != nil {
			l.close(c)
			return
		}
	}
}

// relay reads what e has and writes it to its peer, keeping what the peer
// cannot take yet.
func (l *loop) relay(e *end) {
	n, err := unix.Read(e.fd, l.buf)
	if errors.Is(err, unix.EAGAIN) {
		return
	}
	if n <= 0 {
		l.close(e)
		return
	}
	p := e.peer
	w, err := unix.Write(p.fd, l.buf[:n])
	if err != nil && !errors.Is(err, unix.EAGAIN) {
		l.close(e)
		return
	}
	if w = max(w, 0); w < n {
		p.pending = append(p.pending[:0], l.buf[w:n]...)
		l.watch(p, unix.EPOLLIN|unix.EPOLLOUT)
		l.watch(e, 0) // read no more from e until p has taken it
	}
}

// flush writes e's pending bytes; once they are all out, e's peer is read
// again.
func (l *loop) flush(e *end) {
	w, err := unix.Write(e.fd, e.pending)
	if err != nil && !errors.Is(err, unix.EAGAIN) {
		l.close(e)
		return
	}
	e.pending = e.pending[max(w, 0):]
	if len(e.pending) == 0 {
		l.watch(e, unix.EPOLLIN)
		l.watch(e.peer, unix.EPOLLIN)
	}
}

func (l *loop) watch(e *end, events uint32) {
	_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_MOD, e.fd, &unix.EpollEvent{Events: events, Fd: int32(e.fd)})
}

// close closes both sides of e's pair.
func (l *loop) close(e *end) {
	for _, x := range []*end{e, e.peer} {
		delete(l.ends, x.fd)
		unix.Close(x.fd) // also removes it from the epoll set
	}
}
