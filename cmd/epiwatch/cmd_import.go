package main

import (
	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/internal/app"
)

func newImportCmd() *cobra.Command {
	var o app.ImportOptions
	c := &cobra.Command{
		Use:   "import FILE...",
		Short: "Load events from NDJSON or CSV files through the same validation as the API",
		Long: `Reads NDJSON (.ndjson/.jsonl/.json: one event per line) or CSV files (one event type per
file, header = the JSON field names, nested ones dotted like person.national_id; the type
is taken from a "type" column or the file name <type>.csv), validates, pseudonymises and
publishes every event, dead-lettering rejected ones with the reason. Prints progress and a
summary. Importing the same file twice adds nothing: each source's event_ids de-duplicate.

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
		RunE: func(cmd *cobra.Command, files []string) error { return app.Import(cmd.Context(), envOf(cmd), files, o) },
	}
	c.Flags().BoolVar(&o.AllowRejects, "allow-rejects", false, "exit 0 even when some events were rejected")
	c.Flags().IntVar(&o.Batch, "batch", 1000, "events per publish batch")
	c.Flags().IntVar(&o.ShowRejected, "show-rejected", 20, "how many rejection reasons to print")
	return c
}
