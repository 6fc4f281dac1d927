package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// gatehouseBinary builds cmd/gatehouse once per test binary: these tests run
// what users run, as a separate process.
func gatehouseBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gatehouse-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "gatehouse")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/gatehouse").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// process is a `gatehouse serve` child process on examples/pci.yaml.
type process struct {
	cmd     *exec.Cmd
	addr    string
	dataDir string
	stderr  *syncBuffer
	done    chan error
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startProcess(t *testing.T, h *harness, extraEnv ...string) *process {
	t.Helper()
	return startProcessWith(t, h, "", extraEnv...)
}

// startProcessWith is startProcess with yaml appended to the reference
// config (top-level sections it does not have).
func startProcessWith(t *testing.T, h *harness, yaml string, extraEnv ...string) *process {
	t.Helper()
	env := baseEnv(t, h.pg, h.oidc.URL())
	env["GATEHOUSE_PG_LISTEN"] = freeAddr(t)
	env["GATEHOUSE_API_LISTEN"] = freeAddr(t)
	// The reference config names database shop; point it at this test's
	// database with a copy of the file.
	src, err := os.ReadFile("../examples/pci.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), "pci.yaml")
	src = append(bytes.Replace(src, []byte("database: shop"), []byte("database: "+h.db), 1), yaml...)
	if err := os.WriteFile(cfgPath, src, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gatehouseBinary(t), "serve", "--config", cfgPath)
	cmd.Env = cleanEnv()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, extraEnv...)
	p := &process{cmd: cmd, addr: env["GATEHOUSE_PG_LISTEN"], dataDir: env["GATEHOUSE_DATA"], stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		for _, s := range []string{agentToken, readerPassword, writerPassword} {
			if strings.Contains(p.stderr.String(), s) {
				t.Errorf("gatehouse logged a secret (%s…)", s[:6])
			}
		}
		if t.Failed() {
			t.Logf("gatehouse stderr:\n%s", p.stderr.String())
		}
	})
	waitFor(t, func() bool { return strings.Contains(p.stderr.String(), `"msg":"gatehouse started"`) }, "gatehouse to start")
	return p
}

func (p *process) connString(role, token string) string {
	host, port, _ := net.SplitHostPort(p.addr)
	return fmt.Sprintf("host=%s port=%s dbname=shop user=%s password=%s sslmode=require", host, port, role, token)
}

// peakRSS is the process's high-water resident set size in KiB.
func (p *process) peakRSS(t *testing.T) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.Fields(rest)[0])
			return n
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

func TestServeStreamsAMillionRowsInBoundedMemory(t *testing.T) {
	h := newHarness(t)
	p := startProcess(t, h)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, p.connString("reader", agentToken))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	before := p.peakRSS(t)
	rows, err := c.Query(ctx, "select g, repeat('x', 100) from generate_series(1, 1000000) g")
	if err != nil {
		t.Fatal(err)
	}
	n, bytesSeen := 0, 0
	for rows.Next() {
		n++
		bytesSeen += len(rows.RawValues()[1])
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 1000000 {
		t.Fatalf("got %d rows", n)
	}
	after := p.peakRSS(t)
	t.Logf("streamed %d rows (%d MiB of values); gateway peak RSS %d KiB before, %d KiB after", n, bytesSeen>>20, before, after)
	// ~100 MiB went through; a gateway that buffered the result would grow
	// by that much. Streaming keeps the growth to its buffers.
	if grew := after - before; grew > 32<<10 {
		t.Errorf("gateway peak RSS grew by %d KiB while streaming", grew)
	}
}

func TestServeDrainsOnSIGTERM(t *testing.T) {
	h := newHarness(t)
	p := startProcess(t, h)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, p.connString("writer", agentToken))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	// A transaction is open when the signal arrives; it must be able to
	// finish during the drain.
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "insert into orders (id, note) values (900, 'drain')"); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(p.stderr.String(), "draining sessions") }, "drain to start")
	// New sessions are refused while draining.
	if c2, err := pgx.Connect(ctx, p.connString("writer", agentToken)); err == nil {
		c2.Close(ctx)
		t.Error("a new session was accepted while draining")
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("commit during drain: %v", err)
	}
	c.Close(ctx)
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("gatehouse exited with %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("gatehouse did not exit after its last session ended")
	}
	if got := h.scalar("select note from orders where id = 900"); got != "drain" {
		t.Errorf("drained transaction lost: %q", got)
	}
	if !strings.Contains(p.stderr.String(), `"msg":"session ended"`) {
		t.Error("no session end log line")
	}
}

func TestCheckCommand(t *testing.T) {
	bin := gatehouseBinary(t)
	cfg := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(cfg, []byte("data_dir: /tmp/x\nlisteners:\n  postgres:\n    adress: 1\n"), 0o600)
	out, err := exec.Command(bin, "check", "--config", cfg).CombinedOutput()
	if err == nil {
		t.Fatal("check accepted a bad config")
	}
	if !strings.Contains(string(out), "bad.yaml:4:") || !strings.Contains(string(out), `did you mean "address"?`) {
		t.Errorf("check output: %s", out)
	}
}
