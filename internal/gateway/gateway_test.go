package gateway

import (
	"context"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

func testEnv(k string) (string, bool) {
	v, ok := map[string]string{
		"GATEHOUSE_DATA": "/tmp/gatehouse-check", "SHOP_PG_ADDR": "127.0.0.1:5432",
		"SHOP_READER_PASSWORD": "r", "SHOP_WRITER_PASSWORD": "w",
		"AGENT_TOKEN": "a", "APPROVER_TOKEN": "b", "AUDITOR_TOKEN": "c",
	}[k]
	return v, ok
}

func TestCheckReferenceDeployment(t *testing.T) {
	cfg, err := config.Load("../../examples/pci.yaml", config.Options{LookupEnv: testEnv})
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	pols, err := Policies(cfg)
	if err != nil || pols["shop"] == nil {
		t.Fatalf("policies: %v %v", pols, err)
	}
}

// TestCheckNamesTheLineOfABadRule: a typo in a CEL condition is a config
// error pointing at the rule's line.
func TestCheckNamesTheLineOfABadRule(t *testing.T) {
	y := `data_dir: /tmp/x
listeners:
  postgres:
    address: 127.0.0.1:15432
identities:
  static:
    - name: a
      token: env:AGENT_TOKEN
      groups: [agents]
connections:
  - name: shop
    address: 127.0.0.1:5432
    roles:
      - name: reader
        user: r
        password: env:SHOP_READER_PASSWORD
        groups: [agents]
policy:
  rules:
    - name: ok
      when: stmt.command == "DROP TABLE"
      action: deny
    - name: typo
      when: stmt.comand == "DELETE"
      action: deny
`
	cfg, err := config.Parse("bad.yaml", []byte(y), config.Options{LookupEnv: testEnv})
	if err != nil {
		t.Fatal(err)
	}
	err = Check(context.Background(), cfg)
	if err == nil {
		t.Fatal("a rule with an unknown field passed check")
	}
	for _, want := range []string{"bad.yaml:24:", "policy.rules[1].when", "comand"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
