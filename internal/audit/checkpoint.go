package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/gatehouse/gatehouse/internal/store"
)

// TreeHead is the body of a checkpoint: which log, how many leaves, which
// root.
type TreeHead struct {
	Origin string
	Size   int64
	Root   tlog.Hash
}

// Text returns the checkpoint body: origin, size and base64 root hash, one per
// line (C2SP tlog-checkpoint, no extension lines).
func (t TreeHead) Text() string {
	return fmt.Sprintf("%s\n%d\n%s\n", t.Origin, t.Size, base64.StdEncoding.EncodeToString(t.Root[:]))
}

// SignTreeHead returns t as a signed note.
func SignTreeHead(t TreeHead, signer note.Signer) ([]byte, error) {
	if t.Origin == "" || strings.ContainsAny(t.Origin, "\n") {
		return nil, fmt.Errorf("audit: bad checkpoint origin %q", t.Origin)
	}
	msg, err := note.Sign(&note.Note{Text: t.Text()}, signer)
	if err != nil {
		return nil, fmt.Errorf("audit: sign checkpoint: %w", err)
	}
	return msg, nil
}

// OpenCheckpoint verifies a signed checkpoint with verifiers and parses its
// body. Lines after the root hash (extensions) are ignored.
func OpenCheckpoint(msg []byte, verifiers note.Verifiers) (TreeHead, error) {
	n, err := note.Open(msg, verifiers)
	if err != nil {
		return TreeHead{}, fmt.Errorf("audit: checkpoint signature: %w", err)
	}
	return ParseTreeHead(n.Text)
}

// ParseTreeHead parses a checkpoint body without checking any signature.
func ParseTreeHead(text string) (TreeHead, error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 || lines[0] == "" {
		return TreeHead{}, errors.New("audit: malformed checkpoint")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return TreeHead{}, fmt.Errorf("audit: malformed checkpoint size %q", lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return TreeHead{}, fmt.Errorf("audit: malformed checkpoint root %q", lines[2])
	}
	t := TreeHead{Origin: lines[0], Size: size}
	copy(t.Root[:], root)
	return t, nil
}

// DefaultKeyName is the key name (and so the default checkpoint origin) of
// keys LoadOrCreateSigner generates.
const DefaultKeyName = "gatehouse-audit"

// ParseSigner parses a note private key ("PRIVATE+KEY+name+hash+key", as
// note.GenerateKey writes it; surrounding space is ignored) and returns the
// signer and its verifier key ("name+hash+key"), which auditors need to
// check checkpoints.
func ParseSigner(skey []byte) (note.Signer, string, error) {
	s := strings.TrimSpace(string(skey))
	signer, err := note.NewSigner(s)
	if err != nil {
		// The note error does not echo the key, so it is safe to wrap.
		return nil, "", fmt.Errorf("audit: signing key: %w", err)
	}
	// PRIVATE+KEY+<name>+<hash>+<base64(alg || seed)>
	// The base64 key may itself contain '+', so split off only the first
	// four fields (the name cannot contain '+').
	parts := strings.SplitN(s, "+", 5)
	if len(parts) != 5 {
		return nil, "", errors.New("audit: signing key: malformed")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, "", errors.New("audit: signing key: not an Ed25519 note key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(signer.Name(), pub)
	if err != nil {
		return nil, "", fmt.Errorf("audit: signing key: %w", err)
	}
	return signer, vkey, nil
}

// LoadOrCreateSigner reads the note private key at path, generating an Ed25519
// key named name (DefaultKeyName if empty) on first use. The private key file
// has mode 0600; the verifier key is also written to path+".pub" for
// auditors. Creation is atomic, so replicas racing on a shared directory end
// up with the same key.
func LoadOrCreateSigner(path, name string) (note.Signer, string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if name == "" {
			name = DefaultKeyName
		}
		skey, vkey, gerr := note.GenerateKey(rand.Reader, name)
		if gerr != nil {
			return nil, "", fmt.Errorf("audit: generate signing key: %w", gerr)
		}
		if err := createFile(path, []byte(skey+"\n"), 0o600); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, "", fmt.Errorf("audit: write signing key: %w", err)
		}
		// Whoever won the race wrote the key: read it back either way.
		if b, err = os.ReadFile(path); err == nil {
			if _, vk, perr := ParseSigner(b); perr == nil && vk == vkey {
				_ = os.WriteFile(path+".pub", []byte(vkey+"\n"), 0o644)
			}
		}
	}
	if err != nil {
		return nil, "", fmt.Errorf("audit: read signing key: %w", err)
	}
	return ParseSigner(b)
}

// createFile writes data to a temporary file and links it to path, so path
// either does not exist or holds all of data; it fails with os.ErrExist if
// path exists.
func createFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-key-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Link(f.Name(), path)
}

// A CheckpointSink publishes checkpoints outside the store, so that deleting
// or rewriting the store cannot also rewrite history others have seen.
type CheckpointSink interface {
	Publish(ctx context.Context, c store.Checkpoint) error
}

// FileSink appends each checkpoint's signed note to a file, followed by an
// empty line. Point it at storage the gateway's database users cannot
// rewrite (another volume, WORM storage, a log shipper's input).
type FileSink struct {
	Path string
	mu   sync.Mutex
}

// Publish implements CheckpointSink.
func (s *FileSink) Publish(_ context.Context, c store.Checkpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(s.Path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(append(append([]byte(nil), c.Note...), '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *FileSink) String() string { return "file:" + s.Path }

// WebhookSink POSTs each checkpoint's signed note (text/plain) to URL. Any
// 2xx answer is success.
type WebhookSink struct {
	URL    string
	Client *http.Client // http.DefaultClient if nil
}

// Publish implements CheckpointSink.
func (s *WebhookSink) Publish(ctx context.Context, c store.Checkpoint) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(c.Note))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	req.Header.Set("Gatehouse-Tree-Size", strconv.FormatInt(c.Size, 10))
	client := s.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook %s: %s", s.URL, resp.Status)
	}
	return nil
}

// String names the sink for logs without the URL's path or query, which
// often carry a token.
func (s *WebhookSink) String() string {
	if u, err := url.Parse(s.URL); err == nil {
		return "webhook:" + u.Scheme + "://" + u.Host
	}
	return "webhook"
}
