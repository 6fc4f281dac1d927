package approval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/webhook"
)

// SignatureHeader carries a webhook body's signature (see webhook.Sign);
// receivers check it with webhook.Verify.
const SignatureHeader = webhook.SignatureHeader

// EventHeader names what a webhook delivery is about.
const EventHeader = "X-Gatehouse-Event"

// Webhook posts every new request as JSON (WebhookPayload) to URL, signed
// with Secret, retrying failures with exponential backoff.
type Webhook struct {
	URL    string
	Secret []byte
	// Client defaults to one with a 10s timeout per attempt.
	Client *http.Client
	// MaxAttempts bounds deliveries (default 5); Backoff is the wait
	// before the second (default 1s), doubled each time up to 30s.
	MaxAttempts int
	Backoff     time.Duration
}

// WebhookPayload is the body of a webhook delivery. SentAt is inside the
// signed body so a receiver can refuse old replays.
type WebhookPayload struct {
	Event   string    `json:"event"` // "approval.requested"
	SentAt  time.Time `json:"sent_at"`
	Request View      `json:"request"`
	// Commands reviewers run to decide.
	ApproveCommand string `json:"approve_command"`
	DenyCommand    string `json:"deny_command"`
}

// Name implements Notifier.
func (w *Webhook) Name() string { return "webhook" }

// Notify implements Notifier.
func (w *Webhook) Notify(ctx context.Context, r *Request) error {
	if len(w.Secret) == 0 {
		// An unsigned body would let anyone who finds the receiver forge
		// requests that reviewers act on.
		return errors.New("webhook: no signing secret configured")
	}
	body, err := json.Marshal(WebhookPayload{
		Event: "approval.requested", SentAt: time.Now().UTC(), Request: r.View(),
		ApproveCommand: ApproveCommand(r.ID), DenyCommand: DenyCommand(r.ID),
	})
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(EventHeader, "approval.requested")
	h.Set(SignatureHeader, webhook.Sign(w.Secret, body))
	return deliver(ctx, w.Client, w.URL, body, h, w.MaxAttempts, w.Backoff)
}

// Slack posts every new request to a Slack incoming webhook: what is asked,
// by whom, on what, under which rule, and the command that approves it.
type Slack struct {
	URL         string // a secret: whoever has it can post to the channel
	Client      *http.Client
	MaxAttempts int
	Backoff     time.Duration
}

// Name implements Notifier.
func (s *Slack) Name() string { return "slack" }

// Notify implements Notifier.
func (s *Slack) Notify(ctx context.Context, r *Request) error {
	body, err := json.Marshal(map[string]string{"text": SlackText(r)})
	if err != nil {
		return fmt.Errorf("slack: %w", err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	return deliver(ctx, s.Client, s.URL, body, h, s.MaxAttempts, s.Backoff)
}

// SlackText is the message Slack shows for r, in Slack's mrkdwn.
func SlackText(r *Request) string {
	var b strings.Builder
	who := slackEscape(r.Principal.Name)
	if len(r.Principal.Groups) > 0 {
		who += " (" + slackEscape(strings.Join(r.Principal.Groups, ", ")) + ")"
	}
	on := "connection *" + slackEscape(r.Connection) + "*"
	if r.Role != "" {
		on += " as role *" + slackEscape(r.Role) + "*"
	}
	fmt.Fprintf(&b, ":lock: *Approval needed* — request `%s`\n", slackEscape(r.ID))
	if r.Kind == KindSession {
		fmt.Fprintf(&b, "*%s* asks for a %s session on %s", who, r.GrantDuration, on)
	} else {
		fmt.Fprintf(&b, "*%s* wants to run on %s", who, on)
	}
	if r.Rule != "" {
		fmt.Fprintf(&b, ", held by rule *%s*", slackEscape(r.Rule))
	}
	b.WriteString(":\n")
	if r.Statement != "" {
		// A fence inside the statement would end the code block early.
		stmt := strings.ReplaceAll(slackEscape(r.Statement), "```", "`\u200b``")
		fmt.Fprintf(&b, "```%s```\n", stmt)
	}
	need := "1 approval"
	if r.Required > 1 {
		need = strconv.Itoa(r.Required) + " approvals from different people"
	}
	fmt.Fprintf(&b, "Reviewers: %s · %s needed · expires %s\n",
		slackEscape(strings.Join(r.Reviewers, ", ")), need, r.Expires.UTC().Format("2006-01-02 15:04:05 UTC"))
	fmt.Fprintf(&b, "Approve: `%s`\nDeny: `%s`", ApproveCommand(r.ID), DenyCommand(r.ID))
	return b.String()
}

// slackEscape escapes the three characters Slack's mrkdwn treats as markup
// control, so a statement cannot inject links or mentions.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// deliver POSTs body to target, retrying transport errors, 429 and 5xx with
// exponential backoff; other answers are final. Errors never contain the
// URL: webhook URLs (Slack's in particular) are credentials.
func deliver(ctx context.Context, client *http.Client, target string, body []byte, h http.Header, attempts int, backoff time.Duration) error {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	if attempts <= 0 {
		attempts = 5
	}
	if backoff <= 0 {
		backoff = time.Second
	}
	var last error
	for i := range attempts {
		if i > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("gave up after %d attempts: %w (last: %v)", i, ctx.Err(), last)
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
		}
		err := webhook.Post(ctx, client, target, body, h)
		var se *webhook.StatusError
		switch {
		case err == nil:
			return nil
		case errors.Is(err, webhook.ErrInvalidURL):
			return err
		case errors.As(err, &se) && !se.Retryable():
			return fmt.Errorf("refused with HTTP %d", se.Code)
		}
		last = err
	}
	return fmt.Errorf("gave up after %d attempts: %v", attempts, last)
}
