package simulate

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/epiwatch/epiwatch/internal/tools/cli"
	"github.com/epiwatch/epiwatch/schemas"
)

// Env is what `epiwatch simulate` takes from the configuration and the
// process environment rather than from its flags.
type Env struct {
	// Regions is the region reference (nil: the shipped one).
	Regions *schemas.Regions
	// IngestURL is the ingest API endpoint when Options.URL is empty.
	IngestURL string
	// Token is the bearer token when Options.Token is empty
	// ($EPIWATCH_TOKEN).
	Token string
	// Now is the wall clock's time: the default period ends the day before,
	// and the ingest API rejects days after it.
	Now time.Time
}

// RunCommand is `epiwatch simulate`: it checks the options, simulates, and
// writes the files to o.Out or sends the events to the ingest API. A
// progress line per simulated day (files) or week (API) goes to stderr, a
// summary to stdout. Bad options are cli.BadInputError.
func RunCommand(ctx context.Context, o Options, env Env, stdout, stderr io.Writer) error {
	sc, err := o.Config(env.Now)
	if err != nil {
		return cli.BadInput(err)
	}
	if o.Changed.First("format") != "" && o.Out == "" {
		return cli.BadInputf("--format applies to --out; give --out DIR to write files")
	}
	if o.Out != "" && (o.URL != "" || o.Speed != 0 || o.Truth != "") {
		return cli.BadInputf("--url, --speed and --truth apply when sending; with --out the truth is written to DIR/truth.csv")
	}
	if o.Speed < 0 || o.Batch < 1 {
		return cli.BadInputf("--speed must be ≥ 0 and --batch ≥ 1")
	}
	sim, err := New(sc, env.Regions)
	if err != nil {
		return cli.BadInput(err)
	}
	if o.Out != "" {
		return writeFiles(ctx, sim, o, stdout, stderr)
	}
	today := schemas.DateOf(env.Now.UTC())
	if sim.End() >= today {
		return cli.BadInputf("the simulated period ends %s, but the ingest API rejects events dated in the future: move --start back or lower --days (the default start ends the run yesterday)", sim.End())
	}
	_, err = Feed(ctx, sim, o, env, stdout, stderr)
	return err
}

// writeFiles writes the events to one file per type in o.Out and the truth
// to o.Out/truth.csv.
func writeFiles(ctx context.Context, sim *Sim, o Options, stdout, stderr io.Writer) error {
	fw, err := NewFileWriter(o.Out, o.Format)
	if err != nil {
		return cli.BadInput(err)
	}
	start := time.Now()
	cfg := sim.Config()
	err = sim.Run(ctx, func(day schemas.Date, events []schemas.Event) error {
		if err := fw.Write(events); err != nil {
			return err
		}
		var st Stats
		st.Add(events)
		fmt.Fprintf(stderr, "%s  day %d/%d  %s\n", day, int(day-cfg.Start)+1, cfg.Days, st)
		return nil
	})
	if cerr := fw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	truth := filepath.Join(o.Out, "truth.csv")
	if err := writeTruthFile(truth, sim); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "simulated %d region(s) %s..%s (seed %d) in %s: %s\nfiles: %s\ntruth: %s\nload them with: epiwatch import %s\n",
		len(sim.Regions()), cfg.Start, sim.End(), cfg.Seed, time.Since(start).Round(time.Millisecond), fw.Stats(),
		strings.Join(fw.Paths(), " "), truth, filepath.Join(o.Out, "*."+o.Format))
	return nil
}

// Feed sends the simulation to the ingest API day by day (o.URL or
// env.IngestURL, o.Token or env.Token, o.Batch events per request, paced
// to o.Speed simulated days per second), writes the truth to o.Truth if
// set, and prints progress once a simulated week to stderr and a summary
// to stdout. Events the API rejects are an error naming the first reasons.
func Feed(ctx context.Context, sim *Sim, o Options, env Env, stdout, stderr io.Writer) (SendResult, error) {
	url := o.URL
	if url == "" {
		url = env.IngestURL
	}
	token := o.Token
	if token == "" {
		token = env.Token
	}
	sender := &Sender{
		Client: &http.Client{Timeout: 60 * time.Second}, URL: url, Token: token, Batch: o.Batch,
		OnRetry: func(reason string, wait time.Duration) {
			fmt.Fprintf(stderr, "  ingest API busy or unreachable (%s); retrying in %s\n", cli.OneLine(reason), wait.Round(time.Millisecond))
		},
	}
	sc := sim.Config()
	var total SendResult
	var stats Stats
	start := time.Now()
	var interval time.Duration
	if o.Speed > 0 {
		interval = time.Duration(float64(time.Second) / o.Speed)
	}
	fmt.Fprintf(stderr, "sending %d region(s) %s..%s (seed %d) to %s\n", len(sim.Regions()), sc.Start, sim.End(), sc.Seed, url)
	// Progress once a simulated week (and on the last day): enough to follow
	// a run without a screen of lines per day.
	var week Stats
	var weekRes SendResult
	err := sim.Run(ctx, func(day schemas.Date, events []schemas.Event) error {
		res, err := sender.Send(ctx, events)
		total.Add(res)
		weekRes.Add(res)
		if err != nil {
			return err
		}
		week.Add(events)
		stats.Add(events)
		i := int(day-sc.Start) + 1
		if i%7 == 0 || i == sc.Days {
			fmt.Fprintf(stderr, "%s  day %d/%d  this week: %s  accepted %d, duplicate %d, rejected %d\n",
				day, i, sc.Days, week, weekRes.Accepted, weekRes.Duplicates, weekRes.Rejected)
			week, weekRes = Stats{}, SendResult{}
		}
		if interval > 0 { // keep to the schedule from the start, without drift
			if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
				t := time.NewTimer(wait)
				defer t.Stop()
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-t.C:
				}
			}
		}
		return nil
	})
	fmt.Fprintf(stdout, "sent %s in %s to %s: %d accepted, %d already present, %d rejected, %d request(s) retried\n",
		stats, time.Since(start).Round(time.Millisecond), url, total.Accepted, total.Duplicates, total.Rejected, total.Retries)
	if o.Truth != "" {
		if terr := writeTruthFile(o.Truth, sim); terr != nil && err == nil {
			err = terr
		}
	}
	if err != nil {
		return total, err
	}
	if total.Rejected > 0 {
		for _, r := range total.Rejections[:min(len(total.Rejections), 20)] {
			fmt.Fprintln(stderr, "rejected:", r)
		}
		return total, fmt.Errorf("the ingest API rejected %d simulated events (reasons above): does its region reference or token scope differ from the simulated regions?", total.Rejected)
	}
	return total, nil
}

// writeTruthFile writes the simulation's truth as CSV to path.
func writeTruthFile(path string, sim *Sim) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create truth file: %w", err)
	}
	if err := WriteTruthCSV(f, sim.Truth()); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
