// Package webhook owns what every Gatehouse webhook delivery shares: the
// signature a receiver checks (X-Gatehouse-Signature, HMAC-SHA256 of the
// exact body) and one POST whose errors never quote the target URL, because
// webhook URLs are often credentials (Slack's, many SIEM collectors').
// Retrying is the caller's: approval notifications give up after a few
// attempts, the audit export stream never does.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// SignatureHeader carries a webhook body's signature: "sha256=" and the hex
// HMAC-SHA256 of the exact body bytes under the shared secret.
const SignatureHeader = "X-Gatehouse-Signature"

// Sign returns the SignatureHeader value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether header is body's signature under secret, comparing
// in constant time. Receivers written in Go can use it.
func Verify(secret, body []byte, header string) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// ErrInvalidURL is returned by Post when the target cannot be parsed as a
// URL. The parse error is not wrapped: it would quote the URL.
var ErrInvalidURL = errors.New("webhook: invalid URL")

// StatusError is Post's error when the receiver answers with a status other
// than 2xx.
type StatusError struct {
	Code int
}

func (e *StatusError) Error() string { return fmt.Sprintf("HTTP %d", e.Code) }

// Retryable reports whether the answer says "later" (429 or 5xx) rather
// than "never".
func (e *StatusError) Retryable() bool {
	return e.Code == http.StatusTooManyRequests || e.Code >= 500
}

// Post sends body to target once with header h and returns nil on any 2xx
// answer, a *StatusError for another status, ErrInvalidURL, or the transport
// error. No error mentions target. At most 64 KiB of the answer is read, so
// that the connection can be reused without trusting the receiver's size.
func Post(ctx context.Context, client *http.Client, target string, body []byte, h http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return ErrInvalidURL
	}
	req.Header = h.Clone()
	resp, err := client.Do(req)
	if err != nil {
		// *url.Error quotes the URL; what went wrong is inside it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &StatusError{Code: resp.StatusCode}
	}
	return nil
}
