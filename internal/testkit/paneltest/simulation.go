package paneltest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/detect"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// Simulation is a small, deterministic outbreak in a few regions over a few
// months, written straight into the *_store tables with plain INSERTs: enough
// that every panel of every dashboard has rows to show. Numbers are plausible,
// not a model (the real generator is internal/tools/simulate). Its fields
// are exported so that a test can ask the loaded database about what it
// knows is there (a stale facility, the region that surges).
type Simulation struct {
	Regions  []string // the first one is the region dashboard's
	From, To schemas.Date
	// StaleFacility stops reporting beds five days before the end, so the
	// beds table has a stale row.
	StaleFacility string
	// Surge is a region where a cluster (a point-source outbreak: a
	// wedding, a workplace) takes off in the last SurgeDays days, on top of
	// its waning wave: daily cases grow by half a day from SurgeCases, so
	// the detect stage's EARS methods alarm on the newest day.
	Surge      string
	SurgeDays  int
	SurgeCases float64
}

// DefaultSimulation is the simulation the dashboards' tests load: four
// regions of the shipped reference, June to August 2020.
func DefaultSimulation() Simulation {
	return Simulation{
		Regions:       []string{"KZ-75", "KZ-71", "KZ-79", "KG-GB"},
		From:          schemas.MustDate("2020-06-01"),
		To:            schemas.MustDate("2020-08-31"),
		StaleFacility: "KZ-75-H3",
		Surge:         "KZ-79",
		SurgeDays:     6,
		SurgeCases:    6,
	}
}

// Expander is the macro expansion that fits the simulation: its months as
// the time range (to the last second of its last day), its first region and
// KZ as the dashboards' region and country variables.
func (s Simulation) Expander() Expander {
	return Expander{
		From: s.From.Time(),
		To:   s.To.Time().Add(24*time.Hour - time.Second),
		Vars: map[string]string{"region": s.Regions[0], "country": "KZ"},
	}
}

func (s Simulation) days() int { return int(s.To-s.From) + 1 }

// levelNames are the processor's default level names (pipeline/science/thresholds).
var levelNames = []string{"", "1 - baseline", "2 - moderate", "3 - high", "4 - maximum"}

type regionDay struct {
	cases, local, imported, onset int
	tests, positive               int
	contacts                      int
	bedsTotal, bedsOccupied       int
	icuTotal, icuOccupied         int
	provTotal, provOccupied       int
	stale                         int
	dose1, dose2, dose3           int // cumulative
}

// Tables are the tables Load inserts into, in order. Each exists under this
// name on one server and in cluster mode (schemas/clickhouse/cluster.go: a
// Distributed table over X_local), so Load runs unchanged on both. The
// migration's materialized view fills nowcast_store from indicators_store.
var Tables = []string{"events_v2_store", "indicators_store", "decisions_store", "alerts_store", "signals_store"}

// Load inserts the simulation into db, a database chsink.Migrate created
// (cluster mode or not) with the shipped region reference; conn is any
// connection to its server or to a node of its cluster. The signals are the
// detect stage's own (see detectSignals), computed from the simulated
// indicator records through an embedded JetStream that t stops.
//
// Every insert carries insert_distributed_sync=1: a Distributed table then
// acknowledges an insert only once every shard holds its rows, instead of
// queueing them on this node and sending them later, so the rows are there
// when the caller's check runs. A single server ignores the setting. On a
// cluster the rows reach one replica of each shard synchronously and the
// other replicas fetch them asynchronously: a caller that may read through
// another replica runs SYSTEM SYNC REPLICA db.X_local on each node first,
// for X in Tables and nowcast_store.
func (s Simulation) Load(ctx context.Context, t testing.TB, conn driver.Conn, db string) error {
	rng := rand.New(rand.NewPCG(2020, 7))
	ref := schemas.DefaultRegions()
	var events, indicators, decisions, alerts [][]any
	var records []schemas.Indicator
	seq := uint64(0)
	next := func() uint64 { seq++; return seq }
	for ri, region := range s.Regions {
		reg, ok := ref.Get(region)
		if !ok {
			return fmt.Errorf("region %s is not in the shipped reference", region)
		}
		pop := float64(reg.Population)
		series := make([]regionDay, s.days())
		var cum1, cum2, cum3 int
		for d := range series {
			day := s.From.AddDays(d)
			// An epidemic wave peaking around day 45, shifted per region.
			peak := 45.0 + float64(ri*6)
			expected := 8 + 140*math.Exp(-math.Pow((float64(d)-peak)/18, 2))*(1+0.3*float64(ri%2))
			if k := d - (s.days() - s.SurgeDays); region == s.Surge && k >= 0 {
				expected += s.SurgeCases * math.Pow(1.5, float64(k))
			}
			n := poisson(rng, expected)
			rd := &series[d]
			rd.cases = n
			for c := 0; c < n; c++ {
				imported := rng.Float64() < 0.08
				class := schemas.ClassConfirmed
				if rng.Float64() < 0.04 {
					class = schemas.ClassProbable
				} else if imported {
					rd.imported++
				} else {
					rd.local++
				}
				var onset *time.Time
				if rng.Float64() < 0.7 {
					o := day.AddDays(-2 - rng.IntN(5))
					ot := o.Time()
					onset = &ot
					if class == schemas.ClassConfirmed {
						if od := int(o - s.From); od >= 0 {
							series[od].onset++
						}
					}
				}
				rt := day.Time()
				e := eventRow{id: fmt.Sprintf("case-%s-%d-%d", region, d, c), typ: schemas.TypeCase, region: region, date: day,
					person: fmt.Sprintf("p-%s-%d-%d", region, d, c), reportDate: &rt, onsetDate: onset, imported: imported, classification: class}
				events = append(events, e.row(next()))
				for k := 0; k < rng.IntN(5); k++ {
					rd.contacts++
					events = append(events, eventRow{id: fmt.Sprintf("contact-%s-%d-%d-%d", region, d, c, k), typ: schemas.TypeContact,
						region: region, date: day, indexPerson: e.person, contactPerson: fmt.Sprintf("c-%s-%d-%d-%d", region, d, c, k),
						setting: []string{"household", "work", "school", "other"}[k%4]}.row(next()))
				}
			}
			rd.tests = n*9 + 40 + rng.IntN(30)
			rd.positive = n + rng.IntN(3)
			for k := 0; k < rd.tests; k++ {
				result := schemas.ResultNegative
				if k < rd.positive {
					result = schemas.ResultPositive
				}
				st, rt := day.Time(), day.AddDays(1).Time()
				events = append(events, eventRow{id: fmt.Sprintf("test-%s-%d-%d", region, d, k), typ: schemas.TypeLabTest, region: region, date: day,
					person: fmt.Sprintf("t-%s-%d-%d", region, d, k), sampleDate: &st, resultDate: &rt, testKind: schemas.TestPCR, result: result, lab: "lab-" + region}.row(next()))
			}
			// Beds: three hospitals, a morning report each; occupancy follows the wave.
			load := math.Min(0.98, 0.25+0.75*expected/170)
			for h := 1; h <= 3; h++ {
				facility := fmt.Sprintf("%s-H%d", region, h)
				if facility == s.StaleFacility && d >= s.days()-5 {
					rd.stale = 1
					continue
				}
				snap := day.Time().Add(8*time.Hour + time.Duration(h)*7*time.Minute)
				for _, kind := range []struct {
					name  string
					total int
				}{{schemas.BedInfectious, 120 * h}, {schemas.BedICU, 12 * h}, {schemas.BedProvisional, 40 * h}} {
					occ := int(math.Round(float64(kind.total) * math.Min(1, load*(0.9+0.2*rng.Float64()))))
					switch kind.name {
					case schemas.BedInfectious:
						rd.bedsTotal += kind.total
						rd.bedsOccupied += occ
					case schemas.BedICU:
						rd.icuTotal += kind.total
						rd.icuOccupied += occ
					default:
						rd.provTotal += kind.total
						rd.provOccupied += occ
					}
					tot, oc := uint32(kind.total), uint32(occ)
					events = append(events, eventRow{id: fmt.Sprintf("beds-%s-%d-%s", facility, d, kind.name), typ: schemas.TypeBedSnapshot, region: region, date: day,
						facilityID: facility, facilityName: fmt.Sprintf("City infectious hospital no. %d", h), snapshot: &snap, bedKind: kind.name, total: &tot, occupied: &oc}.row(next()))
				}
			}
			for k := 0; k < 20+rng.IntN(20); k++ {
				dose := 1 + k%3
				switch dose {
				case 1:
					cum1++
				case 2:
					cum2++
				default:
					cum3++
				}
				vt := day.Time()
				events = append(events, eventRow{id: fmt.Sprintf("vacc-%s-%d-%d", region, d, k), typ: schemas.TypeVaccination, region: region, date: day,
					person: fmt.Sprintf("v-%s-%d-%d", region, d, k), dose: uint8(dose), vaccine: "QazVac", vaccDate: &vt}.row(next()))
			}
			rd.dose1, rd.dose2, rd.dose3 = cum1, cum2, cum3
		}
		ind, recs, dec, al := s.derive(region, reg, pop, series, next)
		indicators = append(indicators, ind...)
		records = append(records, recs...)
		decisions = append(decisions, dec...)
		alerts = append(alerts, al...)
	}
	signals, err := detectSignals(ctx, t, records)
	if err != nil {
		return err
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_distributed_sync": 1}))
	for _, ins := range []struct {
		table, columns string
		rows           [][]any
	}{
		{Tables[0], eventColumns, events},
		{Tables[1], indicatorColumns, indicators},
		{Tables[2], decisionColumns, decisions},
		{Tables[3], alertColumns, alerts},
		{Tables[4], signalColumns, signals},
	} {
		if err := insert(ctx, conn, db, ins.table, ins.columns, ins.rows); err != nil {
			return err
		}
	}
	return nil
}

// derive computes indicator, decision and alert rows from a region's series
// the way the processor and decision maker would, roughly, and the indicator
// records (the same figures) the detect stage reads.
func (s Simulation) derive(region string, reg schemas.Region, pop float64, series []regionDay, next func() uint64) (indicators [][]any, records []schemas.Indicator, decisions, alerts [][]any) {
	pct := func(num, den int) *float64 {
		if den <= 0 {
			return nil
		}
		v := 100 * float64(num) / float64(den)
		return &v
	}
	sum := func(d, n int, f func(regionDay) int) int {
		t := 0
		for i := max(0, d-n+1); i <= d; i++ {
			t += f(series[i])
		}
		return t
	}
	level := 1
	for d := range series {
		day := s.From.AddDays(d)
		rd := series[d]
		c7 := sum(d, 7, func(r regionDay) int { return r.local + r.imported })
		t7 := sum(d, 7, func(r regionDay) int { return r.tests })
		p7 := sum(d, 7, func(r regionDay) int { return r.positive })
		k7 := sum(d, 7, func(r regionDay) int { return r.contacts })
		var rMean, rSD, rLo, rMed, rHi, rRatio *float64
		if d >= 12 {
			// Ratio of this week's cases to the week before: a crude R.
			prev := sum(d-5, 7, func(r regionDay) int { return r.local + r.imported })
			if prev > 0 {
				m := float64(c7) / float64(prev)
				sd := m / math.Sqrt(float64(max(c7, 1)))
				lo, hi, med := math.Max(0, m-1.96*sd), m+1.96*sd, m
				rMean, rSD, rLo, rMed, rHi = &m, &sd, &lo, &med, &hi
			}
			last4 := sum(d, 4, func(r regionDay) int { return r.local + r.imported })
			before4 := sum(d-4, 4, func(r regionDay) int { return r.local + r.imported })
			if before4 > 0 {
				v := float64(last4) / float64(before4)
				rRatio = &v
			}
		}
		per100k := func(n int) *float64 { v := float64(n) / pop * 1e5; return &v }
		flags, reasons := []string{}, []string{}
		if rd.stale > 0 {
			flags = append(flags, schemas.IndicatorFlagStaleBeds)
			reasons = append(reasons, fmt.Sprintf(schemas.IndicatorFlagStaleBeds+": %d facility bed reports older than 48h0m0s at the end of the day, left out of ПЗК", rd.stale))
		}
		occ := pct(rd.bedsOccupied, rd.bedsTotal)
		computed := day.AddDays(1).Time().Add(time.Hour)
		provisional := d >= len(series)-3
		row := func(version uint64, onset int, nc nowcastFields) []any {
			return append([]any{
				region, day.Time(), version, uint32(rd.cases), uint32(rd.local), uint32(rd.imported), uint32(onset), uint32(c7),
				"cori", rMean, rSD, rLo, rMed, rHi, rRatio, per100k(c7), uint32(rd.tests), uint32(rd.positive),
				uint32(t7), uint32(p7), pct(p7, t7), per100k(t7),
				uint32(rd.bedsTotal), uint32(rd.bedsOccupied), occ,
				uint32(rd.icuTotal), uint32(rd.icuOccupied), pct(rd.icuOccupied, rd.icuTotal),
				uint32(rd.provTotal), uint32(rd.provOccupied), pct(rd.provOccupied, rd.provTotal),
				uint32(rd.stale), uint32(k7), ratio(k7, c7), pct(k7/10, k7),
				uint32(rd.dose1), uint32(rd.dose2), uint32(rd.dose3),
				pct(rd.dose1, int(pop)), pct(rd.dose2, int(pop)), pct(rd.dose3, int(pop)),
				b2u(provisional), flags, reasons, computed,
			}, nc.values()...)
		}
		// The nowcast of the last NowcastDays onset days, as of the last
		// day, and an older vintage a week before: nowcast_store gets both
		// (through the migration's materialized view), the panel shows the
		// newest. The older vintage is an earlier version of the day.
		latest := s.nowcast(series, d, s.To, rMean, rLo, rMed, rHi)
		indicators = append(indicators, row(uint64(d+1), rd.onset, latest))
		if older := s.nowcast(series, d, s.To.AddDays(-7), rMean, rLo, rMed, rHi); !older.asOf.IsZero() {
			indicators = append(indicators, row(uint64(d), older.reported, older))
		}
		records = append(records, schemas.Indicator{
			Region: region, Date: day, Version: uint64(d + 1),
			Cases: rd.cases, CasesLocal: rd.local, CasesImported: rd.imported, CasesByOnset: rd.onset, Cases7d: c7,
			RMethod: "cori", RMean: rMean, RSD: rSD, RQ025: rLo, RMedian: rMed, RQ975: rHi, RRatio: rRatio, Cases7dPer100k: per100k(c7),
			Tests: rd.tests, TestsPositive: rd.positive, Tests7d: t7, TestsPositive7d: p7, Positivity7dPct: pct(p7, t7), Tests7dPer100k: per100k(t7),
			BedsTotal: rd.bedsTotal, BedsOccupied: rd.bedsOccupied, BedOccupancyPct: occ, StaleFacilities: rd.stale,
			Provisional: provisional, Flags: flags, FlagReasons: reasons, ComputedAt: computed,
		})
		if d < 14 {
			continue
		}
		// The plan's rule, literally (docs/sources.md), on R's mean.
		action, clause := schemas.ActionKeep, "no clause holds: keep"
		if rMean != nil && occ != nil {
			r, o := *rMean, *occ
			switch {
			case o >= 90:
				action, clause = schemas.ActionStrengthen, "plan 1c: occupancy ≥ 90 %"
			case r > 1.3 && o >= 50 && o < 70:
				action, clause = schemas.ActionStrengthen, "plan 1a: R > 1.3 and occupancy 50–70 %"
			case r >= 1.15 && r <= 1.3 && o >= 70 && o < 90:
				action, clause = schemas.ActionStrengthen, "plan 1b: R 1.15–1.3 and occupancy 70–90 %"
			case r <= 1 && o <= 50:
				action, clause = schemas.ActionEase, "plan 3: R ≤ 1 and occupancy ≤ 50 %"
			}
		}
		from := level
		switch {
		case action == schemas.ActionStrengthen && level < 4:
			level++
		case action == schemas.ActionEase && level > 1:
			level--
		}
		id := fmt.Sprintf("%s:%s:kz-2020-plan:1", region, day)
		decided := day.AddDays(1).Time().Add(2 * time.Hour)
		decisions = append(decisions, []any{
			id, region, reg.NameEN, day.Time(), decided, "kz-2020-plan", "1", clause, action,
			fmt.Sprintf("R %.2f, occupancy %.1f %%", deref(rMean), deref(occ)),
			"cori", rMean, rLo, rHi, occ, day.Time(), flags, uint8(from), uint8(level), levelNames[from], levelNames[level], next(),
		})
		if from != level {
			for i, ch := range []string{"alertmanager", "webhook:" + region} {
				status, attempts, errText := schemas.AlertSent, uint16(1), ""
				if i == 1 && d%2 == 0 {
					status, attempts, errText = schemas.AlertFailed, 3, "POST https://hq.example/"+region+": 503 Service Unavailable"
				}
				alerts = append(alerts, []any{
					id + ":" + ch, id, region, ch, "level_change", status, attempts, errText,
					decided.Add(time.Duration(i+1) * time.Second), b2u(status == schemas.AlertFailed), next(),
				})
			}
		}
	}
	return indicators, records, decisions, alerts
}

// NowcastDays is how many recent onset days a simulated nowcast covers
// (the processor's default window, roughly): the rows the region
// dashboard's nowcast panel shows, one per onset day of the newest vintage.
const NowcastDays = 28

// nowcastFields are an indicator row's nowcast columns (all NULL on a day
// outside the nowcast window: asOf zero).
type nowcastFields struct {
	asOf                             schemas.Date
	reported                         int
	median, q025, q975, completeness *float64
	rMean, rQ025, rMedian, rQ975     *float64
}

// values is the row's nowcast columns, in indicatorColumns order.
func (n nowcastFields) values() []any {
	var asOf *time.Time
	if !n.asOf.IsZero() {
		t := n.asOf.Time()
		asOf = &t
	}
	return []any{asOf, n.median, n.q025, n.q975, n.completeness, n.rMean, n.rQ025, n.rMedian, n.rQ975}
}

// nowcast is a plausible nowcast of onset day d as of asOf, not a model:
// a case's onset precedes its report by 2-6 days in the simulation, so a
// day a week old is complete; younger days are reported in proportion to
// their age. As of the simulation's last day, reported is what the series
// counts and the median scales it up; as of an earlier day, reported is
// that share of the series' count and the median is the count itself.
func (s Simulation) nowcast(series []regionDay, d int, asOf schemas.Date, rMean, rLo, rMed, rHi *float64) nowcastFields {
	age := int(asOf - s.From.AddDays(d))
	if age < 0 || age >= NowcastDays {
		return nowcastFields{}
	}
	c := math.Min(1, float64(age+1)/7)
	onset := float64(series[d].onset)
	reported, median := onset, onset/c
	if asOf != s.To {
		reported, median = math.Round(onset*c), onset
	}
	half := 1.96 * math.Sqrt(median*(1-c)+1)
	if c == 1 {
		half = 0
	}
	lo, hi := math.Max(reported, median-half), median+half
	return nowcastFields{asOf: asOf, reported: int(reported), median: &median, q025: &lo, q975: &hi, completeness: &c,
		rMean: rMean, rQ025: rLo, rMedian: rMed, rQ975: rHi}
}

func ratio(num, den int) *float64 {
	if den <= 0 {
		return nil
	}
	v := float64(num) / float64(den)
	return &v
}

func deref(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// poisson draws a Poisson variate (Knuth for small means, normal beyond).
func poisson(rng *rand.Rand, mean float64) int {
	if mean > 50 {
		return max(0, int(math.Round(mean+math.Sqrt(mean)*rng.NormFloat64())))
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// eventRow is one row of events_v2_store; zero fields are the column defaults.
type eventRow struct {
	id                                string
	typ                               schemas.EventType
	region                            string
	date                              schemas.Date
	person                            string
	reportDate, onsetDate             *time.Time
	imported                          bool
	classification                    string
	indexPerson, contactPerson        string
	setting                           string
	sampleDate, resultDate            *time.Time
	testKind, result, lab             string
	facilityID, facilityName, bedKind string
	snapshot                          *time.Time
	total, occupied                   *uint32
	dose                              uint8
	vaccine                           string
	vaccDate                          *time.Time
}

const eventColumns = `event_id, type, region, event_date, source, ingested_at, seq,
	person_pseudonym, key_id, age_band, sex, district, report_date, onset_date, imported, classification,
	index_pseudonym, contact_pseudonym, setting, sample_date, result_date, test_kind, result, lab,
	facility_id, facility_name, snapshot_time, bed_kind, beds_total, beds_occupied, dose_number, vaccine,
	vaccination_date, payload`

func (e eventRow) row(seq uint64) []any {
	age, sex := "", ""
	if e.person != "" {
		age, sex = []string{"20-29", "30-39", "40-49", "60-69"}[seq%4], []string{"female", "male"}[seq%2]
	}
	ingested := e.date.Time().Add(20 * time.Hour)
	return []any{
		e.id, string(e.typ), e.region, e.date.Time(), "simulation", ingested, seq,
		e.person, "k1", age, sex, "",
		e.reportDate, e.onsetDate, b2u(e.imported), e.classification,
		e.indexPerson, e.contactPerson, e.setting,
		e.sampleDate, e.resultDate, e.testKind, e.result, e.lab,
		e.facilityID, e.facilityName, e.snapshot, e.bedKind, e.total, e.occupied,
		e.dose, e.vaccine, e.vaccDate, "{}",
	}
}

const indicatorColumns = `region, date, version, cases, cases_local, cases_imported, cases_by_onset, cases_7d,
	r_method, r_mean, r_sd, r_q025, r_median, r_q975, r_ratio, cases_7d_per_100k, tests, tests_positive,
	tests_7d, tests_positive_7d, positivity_7d_pct, tests_7d_per_100k,
	beds_total, beds_occupied, bed_occupancy_pct, icu_total, icu_occupied, icu_occupancy_pct,
	provisional_total, provisional_occupied, provisional_occupancy_pct,
	stale_facilities, contacts_7d, contacts_per_case, contacts_became_cases_pct,
	vaccinated_dose1, vaccinated_dose2, vaccinated_dose3_plus,
	vaccination_dose1_pct, vaccination_dose2_pct, vaccination_dose3_plus_pct,
	provisional, flags, flag_reasons, computed_at,
	nowcast_as_of, cases_nowcast_median, cases_nowcast_q025, cases_nowcast_q975, nowcast_completeness,
	r_nowcast_mean, r_nowcast_q025, r_nowcast_median, r_nowcast_q975`

const decisionColumns = `decision_id, region, region_name, date, decided_at, rule_set, rule_set_version, clause, action,
	reason, r_method, r_mean, r_q025, r_q975, bed_occupancy_pct, data_as_of, flags,
	level_from, level_to, level_from_name, level_to_name, seq`

const alertColumns = `alert_id, decision_id, region, channel, kind, status, attempts, error, at, escalated, seq`

func insert(ctx context.Context, conn driver.Conn, db, table, columns string, rows [][]any) error {
	const chunk = 20000
	for start := 0; start < len(rows); start += chunk {
		b, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO `%s`.%s (%s)", db, table, columns))
		if err != nil {
			return fmt.Errorf("prepare insert into %s: %w", table, err)
		}
		for _, r := range rows[start:min(start+chunk, len(rows))] {
			if err := b.Append(r...); err != nil {
				_ = b.Abort()
				return fmt.Errorf("append to %s: %w", table, err)
			}
		}
		if err := b.Send(); err != nil {
			return fmt.Errorf("insert %d rows into %s: %w", len(rows), table, err)
		}
	}
	return nil
}

// detectSignals runs the detect stage (pipeline/detect, default
// configuration) on the simulation's indicator records through a real,
// embedded JetStream, as the pipeline does, and returns the signals it
// published as signals_store rows (every version: the signals view keeps
// the latest, as it does for the sink's).
func detectSignals(ctx context.Context, t testing.TB, records []schemas.Indicator) ([][]any, error) {
	ns := streamtest.New(t)
	det, err := detect.New(detect.DefaultConfig(), detect.Deps{Bus: ns.Bus})
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- det.Run(cctx) }()
	defer func() {
		cancel()
		<-done
	}()
	deadline := time.Now().Add(time.Minute)
	// The detector reads what the stream holds at start, then follows its
	// durable consumer: publish once that exists, so every record is news.
	for {
		if _, err := ns.JS.Consumer(ctx, schemas.StreamIndicators, schemas.ConsumerDetect); err == nil {
			break
		}
		select {
		case err := <-done:
			return nil, fmt.Errorf("detect stage stopped: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("detect stage: no consumer %s after a minute", schemas.ConsumerDetect)
		}
	}
	pub := ns.Bus.Publisher()
	var msgs []stream.Msg
	for i := range records {
		data, err := json.Marshal(&records[i])
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, stream.Msg{Subject: schemas.IndicatorSubject(records[i].Region), ID: records[i].MsgID(data), Data: data})
	}
	for i, r := range pub.PublishBatch(ctx, msgs) {
		if r.Err != nil {
			return nil, fmt.Errorf("publish indicator %s: %w", msgs[i].ID, r.Err)
		}
	}
	// Done when the detector has acknowledged every record: it acks a batch
	// after publishing the signals it changed.
	for {
		c, err := ns.JS.Consumer(ctx, schemas.StreamIndicators, schemas.ConsumerDetect)
		if err != nil {
			return nil, err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return nil, err
		}
		if info.AckFloor.Stream >= uint64(len(records)) && info.NumPending == 0 && info.NumAckPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("detect stage: %d of %d indicator records acknowledged after a minute", info.AckFloor.Stream, len(records))
		}
		time.Sleep(50 * time.Millisecond)
	}
	var rows [][]any
	for _, m := range streamtest.Messages(t, ns.JS, schemas.StreamSignals) {
		var g schemas.Signal
		if err := json.Unmarshal(m.Data, &g); err != nil {
			return nil, fmt.Errorf("decode signal: %w", err)
		}
		rows = append(rows, []any{
			g.Region, g.Date.Time(), g.Period, g.Stream, g.Method, g.Version, g.Observed, g.UpperBound,
			b2u(g.Alarm), g.Excess, b2u(g.Provisional), g.Note, g.ComputedAt.UTC(),
		})
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("detect stage published no signals for %d indicator records", len(records))
	}
	return rows, nil
}

const signalColumns = `region, date, period, stream, method, version, observed, upper_bound,
	alarm, excess, provisional, note, computed_at`
