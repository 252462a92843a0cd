// Package decide makes the plan's restriction decisions: per region, on a
// cadence and on demand, it evaluates a rule set (package thresholds) on the
// region's latest complete day of indicators, moves the region's restriction
// level one step per strengthen or ease (with a minimum time at a level before
// easing), persists the level in JetStream KV and publishes every decision —
// inputs, rule set, clause, old → new level — on the decisions stream, from
// which the ClickHouse sink writes epiwatch.decisions.
//
// When it decides is ModeSchedule or ModeData; what a rule set sees is
// inputsOf; why a crash never moves a level twice is Decider.claim. One active
// decider per deployment is the intended setup: replicas sharing the durable
// consumer would each see part of the indicators (see history). The claims
// make it safe for the service and the decide command (or a rolling restart)
// to overlap.
package decide
