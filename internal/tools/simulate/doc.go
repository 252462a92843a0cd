// Package simulate generates a realistic, reproducible COVID-19-like outbreak
// as the events producers would send — cases, traced contacts, laboratory
// tests, hospital bed snapshots and vaccinations — with the ground truth (R,
// incidence, occupancy) beside them. It feeds demos, load tests and end-to-end
// checks of the R estimator and the restriction rules. It stands where the
// producers stand: it imports only schemas, and what it writes is what the
// ingest API accepts.
//
// Where to read on: regionState.step (the epidemic model), newCase (what a
// case becomes), Config (the reporting scenarios), Sim.Run (delivery order and
// reproducibility), Sim.Truth (the truth to compare with).
package simulate
