// The replay loop: the live events stream read in sequence order and applied
// by the processor's core, the indicator records published on the scratch
// stream day by day (flush), and their acknowledgements checked (settle).

package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/decide"
	"github.com/epiwatch/epiwatch/pipeline/process"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// loop reads the live stream and applies it.
type loop struct {
	cfg     Config
	rp      *process.Replayer
	pub     *stream.Publisher
	levels  *stream.KV
	seeded  map[string]bool
	res     *Result
	events  atomic.Uint64
	inds    []schemas.Indicator
	unacked []unacked
}

func (l *loop) run(ctx context.Context, src *stream.Bus) error {
	// A continuous pull keeps the next events coming while these are applied.
	r, err := src.Reader(ctx, schemas.StreamEvents, stream.ReadSpec{FromSeq: l.res.FirstSeq, PullAhead: l.cfg.FetchBatch})
	if err != nil {
		return fmt.Errorf("read the live events stream %s: %w", schemas.StreamEvents, err)
	}
	defer r.Stop()
	var newest schemas.Date
	for ctx.Err() == nil {
		m, err := r.Next(ctx, 10*time.Second)
		if errors.Is(err, stream.ErrNoMessage) {
			// The stream no longer holds the rest (limits, or a deleted tail).
			break
		}
		if ctx.Err() != nil {
			break // reported below
		}
		if err != nil {
			return fmt.Errorf("read the live events stream %s: %w", schemas.StreamEvents, err)
		}
		seq := m.Seq
		if seq > l.res.LastSeq {
			break // published after the replay started: not replayed
		}
		l.events.Add(1)
		l.res.Events++
		e, err := l.rp.Decode(m.Data, m.Time)
		if err != nil {
			l.res.Rejected++
		} else {
			// A new day: what the stream held up to the day before is
			// published first, so decisions see the data as it stood.
			if d := e.Date(); d > newest {
				if newest != 0 {
					if err := l.flush(ctx); err != nil {
						return err
					}
				}
				newest = d
			}
			if l.res.FirstDay == 0 || e.Date() < l.res.FirstDay {
				l.res.FirstDay = e.Date()
			}
			applied, err := l.rp.Apply(e, seq, m.Time)
			if err != nil && !process.IsPermanent(err) {
				return fmt.Errorf("replay event at sequence %d: %w", seq, err)
			}
			switch {
			case err != nil:
				l.res.Rejected++
			case !applied:
				l.res.Duplicates++
			}
		}
		if seq == l.res.LastSeq {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	l.res.LastDay = l.rp.Last()
	if err := l.flush(ctx); err != nil {
		return err
	}
	if err := l.settle(ctx, 0); err != nil {
		return err
	}
	l.res.Regions = len(l.seeded)
	return nil
}

// maxUnacked bounds the indicator publishes awaiting their acknowledgement.
const maxUnacked = 8000

// flush publishes the pending indicator records on the scratch stream, as
// the live processor publishes them (same subject, Nats-Msg-Id and bytes),
// after setting each new region's first decided day. The publishes are
// pipelined across flushes (one connection keeps their order); settle
// checks their acknowledgements, and any failure ends the replay.
//
// Decisions are made on the indicators as they stood when the stream had
// reached each day: before applying an event dated after every event before
// it, the replay publishes the records changed so far, so day D is decided
// (decide.mode=data: once records of D+complete_after_days exist) on what had
// arrived by then, and a late report changes later records, not the decision
// already made — as it did live. The cut depends only on the stream's content
// and order, so replaying the same stream with the same configuration gives
// the same decisions; only decided_at (the replay's start time) differs
// between runs.
func (l *loop) flush(ctx context.Context) error {
	if !l.rp.Dirty() {
		return nil
	}
	l.inds = l.rp.Pending(l.inds[:0])
	through := l.rp.Last().String()
	for i := range l.inds {
		in := &l.inds[i]
		if !l.seeded[in.Region] {
			if err := decide.StartAt(ctx, l.levels, in.Region, l.cfg.From); err != nil {
				return err
			}
			l.seeded[in.Region] = true
		}
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode indicator %s: %w", in.Key(), err)
		}
		id := in.MsgIDAt(data, l.rp.Last(), l.res.LastSeq)
		msg := stream.Msg{Subject: schemas.IndicatorSubject(in.Region), ID: id, Data: data, Header: stream.Header{schemas.HeaderDataThrough: {through}}}
		f, err := l.pub.PublishAsync(msg, time.Minute)
		if err != nil {
			return fmt.Errorf("publish indicator %s on the scratch stream: %w", id, err)
		}
		l.unacked = append(l.unacked, unacked{f, id})
	}
	l.rp.MarkPublished()
	l.res.Indicators += uint64(len(l.inds))
	return l.settle(ctx, maxUnacked)
}

// unacked is a publish awaiting its acknowledgement.
type unacked struct {
	f  stream.Pending
	id string
}

// settle checks the acknowledgements that have arrived, and waits for the
// oldest until at most keep remain outstanding.
func (l *loop) settle(ctx context.Context, keep int) error {
	done := 0
	// One minute for all the waits of this call.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for done < len(l.unacked) {
		u := l.unacked[done]
		if len(l.unacked)-done <= keep {
			ok, err := u.f.Done()
			if err != nil {
				return fmt.Errorf("publish indicator %s on the scratch stream: %w", u.id, err)
			}
			if !ok {
				break // not acknowledged yet: keep it and the ones after it
			}
			done++
			continue
		}
		if err := u.f.Wait(wctx); err != nil {
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case wctx.Err() != nil:
				return fmt.Errorf("publish indicator %s on the scratch stream: no acknowledgement within a minute", u.id)
			}
			return fmt.Errorf("publish indicator %s on the scratch stream: %w", u.id, err)
		}
		done++
	}
	l.unacked = l.unacked[:copy(l.unacked, l.unacked[done:])]
	return nil
}
