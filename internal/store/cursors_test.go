package store_test

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

func TestExportCursors(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) { storetest.RunExportCursors(t, b.NewDB) })
	}
}
