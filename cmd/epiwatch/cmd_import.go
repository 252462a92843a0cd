package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/pipeline/ingest"
)

func newImportCmd() *cobra.Command {
	var batch, showRejected int
	c := &cobra.Command{
		Use:   "import FILE...",
		Short: "Load events from NDJSON or CSV files through the same validation as the API",
		Long: `Reads NDJSON (.ndjson/.jsonl/.json: one event per line) or CSV files (one event type per
file, header = the JSON field names, nested ones dotted like person.national_id; the type
is taken from a "type" column or the file name <type>.csv), validates, pseudonymises and
publishes every event, dead-lettering rejected ones with the reason. Prints progress and a
summary. Importing the same file twice adds nothing: event_ids de-duplicate.

Connects to nats.url, or to the embedded server of a running 'epiwatch run' at nats.listen.`,
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
				return err
			})
		},
	}
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
