package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/internal/app"
)

func newDeadLetterCmd() *cobra.Command {
	c := &cobra.Command{
		Use:     "deadletter",
		Aliases: []string{"dlq"},
		Short:   "Inspect and re-submit events that were rejected or could not be processed",
		Long: `Every event rejected at ingest (with the reason, its personal data redacted) and every
message a processor or the sink could not handle is kept in the EPI_DEADLETTER stream.
'list' shows them, 'show' prints one, 'replay' re-submits: ingest rejections go through
validation again (after you fixed the region reference, say); pipeline dead letters are
re-published to the subject they came from. Events whose national ID was redacted cannot be
re-validated: re-send them from the source system.`,
	}
	var from uint64
	var limit int
	var stage string
	list := &cobra.Command{
		Use:   "list",
		Short: "List dead letters (sequence, time, stage, type, event ref, reason)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return app.ListDeadLetters(cmd.Context(), envOf(cmd), from, limit, stage)
		},
	}
	list.Flags().Uint64Var(&from, "from", 0, "first sequence to show")
	list.Flags().IntVar(&limit, "limit", 100, "most entries to show (0: all)")
	list.Flags().StringVar(&stage, "stage", "", "only this stage: ingest, process or sink")

	show := &cobra.Command{
		Use:   "show SEQ",
		Short: "Print one dead letter: its reason, origin and stored bytes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seqs, err := parseSeqs(args)
			if err != nil {
				return err
			}
			return app.ShowDeadLetter(cmd.Context(), envOf(cmd), seqs[0])
		},
	}

	var all bool
	replay := &cobra.Command{
		Use:   "replay [SEQ...]",
		Short: "Re-submit dead letters (ingest ones through validation, pipeline ones to their origin)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && !all {
				return &exitError{2, fmt.Errorf("name sequences to replay, or --all")}
			}
			seqs, err := parseSeqs(args)
			if err != nil {
				return err
			}
			return app.ReplayDeadLetters(cmd.Context(), envOf(cmd), seqs, all, stage)
		},
	}
	replay.Flags().BoolVar(&all, "all", false, "replay every dead letter (of --stage, if given)")
	replay.Flags().StringVar(&stage, "stage", "", "with --all: only this stage")
	c.AddCommand(list, show, replay)
	return c
}

// parseSeqs reads dead-letter sequence numbers.
func parseSeqs(args []string) ([]uint64, error) {
	seqs := make([]uint64, len(args))
	for i, s := range args {
		seq, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, &exitError{2, fmt.Errorf("SEQ %q is not a sequence number", s)}
		}
		seqs[i] = seq
	}
	return seqs, nil
}
