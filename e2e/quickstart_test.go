package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestQuickStartDemo runs the README's quick start as a user would:
// scripts/demo.sh, then the README's psql command with the demo's tokens.
func TestQuickStartDemo(t *testing.T) {
	dir := worldReadableDir(t)
	pgListen, apiListen := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "scripts/demo.sh")
	cmd.Dir = ".."
	cmd.Env = append(cleanEnv(), "DEMO_DIR="+filepath.Join(dir, "demo"), "GATEHOUSE_PG_LISTEN="+pgListen, "GATEHOUSE_API_LISTEN="+apiListen)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
			_ = cmd.Wait()
		}
	}
	defer stop()
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(out.String(), `"msg":"gatehouse started"`) {
		if time.Now().After(deadline) {
			t.Fatalf("demo did not start:\n%s", out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "source ") || !strings.Contains(out.String(), "psql") {
		t.Errorf("the demo does not print how to connect:\n%s", out.String())
	}
	// The README's second terminal.
	env := readEnvFile(t, filepath.Join(dir, "demo", "env"))
	_, port, _ := strings.Cut(pgListen, ":")
	psql := exec.Command("psql", "host=127.0.0.1 port="+port+" dbname=shop user=reader sslmode=require", "-X", "-A", "-t", "-c", "select current_user")
	psql.Env = append(cleanEnv(), "PGPASSWORD="+env["AGENT_TOKEN"])
	got, err := psql.CombinedOutput()
	if err != nil || strings.TrimSpace(string(got)) != "shop_reader" {
		t.Fatalf("README psql: %q %v", got, err)
	}
	psql = exec.Command("psql", "host=127.0.0.1 port="+port+" dbname=shop user=reader sslmode=require", "-X", "-A", "-t", "-c", "select pan from payments where id = 1")
	psql.Env = append(cleanEnv(), "PGPASSWORD="+env["AGENT_TOKEN"])
	got, err = psql.CombinedOutput()
	if err != nil || strings.TrimSpace(string(got)) != "************1111" {
		t.Errorf("demo masking: %q %v", got, err)
	}
	stop()
	// Ctrl-C stops PostgreSQL too: nothing listens on the demo's database.
	if _, err := os.Stat(filepath.Join(dir, "demo", "pgdata", "postmaster.pid")); err == nil {
		t.Error("the demo's PostgreSQL still runs after Ctrl-C")
	}
}

// readEnvFile reads `export K="V"` lines.
func readEnvFile(t *testing.T, path string) map[string]string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimPrefix(sc.Text(), "export ")
		k, v, ok := strings.Cut(line, "=")
		if ok {
			env[k] = strings.Trim(v, `"`)
		}
	}
	return env
}
