package approval_test

import (
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/approval"
)

// The texts a held psql or pgx client sees: a NOTICE at once, then, if the
// statement does not pass, an ERROR with SQLSTATE 42501.
func ExampleRefusal() {
	r := &approval.Request{
		ID: "3xq7m2k4b5a6c7d8e9f0", Status: approval.Pending, Rule: "review-payments-update",
		Reviewers: []string{"security"}, Required: 1, Expires: time.Date(2025, 6, 1, 12, 15, 0, 0, time.UTC),
	}
	msg, detail := approval.HeldNotice(r)
	fmt.Printf("NOTICE:  %s\nDETAIL:  %s\n", msg, detail)

	r.Status = approval.Denied
	r.Decided = &approval.Decision{By: "approver", Reason: "not during the freeze"}
	msg, detail = approval.Refusal(r)
	fmt.Printf("ERROR:  %s\nDETAIL:  %s\n", msg, detail)

	r.Status, r.Decided = approval.Expired, nil
	msg, _ = approval.Refusal(r)
	fmt.Printf("ERROR:  %s\n", msg)
	// Output:
	// NOTICE:  statement held for approval: request 3xq7m2k4b5a6c7d8e9f0 under rule review-payments-update
	// DETAIL:  Reviewers (security) have until 2025-06-01T12:15:00Z. Approve with: gatehouse approvals approve 3xq7m2k4b5a6c7d8e9f0
	// ERROR:  statement denied by approver: not during the freeze
	// DETAIL:  approval request 3xq7m2k4b5a6c7d8e9f0 under rule review-payments-update was denied
	// ERROR:  approval request 3xq7m2k4b5a6c7d8e9f0 expired: no decision before 2025-06-01T12:15:00Z
}
