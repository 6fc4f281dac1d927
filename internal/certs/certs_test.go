package certs

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadOrCreateIsStable(t *testing.T) {
	dir := t.TempDir()
	c1, fp1, created, err := LoadOrCreate(dir, []string{"gw.example"})
	if err != nil || !created {
		t.Fatalf("first: created=%v err=%v", created, err)
	}
	_, fp2, created, err := LoadOrCreate(dir, nil)
	if err != nil || created {
		t.Fatalf("second: created=%v err=%v", created, err)
	}
	if fp1 != fp2 || len(fp1) != 64 {
		t.Fatalf("fingerprints %q %q", fp1, fp2)
	}
	leaf, err := x509.ParseCertificate(c1.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("gw.example"); err != nil {
		t.Error(err)
	}
	if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Error(err)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", st.Mode().Perm())
	}
}
