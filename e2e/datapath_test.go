package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func TestPsqlGetsLeastPrivilegeRole(t *testing.T) {
	h := newHarness(t)
	for role, want := range map[string]string{"reader": "shop_reader", "writer": "shop_writer"} {
		out, stderr, err := h.psql(role, agentToken, "-c", "select current_user")
		if err != nil {
			t.Fatalf("psql as %s: %v\n%s", role, err, stderr)
		}
		if got := strings.TrimSpace(out); got != want {
			t.Errorf("current_user as %s = %q, want %q", role, got, want)
		}
	}
}

func TestStartupErrors(t *testing.T) {
	h := newHarness(t)
	expired := h.oidc.Claims("repo:acme/shop:ref:refs/heads/main", "gatehouse")
	expired["exp"] = time.Now().Add(-10 * time.Minute).Unix()
	expired["iat"] = time.Now().Add(-20 * time.Minute).Unix()
	tests := []struct {
		name, conn, code, msg string
	}{
		{"wrong token", h.connString("reader", "not-a-token", "require"), "28P01", "password authentication failed"},
		{"expired OIDC token", h.connString("reader", h.oidc.Sign(expired), "require"), "28P01", "password authentication failed"},
		{"foreign signature", h.connString("reader", h.oidc.SignForeign(h.oidc.Claims("x", "gatehouse")), "require"), "28P01", ""},
		{"alg none", h.connString("reader", h.oidc.SignWith("none", h.oidc.Claims("x", "gatehouse")), "require"), "28P01", ""},
		{"wrong audience", h.connString("reader", h.oidc.Sign(h.oidc.Claims("x", "someone-else")), "require"), "28P01", ""},
		{"unknown connection", strings.Replace(h.connString("reader", agentToken, "require"), "dbname=shop", "dbname=nope", 1), "3D000", `database "nope" does not exist`},
		{"role not allowed", h.connString("reader", auditorToken, "require"), "28000", "may not use role"},
		{"unknown role", h.connString("admin", agentToken, "require"), "28000", "may not use role"},
		{"plaintext refused", h.connString("reader", agentToken, "disable"), "28000", "requires TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := pgx.Connect(ctx, tt.conn)
			if err == nil {
				c.Close(ctx)
				t.Fatal("connected; want an error")
			}
			if got := pgCode(err); got != tt.code {
				t.Fatalf("SQLSTATE %q, want %q (%v)", got, tt.code, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "28P01" && pe.Detail != "" {
				t.Errorf("28P01 carries a detail that helps guessing: %q", pe.Detail)
			}
		})
	}
}

func TestOIDCTokenOfTheGitHubShape(t *testing.T) {
	h := newHarness(t)
	claims := h.oidc.Claims("repo:acme/shop:ref:refs/heads/main", "gatehouse")
	claims["repository"] = "acme/shop"
	claims["ref"] = "refs/heads/main"
	c := h.mustConnect("writer", h.oidc.Sign(claims))
	var user string
	if err := c.QueryRow(context.Background(), "select current_user").Scan(&user); err != nil {
		t.Fatal(err)
	}
	if user != "shop_writer" {
		t.Errorf("current_user = %q", user)
	}
	// Another branch is not an agent.
	claims["ref"] = "refs/heads/feature"
	if _, err := h.connect("writer", h.oidc.Sign(claims)); pgCode(err) != "28P01" {
		t.Errorf("token of another branch: %v", err)
	}
}
