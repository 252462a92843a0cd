package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/pipeline/ingest"
)

// exitRejected is import's exit code when some events were rejected (and
// dead-lettered) while the others were imported: scripts can tell a partial
// import from a clean one (0) and from a failure (1) or a usage error (2).
const exitRejected = 3

func newImportCmd() *cobra.Command {
	var batch, showRejected int
	var allowRejects bool
	c := &cobra.Command{
		Use:   "import FILE...",
		Short: "Load events from NDJSON or CSV files through the same validation as the API",
		Long: `Reads NDJSON (.ndjson/.jsonl/.json: one event per line) or CSV files (one event type per
file, header = the JSON field names, nested ones dotted like person.national_id; the type
is taken from a "type" column or the file name <type>.csv), validates, pseudonymises and
publishes every event, dead-lettering rejected ones with the reason. Prints progress and a
summary. Importing the same file twice adds nothing: event_ids de-duplicate.

Connects to nats.url, or to the embedded server of a running 'epiwatch run' at nats.listen.
It pseudonymises with the deployment's key: next to a single-node 'epiwatch run' that is
<data_dir>/pseudonym.key, so run import from the same directory or give --data-dir (a key
that differs from the one the pipeline uses under the same key id is refused).

Exit status: 0 every event was imported (or was already there); 3 some events were
rejected (reasons printed, the events dead-lettered) and all others imported — 0 with
--allow-rejects; 2 bad usage or configuration; 1 anything else (e.g. NATS unreachable).`,
		Example: `  epiwatch import data/sim/case.ndjson data/sim/lab_test.ndjson
  epiwatch import --nats-url nats://nats.example:4222 cases-2020-07.csv`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			return withNATS(cmd, "import", func(a *app) error {
				in, err := a.newIngester()
				if err != nil {
					return err
				}
				start := time.Now()
				errw := cmd.ErrOrStderr()
				last := time.Time{}
				res, err := in.Import(cmd.Context(), files, batch, func(p ingest.ImportProgress) {
					if time.Since(last) < 200*time.Millisecond {
						return
					}
					last = time.Now()
					rate := float64(p.Read) / time.Since(start).Seconds()
					fmt.Fprintf(errw, "\r%-40s %9d read  %9d accepted  %7d duplicate  %6d rejected  %8.0f ev/s", shorten(p.File, 40), p.Read, p.Accepted, p.Duplicates, p.Rejected, rate)
				})
				fmt.Fprintln(errw)
				if res != nil {
					for i, r := range res.Rejections {
						if i >= showRejected {
							fmt.Fprintf(errw, "... and %d more rejections (see 'epiwatch deadletter list')\n", len(res.Rejections)-i)
							break
						}
						fmt.Fprintln(errw, "rejected:", r)
					}
					fmt.Fprintf(cmd.OutOrStdout(), "imported %d file(s) in %s: %d read, %d accepted, %d already present, %d rejected\n",
						len(files), time.Since(start).Round(time.Millisecond), res.Read, res.Accepted, res.Duplicates, res.Rejected)
				}
				if err == nil && res != nil && res.Rejected > 0 && !allowRejects {
					return &exitError{exitRejected, fmt.Errorf("%d of %d events rejected (reasons above, kept in the dead-letter stream: 'epiwatch deadletter list'); every other event was imported. --allow-rejects exits 0 in this case", res.Rejected, res.Read)}
				}
				return err
			})
		},
	}
	c.Flags().BoolVar(&allowRejects, "allow-rejects", false, "exit 0 even when some events were rejected")
	c.Flags().IntVar(&batch, "batch", 1000, "events per publish batch")
	c.Flags().IntVar(&showRejected, "show-rejected", 20, "how many rejection reasons to print")
	return c
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n+1:]
}
