package clickhouse

import (
	"time"

	"github.com/epiwatch/epiwatch/schemas"
)

// table is a table the package writes and the column list it writes, in
// the DDL's order (TestColumnListsMatchTheDDL compares the two).
type table struct {
	name    string // the table written (a *_store table, or replay_runs)
	columns string // the column list: 18.16 rejects INSERT without one
}

// regionsTable is the region reference, written by LoadRegions in
// regionRow order.
var regionsTable = table{"regions_store", `code, country, name_en, name_ru, kind, population, lat, lon, version`}

func regionRow(r schemas.Region, version uint64) []any {
	return []any{r.Code, r.Country, r.NameEN, r.NameRU, r.Kind, uint32(r.Population), r.Lat, r.Lon, version}
}

var eventsTable = table{"events_v2_store", `event_id, type, region, event_date, source, ingested_at, seq,
	person_pseudonym, key_id, age_band, sex, district, report_date, onset_date, imported, classification,
	index_pseudonym, contact_pseudonym, setting, sample_date, result_date, test_kind, result, lab,
	facility_id, facility_name, snapshot_time, bed_kind, beds_total, beds_occupied, dose_number, vaccine,
	vaccination_date, corrects, retraction_reason, feed, facility_status, capacity_infectious, capacity_icu,
	capacity_provisional, payload`}

func dateOrNil(d schemas.Date) *time.Time {
	if d.IsZero() {
		return nil
	}
	t := d.Time()
	return &t
}

func u32OrNil(p *int) *uint32 {
	if p == nil || *p < 0 {
		return nil
	}
	v := uint32(*p)
	return &v
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// eventRow maps an event to events_v2_store's columns, in eventsTable order.
func eventRow(e *schemas.Event, seq uint64, ingestedAt time.Time, payload []byte) []any {
	var p schemas.Person
	if e.Person != nil {
		p = *e.Person
	}
	var idx, cp string
	if e.IndexPerson != nil {
		idx = e.IndexPerson.Pseudonym
		if p.KeyID == "" {
			p.KeyID = e.IndexPerson.KeyID
		}
	}
	if e.ContactPerson != nil {
		cp = e.ContactPerson.Pseudonym
	}
	var snap *time.Time
	if e.SnapshotTime != nil {
		t := e.SnapshotTime.UTC()
		snap = &t
	}
	return []any{
		e.EventID, string(e.Type), e.Region, e.Date().Time(), e.Source, ingestedAt.UTC(), seq,
		p.Pseudonym, p.KeyID, p.AgeBand, p.Sex, p.District,
		dateOrNil(e.ReportDate), dateOrNil(e.OnsetDate), b2u(e.Imported), e.Classification,
		idx, cp, e.Setting,
		dateOrNil(e.SampleDate), dateOrNil(e.ResultDate), e.TestKind, e.Result, e.Lab,
		e.FacilityID, e.FacilityName, snap, e.BedKind, u32OrNil(e.Total), u32OrNil(e.Occupied),
		uint8(e.DoseNumber), e.Vaccine, dateOrNil(e.VaccinationDate),
		e.Corrects(), e.RetractionReason, string(e.Feed), e.FacilityStatus,
		u32OrNil(e.CapacityInfectious), u32OrNil(e.CapacityICU), u32OrNil(e.CapacityProvisional),
		string(payload),
	}
}

var indicatorsTable = table{"indicators_store", `region, date, version, cases, cases_local, cases_imported,
	cases_by_onset, cases_7d, cases_repeat, r_method, r_mean, r_sd, r_q025, r_median, r_q975, r_ratio, r_status, r_cases,
	r_prob_above_1, growth_rate, doubling_days, halving_days, trend,
	nowcast_as_of, cases_nowcast_median, cases_nowcast_q025, cases_nowcast_q975, nowcast_completeness,
	r_nowcast_mean, r_nowcast_q025, r_nowcast_median, r_nowcast_q975, r_nowcast_final_q025, r_nowcast_final_q10, r_nowcast_final_q90, r_nowcast_final_q975,
	cases_7d_per_100k, tests, tests_positive, tests_7d, tests_positive_7d, positivity_7d_pct, tests_7d_per_100k, beds_total, beds_occupied,
	bed_occupancy_pct, icu_total, icu_occupied, icu_occupancy_pct, provisional_total, provisional_occupied,
	provisional_occupancy_pct, stale_facilities, closed_facilities, presumed_closed_facilities, unknown_facilities,
	contacts_7d, contacts_per_case, contacts_became_cases_pct,
	vaccinated_dose1, vaccinated_dose2, vaccinated_dose3_plus, vaccination_dose1_pct, vaccination_dose2_pct,
	vaccination_dose3_plus_pct, provisional, stale_feeds, uncertain, flags, flag_reasons, computed_at`}

func u32(n int) uint32 {
	if n < 0 {
		return 0
	}
	return uint32(n)
}

func strs(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// indicatorRow maps an indicator record to indicators_store's columns, in
// indicatorsTable order. A record's nowcast (nowcast_as_of set) also becomes
// a row of nowcast_store, by 011's materialized view: the sink writes the
// indicators alone.
func indicatorRow(in *schemas.Indicator) []any {
	return []any{
		in.Region, in.Date.Time(), in.Version, u32(in.Cases), u32(in.CasesLocal), u32(in.CasesImported),
		u32(in.CasesByOnset), u32(in.Cases7d), u32(in.CasesRepeat), in.RMethod, in.RMean, in.RSD, in.RQ025, in.RMedian, in.RQ975, in.RRatio,
		in.RStatus, u32(in.RCases), in.RProbAbove1, in.GrowthRate, in.DoublingDays, in.HalvingDays, in.Trend,
		dateOrNil(in.NowcastAsOf), in.CasesNowcastMedian, in.CasesNowcastQ025, in.CasesNowcastQ975, in.NowcastCompleteness,
		in.RNowcastMean, in.RNowcastQ025, in.RNowcastMedian, in.RNowcastQ975, in.RNowcastFinalQ025, in.RNowcastFinalQ10, in.RNowcastFinalQ90, in.RNowcastFinalQ975,
		in.Cases7dPer100k, u32(in.Tests), u32(in.TestsPositive), u32(in.Tests7d), u32(in.TestsPositive7d), in.Positivity7dPct, in.Tests7dPer100k,
		u32(in.BedsTotal), u32(in.BedsOccupied), in.BedOccupancyPct, u32(in.ICUTotal), u32(in.ICUOccupied),
		in.ICUOccupancyPct, u32(in.ProvTotal), u32(in.ProvOccupied), in.ProvOccupancyPct, u32(in.StaleFacilities),
		u32(in.ClosedFacilities), u32(in.PresumedClosedFacilities), u32(in.UnknownFacilities),
		u32(in.Contacts7d), in.ContactsPerCase, in.ContactsBecameCasesPct, u32(in.VaccinatedDose1),
		u32(in.VaccinatedDose2), u32(in.VaccinatedDose3Plus), in.VaccinationDose1Pct, in.VaccinationDose2Pct,
		in.VaccinationDose3PlusPct, b2u(in.Provisional), strs(in.StaleFeeds), strs(in.Uncertain),
		strs(in.Flags), strs(in.FlagReasons), in.ComputedAt.UTC(),
	}
}

var decisionsTable = table{"decisions_store", `decision_id, region, region_name, date, decided_at, rule_set,
	rule_set_version, clause, action, reason, r_method, r_mean, r_q025, r_q975, bed_occupancy_pct, data_as_of,
	flags, level_from, level_to, level_from_name, level_to_name, seq, r_status, r_cases, r_prob_above_1, trend,
	origin, rule_level_to, set_by, manual_until`}

func decisionRow(d *schemas.Decision, seq uint64) []any {
	asOf := d.DataAsOf.Time()
	origin := d.Origin
	if origin == "" { // decided before origins were recorded: by the rule set
		origin = schemas.OriginRule
	}
	ruleTo := d.RuleLevelTo
	if ruleTo == 0 {
		ruleTo = d.LevelTo
	}
	return []any{
		d.DecisionID, d.Region, d.RegionName, d.Date.Time(), d.DecidedAt.UTC(), d.RuleSet, d.RuleSetVersion,
		d.Clause, d.Action, d.Reason, d.RMethod, d.RMean, d.RQ025, d.RQ975, d.BedOccupancyPct, asOf,
		strs(d.Flags), uint8(d.LevelFrom), uint8(d.LevelTo), d.LevelFromName, d.LevelToName, seq,
		d.RStatus, u32(d.RCases), d.RProbAbove1, d.Trend, origin, uint8(ruleTo), d.SetBy, dateOrNil(d.ManualUntil),
	}
}

var alertsTable = table{"alerts_store", `alert_id, decision_id, region, channel, kind, status, attempts, error, at, escalated, seq`}

func alertRow(a *schemas.AlertRecord, seq uint64) []any {
	return []any{a.AlertID, a.DecisionID, a.Region, a.Channel, a.Kind, a.Status, uint16(a.Attempts), a.Error, a.At.UTC(), b2u(a.Escalated), seq}
}

var signalsTable = table{"signals_store", `region, date, period, stream, method, version, observed, upper_bound,
	alarm, excess, provisional, note, computed_at`}

func signalRow(g *schemas.Signal) []any {
	return []any{
		g.Region, g.Date.Time(), g.Period, g.Stream, g.Method, g.Version, g.Observed, g.UpperBound,
		b2u(g.Alarm), g.Excess, b2u(g.Provisional), g.Note, g.ComputedAt.UTC(),
	}
}
