package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse/gatehouse/internal/api"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/record"
	"github.com/gatehouse/gatehouse/internal/store"
)

// clientFlags choose where a command reads the audit trail and recordings:
// offline on the store a config names (--config), or online through a
// running gateway's REST API (--server, --token).
type clientFlags struct {
	config, server, token string
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.config, "config", "", "config `file`: read the store it names directly (offline)")
	fs.StringVar(&c.server, "server", "", "gateway API `URL` (default $GATEHOUSE_SERVER)")
	// The token's default is read after parsing, not shown as a flag
	// default: -h would print it.
	fs.StringVar(&c.token, "token", "", "bearer `token` of an auditor (default $GATEHOUSE_TOKEN)")
}

// resolve fills in the environment's defaults after parsing.
func (c *clientFlags) resolve(env *cliEnv) error {
	if c.config != "" && c.server != "" {
		return errors.New("--config (offline) and --server (online) exclude each other")
	}
	if c.config != "" {
		return nil
	}
	if c.server == "" {
		c.server = env.getenv("GATEHOUSE_SERVER")
	}
	if c.token == "" {
		c.token = env.getenv("GATEHOUSE_TOKEN")
	}
	if c.server == "" {
		return errors.New("pass --config FILE to read a store offline, or --server URL (or GATEHOUSE_SERVER) to ask a gateway")
	}
	if c.token == "" {
		return errors.New("--server needs a token: --token T or GATEHOUSE_TOKEN")
	}
	return nil
}

// parseArgs parses flags that may come before, between or after the
// positional arguments ("sessions show ID --json"), which flag.Parse alone
// stops at.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// storeFor opens the store cfg names, as the gateway does, for offline
// reading. Unlike the gateway it does not create a missing SQLite file: a
// store that is not there means a wrong --config, not an empty trail.
func storeFor(ctx context.Context, cfg *config.Config) (store.Store, error) {
	if cfg.Store.Driver != "postgres" {
		if _, err := os.Stat(cfg.Store.Path); err != nil {
			return nil, fmt.Errorf("no store at %s (has a gateway run with this config?): %w", cfg.Store.Path, err)
		}
	}
	st, err := gateway.OpenStore(ctx, cfg, nil)
	if errors.Is(err, store.ErrJournalLocked) {
		// Offline commands append their own audit event: with the gateway
		// appending too, only the gateway may write.
		return nil, fmt.Errorf("%w\nhint: the gateway owns the store while it runs; ask it through its API with --server (or GATEHOUSE_SERVER) and --token", err)
	}
	return st, err
}

// trailSource is where the audit and sessions commands read: the store
// (offline) or a gateway's REST API (online). Both record the read in the
// audit log before answering.
type trailSource interface {
	events(ctx context.Context, filters url.Values) ([]audit.ExportLine, error)
	verify(ctx context.Context) (*api.VerifyResult, error)
	export(ctx context.Context, w io.Writer, format string, filters url.Values) error
	sessions(ctx context.Context, filters url.Values) ([]api.Session, error)
	session(ctx context.Context, id string) (*api.SessionDetail, error)
	// replay writes the transcript and returns how many problems the
	// recording has.
	replay(ctx context.Context, w io.Writer, id string, unaligned bool, null string) (int, error)
	close() error
}

// openTrail opens the source the flags name. keyFile is the checkpoint
// verifier key for offline verify ("" for the default next to the signing
// key).
func openTrail(ctx context.Context, env *cliEnv, cf *clientFlags, keyFile string) (trailSource, error) {
	if cf.config == "" {
		if keyFile != "" {
			return nil, errors.New("--key works offline (--config); online, the gateway verifies with its own key")
		}
		return newRemote(env, cf.server, cf.token)
	}
	cfg, err := loadConfig(env, cf.config)
	if err != nil {
		return nil, err
	}
	st, err := storeFor(ctx, cfg)
	if err != nil {
		return nil, err
	}
	l := &local{st: st, trail: &api.Trail{Store: st}, who: localWho()}
	keyPath := gateway.SigningKeyPath(cfg)
	if keyFile == "" {
		keyFile = keyPath + ".pub"
	}
	l.keyFile = keyFile
	if b, err := os.ReadFile(keyFile); err == nil {
		v, err := note.NewVerifier(strings.TrimSpace(string(b)))
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("verifier key %s: %w", keyFile, err)
		}
		l.trail.Verifiers = note.VerifierList(v)
	}
	// Offline reads are audited like online ones (PCI DSS 10.2.1.3) when
	// the log can be opened, which takes the signing key: the log signs a
	// checkpoint over the read when it closes. The key is only read, never
	// created: a read-only tool must not mint a new audit identity.
	b, err := os.ReadFile(keyPath)
	var signer note.Signer
	if err == nil {
		signer, _, err = audit.ParseSigner(b)
	}
	if err == nil {
		l.log, err = audit.Open(ctx, st, signer, nil, nil)
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "warning: this read is not recorded in the audit log, which cannot be opened: %v\n", err)
	} else {
		l.trail.Log = l.log
	}
	return l, nil
}

// local reads the store directly.
type local struct {
	st      store.Store
	log     *audit.Log // nil when it could not be opened
	trail   *api.Trail
	who     api.Who
	keyFile string
}

// localWho is the reader as offline audit.read events name it: the
// operating system user, on this host.
func localWho() api.Who {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return api.Who{Principal: &audit.Principal{Issuer: "local", Subject: name, Name: "local:" + name}, Source: "cli@" + host}
}

func (l *local) events(ctx context.Context, v url.Values) ([]audit.ExportLine, error) {
	return l.trail.Events(ctx, l.who, v)
}

func (l *local) verify(ctx context.Context) (*api.VerifyResult, error) {
	if l.trail.Verifiers == nil {
		return nil, fmt.Errorf("no checkpoint verifier key at %s: pass --key FILE (the key the gateway logs as verifier_key, also written to audit.key.pub)", l.keyFile)
	}
	return l.trail.Verify(ctx, l.who)
}

func (l *local) export(ctx context.Context, w io.Writer, format string, v url.Values) error {
	return l.trail.Export(ctx, l.who, w, format, v)
}

func (l *local) sessions(ctx context.Context, v url.Values) ([]api.Session, error) {
	return l.trail.Sessions(ctx, l.who, v)
}

func (l *local) session(ctx context.Context, id string) (*api.SessionDetail, error) {
	return l.trail.Session(ctx, l.who, id)
}

func (l *local) replay(ctx context.Context, w io.Writer, id string, unaligned bool, null string) (int, error) {
	ps, err := l.trail.Replay(ctx, l.who, id, w, record.ReplayOptions{Unaligned: unaligned, Null: null})
	return len(ps), err
}

func (l *local) close() error {
	var err error
	if l.log != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = l.log.Shutdown(ctx)
		cancel()
	}
	if cerr := l.st.Close(); err == nil {
		err = cerr
	}
	return err
}

// remote asks a gateway's REST API.
type remote struct {
	base   *url.URL
	token  string
	client *http.Client
}

func newRemote(env *cliEnv, server, token string) (*remote, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server %q is not an http(s) URL", server)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		fmt.Fprintf(env.stderr, "warning: sending a token to %s without TLS\n", u.Host)
	}
	// No overall timeout: exports and replays stream for as long as they
	// take. Connecting and the first byte are bounded.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = time.Minute
	return &remote{base: u, token: token, client: &http.Client{Transport: tr}}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// get sends GET path?q and returns the response of a 2xx answer; others
// become errors carrying the API's message.
func (r *remote) get(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	u := r.base.JoinPath(path)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	var e api.Error
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(body))
	}
	return nil, fmt.Errorf("%s: %s: %s", r.base.Host, resp.Status, printable(e.Error))
}

func (r *remote) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	resp, err := r.get(ctx, path, q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func (r *remote) events(ctx context.Context, v url.Values) ([]audit.ExportLine, error) {
	var out []audit.ExportLine
	return out, r.getJSON(ctx, "/api/v1/audit/events", v, &out)
}

func (r *remote) verify(ctx context.Context) (*api.VerifyResult, error) {
	var out api.VerifyResult
	return &out, r.getJSON(ctx, "/api/v1/audit/verify", nil, &out)
}

func (r *remote) export(ctx context.Context, w io.Writer, format string, v url.Values) error {
	q := url.Values{}
	for k, vs := range v {
		q[k] = vs
	}
	q.Set("format", format)
	resp, err := r.get(ctx, "/api/v1/audit/export", q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// A gateway that fails midway breaks the connection: Copy fails
	// rather than leave a short export looking complete.
	_, err = io.Copy(w, resp.Body)
	return err
}

func (r *remote) sessions(ctx context.Context, v url.Values) ([]api.Session, error) {
	var out []api.Session
	return out, r.getJSON(ctx, "/api/v1/sessions", v, &out)
}

func (r *remote) session(ctx context.Context, id string) (*api.SessionDetail, error) {
	var out api.SessionDetail
	return &out, r.getJSON(ctx, "/api/v1/sessions/"+url.PathEscape(id), nil, &out)
}

func (r *remote) replay(ctx context.Context, w io.Writer, id string, unaligned bool, null string) (int, error) {
	q := url.Values{}
	if unaligned {
		q.Set("format", "unaligned")
	}
	if null != "" {
		q.Set("null", null)
	}
	resp, err := r.get(ctx, "/api/v1/sessions/"+url.PathEscape(id)+"/replay", q)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return 0, err
	}
	// The count of problems comes after the transcript, as a trailer.
	n, err := strconv.Atoi(resp.Trailer.Get(api.ProblemsTrailer))
	if err != nil {
		return 0, fmt.Errorf("replay: the gateway did not say whether the recording verified")
	}
	return n, nil
}

func (r *remote) close() error {
	r.client.CloseIdleConnections()
	return nil
}

// printable makes recorded text safe for one line of a terminal table:
// newlines and tabs become spaces; other control and format characters and
// invalid UTF-8 become escapes.
func printable(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n' || r == '\t' || r == '\r':
			b.WriteByte(' ')
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// truncate shortens s to n runes, marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// writeJSON prints v, indented unless it holds leaf bytes (indenting
// would rewrite them and their hashes would no longer check), and without
// HTML escaping so statements read as written.
func writeJSON(w io.Writer, v any, indent bool) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if indent {
		enc.SetIndent("", "  ")
	}
	return enc.Encode(v)
}
