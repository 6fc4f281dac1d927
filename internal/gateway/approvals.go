package gateway

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/gatehouse/gatehouse/internal/approval"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/mask"
	"github.com/gatehouse/gatehouse/internal/store"
)

// newBroker builds the approval broker on the gateway's store.
func newBroker(cfg *config.Config, st store.Store, auditLog *audit.Log, m *mask.Masker, log *slog.Logger) (*approval.Broker, error) {
	as, ok := st.(store.ApprovalStore)
	if !ok {
		return nil, fmt.Errorf("approvals: store %s cannot hold approval requests", cfg.Store.Driver)
	}
	var ns []approval.Notifier
	if w := cfg.Approvals.Notify.Webhook; w != nil {
		ns = append(ns, &approval.Webhook{URL: w.URL, Secret: []byte(w.Secret.Value())})
	}
	if sl := cfg.Approvals.Notify.Slack; sl != nil {
		ns = append(ns, &approval.Slack{URL: sl.URL.Value()})
	}
	replica := cfg.Approvals.Replica
	if replica == "" {
		// Host name alone would let two replicas on one host withdraw each
		// other's requests on restart; the listen address tells them apart.
		host, _ := os.Hostname()
		replica = host + "/" + cfg.Listeners.Postgres.Address
	}
	b, err := approval.NewBroker(as, auditLog, ns, nil, log, approval.Options{
		ReplicaID:      replica,
		Timeout:        cfg.Approvals.Timeout,
		ApproverGroups: cfg.API.ApproverGroups,
		// A reviewer may paste a card number into a reason.
		MaskReason: func(s string) string {
			if !m.Scan([]byte(s)) {
				return s
			}
			out, _ := m.AppendMask(nil, []byte(s))
			return string(out)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("approvals: %w", err)
	}
	return b, nil
}
