// Command gen writes epiwatch's dashboards as JSON into dashboards/json (the
// folder Grafana's provisioning reads), with the decision rule's bands read
// from the shipped rule set kz-2020-plan and the bed staleness from the
// beds package (dashboards/internal/fromrules). Run it from the repository root or
// through `go generate ./dashboards`:
//
//	go run ./dashboards/cmd/gen [-out dashboards/json]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/epiwatch/epiwatch/dashboards"
	"github.com/epiwatch/epiwatch/dashboards/internal/fromrules"
)

func main() {
	out := flag.String("out", defaultOut(), "directory to write the dashboard JSON files into")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// defaultOut is dashboards/json from the repository root, or json/ when run
// by go generate (whose working directory is the package's).
func defaultOut() string {
	if _, err := os.Stat(filepath.Join("dashboards", "dashboards.go")); err == nil {
		return filepath.Join("dashboards", "json")
	}
	return "json"
}

func run(out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	// The bands and the staleness come from the rule set and the beds
	// package, read now, so the committed JSON follows them.
	plan, err := fromrules.Plan()
	if err != nil {
		return err
	}
	for _, d := range dashboards.All(plan) {
		b, err := dashboards.Render(d)
		if err != nil {
			return err
		}
		path := filepath.Join(out, d.File)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		fmt.Println("wrote", path)
	}
	return nil
}
