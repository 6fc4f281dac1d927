package pgtest_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/pgtest"
)

func connect(t *testing.T, dsn string) (*pgx.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		t.Cleanup(func() { conn.Close(context.Background()) })
	}
	return conn, err
}

func TestShared(t *testing.T) {
	c := pgtest.Shared(t)
	if c2 := pgtest.Shared(t); c2 != c {
		t.Fatal("Shared returned two clusters")
	}
	db := c.NewDatabase(t)
	c.ExecIn(t, db, "CREATE TABLE t (x int)")
	conn, err := connect(t, c.DSN(db))
	if err != nil {
		t.Fatal(err)
	}
	var method string
	// SCRAM is what every TCP login must use unless the role is in MD5Group.
	if err := conn.QueryRow(context.Background(),
		"SELECT current_setting('password_encryption')").Scan(&method); err != nil {
		t.Fatal(err)
	}
	if method != "scram-sha-256" {
		t.Errorf("password_encryption = %q", method)
	}
	if _, err := connect(t, c.UserDSN(pgtest.Superuser, "wrong", db)); err == nil {
		t.Error("wrong password accepted")
	}
}

func TestRoles(t *testing.T) {
	c := pgtest.Shared(t)
	db := c.NewDatabase(t)
	c.CreateRole(t, "pgtest_scram_user", "s3cr'et")
	c.CreateRole(t, "pgtest_md5_user", "md5pass", pgtest.MD5())
	for _, tc := range []struct{ role, password, stored string }{
		{"pgtest_scram_user", "s3cr'et", "SCRAM-SHA-256$"},
		{"pgtest_md5_user", "md5pass", "md5"},
	} {
		t.Run(tc.role, func(t *testing.T) {
			if _, err := connect(t, c.UserDSN(tc.role, tc.password, db)); err != nil {
				t.Fatalf("login: %v", err)
			}
			if _, err := connect(t, c.UserDSN(tc.role, tc.password+"x", db)); err == nil {
				t.Fatal("wrong password accepted")
			}
			su, err := connect(t, c.DSN("postgres"))
			if err != nil {
				t.Fatal(err)
			}
			var pw string
			if err := su.QueryRow(context.Background(),
				"SELECT rolpassword FROM pg_authid WHERE rolname = $1", tc.role).Scan(&pw); err != nil {
				t.Fatal(err)
			}
			if len(pw) < len(tc.stored) || pw[:len(tc.stored)] != tc.stored {
				t.Errorf("stored password %.12q…, want prefix %q", pw, tc.stored)
			}
		})
	}
}

func TestStartStop(t *testing.T) {
	begin := time.Now()
	c := pgtest.Start(t, pgtest.WithSetting("application_name", "pgtest"))
	t.Logf("cluster %s (PostgreSQL %s) started in %v", c.Addr(), c.Version(), time.Since(begin))
	conn, err := connect(t, c.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	var name string
	if err := conn.QueryRow(context.Background(), "SHOW application_name").Scan(&name); err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())
	c.Stop()
	if _, err := os.Stat(c.SocketDir()); !os.IsNotExist(err) {
		t.Errorf("cluster directory survives Stop: %v", err)
	}
	if _, err := connect(t, c.DSN("postgres")); err == nil {
		t.Error("server still accepts connections after Stop")
	}
}
