package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pgtest"
)

// testCA writes a CA and a server certificate for 127.0.0.1 signed by it,
// readable by the PostgreSQL server, and returns the file paths.
func testCA(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
	if os.Geteuid() == 0 {
		// The server runs as postgres and insists on owning its key.
		if u, err := user.Lookup("postgres"); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			os.Chown(keyFile, uid, gid)
			os.Chmod(dir, 0o755)
		}
	}
	return caFile, certFile, keyFile
}

// worldReadableDir is a temporary directory the postgres system user can
// read (t.TempDir's parent is private to the test's user).
func worldReadableDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "gatehouse-tls-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestTargetTLSModes(t *testing.T) {
	dir := worldReadableDir(t)
	caFile, certFile, keyFile := testCA(t, dir)
	otherCA, _, _ := testCA(t, t.TempDir())
	pgc := pgtest.Start(t, pgtest.WithSetting("ssl", "on"), pgtest.WithSetting("ssl_cert_file", certFile), pgtest.WithSetting("ssl_key_file", keyFile))
	pgc.Exec(t, "CREATE ROLE shop_reader LOGIN PASSWORD '"+readerPassword+"'; CREATE ROLE shop_writer LOGIN PASSWORD '"+writerPassword+"'")
	tests := []struct {
		name, mode, ca string
		ok             bool
	}{
		{"require", "require", "", true},
		{"verify-full", "verify-full", caFile, true},
		{"verify-full with the wrong CA", "verify-full", otherCA, false},
		{"disable", "disable", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarnessOn(t, pgc, withCfg(func(c *config.Config) {
				c.Connections[0].TLS = config.TLSClient{Mode: tt.mode, CAFile: tt.ca}
			}))
			out, stderr, err := h.psql("reader", agentToken, "-c", "select ssl from pg_stat_ssl where pid = pg_backend_pid()")
			if !tt.ok {
				if err == nil || !strings.Contains(stderr, "could not connect") {
					t.Fatalf("want a refused target connection, got %q %v %s", out, err, stderr)
				}
				return
			}
			if err != nil {
				t.Fatal(err, stderr)
			}
			want := "t"
			if tt.mode == "disable" {
				want = "f"
			}
			if got := strings.TrimSpace(out); got != want {
				t.Errorf("target leg ssl = %q, want %q", got, want)
			}
			// Cancel requests reach the target over the same TLS mode.
			c := h.mustConnect("reader", agentToken)
			done := make(chan error, 1)
			go func() {
				_, err := c.PgConn().Exec(context.Background(), "select pg_sleep(30)").ReadAll()
				done <- err
			}()
			time.Sleep(300 * time.Millisecond)
			if err := c.PgConn().CancelRequest(context.Background()); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if pgCode(err) != "57014" {
					t.Errorf("cancel over target TLS %s: %v", tt.mode, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("cancel over target TLS %s had no effect", tt.mode)
			}
		})
	}
}
