package store_test

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// The approvals pass through a journal untouched; the suite opens several
// handles, as replicas do.
func TestApprovalStore(t *testing.T) {
	for _, b := range storetest.SharedBackends {
		t.Run(b.Name, func(t *testing.T) { storetest.RunApprovals(t, b.NewDB) })
	}
}
