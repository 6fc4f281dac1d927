package identity

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

const (
	// Failures are remembered for failBackoffMin, doubling per consecutive
	// failure up to failBackoffMax: long enough that a burst of connections
	// costs a struggling issuer one request, short enough that recovery is
	// noticed within seconds.
	failBackoffMin = time.Second
	failBackoffMax = 10 * time.Second
	// minRefresh is how long a successful response is reused. go-oidc
	// refetches the key set whenever a signature fails to verify, so without
	// it every forged token would become a request to the issuer.
	minRefresh = 5 * time.Second
	// maxResponse bounds what is read from an issuer; discovery documents
	// and key sets are a few KiB.
	maxResponse = 1 << 20
)

// issuerTransport sits under go-oidc's HTTP calls to one issuer. It turns
// every non-200 answer into an error (so that go-oidc reports it wrapped, and
// it can be told apart from a bad signature), remembers failures with
// backoff, and briefly reuses successful answers. Interpreting responses is
// unusual for a RoundTripper; it is done here because go-oidc offers no other
// seam for either policy.
type issuerTransport struct {
	next   http.RoundTripper
	now    func() time.Time
	logger *slog.Logger

	mu          sync.Mutex // guards the fields below
	failures    int
	retryAt     time.Time
	lastErr     error
	lastFailure time.Time
	cache       map[string]cachedResponse
}

type cachedResponse struct {
	at     time.Time
	header http.Header
	body   []byte
}

// unavailableError is returned while failures are being remembered.
type unavailableError struct {
	retryIn time.Duration
	last    error
}

func (e *unavailableError) Error() string {
	return fmt.Sprintf("not retried for another %s after: %v", e.retryIn.Round(time.Millisecond), e.last)
}

func (e *unavailableError) Unwrap() error { return e.last }

func (t *issuerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	now := t.now()
	key := req.URL.String()
	t.mu.Lock()
	if now.Before(t.retryAt) {
		err := &unavailableError{retryIn: t.retryAt.Sub(now), last: t.lastErr}
		t.mu.Unlock()
		closeBody(req)
		return nil, err
	}
	if c, ok := t.cache[key]; ok && req.Method == http.MethodGet && now.Sub(c.at) < minRefresh {
		t.mu.Unlock()
		closeBody(req)
		return c.response(req), nil
	}
	t.mu.Unlock()

	resp, err := t.next.RoundTrip(req)
	if err != nil {
		// The caller giving up says nothing about the issuer's health.
		if req.Context().Err() == nil {
			t.fail(req, err)
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// http.Client wraps this in a *url.Error naming the request.
		err := errors.New(resp.Status)
		t.fail(req, err)
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err == nil && len(body) > maxResponse {
		err = fmt.Errorf("response larger than %d bytes", maxResponse)
	}
	if err != nil {
		if req.Context().Err() == nil {
			t.fail(req, err)
		}
		return nil, err
	}
	c := cachedResponse{at: t.now(), header: resp.Header.Clone(), body: body}
	t.mu.Lock()
	t.failures = 0
	t.retryAt = time.Time{}
	t.lastErr = nil
	if req.Method == http.MethodGet {
		if t.cache == nil {
			t.cache = map[string]cachedResponse{}
		}
		t.cache[key] = c
	}
	t.mu.Unlock()
	return c.response(req), nil
}

func (t *issuerTransport) fail(req *http.Request, err error) {
	now := t.now()
	t.mu.Lock()
	backoff := failBackoffMin << min(t.failures, 8)
	backoff = min(backoff, failBackoffMax)
	t.failures++
	t.retryAt = now.Add(backoff)
	t.lastErr = err
	t.lastFailure = now
	t.mu.Unlock()
	t.logger.Warn("oidc issuer request failed",
		slog.String("url", req.URL.Redacted()),
		slog.Any("error", err),
		slog.Duration("retry_in", backoff))
}

// failedSince reports whether a request failed at or after start: go-oidc
// flattens some errors into text, so this is how a failed key fetch is told
// apart from a signature no key verifies.
func (t *issuerTransport) failedSince(start time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.lastFailure.IsZero() && !t.lastFailure.Before(start)
}

func (c cachedResponse) response(req *http.Request) *http.Response {
	return &http.Response{
		Status:        "200 OK",
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        c.header.Clone(),
		Body:          io.NopCloser(bytes.NewReader(c.body)),
		ContentLength: int64(len(c.body)),
		Request:       req,
	}
}

// closeBody honours the RoundTripper contract of closing the request body
// even when no request is sent.
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// isUnavailable reports whether err comes from failing to reach the issuer
// rather than from the token.
func isUnavailable(err error) bool {
	var ue *unavailableError
	return errors.As(err, &ue) || isTransportError(err)
}
