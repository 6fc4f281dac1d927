package webhook_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/webhook"
)

func TestSignVerify(t *testing.T) {
	secret, body := []byte("key"), []byte("The quick brown fox jumps over the lazy dog")
	// RFC 4231-style known answer (HMAC-SHA256, key "key", this message).
	const want = "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
	if got := webhook.Sign(secret, body); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	if !webhook.Verify(secret, body, want) {
		t.Fatal("Verify refused a good signature")
	}
	for _, bad := range []struct {
		secret, body []byte
		header       string
	}{
		{secret, append(body, ' '), want},
		{[]byte("other"), body, want},
		{secret, body, ""},
		{secret, body, strings.TrimPrefix(want, "sha256=")},
		{secret, body, "sha256=zz"},
	} {
		if webhook.Verify(bad.secret, bad.body, bad.header) {
			t.Errorf("Verify(%q, %q, %q) accepted", bad.secret, bad.body, bad.header)
		}
	}
}

func TestPost(t *testing.T) {
	ctx := context.Background()
	var gotBody, gotHeader string
	status := http.StatusAccepted
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody, gotHeader = string(b), r.Header.Get("X-Test")
		w.WriteHeader(status)
	}))
	h := http.Header{"X-Test": []string{"yes"}}
	if err := webhook.Post(ctx, srv.Client(), srv.URL+"/p", []byte("body"), h); err != nil || gotBody != "body" || gotHeader != "yes" {
		t.Fatalf("Post = %v; receiver got %q, %q", err, gotBody, gotHeader)
	}
	for _, tc := range []struct {
		status    int
		retryable bool
	}{{http.StatusServiceUnavailable, true}, {http.StatusTooManyRequests, true}, {http.StatusForbidden, false}} {
		status = tc.status
		err := webhook.Post(ctx, srv.Client(), srv.URL, nil, nil)
		var se *webhook.StatusError
		if !errors.As(err, &se) || se.Code != tc.status || se.Retryable() != tc.retryable {
			t.Errorf("Post answered %d = %v", tc.status, err)
		}
	}
	srv.Close()
	// Errors never quote the URL: its path or query is often a token.
	err := webhook.Post(ctx, http.DefaultClient, srv.URL+"/hooks/secret-path?token=secret-q", nil, nil)
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("Post to a closed server = %v", err)
	}
	if err := webhook.Post(ctx, http.DefaultClient, "http://h/\x7fsecret", nil, nil); !errors.Is(err, webhook.ErrInvalidURL) || strings.Contains(err.Error(), "secret") {
		t.Errorf("Post to a bad URL = %v", err)
	}
}
