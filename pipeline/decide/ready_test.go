package decide

import (
	"maps"
	"testing"

	"github.com/epiwatch/epiwatch/schemas"
)

// TestDecidedThrough: per region, LastDecidable of its newest record in data
// mode; the day before last in schedule mode, for a region without records
// and for one whose records all predate RecordsFrom.
func TestDecidedThrough(t *testing.T) {
	last := day(20)
	records := []DayRecord{
		{Region: "KZ-75", Date: day(19)}, {Region: "KZ-75", Date: day(20)},
		{Region: "KZ-11", Date: day(17)}, {Region: "KZ-11", Date: day(18), Provisional: true}, {Region: "KZ-11", Date: day(19)},
		{Region: "KZ-35", Date: day(18), StaleFeeds: []string{"case"}}, {Region: "KZ-35", Date: day(19)},
		{Region: "KZ-43", Date: day(3)}, // long silent: not among the last days
	}
	regions := []string{"KZ-75", "KZ-11", "KZ-35", "KZ-43", "KZ-71"}
	cfg := DefaultConfig()
	cfg.Mode = ModeData
	got := cfg.DecidedThrough(regions, last, records)
	want := map[string]schemas.Date{"KZ-75": day(19), "KZ-11": day(17), "KZ-35": day(17), "KZ-43": day(19), "KZ-71": day(19)}
	if !maps.Equal(got, want) {
		t.Errorf("data mode: %v, want %v", got, want)
	}
	cfg.Mode = ModeSchedule
	got = cfg.DecidedThrough(regions, last, records)
	for _, r := range regions {
		if got[r] != day(19) {
			t.Errorf("schedule mode: %s through %s, want %s", r, got[r], day(19))
		}
	}
}
