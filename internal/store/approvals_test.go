package store_test

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

func TestApprovalStore(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) { storetest.RunApprovals(t, b.NewDB) })
	}
}
