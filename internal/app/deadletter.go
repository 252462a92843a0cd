package app

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// ListDeadLetters prints the dead letters from sequence from on (at most
// limit, 0 for all; of stage only, if given) as a table.
func ListDeadLetters(ctx context.Context, e Env, from uint64, limit int, stage string) error {
	return withNATS(ctx, e, "deadletter", func(a *App) error {
		dls, err := a.bus.ListDeadLetters(ctx, from, limit, stage)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tSTAGE\tTYPE\tEVENT_REF\tREASON")
		for _, d := range dls {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", d.Seq, d.Time.UTC().Format(time.RFC3339), d.Stage, d.Type, d.Ref, shorten(d.Reason, 120))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(e.Stderr, "%d dead letter(s)\n", len(dls))
		return nil
	})
}

// ShowDeadLetter prints one dead letter: its reason, origin and stored bytes.
func ShowDeadLetter(ctx context.Context, e Env, seq uint64) error {
	return withNATS(ctx, e, "deadletter", func(a *App) error {
		d, err := a.bus.GetDeadLetter(ctx, seq)
		if err != nil {
			return err
		}
		w := e.Stdout
		fmt.Fprintf(w, "sequence:  %d\ntime:      %s\nstage:     %s\ntype:      %s\nevent_ref: %s\nreason:    %s\n", d.Seq, d.Time.UTC().Format(time.RFC3339), d.Stage, d.Type, d.Ref, d.Reason)
		if d.Origin != "" {
			fmt.Fprintf(w, "origin:    %s\n", d.Origin)
		}
		fmt.Fprintf(w, "data:\n%s\n", d.Data)
		return nil
	})
}

// ReplayDeadLetters re-submits the dead letters seqs (with all, every one
// of stage, or of every stage): ingest rejections go through validation
// again, pipeline dead letters are re-published to the subject they came
// from.
func ReplayDeadLetters(ctx context.Context, e Env, seqs []uint64, all bool, stage string) error {
	return withNATS(ctx, e, "deadletter", func(a *App) error {
		var dls []stream.StoredDeadLetter
		if all {
			var err error
			dls, err = a.bus.ListDeadLetters(ctx, 0, 0, stage)
			if err != nil {
				return err
			}
		}
		for _, seq := range seqs {
			d, err := a.bus.GetDeadLetter(ctx, seq)
			if err != nil {
				return err
			}
			dls = append(dls, d)
		}
		in, err := a.NewIngester()
		if err != nil {
			return err
		}
		pub := a.bus.Publisher()
		var ok, again int
		for _, d := range dls {
			switch {
			case d.Stage == schemas.DeadLetterStageIngest:
				// Its persons are kept pseudonymised (or redacted).
				sum, err := in.SubmitDeadLetters(ctx, [][]byte{d.Data})
				if err != nil {
					return err
				}
				if sum.Rejected > 0 {
					again++
					fmt.Fprintf(e.Stderr, "%d: still rejected: %s\n", d.Seq, sum.Results[0].Reason)
					continue
				}
			case d.Origin != "":
				// The dead letter's sequence keys the re-publication: replaying it twice is deduplicated.
				if _, err := pub.PublishSync(ctx, stream.Msg{Subject: d.Origin, ID: "replay:dlq:" + strconv.FormatUint(d.Seq, 10), Data: d.Data}); err != nil {
					return err
				}
			default:
				again++
				fmt.Fprintf(e.Stderr, "%d: no origin recorded; cannot replay\n", d.Seq)
				continue
			}
			ok++
		}
		fmt.Fprintf(e.Stdout, "replayed %d, still failing %d\n", ok, again)
		return nil
	})
}
