package gateway

import (
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/mask"
	"github.com/gatehouse/gatehouse/internal/policy"
	pgproxy "github.com/gatehouse/gatehouse/internal/proxy/pg"
	sqlpg "github.com/gatehouse/gatehouse/internal/sql/pg"
)

// analysisCacheSize bounds the analyser's cache of normalised statements:
// 4,096 statements that differ in their constants, each under its
// normalised text and its template (see sqlpg.Analyzer), the two sharing
// one analysis.
const analysisCacheSize = 8192

// Policies compiles the config's rules once per connection, each with that
// connection's default action. Errors carry the rule's file:line.
func Policies(cfg *config.Config) (map[string]*policy.Policy, error) {
	rules := make([]policy.Rule, len(cfg.Policy.Rules))
	for i, r := range cfg.Policy.Rules {
		act, err := policy.ParseAction(r.Action)
		if err != nil {
			return nil, cfg.ErrorAt(fmt.Sprintf("policy.rules[%d].action", i), "allow, deny or review", err)
		}
		rules[i] = policy.Rule{Name: r.Name, When: r.When, Action: act, Reviewers: r.Reviewers, Message: r.Message, Hint: r.Hint}
	}
	out := map[string]*policy.Policy{}
	for i, cn := range cfg.Connections {
		def, err := policy.ParseAction(cn.DefaultAction)
		if err != nil {
			return nil, cfg.ErrorAt(fmt.Sprintf("connections[%d].default_action", i), "allow, deny or review", err)
		}
		p, err := policy.Compile(policy.Config{Rules: rules, Default: def})
		if err != nil {
			var re *policy.RuleError
			if errors.As(err, &re) {
				return nil, cfg.ErrorAt(fmt.Sprintf("policy.rules[%d].%s", re.Index, re.Field), "see docs/policy.md for the facts and functions rules can use", re.Err)
			}
			return nil, err
		}
		out[cn.Name] = p
	}
	return out, nil
}

// Masker builds the response masker from the config.
func Masker(cfg *config.Config) (*mask.Masker, error) {
	style, err := mask.ParseStyle(cfg.Masking.PANStyle)
	if err != nil {
		return nil, cfg.ErrorAt("masking.pan_style", "first6-last4 or last4", err)
	}
	mc := mask.Config{
		PAN:      cfg.Masking.Detectors.PAN == nil || *cfg.Masking.Detectors.PAN,
		PANStyle: style,
		Email:    cfg.Masking.Detectors.Email,
		IBAN:     cfg.Masking.Detectors.IBAN,
		SSN:      cfg.Masking.Detectors.SSN,
		HashKey:  []byte(cfg.Masking.HashKey.Value()),
	}
	for _, c := range cfg.Masking.Detectors.Custom {
		mc.Custom = append(mc.Custom, mask.CustomDetector{Name: c.Name, Pattern: c.Pattern, Replacement: c.Replacement})
	}
	m, err := mask.New(mc)
	if err != nil {
		return nil, cfg.ErrorAt("masking", "", err)
	}
	return m, nil
}

// Core builds everything that judges and masks traffic: the inspection, the
// masker and the column rules.
func Core(cfg *config.Config) (*pgproxy.Inspection, *mask.Masker, []pgproxy.ColumnRule, error) {
	pols, err := Policies(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	m, err := Masker(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	cols, err := pgproxy.ParseColumnRules(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	for i, c := range cols {
		if err := m.CheckStrategy(c.Strategy); err != nil {
			return nil, nil, nil, cfg.ErrorAt(fmt.Sprintf("masking.columns[%d].strategy", i), "", err)
		}
	}
	required, grants := map[string]int{}, map[string]time.Duration{}
	for _, r := range cfg.Policy.Rules {
		required[r.Name] = r.Approvals
		grants[r.Name] = r.Grant
	}
	return &pgproxy.Inspection{Analyzer: sqlpg.NewAnalyzer(analysisCacheSize), Policies: pols, Required: required, Grants: grants}, m, cols, nil
}
