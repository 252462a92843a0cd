// Deciding one region-day: the rule set evaluated on the day's record (with
// the week before and, for a provisional day, its nowcast R), the decision it
// makes and the level move that goes with it.

package decide

import (
	"fmt"
	"maps"
	"math"
	"strings"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/science/thresholds"
	"github.com/epiwatch/epiwatch/schemas"
)

// decisionID is the idempotency key of a decision on a data day:
// "<region>:<date>:<rule set id>@<version>".
func (d *Decider) decisionID(region string, day schemas.Date) string {
	return fmt.Sprintf("%s:%s:%s@%s", region, day, d.rs.ID, d.version)
}

// baseDecision fills what every decision of region on day carries.
func (d *Decider) baseDecision(region string, day schemas.Date, id string) schemas.Decision {
	name := region
	if r, ok := d.regions.Get(region); ok {
		name = r.NameEN
	}
	method := string(d.rs.RMethod)
	if d.rs.RMethod == thresholds.RCori {
		method += "/" + string(d.rs.RStatistic)
	}
	return schemas.Decision{
		DecisionID: id, Region: region, RegionName: name, Date: day, DecidedAt: d.clock().UTC(),
		RuleSet: d.rs.ID, RuleSetVersion: d.version, RMethod: method, DataAsOf: d.hist.newest(region),
	}
}

// currentLevel is the level the rule set is told the region is at.
func currentLevel(s thresholds.LevelState, cfg thresholds.LevelConfig) int {
	if s.Level == 0 {
		return thresholds.NewLevelState(cfg, time.Time{}).Level
	}
	return min(max(s.Level, 1), len(cfg.Names))
}

// dayPending decides data day `day` of region from the stored records and
// the committed level: evaluate the rule set, then move the level with
// thresholds.Next at levelNow (or hold it at a manual level). waitedOut
// marks an incomplete day (provisional, or a feed that has not reported)
// decided as keep because its complete version never came.
func (d *Decider) dayPending(region string, day schemas.Date, cur LevelRecord, levelNow time.Time, waitedOut bool) PendingDecision {
	dec := d.baseDecision(region, day, d.decisionID(region, day))
	lc := d.levelsFor(region)
	level := currentLevel(cur.LevelState, lc)
	weekBefore := d.weekBefore(region, day)
	in, ok := d.hist.get(region, day)
	var action thresholds.Action
	switch {
	case !ok:
		dec.Flags = []string{schemas.FlagMissingInput}
		res := thresholds.Evaluate(d.rs, inputsOf(d.fields, nil, weekBefore, level), dec.Flags)
		action, dec.Clause = thresholds.Keep, res.Clause
		dec.Reason = fmt.Sprintf("no indicator for %s: %s", day, res.Reason)
	case waitedOut:
		dec.Flags = evalFlags(in.Flags)
		if in.Provisional {
			dec.Flags = append(dec.Flags, schemas.FlagProvisional)
		}
		action, dec.Clause = thresholds.Keep, ClauseProvisionalInput
		dec.Reason = fmt.Sprintf("keep: %s is still incomplete (%s) with data up to %s", day, incompleteWhy(in, d.cfg.UseProvisional, d.rs.RNowcast), dec.DataAsOf)
	default:
		dec.Flags = evalFlags(in.Flags)
		res := d.evaluate(&in, weekBefore, level, dec.Flags)
		action, dec.Clause, dec.Reason = res.Action, res.Clause, res.Reason
		if in.Provisional {
			dec.Flags = append(dec.Flags, schemas.FlagProvisional)
		}
	}
	nowcast := ok && !waitedOut && usesNowcast(d.rs, &in)
	if ok {
		dec.RMean, dec.RQ025, dec.RQ975, dec.BedOccupancyPct = in.RMean, in.RQ025, in.RQ975, in.BedOccupancyPct
		dec.RStatus, dec.RCases, dec.RProbAbove1, dec.Trend = in.RStatus, in.RCases, in.RProbAbove1, in.Trend
		if nowcast {
			// The decision records the R it compared.
			dec.Flags = append(dec.Flags, schemas.FlagNowcast)
			dec.RMethod += "/nowcast"
			dec.RMean, dec.RQ025, dec.RQ975, dec.RProbAbove1 = in.RNowcastMean, in.RNowcastQ025, in.RNowcastQ975, nil
			dec.Reason += fmt.Sprintf("; R from the nowcast as of %s (%s is still provisional): %.2f, 95 %% CrI %.2f–%.2f",
				in.NowcastAsOf, day, *in.RNowcastMean, *in.RNowcastQ025, *in.RNowcastQ975)
			if clear, why := d.nowcastClear(&in, level); clear {
				dec.Reason += "; " + why
			}
		}
		if why := dataReasons(in); why != "" {
			dec.Reason += "; data: " + why
		}
	}
	return d.move(dec, cur, action, levelNow, lc, day)
}

// evaluate applies the rule set to a day. Uncertain metrics (R from few
// cases, positivity from few tests) are unknown to the rules; with
// decide.uncertain_r_may_ease an uncertain R may still ease, never
// strengthen: the rules are evaluated again with it, and only an ease is
// taken from that evaluation.
func (d *Decider) evaluate(in, weekBefore *schemas.Indicator, level int, flags []string) thresholds.Result {
	inputs := inputsOf(d.fields, in, weekBefore, level)
	if usesNowcast(d.rs, in) {
		nowcastR(inputs, in)
		return thresholds.Evaluate(d.rs, inputs, flags)
	}
	res := thresholds.Evaluate(d.rs, inputs, flags)
	if !d.cfg.UncertainRMayEase || in.RStatus != schemas.RStatusFewCases || res.Action == thresholds.Strengthen {
		return res
	}
	with := thresholds.Evaluate(d.rs, inputsOf(d.fields, in, weekBefore, level, in.Uncertain...), flags)
	if with.Action == thresholds.Ease {
		with.Reason += fmt.Sprintf(" (R from %d cases, uncertain; decide.uncertain_r_may_ease lets it ease)", in.RCases)
		return with
	}
	return res
}

// nowcastClear says whether a provisional day is decided now on its
// nowcast R (r.nowcast) rather than waited for: only when the rule set
// recommends the same wherever the day's R may still land, all else as the
// day reports it. The second result says across what, for the reason.
//
// For a rule set on R's mean, "where R may land" is an interval of
// EpiEstim's mean on the completed data (r_nowcast_final_*): the final
// data's decision compares that mean, so an action that holds across the
// interval stands once the late reports are in with the interval's
// probability. An ease must hold across the 95 % interval — a wrong ease is
// the worst thing the system can send — a strengthen or a keep across the
// 80 % interval (a wrong keep is at worst a day's delay, and a strengthen on
// 90 % odds is what the plan's surge clauses are for). The rule set is
// evaluated at both ends, the nowcast mean, and on each side of every R
// threshold inside the interval (the rules are step functions of R, not
// always monotone: the plan's 1.15–1.3 band strengthens where R > 1.3
// keeps). Deciding across the nowcast R's 95 % CrI instead (Cori's own
// posterior width added) made a day near a threshold wait — exactly when a
// level changes: on the simulator it changed levels 0.3 days before
// complete days; these intervals do better (TestDecisionModes; README,
// decision modes). Rule sets on the bounds of R (kz-2020-plan-bounds)
// compare the CrI's ends, so for them the CrI itself must clear: the rule
// set is evaluated at its lower end, mean and upper end.
func (d *Decider) nowcastClear(in *schemas.Indicator, level int) (bool, string) {
	if !usesNowcast(d.rs, in) {
		return false, ""
	}
	flags := evalFlags(in.Flags)
	base := inputsOf(d.fields, in, d.weekBefore(in.Region, in.Date), level)
	nowcastR(base, in)
	// across reports the action the rule set gives at every R of lo..hi
	// (ok false: not the same throughout).
	across := func(lo, hi float64) (thresholds.Action, bool) {
		rs := []float64{lo, *in.RNowcastMean, hi}
		if d.rs.RStatistic == thresholds.RMean {
			for _, c := range append(d.rs.Cuts(thresholds.MetricR), d.rs.Cuts(thresholds.MetricRMean)...) {
				if c > lo && c < hi {
					rs = append(rs, math.Nextafter(c, math.Inf(-1)), c, math.Nextafter(c, math.Inf(1)))
				}
			}
		}
		var first thresholds.Action
		for i, r := range rs {
			x := maps.Clone(base)
			if d.rs.RStatistic == thresholds.RMean {
				// The mean is what the final data's decision compares;
				// the CrI's ends are the nowcast's and stay as they are.
				x[thresholds.MetricRMean] = r
			} else {
				x[thresholds.MetricRMean], x[thresholds.MetricRQ025], x[thresholds.MetricRQ975] = r, r, r
			}
			if _, ok := x["r_median"]; ok {
				x["r_median"] = r
			}
			a := thresholds.Evaluate(d.rs, x, flags).Action
			if i > 0 && a != first {
				return "", false
			}
			first = a
		}
		return first, true
	}
	if d.rs.RStatistic != thresholds.RMean || in.RNowcastFinalQ025 == nil || in.RNowcastFinalQ975 == nil {
		_, ok := across(*in.RNowcastQ025, *in.RNowcastQ975)
		return ok, "the same recommendation across it"
	}
	q025, q975 := *in.RNowcastFinalQ025, *in.RNowcastFinalQ975
	why95 := fmt.Sprintf("the complete data's R mean is expected in %.2f–%.2f (95 %%), the same recommendation across it", q025, q975)
	if in.RNowcastFinalQ10 == nil || in.RNowcastFinalQ90 == nil {
		_, ok := across(q025, q975)
		return ok, why95
	}
	q10, q90 := *in.RNowcastFinalQ10, *in.RNowcastFinalQ90
	a, ok := across(q10, q90)
	switch {
	case !ok:
		return false, ""
	case a == thresholds.Ease:
		a95, ok := across(q025, q975)
		return ok && a95 == thresholds.Ease, why95
	}
	return true, fmt.Sprintf("the complete data's R mean is expected in %.2f–%.2f (80 %%), the same recommendation across it", q10, q90)
}

// nowcastDecides is nowcastClear's verdict alone.
func (d *Decider) nowcastDecides(in *schemas.Indicator, level int) bool {
	ok, _ := d.nowcastClear(in, level)
	return ok
}

// weekBefore is region's record of 7 days before day (nil: none), for the
// week-before positivity.
func (d *Decider) weekBefore(region string, day schemas.Date) *schemas.Indicator {
	if wb, ok := d.hist.get(region, day.AddDays(-7)); ok {
		return &wb
	}
	return nil
}

// incompleteWhy says why an incomplete day was waited for.
func incompleteWhy(in schemas.Indicator, useProvisional, rnowcast bool) string {
	var why []string
	switch {
	case in.Provisional && !useProvisional && rnowcast && in.RNowcastMean == nil:
		why = append(why, "provisional, without a nowcast R")
	case in.Provisional && !useProvisional && rnowcast:
		why = append(why, "provisional, and its nowcast R rests on too few cases or its 95 % CrI spans a threshold")
	case in.Provisional && !useProvisional:
		why = append(why, "provisional, and decide.use_provisional is false")
	}
	for _, f := range in.StaleFeeds {
		why = append(why, f+" feed not reported")
	}
	return strings.Join(why, "; ")
}

// dataReasons are the record's flag reasons that qualify what the decision
// rests on (missing feeds, uncertain metrics, facilities), so every decision
// says what it was based on.
func dataReasons(in schemas.Indicator) string {
	var out []string
	for i, f := range in.Flags {
		switch f {
		case schemas.FlagStaleFeed, schemas.FlagFewCases, schemas.FlagFewTests, schemas.FlagPresumedClosed,
			schemas.FlagUnknownFacility, schemas.FlagOverCapacity, schemas.FlagMissingInput, schemas.FlagBacklogDump:
			if i < len(in.FlagReasons) {
				out = append(out, in.FlagReasons[i])
			}
		}
	}
	return strings.Join(out, "; ")
}

// stalePending is the keep recorded when a region has no recent complete
// day. It decides no data day (LastDay is unchanged).
func (d *Decider) stalePending(region string, ref schemas.Date, id, reason string, cur LevelRecord, levelNow time.Time) PendingDecision {
	dec := d.baseDecision(region, ref, id)
	dec.Flags = []string{schemas.FlagMissingInput}
	dec.Clause, dec.Reason = ClauseStaleInput, reason
	return d.move(dec, cur, thresholds.Keep, levelNow, d.levelsFor(region), 0)
}

// move applies a decision's action to the region's level at levelNow: one
// step by the rule set (thresholds.Next), or — while a manual level is in
// force — no move, with where the rule alone would have gone beside it
// (RuleLevelTo). A manual level past its last day expires here and the rule
// set decides again from the level it left. day is the data day decided
// (0: none).
func (d *Decider) move(dec schemas.Decision, cur LevelRecord, action thresholds.Action, levelNow time.Time, lc thresholds.LevelConfig, day schemas.Date) PendingDecision {
	manual := cur.Manual
	if manual != nil && manual.Until != 0 && schemas.DateOf(levelNow) > manual.Until {
		dec.Reason += fmt.Sprintf("; the manual level %s set by %s expired after %s: the rule set decides again", lc.Name(manual.Level), manual.By, manual.Until)
		manual = nil
	}
	state, tr := thresholds.Next(cur.LevelState, action, levelNow, lc)
	dec.RuleLevelTo = tr.To
	if manual == nil {
		dec.Origin = schemas.OriginRule
		d.fillTransition(&dec, action, tr)
		return PendingDecision{Decision: dec, State: state, Day: day}
	}
	dec.Origin, dec.SetBy, dec.ManualUntil = schemas.OriginManual, manual.By, manual.Until
	held := thresholds.Transition{From: cur.Level, To: cur.Level, FromName: lc.Name(cur.Level), ToName: lc.Name(cur.Level)}
	held.Reason = fmt.Sprintf("held at the manual level %s (set by %s on %s: %s; %s); the rule alone: %s",
		lc.Name(manual.Level), manual.By, manual.At.Format("2006-01-02"), manual.Reason, manual.until(), tr.Reason)
	d.fillTransition(&dec, action, held)
	return PendingDecision{Decision: dec, State: cur.LevelState, Day: day, Manual: manual}
}

// levelsFor is the level configuration of a region: decide.levels with the
// region's own starting level (decide.initial_levels).
func (d *Decider) levelsFor(region string) thresholds.LevelConfig {
	lc := d.cfg.Levels
	if l, ok := d.cfg.InitialLevels[region]; ok {
		lc.Initial = l
	}
	return lc
}

func (d *Decider) fillTransition(dec *schemas.Decision, action thresholds.Action, tr thresholds.Transition) {
	dec.Action = string(action)
	dec.LevelFrom, dec.LevelTo = tr.From, tr.To
	dec.LevelFromName, dec.LevelToName = tr.FromName, tr.ToName
	dec.Reason += "; level: " + tr.Reason
}
