package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Superuser is the name of every cluster's bootstrap superuser.
const Superuser = "postgres"

// MD5Group is the group role whose members authenticate with md5 over TCP
// instead of SCRAM (see MD5). pg_hba.conf matches it with "+pgtest_md5", so
// membership alone decides the method and no reload is needed per role.
const MD5Group = "pgtest_md5"

// Cluster is a running throwaway PostgreSQL server.
type Cluster struct {
	// SuperuserPassword is the password of Superuser for TCP connections.
	SuperuserPassword string

	dir     string // cluster root: data/, socket, log; removed on stop
	bindir  string
	port    int
	version string
	cred    *syscall.Credential // nil unless running as root
	dbSeq   atomic.Int64
	stop    sync.Once
}

// Option changes how Start builds a cluster.
type Option func(*options)

type options struct {
	settings [][2]string
}

// WithSetting sets a server configuration parameter (postgresql.conf), e.g.
// WithSetting("max_connections", "200") or
// WithSetting("password_encryption", "md5") to store every new password as md5.
func WithSetting(name, value string) Option {
	return func(o *options) { o.settings = append(o.settings, [2]string{name, value}) }
}

// RoleOption changes how CreateRole creates a role.
type RoleOption func(*roleOptions)

type roleOptions struct {
	md5       bool
	superuser bool
}

// MD5 stores the role's password as an md5 hash (password_encryption=md5 for
// the CREATE ROLE) and makes the role a member of MD5Group, so TCP logins of
// the role use md5 authentication: the legacy method some targets still run.
func MD5() RoleOption { return func(o *roleOptions) { o.md5 = true } }

// SuperuserRole makes the role a superuser.
func SuperuserRole() RoleOption { return func(o *roleOptions) { o.superuser = true } }

// Addr is the server's TCP address, "127.0.0.1:port".
func (c *Cluster) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)) }

// Port is the server's TCP port.
func (c *Cluster) Port() int { return c.port }

// SocketDir is the directory holding the server's Unix socket.
func (c *Cluster) SocketDir() string { return c.dir }

// Version is the server's major version as reported by pg_ctl, e.g. "15".
func (c *Cluster) Version() string { return c.version }

// DSN is a connection URL for db as the superuser over TCP (SCRAM, no TLS).
func (c *Cluster) DSN(db string) string { return c.UserDSN(Superuser, c.SuperuserPassword, db) }

// UserDSN is a connection URL for db as user over TCP (no TLS).
func (c *Cluster) UserDSN(user, password, db string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable",
		urlEscape(user), urlEscape(password), c.Addr(), urlEscape(db))
}

// Exec runs sql (with args) in database "postgres" as the superuser and fails
// the test on error. It is for setup, so it opens a fresh connection each time.
func (c *Cluster) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	c.ExecIn(t, "postgres", sql, args...)
}

// ExecIn is Exec in database db.
func (c *Cluster) ExecIn(t testing.TB, db, sql string, args ...any) {
	t.Helper()
	if err := c.exec(db, sql, args...); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}

func (c *Cluster) exec(db, sql string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN(db))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

// CreateDatabase creates database name owned by the superuser and drops it
// (forcibly, closing its connections) when the test ends.
func (c *Cluster) CreateDatabase(t testing.TB, name string) {
	t.Helper()
	c.Exec(t, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() {
		// Best effort: on the shared cluster a leftover database only costs
		// disk until the binary exits.
		_ = c.exec("postgres", "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
}

// NewDatabase creates a database with a name unique within the cluster, as
// CreateDatabase does, and returns the name.
func (c *Cluster) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%s", c.dbSeq.Add(1), randomHex(4))
	c.CreateDatabase(t, name)
	return name
}

// CreateRole creates a login role with password and drops it when the test
// ends. Roles are cluster-wide, so on the shared cluster use names unique to
// the test.
func (c *Cluster) CreateRole(t testing.TB, name, password string, opts ...RoleOption) {
	t.Helper()
	var o roleOptions
	for _, opt := range opts {
		opt(&o)
	}
	attrs := "LOGIN"
	if o.superuser {
		attrs += " SUPERUSER"
	}
	stmt := fmt.Sprintf("CREATE ROLE %s %s PASSWORD %s", pgx.Identifier{name}.Sanitize(), attrs, quoteLiteral(password))
	if o.md5 {
		// password_encryption is read when the password is set, so SET LOCAL
		// inside the same transaction is enough and leaves the cluster alone.
		stmt = fmt.Sprintf("BEGIN; SET LOCAL password_encryption = 'md5'; %s; GRANT %s TO %s; COMMIT",
			stmt, MD5Group, pgx.Identifier{name}.Sanitize())
	}
	c.Exec(t, stmt)
	t.Cleanup(func() {
		// Best effort: a role that still owns objects or privileges in a
		// database that outlives the test cannot be dropped, and that is fine.
		_ = c.exec("postgres", "DROP ROLE IF EXISTS "+pgx.Identifier{name}.Sanitize())
	})
}

var (
	sharedOnce sync.Once
	shared     *Cluster
	sharedErr  error
)

// Shared returns the cluster shared by every test of this test binary,
// starting it on first use. It is stopped and removed when the binary exits
// (a watcher process notices the exit, so this holds even if the binary is
// killed). Tests must not stop it or change server-wide settings.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = start(nil) })
	if sharedErr != nil {
		t.Fatalf("pgtest: shared cluster: %v", sharedErr)
	}
	return shared
}

// Start starts a fresh cluster for t alone, stopped and removed when t ends.
func Start(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	c, err := start(&o)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}

// Stop stops the server immediately and removes its directory. It is safe to
// call more than once; Start registers it as a cleanup.
func (c *Cluster) Stop() {
	c.stop.Do(func() {
		_ = c.run(c.bindir+"/pg_ctl", "stop", "-D", c.dataDir(), "-m", "immediate", "-w", "-t", "30")
		_ = os.RemoveAll(c.dir)
	})
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }

func start(o *options) (*Cluster, error) {
	if o == nil {
		o = &options{}
	}
	bindir, err := findBindir()
	if err != nil {
		return nil, err
	}
	c := &Cluster{bindir: bindir, SuperuserPassword: randomHex(16)}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, initdb must run as the postgres system user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// Not t.TempDir: its parent is 0700 root when running as root, and the
	// postgres user could not reach the data directory. /tmp also keeps the
	// socket path well under the 107-byte limit.
	c.dir, err = os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	if c.cred != nil {
		if err := os.Chown(c.dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return nil, err
		}
	}
	pwfile := filepath.Join(c.dir, "pwfile")
	if err := c.writeFile(pwfile, c.SuperuserPassword+"\n", 0o600); err != nil {
		return nil, err
	}
	// --no-sync and the C locale make initdb take well under a second.
	if err := c.run(bindir+"/initdb", "-D", c.dataDir(), "-U", Superuser, "--pwfile", pwfile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C",
		"--no-sync", "--no-instructions"); err != nil {
		return nil, fmt.Errorf("initdb: %w", err)
	}
	_ = os.Remove(pwfile)
	// Local socket connections are trusted (only the cluster's owner can reach
	// the 0700 directory); every TCP connection authenticates. md5 applies only
	// to members of MD5Group; everyone else must use SCRAM.
	hba := "local all all trust\n" +
		"host all +" + MD5Group + " 127.0.0.1/32 md5\n" +
		"host all all 127.0.0.1/32 scram-sha-256\n" +
		"host all all ::1/128 scram-sha-256\n"
	if err := c.writeFile(filepath.Join(c.dataDir(), "pg_hba.conf"), hba, 0o600); err != nil {
		return nil, err
	}
	conf := []string{
		"listen_addresses = '127.0.0.1'",
		"unix_socket_directories = '" + c.dir + "'",
		"fsync = off",
		"synchronous_commit = off",
		"full_page_writes = off",
		"max_connections = 200",
		"shared_buffers = 32MB",
		"logging_collector = off",
		"log_min_messages = warning",
	}
	for _, s := range o.settings {
		conf = append(conf, s[0]+" = "+quoteLiteral(s[1]))
	}
	f, err := os.OpenFile(filepath.Join(c.dataDir(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	_, err = f.WriteString("\n# pgtest\n" + strings.Join(conf, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}

	// A free port can be taken by someone else between our probe and the
	// server's bind; retry with a new one.
	logfile := filepath.Join(c.dir, "server.log")
	for attempt := 0; ; attempt++ {
		c.port, err = freePort()
		if err != nil {
			return nil, err
		}
		err = c.run(bindir+"/pg_ctl", "start", "-D", c.dataDir(), "-l", logfile, "-w", "-t", "60",
			"-o", "-p "+strconv.Itoa(c.port))
		if err == nil {
			break
		}
		if attempt == 2 {
			log, _ := os.ReadFile(logfile)
			return nil, fmt.Errorf("pg_ctl start: %w\nserver log:\n%s", err, tail(string(log), 2000))
		}
	}
	c.watch()
	if v, err := os.ReadFile(filepath.Join(c.dataDir(), "PG_VERSION")); err == nil {
		c.version = strings.TrimSpace(string(v))
	}
	if err := c.exec("postgres", "CREATE ROLE "+MD5Group+" NOLOGIN"); err != nil {
		log, _ := os.ReadFile(logfile)
		return nil, fmt.Errorf("connecting as superuser: %w\nserver log:\n%s", err, tail(string(log), 2000))
	}
	ok = true
	return c, nil
}

// watch starts a detached watcher that stops the server and removes its
// directory once this process has exited (or the directory is gone). It is
// what stops the shared cluster, which no test owns, and what cleans up after
// a test binary killed by a timeout.
func (c *Cluster) watch() {
	script := `while { kill -0 "$1" 2>/dev/null || [ -d "/proc/$1" ]; } && [ -d "$2" ]; do sleep 1; done
"$3/pg_ctl" stop -D "$2" -m immediate -w -t 30 >/dev/null 2>&1
rm -rf "$4"`
	cmd := exec.Command("/bin/sh", "-c", script, "pgtest-watch",
		strconv.Itoa(os.Getpid()), c.dataDir(), c.bindir, c.dir)
	cmd.Dir = c.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: c.cred}
	if cmd.Start() == nil {
		// Reap it in the background so it never lingers as a zombie.
		go func() { _ = cmd.Wait() }()
	}
}

func (c *Cluster) run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGTZ=UTC", "TZ=UTC")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	// pg_ctl start leaves the postmaster holding inherited pipes, so the
	// output goes to a file rather than a pipe that would never reach EOF.
	out, err := os.CreateTemp("", "pgtest-out-")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(out.Name())
		return fmt.Errorf("%s: %w: %s", filepath.Base(name), err, tail(string(b), 2000))
	}
	return nil
}

func (c *Cluster) writeFile(path, data string, mode os.FileMode) error {
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		return err
	}
	if c.cred != nil {
		return os.Chown(path, int(c.cred.Uid), int(c.cred.Gid))
	}
	return nil
}

// findBindir finds the directory holding initdb, pg_ctl and postgres.
func findBindir() (string, error) {
	has := func(dir string) bool {
		for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
			if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
				return false
			}
		}
		return true
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); has(dir) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, dir := range dirs {
		if has(dir) {
			return dir, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if p, err = filepath.EvalSymlinks(p); err == nil && has(filepath.Dir(p)) {
			return filepath.Dir(p), nil
		}
	}
	return "", errors.New("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found " +
		"via pg_config --bindir, /usr/lib/postgresql/*/bin or PATH; " +
		"install them (Debian: apt-get install postgresql) to run the integration tests")
}

func versionOf(bindir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(bindir)))
	return n
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings
// is on in every supported version).
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func urlEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.IndexByte("-._~", ch) >= 0 {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
