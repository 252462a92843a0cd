package nowcastcsv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/epiwatch/epiwatch/pipeline/ingest"
	"github.com/epiwatch/epiwatch/pipeline/science/nowcast"
	"github.com/epiwatch/epiwatch/schemas"
)

// caseEvent is a case event as the nowcast reads it, with what its
// corrections need.
type caseEvent struct {
	id, region string
	c          nowcast.Case
	confirmed  bool
}

// ReadCases reads the case events of path known on asOf, by region:
// confirmed cases reported by asOf, less those a retraction or a
// superseding case known by asOf withdraws, each event_id once (the first,
// as ingest keeps it); those without an onset date are in byRegion too (the
// nowcast counts them apart, Result.NoOnset). Every error names the file
// and line.
func ReadCases(path string, asOf schemas.Date) (byRegion map[string][]nowcast.Case, err error) {
	contract, err := schemas.NewContract()
	if err != nil {
		return nil, err
	}
	var cases []caseEvent
	seen := map[string]bool{}
	withdrawn := map[string]bool{}
	if _, err := os.Stat(path); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: %v", pe.Path, pe.Err)
		}
		return nil, err
	}
	err = ingest.ReadFile(path, 1000, func(recs []ingest.Record) error {
		for _, rec := range recs {
			e, err := contract.Decode(rec.Raw)
			if err != nil {
				return fmt.Errorf("%s:%d: %v; fix or remove the event", path, rec.Line, err)
			}
			if seen[e.EventID] {
				continue // the same event again: ingest keeps the first
			}
			seen[e.EventID] = true
			switch e.Type {
			case schemas.TypeRetraction:
				if e.ReportDate <= asOf {
					withdrawn[e.Retracts] = true
				}
			case schemas.TypeCase:
				if !e.OnsetDate.IsZero() && e.OnsetDate > e.ReportDate {
					return fmt.Errorf("%s:%d: case %s: onset_date %s is after its report_date %s; fix the dates", path, rec.Line, e.EventID, e.OnsetDate, e.ReportDate)
				}
				if e.ReportDate > asOf {
					continue
				}
				if e.Supersedes != "" {
					withdrawn[e.Supersedes] = true
				}
				cases = append(cases, caseEvent{id: e.EventID, region: e.Region, confirmed: e.Confirmed(),
					c: nowcast.Case{Onset: e.OnsetDate, Report: e.ReportDate, Imported: e.Imported}})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	byRegion = map[string][]nowcast.Case{}
	for _, c := range cases {
		if !c.confirmed || withdrawn[c.id] {
			continue
		}
		byRegion[c.region] = append(byRegion[c.region], c.c)
	}
	return byRegion, nil
}
