package nowcastcsv

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/internal/tools/cli"
	"github.com/epiwatch/epiwatch/schemas"
)

// TestReadCases: what is known on --as-of — confirmed cases reported by
// then, less the retracted and superseded ones, each event_id once.
func TestReadCases(t *testing.T) {
	person := `"person":{"national_id":"900101300017"}`
	c := func(id, region, report, onset, extra string) string {
		s := `{"event_id":"` + id + `","type":"case","region":"` + region + `","source":"lab",` + person + `,"report_date":"` + report + `"`
		if onset != "" {
			s += `,"onset_date":"` + onset + `"`
		}
		return s + extra + "}\n"
	}
	events := c("c-1", "KZ-75", "2021-07-02", "2021-06-30", "") +
		c("c-2", "KZ-75", "2021-07-02", "2021-06-29", "") + // retracted by r-1
		c("c-3", "KZ-75", "2021-07-02", "2021-06-29", "") + // superseded by c-4
		c("c-4", "KZ-71", "2021-07-03", "2021-06-28", `,"supersedes":"c-3"`) +
		c("c-5", "KZ-75", "2021-07-02", "2021-06-30", `,"classification":"probable"`) +
		c("c-6", "KZ-75", "2021-07-09", "2021-07-01", "") + // reported after --as-of
		c("c-7", "KZ-75", "2021-07-02", "", "") + // no onset: counted apart by the nowcast
		`{"event_id":"r-1","type":"retraction","region":"KZ-75","source":"lab","retracts":"c-2","retraction_reason":"discarded","report_date":"2021-07-04"}` + "\n" +
		c("c-1", "KZ-75", "2021-06-01", "", "") // the same event_id again: the first counts
	path := filepath.Join(t.TempDir(), "case.ndjson")
	if err := os.WriteFile(path, []byte(events), 0o600); err != nil {
		t.Fatal(err)
	}
	byRegion, err := ReadCases(path, schemas.MustDate("2021-07-05"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(byRegion["KZ-75"]); n != 2 {
		t.Errorf("KZ-75: %d cases, want 2 (c-1 and c-7): %+v", n, byRegion["KZ-75"])
	}
	if got := byRegion["KZ-71"]; len(got) != 1 || got[0].Onset != schemas.MustDate("2021-06-28") {
		t.Errorf("KZ-71: %+v, want the superseding case c-4", got)
	}
}

// TestRunOptions: options out of range are bad input named by the flag,
// before the file is read.
func TestRunOptions(t *testing.T) {
	with := func(f func(o *Options)) Options {
		o := DefaultOptions()
		o.File, o.AsOf = "unread.ndjson", "2021-07-10"
		f(&o)
		return o
	}
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no --as-of", with(func(o *Options) { o.AsOf = "" }), "--as-of is required"},
		{"bad --as-of", with(func(o *Options) { o.AsOf = "10.07.2021" }), "--as-of: "},
		{"no days", with(func(o *Options) { o.Days = 0 }), "--days must be between 1 and 3650, got 0"},
		{"no window", with(func(o *Options) { o.Window = 0 }), "--window must be at least 1 day"},
		{"delay window too short", with(func(o *Options) { o.MaxDelay = 50 }), "--max-delay"},
		{"serial interval", with(func(o *Options) { o.SIMean = 0.5 }), "--si-mean/--si-sd: "},
		{"prior", with(func(o *Options) { o.PriorSD = 0 }), "--prior-mean/--prior-sd: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Run(tt.o, &bytes.Buffer{}, &bytes.Buffer{})
			if !cli.IsBadInput(err) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run: %v, want bad input saying %q", err, tt.want)
			}
		})
	}
}
