package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// Erasure (`epiwatch erase`, package pipeline/erase) deletes a person's
// events from the events stream and then appends an audit record to
// schemas.StreamErasures. The processor's state still counts those events,
// and its checkpoint holds keys derived from the person's pseudonym, so on a
// new record the processor rebuilds its state from what the stream holds
// now: the counts become those of a run that never saw the erased events,
// and the next checkpoint replaces every part of the old one (the parts are
// purged). Every record published after the rebuild has at least the
// erasure's version floor, so it replaces, downstream, the records that
// counted the erased events.
//
// The check costs one stream-info request per erasureCheckEvery: at start
// (restore), before a batch, and on a timer while no batch comes.
const erasureCheckEvery = time.Second

// rebuildTimeout bounds one rebuild after an erasure.
const rebuildTimeout = 30 * time.Minute

// erasureState is what the processor read of the erasure log.
type erasureState struct {
	last    uint64              // the last record's sequence
	floor   versionFloor        // the version floor all records give
	deleted map[uint64]struct{} // events-stream sequences erased
}

// erasuresLast returns the last sequence of the erasure log (0: none, or no
// such stream yet: a deployment whose streams predate erasure).
func (p *Processor) erasuresLast(ctx context.Context) (uint64, error) {
	st, err := p.bus.StreamInfo(ctx, schemas.StreamErasures)
	if errors.Is(err, stream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("erasure log: %w", err)
	}
	return st.LastSeq, nil
}

// readErasures reads the whole erasure log.
func (p *Processor) readErasures(ctx context.Context) (erasureState, error) {
	es := erasureState{deleted: map[uint64]struct{}{}}
	var bad error
	_, err := p.bus.ReadAll(ctx, schemas.StreamErasures, schemas.SubjectErasures+".>", nil, func(m stream.Msg) {
		var r schemas.Erasure
		if err := json.Unmarshal(m.Data, &r); err != nil {
			if bad == nil {
				bad = fmt.Errorf("erasure record %d: %w", m.Seq, err)
			}
			return
		}
		es.last = max(es.last, m.Seq)
		if r.EventsLastSeq > es.floor.seq {
			es.floor = versionFloor{seq: r.EventsLastSeq, nanos: r.At.UnixNano()}
		}
		for _, s := range r.Seqs {
			es.deleted[s] = struct{}{}
		}
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return erasureState{}, fmt.Errorf("read the erasure log %s: %w", schemas.StreamErasures, err)
	}
	return es, nil
}

// erasedSince reports whether the erasure log has records the state does
// not reflect yet; it asks the server at most once per erasureCheckEvery
// unless force is set.
func (p *Processor) erasedSince(ctx context.Context, force bool) (bool, error) {
	if !force && time.Since(p.erasureChecked) < erasureCheckEvery {
		return false, nil
	}
	last, err := p.erasuresLast(ctx)
	if err != nil {
		return false, err
	}
	p.erasureChecked = time.Now()
	return last > p.store.erasures, nil
}

// watchErasures checks the erasure log every erasureCheckEvery while no
// batch comes (handle checks too), and applies a new record at once: the
// erased must leave the state and the checkpoint even when nothing else
// happens.
func (p *Processor) watchErasures(ctx context.Context) {
	p.everyLocked(ctx, erasureCheckEvery, func(ctx context.Context) {
		if err := p.applyErasures(ctx, false); err != nil {
			p.log.Warn("applying an erasure failed; will retry", "err", err)
		}
	})
}

// applyErasures rebuilds the state if the erasure log has new records, then
// publishes the rebuilt records and checkpoints. Called with p.mu held.
func (p *Processor) applyErasures(ctx context.Context, force bool) error {
	again, err := p.erasedSince(ctx, force)
	if err != nil || !again {
		return err
	}
	// A checkpoint write in flight still uses the store. While it is
	// waited for, p.mu is released and the other caller (the batch
	// handler, the timer) may find the same records and rebuild for them:
	// once is enough.
	erasures := p.store.erasures
	p.waitCheckpoint()
	if p.dead {
		return p.deadErr() // the write found the checkpoint taken over, or the lease lost
	}
	if p.store.erasures != erasures {
		return nil
	}
	// The rebuild re-reads the whole stream: not bounded by a batch's
	// deadline (it would never finish on a long stream), only by its own.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rebuildTimeout)
	defer cancel()
	if err := p.rebuildAfterErasure(rctx); err != nil {
		return err
	}
	return p.checkpoint(rctx) // publishes first
}

// rebuildAfterErasure replaces the state by one rebuilt from the events
// stream up to the highest sequence applied, and remembers the erased
// sequences (a batch fetched before they were deleted must skip them). On
// error the old state is kept. Called with p.mu held and no checkpoint being
// written (applyErasures waits for it): the rebuild replaces the store's
// regions.
func (p *Processor) rebuildAfterErasure(ctx context.Context) error {
	start := time.Now()
	es, err := p.readErasures(ctx)
	if err != nil {
		return err
	}
	eng, err := newEngine(p.eng.cfg, p.eng.regions, p.eng.r)
	if err != nil {
		return err
	}
	eng.lookup = p.eng.lookup
	eng.floor = es.floor
	target := p.appliedSeq
	p.log.Warn("erasure recorded: rebuilding the state from the events stream without the erased events",
		"erasure_seq", es.last, "through_seq", target)
	applied, skipped := 0, 0
	if target > 0 {
		r, err := p.bus.Reader(ctx, schemas.StreamEvents, stream.ReadSpec{FromSeq: 1, ResetAttempts: catchUpResetAttempts, PullAhead: 2000})
		if err != nil {
			return fmt.Errorf("rebuild after erasure: %w", err)
		}
		defer r.Stop()
		for {
			m, err := r.Next(ctx, 2*time.Second)
			if errors.Is(err, stream.ErrNoMessage) {
				break // the stream holds nothing more up to target
			}
			if err != nil {
				return fmt.Errorf("rebuild after erasure: read the events stream: %w", err)
			}
			if m.Seq > target {
				break
			}
			if _, deleted := es.deleted[m.Seq]; deleted {
				continue // deleted since the reader fetched it ahead
			}
			_, ok, err := eng.applyMsg(m.Data, m.Seq, m.Time)
			switch {
			case err != nil && !IsPermanent(err):
				return fmt.Errorf("rebuild after erasure: apply sequence %d: %w", m.Seq, err)
			case err != nil:
				skipped++ // dead-lettered when it was first seen
			case ok:
				applied++
			}
			if m.Seq >= target {
				break
			}
		}
	}
	// Everything up to target is done: applied, refused before, or gone
	// (the erased events, and those aged out). What the old state held
	// above target stays done.
	done := doneSeqs{low: target}
	for s := range p.eng.done.above {
		if s > target {
			done.mark(s)
		}
	}
	eng.done = done
	p.eng = eng
	p.store.forgetRegions()
	p.store.erasures, p.store.floor = es.last, es.floor
	p.erased = es.deleted
	p.m.erasureRebuilds.Inc()
	p.log.Info("state rebuilt after erasure", "applied", applied, "refused", skipped, "took", time.Since(start))
	return nil
}
