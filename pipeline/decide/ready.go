package decide

import "github.com/epiwatch/epiwatch/schemas"

// DayRecord is what readiness reads of a region's indicator record for a
// day: whether it is provisional and which feeds have not reported through
// it (the indicators_latest columns of the same names).
type DayRecord struct {
	Region      string
	Date        schemas.Date
	Provisional bool
	StaleFeeds  []string
}

// RecordsFrom is the oldest day whose record matters to DecidedThrough once
// the data reach last: only the last days can hold an incomplete day the
// decider waits for. Callers may read fewer records with it.
func (c Config) RecordsFrom(last schemas.Date) schemas.Date {
	return last.AddDays(-c.MaxStaleness - c.CompleteAfterDays - 1)
}

// DecidedThrough is, per region, the newest day the decider decides once
// every indicator record through day last has arrived: in data mode
// LastDecidable of the region's newest record (from RecordsFrom on), the
// records saying which days are incomplete; in schedule mode, and for a
// region without such records, the day before last. Callers that wait for
// the decider (the quick start) use it instead of re-deriving the rule.
func (c Config) DecidedThrough(regions []string, last schemas.Date, records []DayRecord) map[string]schemas.Date {
	through := make(map[string]schemas.Date, len(regions))
	for _, r := range regions {
		through[r] = last.AddDays(-1)
	}
	if c.Mode != ModeData {
		return through
	}
	from := c.RecordsFrom(last)
	incomplete := map[string]map[schemas.Date]bool{}
	newest := map[string]schemas.Date{}
	for _, rec := range records {
		if rec.Date < from {
			continue
		}
		if incomplete[rec.Region] == nil {
			incomplete[rec.Region] = map[schemas.Date]bool{}
		}
		incomplete[rec.Region][rec.Date] = c.Incomplete(rec.Provisional, rec.StaleFeeds)
		newest[rec.Region] = max(newest[rec.Region], rec.Date)
	}
	for _, r := range regions {
		if n, ok := newest[r]; ok {
			through[r] = c.LastDecidable(n, func(d schemas.Date) bool { return incomplete[r][d] })
		}
	}
	return through
}
