package main

import (
	"bufio"
	"errors"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/internal/app"
)

func newEraseCmd() *cobra.Command {
	var o app.EraseOptions
	var person string
	c := &cobra.Command{
		Use:   "erase (--person ID | --pseudonym P | --source S --event-id ID) --reason TEXT --yes",
		Short: "Erase a person's events (or one event) from the streams, ClickHouse and the processor's state, with an audit record",
		Long: `Erasure, for a person's right to it or a producer's mistake. It cannot be undone.

  1. Finds every event naming the person — in person, index_person or contact_person, under
     the pseudonym of each key of the ring (current and retired) — or the one event of
     --source and --event-id, plus every correction of those events, in EPI_EVENTS, and every
     dead letter holding them in EPI_DEADLETTER. --dry-run stops here and prints the counts.
  2. Deletes them from both streams (a secure delete: the server overwrites the bytes).
  3. Appends an audit record to EPI_ERASURES: who (--by, default $USER), why (--reason, your
     ticket or legal basis), when, how many events — never the national ID, the pseudonym or
     the event_id. The processor sees the record, rebuilds its state from the events stream
     without the erased events and republishes every indicator, whose new versions replace
     the old ones in ClickHouse.
  4. Deletes the rows of those events from ClickHouse's events_store (ALTER TABLE … DELETE,
     by stream sequence) once the sink can no longer insert them, waits until they are gone,
     and records the erasure in epiwatch.erasures.

A step that fails says what to run: the same erase again (it finds what is left), or
'epiwatch erase --finish' for the ClickHouse part of recorded erasures.

The national ID on the command line is visible to other users of the machine (ps, shell
history): pass --person - to read it from standard input instead.

Connects to nats.url, or to the embedded server of a running 'epiwatch run' at nats.listen,
with the configured pseudonym keys (to compute the pseudonyms of --person).`,
		Example: `  echo 900101300017 | epiwatch erase --person - --reason "DPO request 2026-114" --dry-run
  echo 900101300017 | epiwatch erase --person - --reason "DPO request 2026-114" --yes
  epiwatch erase --source lab-almaty --event-id lt-20261201-77 --reason "wrong patient, ticket 881" --yes
  epiwatch erase --finish`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if person == "-" {
				line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if err != nil && line == "" {
					return &exitError{2, errors.New("--person -: no national ID on standard input")}
				}
				person = strings.TrimSpace(line)
			}
			o.NationalID = person
			if !o.Finish && o.NationalID == "" && len(o.Pseudonyms) == 0 && o.EventID == "" {
				return &exitError{2, errors.New("say what to erase: --person, --pseudonym, or --source with --event-id (or --finish)")}
			}
			return app.Erase(cmd.Context(), envOf(cmd), o)
		},
	}
	f := c.Flags()
	f.StringVar(&person, "person", "", "the person's national ID (IIN or PIN); - reads it from standard input")
	f.StringSliceVar(&o.Pseudonyms, "pseudonym", nil, "the person's pseudonym(s) as stored, instead of --person")
	f.StringVar(&o.Source, "source", "", "with --event-id: the producer (source) of the event")
	f.StringVar(&o.EventID, "event-id", "", "with --source: the event to erase")
	f.StringVar(&o.By, "by", "", "who erases, for the audit log (default: $USER)")
	f.StringVar(&o.Reason, "reason", "", "why: the ticket or legal basis, for the audit log (required)")
	f.BoolVar(&o.DryRun, "dry-run", false, "find and count, delete nothing")
	f.BoolVar(&o.Yes, "yes", false, "confirm the erasure (it cannot be undone)")
	f.BoolVar(&o.Finish, "finish", false, "only finish the ClickHouse part of erasures already recorded")
	f.BoolVar(&o.NoClickHouse, "no-clickhouse", false, "leave ClickHouse alone (a deployment without it)")
	f.DurationVar(&o.Wait, "wait", 5*time.Minute, "how long to wait for the sink and for ClickHouse's delete")
	return c
}
