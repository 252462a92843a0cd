package main

import (
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/pipeline/stream"
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
		Short: "List dead letters (sequence, time, stage, type, event_id, reason)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withNATS(cmd, "deadletter", func(a *app) error {
				dls, err := stream.ListDeadLetters(cmd.Context(), a.js, from, limit, stage)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SEQ\tTIME\tSTAGE\tTYPE\tEVENT_ID\tREASON")
				for _, d := range dls {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", d.Seq, d.Time.UTC().Format(time.RFC3339), d.Stage, d.Type, d.EventID, shorten(d.Reason, 120))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%d dead letter(s)\n", len(dls))
				return nil
			})
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
			seq, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return &exitError{2, fmt.Errorf("SEQ %q is not a sequence number", args[0])}
			}
			return withNATS(cmd, "deadletter", func(a *app) error {
				d, err := stream.GetDeadLetter(cmd.Context(), a.js, seq)
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "sequence: %d\ntime:     %s\nstage:    %s\ntype:     %s\nevent_id: %s\nreason:   %s\n", d.Seq, d.Time.UTC().Format(time.RFC3339), d.Stage, d.Type, d.EventID, d.Reason)
				if d.Origin != "" {
					fmt.Fprintf(w, "origin:   %s\n", d.Origin)
				}
				fmt.Fprintf(w, "data:\n%s\n", d.Data)
				return nil
			})
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
			return withNATS(cmd, "deadletter", func(a *app) error {
				var dls []stream.StoredDeadLetter
				if all {
					var err error
					dls, err = stream.ListDeadLetters(cmd.Context(), a.js, 0, 0, stage)
					if err != nil {
						return err
					}
				}
				for _, s := range args {
					seq, err := strconv.ParseUint(s, 10, 64)
					if err != nil {
						return &exitError{2, fmt.Errorf("SEQ %q is not a sequence number", s)}
					}
					d, err := stream.GetDeadLetter(cmd.Context(), a.js, seq)
					if err != nil {
						return err
					}
					dls = append(dls, d)
				}
				in, err := a.newIngester()
				if err != nil {
					return err
				}
				pub := stream.NewPublisher(a.js)
				var ok, again int
				for _, d := range dls {
					switch {
					case d.Stage == stream.StageIngest:
						sum, err := in.Submit(cmd.Context(), [][]byte{d.Data})
						if err != nil {
							return err
						}
						if sum.Rejected > 0 {
							again++
							fmt.Fprintf(cmd.ErrOrStderr(), "%d: still rejected: %s\n", d.Seq, sum.Results[0].Reason)
							continue
						}
					case d.Origin != "":
						res, err := pub.PublishSync(cmd.Context(), stream.Msg{Subject: d.Origin, ID: "replay:dlq:" + strconv.FormatUint(d.Seq, 10), Data: d.Data})
						if err != nil {
							return err
						}
						_ = res
					default:
						again++
						fmt.Fprintf(cmd.ErrOrStderr(), "%d: no origin recorded; cannot replay\n", d.Seq)
						continue
					}
					ok++
				}
				fmt.Fprintf(cmd.OutOrStdout(), "replayed %d, still failing %d\n", ok, again)
				return nil
			})
		},
	}
	replay.Flags().BoolVar(&all, "all", false, "replay every dead letter (of --stage, if given)")
	replay.Flags().StringVar(&stage, "stage", "", "with --all: only this stage")
	c.AddCommand(list, show, replay)
	return c
}
