package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/pipeline/erase"
	"github.com/epiwatch/epiwatch/pipeline/ingest/pseudo"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// EraseOptions are `epiwatch erase`'s flags.
type EraseOptions struct {
	// What: a person's national ID, or their pseudonyms, or one event.
	NationalID      string
	Pseudonyms      []string
	Source, EventID string

	By, Reason string
	DryRun     bool // find and count, delete nothing
	Yes        bool // confirm: erasure cannot be undone
	// Finish only completes the ClickHouse part of recorded erasures.
	Finish bool
	// NoClickHouse leaves ClickHouse alone (a deployment without it).
	NoClickHouse bool
	// Wait bounds the wait for the sink and for ClickHouse's mutation.
	Wait time.Duration
}

// Erase runs `epiwatch erase`: find, delete from the streams, record, and
// delete from ClickHouse (pipeline/erase, consumers/clickhouse.Erase).
func Erase(ctx context.Context, e Env, o EraseOptions) error {
	if o.Wait <= 0 {
		o.Wait = 5 * time.Minute
	}
	if !o.Finish && !o.DryRun && strings.TrimSpace(o.Reason) == "" {
		return usage(errors.New("--reason is required: the ticket or legal basis of the erasure, kept in the audit log"))
	}
	return withNATS(ctx, e, "erase", func(a *App) error {
		if !o.Finish {
			if err := a.eraseStreams(ctx, e, o); err != nil {
				return err
			}
			if o.DryRun {
				return nil
			}
		}
		if o.NoClickHouse {
			fmt.Fprintln(e.Stdout, "ClickHouse left alone (--no-clickhouse); run `epiwatch erase --finish` where it is reachable")
			return nil
		}
		return a.finishClickHouse(ctx, e, o.Wait)
	})
}

// eraseStreams finds, deletes and records one erasure.
func (a *App) eraseStreams(ctx context.Context, e Env, o EraseOptions) error {
	sel := erase.Selector{Pseudonyms: o.Pseudonyms, Source: o.Source, EventID: o.EventID}
	if o.NationalID != "" {
		if len(o.Pseudonyms) > 0 {
			return usage(errors.New("give --person or --pseudonym, not both"))
		}
		ps, err := a.pseudonymsOf(ctx, o.NationalID)
		if err != nil {
			return err
		}
		sel.Pseudonyms = ps
	}
	if err := sel.Validate(); err != nil {
		return usage(err)
	}
	er := erase.New(a.bus, a.Log)
	er.Progress = func(what string, done, total uint64) {
		fmt.Fprintf(e.Stderr, "erase: %s: %d of %d\n", what, done, total)
	}
	plan, err := er.Find(ctx, sel)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "found %d events (%d of them corrections of the others) in %d regions (%s), and %d dead letters\n",
		len(plan.Events), plan.Corrections, len(plan.Regions), strings.Join(plan.Regions, " "), len(plan.DeadLetters))
	if o.DryRun {
		fmt.Fprintln(e.Stdout, "dry run: nothing deleted")
		return nil
	}
	if !o.Yes {
		return usage(errors.New("an erasure cannot be undone: check the counts with --dry-run, then add --yes"))
	}
	by := o.By
	if by == "" {
		by = e.Getenv("USER")
	}
	if by == "" {
		return usage(errors.New("--by is required (no USER in the environment): who erases, kept in the audit log"))
	}
	if err := er.Delete(ctx, plan); err != nil {
		if errors.Is(err, stream.ErrDeleteDenied) {
			return fmt.Errorf("%w; nothing was recorded: the streams were created by an epiwatch before erasure existed and must be recreated (README, \"Erasure\")", err)
		}
		return fmt.Errorf("%w (run the same erase again: it finds what is left)", err)
	}
	rec := erase.NewRecord(newErasureID(), sel, plan, by, o.Reason, time.Now())
	seq, err := er.Record(ctx, rec)
	if err != nil {
		return fmt.Errorf("%w: the events are deleted but the erasure is not recorded, so the processor still counts them; run the same erase again (it finds nothing more and records)", err)
	}
	fmt.Fprintf(e.Stdout, "erasure %s recorded (%s #%d): %d events and %d dead letters deleted from the streams; the processor rebuilds its state without them\n",
		rec.ID, schemas.StreamErasures, seq, rec.Events, rec.DeadLetters)
	return nil
}

// pseudonymsOf returns the pseudonyms of a national ID under every key of
// the ring: the person's events under retired keys are theirs too. The
// issuing country follows from the length (pseudo.Issuer).
func (a *App) pseudonymsOf(ctx context.Context, id string) ([]string, error) {
	id = strings.TrimSpace(id)
	country, ok := pseudo.Issuer(id)
	if !ok {
		return nil, usage(errors.New("--person: a national ID is 12 digits (IIN) or 14 (PIN)"))
	}
	p, err := a.newPseudonymizer(ctx)
	if err != nil {
		return nil, err
	}
	pz, ok := p.(*pseudo.Pseudonymizer)
	if !ok {
		return nil, fmt.Errorf("erase: the pseudonymiser has no key ring (%T)", p)
	}
	var out []string
	for _, kid := range pz.Keyring().IDs() {
		ps, err := pz.Pseudonym(kid, country, id)
		if err != nil {
			return nil, usage(fmt.Errorf("--person: %w", err))
		}
		out = append(out, ps)
	}
	return out, nil
}

func newErasureID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// finishClickHouse does the ClickHouse part of every recorded erasure the
// erasures table lacks: waits until the sink can no longer insert their
// rows, deletes them, records the erasure there.
func (a *App) finishClickHouse(ctx context.Context, e Env, wait time.Duration) error {
	conn, err := a.OpenClickHouse(ctx)
	if err != nil {
		return fmt.Errorf("%w (the streams part is done; run `epiwatch erase --finish` once ClickHouse is reachable)", err)
	}
	defer conn.Close()
	db, cluster := a.Cfg.ClickHouse.Database, a.Cfg.ClickHouse.Cluster
	if _, err := chsink.Migrate(ctx, conn, db, cluster, a.Regions); err != nil {
		return err
	}
	done, err := chsink.ErasedIDs(ctx, conn, db)
	if err != nil {
		return err
	}
	recs, err := erase.Records(ctx, a.bus)
	if err != nil {
		return err
	}
	for i := range recs {
		rec := &recs[i].Erasure
		if done[rec.ID] {
			continue
		}
		if err := a.waitSinkPast(ctx, rec.Seqs, wait); err != nil {
			return fmt.Errorf("erasure %s: %w", rec.ID, err)
		}
		n, err := chsink.Erase(ctx, conn, db, cluster, rec, recs[i].Seq, wait)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "erasure %s: %d rows deleted from %s.events_v2_store and recorded in %s.erasures\n", rec.ID, n, db, db)
	}
	return nil
}

// waitSinkPast waits until the events sink can no longer insert any of
// seqs: each is acknowledged (landed already) or was never delivered (the
// stream no longer holds it, so it never will be). One delivered and not yet
// acknowledged could land after the delete.
func (a *App) waitSinkPast(ctx context.Context, seqs []uint64, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		st, err := a.bus.ConsumerInfo(ctx, schemas.StreamEvents, schemas.ConsumerSinkEvents)
		if errors.Is(err, stream.ErrConsumerNotFound) {
			return nil // no sink has ever run
		}
		if err != nil {
			return err
		}
		inFlight := false
		for _, s := range seqs {
			if s > st.AckFloor && s <= st.Delivered {
				inFlight = true
				break
			}
		}
		if !inFlight {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the sink (consumer %s) holds erased events delivered but not acknowledged after %s; run `epiwatch erase --finish` once it has caught up", schemas.ConsumerSinkEvents, wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
