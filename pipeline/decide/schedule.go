// Which days of a region are decided, and when: the daily round at decide.at in
// schedule mode, each day as it becomes ready in data mode, and the newest
// complete day (or a stale keep) for a round and for DecideNow.

package decide

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/epiwatch/epiwatch/schemas"
)

// runSchedule decides every region once a day at decide.at local time. It
// looks at the clock every poll (and exactly at the deadline), so clock
// jumps and an injected clock work; a start after the deadline decides that
// day at once. A failed round is retried at the next look; rounds are
// idempotent (see Decider).
func (d *Decider) runSchedule(ctx context.Context) {
	var done schemas.Date // the local day whose round succeeded
	for {
		now := d.clock().In(d.loc)
		today := schemas.DateOf(now)
		due := time.Date(now.Year(), now.Month(), now.Day(), d.atHour, d.atMin, 0, 0, d.loc)
		wait := d.poll
		switch {
		case now.Before(due):
			wait = min(wait, due.Sub(now))
		case done != today:
			if err := d.round(ctx, today); err != nil {
				if ctx.Err() != nil {
					return
				}
				d.log.Warn("daily decisions incomplete; will retry", "day", today, "retry_in", d.poll, "err", err)
			} else {
				done = today
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// round decides every region (the reference and any with indicators) on
// its latest complete day relative to today.
func (d *Decider) round(ctx context.Context, today schemas.Date) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.prepare(ctx); err != nil {
		return err
	}
	codes := d.regions.Codes()
	for _, c := range d.hist.codes() {
		if !slices.Contains(codes, c) {
			codes = append(codes, c)
		}
	}
	var errs []error
	made := 0
	for _, r := range codes {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		_, fresh, err := d.decideLatest(ctx, r, today)
		if err != nil {
			errs = append(errs, fmt.Errorf("decide %s: %w", r, err))
			continue
		}
		if fresh {
			made++
		}
	}
	d.log.Info("daily decisions", "day", today, "regions", len(codes), "new", made, "failed", len(errs))
	return errors.Join(errs...)
}

// today is the current calendar day in decide.timezone.
func (d *Decider) today() schemas.Date { return schemas.DateOf(d.clock().In(d.loc)) }

// levelTime is the time the dwell clock reads for a decision: in data mode
// the data day decided on, in schedule mode the local day the decision is
// made (ref). Both count whole calendar days, so a 09:00 round 14 days after
// a strengthening sees exactly 14 days at the level.
func (d *Decider) levelTime(day, ref schemas.Date) time.Time {
	if d.cfg.Mode == ModeData && day != 0 {
		return day.Time()
	}
	return ref.Time()
}

// decideLatest decides region on its newest complete day relative to ref
// (today in schedule mode, the newest data day in data mode): the newest
// day ≤ ref-complete_after_days with a record that is not provisional. If
// that day is more than max_staleness days before ref, or there is none, it
// is a keep with the reason ("stale input"), once per ref day. fresh is false
// when the day (or that day's stale keep) was decided already.
func (d *Decider) decideLatest(ctx context.Context, region string, ref schemas.Date) (schemas.Decision, bool, error) {
	// The level a nowcast day is checked at is the one last committed
	// (another replica's newer one only changes whether this day waits).
	level := d.levelsFor(region).Initial
	if rl, ok := d.levels[region]; ok {
		level = currentLevel(rl.rec.LevelState, d.levelsFor(region))
	}
	c, ok := d.hist.latestComplete(region, ref.AddDays(-d.cfg.CompleteAfterDays), func(in *schemas.Indicator) bool {
		return !in.Provisional || d.cfg.UseProvisional || d.nowcastDecides(in, level)
	})
	if ok && int(ref-c) <= d.cfg.MaxStaleness {
		return d.claim(ctx, region, func(cur LevelRecord) (PendingDecision, bool) {
			if c <= cur.LastDay {
				return PendingDecision{}, false
			}
			return d.dayPending(region, c, cur, d.levelTime(c, ref), false), true
		})
	}
	id := d.decisionID(region, ref) + ":stale"
	reason := d.staleReason(region, ref, c, ok)
	return d.claim(ctx, region, func(cur LevelRecord) (PendingDecision, bool) {
		if cur.LastDecisionID == id {
			return PendingDecision{}, false
		}
		return d.stalePending(region, ref, id, reason, cur, d.levelTime(0, ref)), true
	})
}

func (d *Decider) staleReason(region string, ref, complete schemas.Date, ok bool) string {
	newest := d.hist.newest(region)
	switch {
	case newest == 0:
		return fmt.Sprintf("stale input: no indicators for %s in the last %d days; keep", region, d.cfg.WindowDays)
	case !ok:
		return fmt.Sprintf("stale input: no complete day for %s (newest data %s is provisional or not yet complete, decide.complete_after_days is %d); keep",
			region, newest, d.cfg.CompleteAfterDays)
	}
	s := fmt.Sprintf("stale input: newest data is %d days old (newest complete day %s, as of %s; decide.max_staleness is %d)",
		int(ref-complete), complete, ref, d.cfg.MaxStaleness)
	if newest > complete {
		s += fmt.Sprintf("; days up to %s are provisional or not yet complete", newest)
	}
	return s + "; keep"
}

// advance decides, in data mode, every day of region that is ready, in
// order: day D is ready when indicators for D+complete_after_days exist and
// D's record is not provisional. A provisional day is waited for until the
// data are max_staleness days newer, then decided as keep; a day without a
// record is decided as keep with missing_input. Each day is decided once
// (LevelRecord.LastDay). A region's first decided day is firstDay.
func (d *Decider) advance(ctx context.Context, region string) error {
	for ctx.Err() == nil {
		newest := d.hist.newest(region)
		_, fresh, err := d.claim(ctx, region, func(cur LevelRecord) (PendingDecision, bool) {
			var day schemas.Date
			if cur.LastDay != 0 {
				day = max(cur.LastDay.AddDays(1), d.hist.oldest(region))
			} else {
				day = d.firstDay(region)
			}
			if day == 0 {
				return PendingDecision{}, false
			}
			in, ok := d.hist.get(region, day)
			level := currentLevel(cur.LevelState, d.levelsFor(region))
			ready, waitedOut := d.cfg.ready(day, newest, ok && d.cfg.Incomplete(in.Provisional && !d.nowcastDecides(&in, level), in.StaleFeeds))
			if !ready {
				return PendingDecision{}, false // wait for D+1, or for the complete version
			}
			return d.dayPending(region, day, cur, d.levelTime(day, newest), waitedOut), true
		})
		if err != nil || !fresh {
			return err
		}
	}
	return ctx.Err()
}

// firstDay is where data mode starts deciding a region that has never been
// decided: the first day whose record shows the region reporting what
// decisions read (cases or tests in its 7-day window, or infectious-bed
// snapshots), and no earlier than decide.window_days before the newest data
// day the processor had when it published the records
// (schemas.HeaderDataThrough). A region whose only events
// are old or hold nothing decisions read (a stray vaccination dated years
// ago) is recorded and counted by the processor but opens no run of daily
// "missing input" decisions. 0: nothing to decide yet.
func (d *Decider) firstDay(region string) schemas.Date {
	through := d.hist.through(region)
	from := max(d.hist.oldest(region), through.AddDays(-d.cfg.WindowDays+1))
	for day := from; day != 0 && day <= d.hist.newest(region); day = day.AddDays(1) {
		if in, ok := d.hist.get(region, day); ok && reports(in) {
			return day
		}
	}
	return 0
}

// reports says whether a record holds anything a rule set decides on:
// cases or tests in its window, or beds. (Not R: with no cases in its window
// Cori's posterior is the prior, mean 5, which is no report at all.)
func reports(in schemas.Indicator) bool {
	return in.Cases7d > 0 || in.Tests7d > 0 || in.BedsTotal > 0 || in.StaleFacilities > 0 ||
		in.Positivity7dPct != nil || in.BedOccupancyPct != nil
}
