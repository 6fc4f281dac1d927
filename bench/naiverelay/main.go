// Command naiverelay is the floor of any Go relay: it accepts TCP
// connections and copies bytes both ways to one address with io.Copy, two
// goroutines per connection, parsing nothing. bench/pgbench.sh runs it as
// target naive-go so that the cost of Gatehouse's own data path (relay-plain)
// can be told apart from the cost of relaying through a Go process at all
// on the machine at hand. It is a benchmark tool, not part of Gatehouse.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to accept on")
	target := flag.String("target", "", "address to relay to")
	flag.Parse()
	if *target == "" {
		fmt.Fprintln(os.Stderr, "naiverelay: --target is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen, *target); err != nil {
		fmt.Fprintln(os.Stderr, "naiverelay:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, listen, target string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	fmt.Fprintln(os.Stderr, "naiverelay started on", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go relay(c, target)
	}
}

// relay copies c to a new connection to target and back until either side
// closes.
func relay(c net.Conn, target string) {
	defer c.Close()
	t, err := net.Dial("tcp", target)
	if err != nil {
		fmt.Fprintln(os.Stderr, "naiverelay: dial:", err)
		return
	}
	defer t.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(t, c)
		t.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(c, t)
	c.(*net.TCPConn).CloseWrite()
	<-done
}
