package simulate_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/tools/cli"
	"github.com/epiwatch/epiwatch/internal/tools/simulate"
	"github.com/epiwatch/epiwatch/schemas"
)

// options are the flags' defaults, as `epiwatch simulate` has them, for a
// small run.
func options() simulate.Options {
	def := simulate.DefaultConfig()
	return simulate.Options{
		Days: 14, Seed: def.Seed, Country: def.Country, Scale: 0.2, Regions: []string{"kz-75 "},
		WeekendDeferral: def.WeekendDeferral, Format: simulate.FormatNDJSON, Batch: simulate.DefaultBatch,
	}
}

// TestOptionsConfig: the flags map onto the simulator's configuration:
// upper-cased regions, the default start ending the run the day before
// now, schedules, the late region and the data-quality scenarios.
func TestOptionsConfig(t *testing.T) {
	now := time.Date(2021, 9, 15, 23, 0, 0, 0, time.FixedZone("ALMT", 6*3600)) // 17:00 UTC
	o := options()
	o.Regions = []string{"kz-75 ", "", "KZ-71"}
	o.Schedules = []string{"kz-75=0:1.6,7:0.8"}
	o.Late = "kz-71:3:2"
	o.NoDelays, o.NoComplete = true, true
	sc, err := o.Config(now)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sc.Regions, []string{"KZ-75", "KZ-71"}) {
		t.Errorf("regions %v", sc.Regions)
	}
	if want := schemas.MustDate("2021-09-01"); sc.Start != want || sc.Start.AddDays(sc.Days-1) != schemas.MustDate("2021-09-14") {
		t.Errorf("start %s, want %s: the run ends the day before now (UTC)", sc.Start, want)
	}
	if sc.Schedules["KZ-75"].At(8) != 0.8 || sc.LateRegion != "KZ-71" || sc.LateFromDay != 3 || sc.LateDays != 2 {
		t.Errorf("schedule %v, late %s:%d:%d", sc.Schedules, sc.LateRegion, sc.LateFromDay, sc.LateDays)
	}
	if sc.Delays || sc.ReportComplete {
		t.Errorf("--no-delays and --no-report-complete: Delays %v, ReportComplete %v", sc.Delays, sc.ReportComplete)
	}

	o = options()
	o.Start, o.DataQuality = "2021-06-01", true
	o.Regions = []string{"KZ-75", "KZ-71", "KZ-62"}
	o.Days = 60
	sc, err = o.Config(now)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Start != schemas.MustDate("2021-06-01") || sc.LateRegion != "KZ-71" || sc.SporadicRegion != "KZ-75" || !sc.CloseFacility {
		t.Errorf("--data-quality: start %s, late %q, sporadic %q, close %v", sc.Start, sc.LateRegion, sc.SporadicRegion, sc.CloseFacility)
	}

	for flag, mod := range map[string]func(o *simulate.Options){
		"--start":    func(o *simulate.Options) { o.Start = "01.06.2021" },
		"--late":     func(o *simulate.Options) { o.Late = "KZ-71" },
		"--schedule": func(o *simulate.Options) { o.Schedules = []string{"KZ-75:0:1.6"} },
	} {
		o := options()
		mod(&o)
		if _, err := o.Config(now); err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("%s: %v, want an error naming the flag", flag, err)
		}
	}
}

// TestRunCommandBadInput: options that do not go together are bad input.
func TestRunCommandBadInput(t *testing.T) {
	env := simulate.Env{IngestURL: "http://127.0.0.1:1/v1/events", Now: time.Now()}
	for _, tt := range []struct {
		name string
		mod  func(o *simulate.Options)
		want string
	}{
		{"--format without --out", func(o *simulate.Options) {
			o.Format = simulate.FormatCSV
			o.Changed = func(f string) bool { return f == "format" }
		}, "--format applies to --out"},
		{"--speed with --out", func(o *simulate.Options) { o.Out, o.Speed = t.TempDir(), 2 }, "apply when sending"},
		{"--batch 0", func(o *simulate.Options) { o.Batch = 0 }, "--batch ≥ 1"},
		{"unknown region", func(o *simulate.Options) { o.Regions = []string{"KZ-99"} }, "KZ-99"},
		{"period in the future", func(o *simulate.Options) { o.Start = schemas.DateOf(time.Now().UTC()).String() }, "rejects events dated in the future"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := options()
			tt.mod(&o)
			err := simulate.RunCommand(context.Background(), o, env, &bytes.Buffer{}, &bytes.Buffer{})
			if !cli.IsBadInput(err) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("RunCommand: %v, want bad input saying %q", err, tt.want)
			}
		})
	}
}

// TestRunCommandFiles: --out writes a file per event type, the truth and a
// summary naming them.
func TestRunCommandFiles(t *testing.T) {
	o := options()
	o.Out = t.TempDir()
	var stdout, stderr bytes.Buffer
	if err := simulate.RunCommand(context.Background(), o, simulate.Env{Now: time.Now()}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"case.ndjson", "truth.csv"} {
		if _, err := os.Stat(filepath.Join(o.Out, name)); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(stdout.String(), "load them with: epiwatch import "+filepath.Join(o.Out, "*.ndjson")) {
		t.Errorf("summary:\n%s", stdout.String())
	}
	if n := strings.Count(stderr.String(), "\n"); n != o.Days {
		t.Errorf("%d progress lines, want one per day (%d)", n, o.Days)
	}
}

// TestFeed sends a run to an API that accepts it, with the token from the
// environment when the flag does not give one, and writes the truth.
func TestFeed(t *testing.T) {
	f := &fakeIngest{ids: map[string]bool{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	o := options()
	o.Truth = filepath.Join(t.TempDir(), "truth.csv")
	sc, err := o.Config(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sim, err := simulate.New(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	res, err := simulate.Feed(context.Background(), sim, o, simulate.Env{IngestURL: srv.URL + "/v1/events", Token: "secret"}, &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted == 0 || res.Accepted != res.Sent || res.Rejected != 0 {
		t.Errorf("result %+v, want every event accepted", res)
	}
	if _, err := os.Stat(o.Truth); err != nil {
		t.Error(err)
	}
	if !strings.Contains(stdout.String(), "accepted") || !strings.Contains(stderr.String(), "day 14/14") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
}
