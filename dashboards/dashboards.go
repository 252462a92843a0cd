// Package dashboards builds epiwatch's Grafana dashboards as code with the
// grafana-foundation-sdk, from the table names of the ClickHouse contract
// (schemas/clickhouse), the metric names the pipeline declares, and a Plan
// (the rule set's bands, the bed staleness) the generator reads from the
// shipped rule set. The generated JSON is committed in json/ and provisioned
// into Grafana by deploy/grafana/provisioning; regenerate it after changing a
// builder:
//
//	go generate ./dashboards
//
// The tests fail when the committed JSON differs from what the builders
// produce, run every ClickHouse panel query on a migrated database with
// simulated data, and check every Prometheus expression with promtool.
package dashboards

//go:generate go run ./cmd/gen

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// Dashboard is one generated dashboard and the file it is committed as.
type Dashboard struct {
	File    string // name under dashboards/json/
	Builder func() *dashboard.DashboardBuilder
}

// All lists the dashboards in file order, drawn with plan's bands and
// staleness.
func All(plan Plan) []Dashboard {
	with := func(build func(Plan) *dashboard.DashboardBuilder) func() *dashboard.DashboardBuilder {
		return func() *dashboard.DashboardBuilder { return build(plan) }
	}
	return []Dashboard{
		{"national.json", with(National)},
		{"region.json", with(Region)},
		{"pipeline.json", with(Pipeline)},
	}
}

// Render builds a dashboard and returns its JSON as committed: indented,
// with a trailing newline.
func Render(d Dashboard) ([]byte, error) {
	built, err := d.Builder().Build()
	if err != nil {
		return nil, fmt.Errorf("build dashboard %s: %w", d.File, err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(built); err != nil {
		return nil, fmt.Errorf("encode dashboard %s: %w", d.File, err)
	}
	return unescapeHTML(buf.Bytes()), nil
}

// unescapeHTML turns the SDK's \u003c, \u003e and \u0026 escapes (its types
// marshal themselves with json.Marshal, which escapes HTML) back into <, >
// and &, so the SQL in the committed JSON reads as written. Escaped
// backslashes are skipped, so a literal backslash-u sequence is kept.
func unescapeHTML(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			out = append(out, b[i])
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) {
			switch string(b[i : i+6]) {
			case `\u003c`:
				out, i = append(out, '<'), i+5
				continue
			case `\u003e`:
				out, i = append(out, '>'), i+5
				continue
			case `\u0026`:
				out, i = append(out, '&'), i+5
				continue
			}
		}
		out = append(out, b[i], b[i+1]) // any other escape, \\ included
		i++
	}
	return out
}
