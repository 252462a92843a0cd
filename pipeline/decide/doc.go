// Package decide makes the plan's restriction decisions: per region, on a
// cadence and on demand, it evaluates a rule set (package thresholds) on the
// region's latest complete day of indicators, moves the region's restriction
// level one step per strengthen or ease (with a minimum time at a level
// before easing), persists the level in JetStream KV and publishes every
// decision — inputs, rule set, clause, old → new level — on the decisions
// stream, from which the ClickHouse sink writes epiwatch.decisions.
//
// # Triggers
//
// Schedule mode (decide.mode: schedule, the default) decides every region
// once a day at decide.at (09:00) in decide.timezone (Asia/Almaty), on its
// newest complete day: the newest day at least decide.complete_after_days
// before today whose record is not provisional. If that day is more than
// decide.max_staleness days old, or there is none, the decision is keep with
// the reason "stale input: newest data is N days old" — never a guess. A
// round with no new complete day since the last decision records nothing new
// (that day's decision stands); a stale keep is recorded once per day.
//
// Data mode (decide.mode: data, for simulation and replay) decides a
// region's day D as soon as indicators for D+complete_after_days exist, each
// data day once and in order; the dwell clock counts data days instead of
// local days. A provisional day is waited for (its complete version) until
// the data are max_staleness days newer, then decided as keep; a missing day
// is decided as keep with the flag missing_input.
//
// DecideNow decides one region on demand (epiwatch decide --region KZ-75).
//
// # Inputs
//
// Every numeric field of schemas.Indicator is passed under its JSON name
// (r_mean, r_q025, r_q975, r_ratio, bed_occupancy_pct, positivity_7d_pct,
// cases_7d_per_100k, …; nil fields are absent), plus restriction_level (the
// region's current level) and positivity_prev_7d_pct (positivity_7d_pct of
// the record 7 days earlier). The indicator's Flags are passed as the rule
// set's data-quality flags (the processor's beds_stale as stale_beds).
//
// # Order of writes and crash safety
//
// A region's level record (LevelRecord, key = region code in
// schemas.BucketLevels) is the single point of coordination. One decision is
//
//  1. compute: evaluate the rule set and thresholds.Next from the committed
//     record;
//  2. claim: write the record with Pending = the full decision and the level
//     state it leads to (compare-and-set on the revision; Create for the
//     first), so two deciders cannot both decide the region;
//  3. publish the decision on epi.decisions.<region> with Nats-Msg-Id =
//     DecisionID, unless the region's newest message there already is it;
//  4. commit: write the new level state, LastDay and LastDecisionID, clearing
//     Pending (compare-and-set).
//
// Whoever loads a record with a pending decision completes steps 3–4 for it
// before anything else. A crash after 2 publishes the claimed decision on
// restart; a crash after 3 finds it on the stream and only commits. Either
// way the level moves once and the stream holds one message per DecisionID.
// Deciding the same day again is a no-op (LastDay), and the same decision
// published twice is dropped by JetStream (Nats-Msg-Id) and by ClickHouse
// (ReplacingMergeTree keyed by decision_id).
//
// The decider keeps a window of indicators in memory (decide.window_days per
// region, latest version per day) and rebuilds it at start by replaying the
// indicators stream; the durable consumer schemas.ConsumerDecide delivers the
// rest. One active decider per deployment is the intended setup: replicas
// sharing the durable consumer would each see part of the indicators. The
// claims make it safe for the service and the decide command (or a rolling
// restart) to overlap.
package decide
