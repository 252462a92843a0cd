// Package simulate generates a realistic, reproducible COVID-19-like outbreak
// as the epiwatch events producers would send: cases, traced contacts,
// laboratory tests, hospital bed snapshots and vaccinations, for any regions
// of the region reference, with the ground truth (R, incidence, occupancy)
// beside them. It feeds demos, load tests and end-to-end checks of the R
// estimator and the restriction rules. The simulator stands where the
// producers stand: it imports only schemas, and what it writes is what the
// ingest API accepts.
//
// # Model
//
// Each region runs a renewal process on cases by symptom-onset day (the
// model the Cori estimator inverts):
//
//	Λ_t = Σ_{s≥1} w_s I_{t-s}                  total infectiousness
//	L_t ~ Poisson(R(t) · S_t/N · Λ_t)           local cases
//	M_t ~ Poisson(import rate) (+ seed cases)   imported cases
//	I_t = L_t + M_t
//
// w is the serial interval, a gamma (default mean 4.7, sd 2.9 days)
// discretised exactly as EpiEstim does, so an unbiased estimator recovers
// R(t). R(t) is piecewise constant per region (RSchedule): given in
// Config.Schedules, or drawn from the seed as waves of growth and control
// (R 1.3–1.5 for two to three weeks, 0.7–0.85 for three to four, a second
// wave 1.15–1.3, and so on). Each region starts with a few imported seed
// cases on its first days. S/N is the susceptible share: cases are a fraction
// (Ascertainment) of infections, and the pool of N = population·Scale
// shrinks by cases/Ascertainment, which keeps a long R > 1 plausible.
//
// Each case becomes events:
//
//   - a case event reported on onset + a reporting delay (a gamma rounded to
//     whole days, default mean 3 days; none when Config.Delays is off), with
//     the onset date missing for some, imported flagged, mostly confirmed and
//     some probable. Reporting has a day-of-week effect (by default
//     Config.WeekendDeferral 0.4: 40 % of the reports due on a Saturday or
//     Sunday come on the Monday; 0 turns it off), and the delay
//     distribution may drift over the outbreak (Config.DelayDrift); both
//     move report dates only;
//   - for confirmed cases a positive PCR or antigen test sampled on onset or
//     the day after, its result (PCR: 1–2 days later) no later than the report;
//   - Poisson(3–5) traced contacts exposed between two days before onset and
//     the report, traced on the report day or the next, half of them tested
//     (negative). Traced contacts are the pool later local cases come from:
//     about half of the local cases are a contact exposed 3–14 days earlier,
//     the same person with the same national ID in both events;
//   - a hospital stay for 7.5 % (admitted 1–4 days after onset, mean stay 10
//     days), 12 % of them in intensive care for part of it.
//
// Besides the cases: negative tests (background screening per population
// and people with similar symptoms per case, so that positivity rises with
// incidence between a few and about 20 %); bed snapshots every morning at
// 08:xx local time from 2–6 hospitals per region (infectious and ICU beds;
// occupancy = other patients + the region's COVID-19 patients; what does not
// fit goes to the region's provisional hospital; occupied never exceeds
// total; optionally a facility goes silent for 3–8 days); and first, second
// (21–28 days later) and booster vaccine doses at a slow daily rate.
//
// # Reporting
//
// The producer is well behaved by default: after each day's events it sends
// a report_complete per region and feed the region uses (case, lab_test,
// bed_snapshot, and contact and vaccination when the configuration
// produces them), so a small region's day without cases is a real zero,
// not a missing day; a laboratory's is for the results dated that day. On
// the first day a facility event registers every hospital and provisional
// hospital as open, with the capacity its snapshots report.
//
// Scenarios reproduce what real reporting does to the data (all off by
// default; see Config):
//
//   - a late region (LateRegion): its case reports of a few days are held
//     back and uploaded together afterwards, while its tests and beds keep
//     coming, so its case feed is stale in between;
//   - a sporadic region (SporadicRegion): a case every six days or so,
//     beds half full with other patients — R from too few cases;
//   - duplicate notifications (DuplicateShare): a hospital notifies a
//     confirmed case again under its own source and event_id;
//   - corrections (RetractShare): a false notification withdrawn by a
//     retraction, or a case filed under a neighbouring region and re-filed
//     under its own by a case that supersedes the first;
//   - a closing facility (CloseFacility): one hospital per region stops
//     reporting in mid-run; half the regions register the closure.
//
// A correction always comes after the event it corrects, from the same
// source. The truth stays the truth of the epidemic: duplicates, false
// notifications and wrong regions are not counted in it (see TruthRow).
//
// Persons carry valid national identifiers — a 12-digit IIN with its check
// digit in Kazakhstan, a 14-digit PIN in Kyrgyzstan — consistent with their
// birth date and sex, unique within the run, and often name, phone and
// address as real producers send them (ingest removes those).
//
// # Delivery and reproducibility
//
// Run emits, day by day, the events a producer would deliver that day: cases
// on their report date, test results on their result date, contacts when
// traced, bed snapshots and doses on their day, corrections 1–5 days after
// what they correct, in the order of the day, the report_complete events
// last. Events due after the last simulated day are not emitted. Everything is
// drawn from random streams seeded by (Seed, region, purpose), so the same
// Config gives byte-identical output; the streams are independent, so
// switching delays off or fixing one region's schedule leaves the epidemic
// of the others unchanged, and the reporting artefacts (duplicates,
// corrections) come from streams of their own, so switching them on leaves
// the epidemic as it was. Event IDs are deterministic
// (sim-<seed>-<kind>-<region>-<n>, sim-<seed>-bed-<facility>-<yyyymmdd>-<kind>,
// sim-<seed>-complete-<region>-<feed>-<yyyymmdd>,
// sim-<seed>-facility-<facility>-<yyyymmdd>-<status>), so re-sending a run
// is harmless: ingest de-duplicates by event_id.
//
// Truth returns, per region and day, the R in force, Λ, the cases by onset
// and by report, tests, hospital census and bed occupancy (ПЗК), to compare
// with what the pipeline computes. FileWriter writes the events as NDJSON or
// the importer's CSV, WriteTruthCSV the truth, and Sender posts events to the
// ingest API.
package simulate
