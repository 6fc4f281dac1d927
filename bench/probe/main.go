// Command probe measures what pgbench cannot, for bench/pgbench.sh:
//
//	probe idle -n 500 DSN       opens n sessions, holds them until stdin closes
//	probe firstrow -q SQL DSN   time to the first row and to the last of a query
//
// The password comes from PGPASSWORD, as for psql and pgbench.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe idle|firstrow [flags] DSN")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "idle":
		err = idle(os.Args[2:])
	case "firstrow":
		err = firstRow(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

// idle opens n sessions, each with one query done (as a connection pool's
// idle connection would have), prints "ready" and holds them until stdin
// closes, so the caller can read the gateway's memory meanwhile.
func idle(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	n := fs.Int("n", 500, "sessions")
	fs.Parse(args)
	ctx := context.Background()
	conns := make([]*pgx.Conn, 0, *n)
	defer func() {
		for _, c := range conns {
			c.Close(ctx)
		}
	}()
	for i := 0; i < *n; i++ {
		c, err := pgx.Connect(ctx, fs.Arg(0))
		if err != nil {
			return fmt.Errorf("session %d: %w", i, err)
		}
		conns = append(conns, c)
		if _, err := c.Exec(ctx, "select 1"); err != nil {
			return fmt.Errorf("session %d: %w", i, err)
		}
	}
	fmt.Println("ready")
	_, err := io.Copy(io.Discard, bufio.NewReader(os.Stdin))
	return err
}

// firstRow prints the seconds to the first row and to the end of q.
func firstRow(args []string) error {
	fs := flag.NewFlagSet("firstrow", flag.ExitOnError)
	q := fs.String("q", "select * from big", "query")
	fs.Parse(args)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	start := time.Now()
	rows, err := c.Query(ctx, *q, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return err
	}
	var first time.Duration
	n := 0
	for rows.Next() {
		if n == 0 {
			first = time.Since(start)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	fmt.Printf("%.4f %.3f %d\n", first.Seconds(), time.Since(start).Seconds(), n)
	return nil
}
