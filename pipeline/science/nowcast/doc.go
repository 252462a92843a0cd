// Package nowcast estimates how many cases the most recent onset days will
// eventually count, from the cases reported so far, and R on those
// completed counts. The last days of a series by onset date are always
// incomplete — a case falling ill yesterday is reported days later — so
// the raw series dips at its end and R computed on it falls; a nowcast
// corrects the dip and says how uncertain the correction is.
//
// # Method
//
// It follows the Bayesian nowcast of Höhle & an der Heiden (2014),
// "Bayesian nowcasting during the STEC O104:H4 outbreak in Germany, 2011",
// Biometrics 70:993–1002: a discrete-time hazard model of the reporting
// delay with a logit link and covariates (there, among others, the weekday
// of reporting), and the eventual count of each onset day predicted as
// what is reported plus a negative binomial remainder, with the
// uncertainty of the delay distribution propagated by sampling. Two choices
// differ, each for a stated reason.
//
// The delay. The hazard is the reverse-time one (Lawless 1994, "Adjustments
// for reporting delays and the prediction of occurred but not reported
// events", Can J Stat 22:15–31): g(t,d) = P(delay = d | delay ≤ d) for
// onset day t, which, unlike the forward hazard, has a likelihood in the
// reported cases alone (the conditional multinomial of the delays of a day
// given they are at most asOf − t), without the unknown eventual counts;
// without covariates its maximum-likelihood estimate is the chain ladder's
// development factors, the empirical reporting-triangle method of
// baselinenowcast. Here
//
//	logit g(t,d) = γ_d + ω_{weekday(t+d)},   d = 1..MaxDelay
//
// with ω the day-of-week effect on reporting (the odds of a due report
// being sent that weekday; weekend reports deferred to Monday make ω low
// on Saturday and Sunday and high on Monday). Each onset day of the last
// DelayWindow days contributes binomial trials (the cases reported by delay
// d, of which those at delay d), older days down-weighted with a half-life
// (DelayHalfLife) so that a drifting delay is followed. The priors are weak
// (see delay.go: a second-order random walk over d keeps the sparse long
// delays smooth); the posterior is approximated by a normal at its mode
// (Laplace) and sampled. A region's model can take a pooled model (all
// regions, FitDelay without a prior) as its prior: a small region then
// keeps the pooled delay, a large one its own. Completeness — the share
// of a day's eventual cases reported by asOf — is q_t = Π_{d > asOf−t}
// (1 − g(t,d)), with the weekdays of the future report days known.
//
// The remainder. Höhle & an der Heiden give each day's expected count an
// independent gamma prior; here the prior comes from the recent trend, as
// NobBS (McGough et al. 2020, "Nowcasting by Bayesian Smoothing", PLoS
// Comput Biol 16:e1007735) lets a random walk on log λ_t carry
// information from the older, complete days to the newest, nearly empty
// ones. Over the last TrendDays onset days
//
//	λ_t ~ Gamma(shape 1/τ², mean e^(a + b·(t − asOf))),   n_t | λ_t ~ Poisson(q_t·λ_t)
//
// (n_t reported so far): a negative binomial log-linear regression with
// offset log q_t, fitted by maximum likelihood (τ² by moments, at least
// TrendTau2, once per nowcast), whose (a, b) is drawn from its normal
// approximation. Given
// (a, b), λ_t's posterior is Gamma(1/τ² + n_t, rate 1/(τ²μ_t) + q_t) and
// the cases still to come are Poisson((1 − q_t)·λ_t) — a negative
// binomial on the not-yet-reported fraction. A day older than MaxDelay
// is complete: its nowcast is its reported count, interval width 0.
//
// The uncertainty is thus the remainder given what is known, plus that of
// the trend (a, b) shared by the recent days, plus that of the delay
// distribution: DelayDraws draws of the delay parameters, each with
// Draws/DelayDraws completed series. The nowcast of a day is the median
// and quantiles of its Draws completed counts. The back-test
// (backtest_test.go) checks the result on simulated outbreaks with surges
// and declines, the weekday effect and drifting delays, against the count
// each onset day finally reached: it asks for the 95 % interval to cover
// it on 88–99.5 % of the last 14 days and for the median's error over the
// last week to be at most 0.3 of the reported counts'; measured, 96.4 %
// (93–98 % per outbreak, 92–99 % at each age) and 0.19 (0.15–0.21).
// BenchmarkNowcast20Regions measures the goal of 20 regions × 60 days,
// nowcast and R, in under 20 ms on one core.
//
// R. Result.R estimates R by onset date with Cori et al.'s (2013) gamma
// posterior (package epi) on each completed series and mixes the
// posteriors: the uncertainty of the nowcast widens R's credible interval
// where the counts are uncertain, and where they are not — a window whose
// days and infectiousness are complete — the estimate is epi's, exactly.
// In the back-test its 95 % interval covers the simulator's R (weighted
// over the window as the estimator's estimand) on 93.6 % of the last 14
// days (91–97 % per outbreak).
//
// # Cases without an onset date
//
// They are left out of the series by onset, and counted (Result.NoOnset)
// so that callers can say how many. Imputing their onsets would add cases
// to every day in proportion, not information: R is unchanged by a
// constant thinning (ΣI and ΣΛ scale alike), and the counts by onset
// are then the counts of cases with a known onset. This assumes the onset
// is missing independently of the onset day; a reporting system that drops
// onsets more often in a surge would bias both.
//
// # Purity
//
// The package takes values and returns values: no I/O, no clock, no
// goroutines, no global randomness — every draw comes from the *rand.Rand
// passed in, so a seed reproduces a nowcast exactly.
package nowcast
