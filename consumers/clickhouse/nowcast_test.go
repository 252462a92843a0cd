package clickhouse_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// nowcastRow is one row of the nowcast view.
type nowcastRow struct {
	Region                       string
	Date, AsOf                   string
	Version                      uint64
	Reported                     uint32
	Median, Q025, Q975, Complete float64
	RMean, RQ025, RMedian, RQ975 *float64
	ComputedAt                   time.Time
}

// TestSinkNowcastVintages lands indicator records carrying nowcasts through
// the sink: each (region, onset day, as_of) is one row of nowcast (011's
// materialized view) with the record's values, two as_of of one day are two
// vintages, a later version of the same as_of replaces it, records without
// a nowcast add no row, and the batch delivered again (the sink's consumer
// lost before its ack, so every message comes back in the same batch) adds
// nothing an analyst sees.
func TestSinkNowcastVintages(t *testing.T) {
	s := streamtest.New(t)
	conn, db := migrated(t)
	ctx := context.Background()
	f := func(v float64) *float64 { return &v }
	day := schemas.MustDate
	at := func(s string) time.Time { t, _ := time.Parse(time.DateTime, s); return t.UTC() }
	records := []schemas.Indicator{
		// Onset day 07-10 as of 07-12, then as of 07-13 (R not estimable then).
		{Region: "KZ-75", Date: day("2020-07-10"), Version: 100, CasesByOnset: 3, RMethod: "cori",
			NowcastAsOf: day("2020-07-12"), CasesNowcastMedian: f(6), CasesNowcastQ025: f(3), CasesNowcastQ975: f(11), NowcastCompleteness: f(0.5),
			RNowcastMean: f(1.2), RNowcastQ025: f(0.9), RNowcastMedian: f(1.19), RNowcastQ975: f(1.6), ComputedAt: at("2020-07-12 18:00:00")},
		{Region: "KZ-75", Date: day("2020-07-10"), Version: 130, CasesByOnset: 5, RMethod: "cori",
			NowcastAsOf: day("2020-07-13"), CasesNowcastMedian: f(6.5), CasesNowcastQ025: f(5), CasesNowcastQ975: f(9), NowcastCompleteness: f(0.77),
			ComputedAt: at("2020-07-13 18:00:00")},
		// Onset day 07-11 as of 07-13, republished with a late event's higher version.
		{Region: "KZ-75", Date: day("2020-07-11"), Version: 120, CasesByOnset: 0, RMethod: "cori",
			NowcastAsOf: day("2020-07-13"), CasesNowcastMedian: f(2), CasesNowcastQ025: f(0), CasesNowcastQ975: f(6), NowcastCompleteness: f(0),
			ComputedAt: at("2020-07-13 17:00:00")},
		{Region: "KZ-75", Date: day("2020-07-11"), Version: 130, CasesByOnset: 1, RMethod: "cori",
			NowcastAsOf: day("2020-07-13"), CasesNowcastMedian: f(2.5), CasesNowcastQ025: f(1), CasesNowcastQ975: f(7), NowcastCompleteness: f(0.4),
			RNowcastMean: f(1.1), RNowcastQ025: f(0.7), RNowcastMedian: f(1.08), RNowcastQ975: f(1.5),
			RNowcastFinalQ025: f(0.95), RNowcastFinalQ10: f(1.0), RNowcastFinalQ90: f(1.2), RNowcastFinalQ975: f(1.3), ComputedAt: at("2020-07-13 18:00:00")},
		// No nowcast: a day too old (another month, another insert), another region.
		{Region: "KZ-75", Date: day("2020-06-01"), Version: 130, CasesByOnset: 7, RMethod: "cori", ComputedAt: at("2020-07-13 18:00:00")},
		{Region: "KZ-71", Date: day("2020-07-10"), Version: 131, CasesByOnset: 2, RMethod: "cori", ComputedAt: at("2020-07-13 18:00:00")},
	}
	want := []nowcastRow{
		{"KZ-75", "2020-07-10", "2020-07-12", 100, 3, 6, 3, 11, 0.5, f(1.2), f(0.9), f(1.19), f(1.6), at("2020-07-12 18:00:00")},
		{"KZ-75", "2020-07-10", "2020-07-13", 130, 5, 6.5, 5, 9, 0.77, nil, nil, nil, nil, at("2020-07-13 18:00:00")},
		{"KZ-75", "2020-07-11", "2020-07-13", 130, 1, 2.5, 1, 7, 0.4, f(1.1), f(0.7), f(1.08), f(1.5), at("2020-07-13 18:00:00")},
	}

	pub := s.Bus.Publisher()
	var msgs []stream.Msg
	for i := range records {
		data, err := json.Marshal(&records[i])
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, stream.Msg{Subject: schemas.IndicatorSubject(records[i].Region), ID: records[i].MsgID(data), Data: data})
	}
	for _, r := range pub.PublishBatch(ctx, msgs) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}

	// landed waits until the sink has acknowledged every record.
	landed := func() {
		t.Helper()
		waitFor(t, "the sink to acknowledge every indicator record", 30*time.Second, func() bool {
			c, err := s.JS.Consumer(ctx, schemas.StreamIndicators, schemas.ConsumerSinkIndicators)
			if err != nil {
				return false
			}
			info, err := c.Info(ctx)
			return err == nil && info.AckFloor.Stream >= uint64(len(records)) && info.NumPending == 0 && info.NumAckPending == 0
		})
	}
	check := func(when string) {
		t.Helper()
		got := readNowcast(t, conn, db)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: nowcast holds\n%s\nwant\n%s", when, fmtRows(got), fmtRows(want))
		}
		// The indicators carry the same figures for their newest version;
		// records without a nowcast have NULL.
		if n := count(t, conn, fmt.Sprintf("SELECT count() FROM %s.indicators_latest WHERE nowcast_as_of IS NULL", db)); n != 2 {
			t.Errorf("%s: %d indicator days without a nowcast, want 2", when, n)
		}
		if n := count(t, conn, fmt.Sprintf("SELECT count() FROM %s.indicators_latest WHERE region = 'KZ-75' AND date = '2020-07-10' "+
			"AND nowcast_as_of = '2020-07-13' AND cases_nowcast_median = 6.5 AND cases_nowcast_q025 = 5 AND cases_nowcast_q975 = 9 "+
			"AND nowcast_completeness = 0.77 AND isNull(r_nowcast_mean) AND cases_by_onset = 5", db)); n != 1 {
			t.Errorf("%s: indicators_latest lacks KZ-75 2020-07-10's newest nowcast", when)
		}
		// 014: where the final R mean is expected, beside the nowcast R.
		if n := count(t, conn, fmt.Sprintf("SELECT count() FROM %s.indicators_latest WHERE region = 'KZ-75' AND date = '2020-07-11' "+
			"AND r_nowcast_mean = 1.1 AND r_nowcast_final_q025 = 0.95 AND r_nowcast_final_q10 = 1 AND r_nowcast_final_q90 = 1.2 AND r_nowcast_final_q975 = 1.3", db)); n != 1 {
			t.Errorf("%s: indicators_latest lacks KZ-75 2020-07-11's interval of the final R mean", when)
		}
	}

	r := startSink(t, s, conn, db, 100)
	landed()
	check("first delivery")
	r.stop()

	// Lose the sink's durable consumer: its successor starts from the
	// stream's first message and inserts the same batch again.
	if err := s.JS.DeleteConsumer(ctx, schemas.StreamIndicators, schemas.ConsumerSinkIndicators); err != nil {
		t.Fatal(err)
	}
	startSink(t, s, conn, db, 100)
	landed()
	check("second delivery")
	// Negative control: on 18.16 the raw table holds the redelivered rows,
	// so the exact rows above are the view's FINAL, not luck.
	t.Logf("nowcast_store holds %d raw rows for %d vintages", count(t, conn, fmt.Sprintf("SELECT count() FROM %s.nowcast_store", db)), len(want))
}

// readNowcast reads the nowcast view in key order.
func readNowcast(t *testing.T, conn driver.Conn, db string) []nowcastRow {
	t.Helper()
	rows, err := conn.Query(context.Background(), fmt.Sprintf(`SELECT region, toString(date), toString(as_of), version, reported,
		median, q025, q975, completeness, r_mean, r_q025, r_median, r_q975, computed_at
		FROM %s.nowcast ORDER BY region, date, as_of`, db))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []nowcastRow
	for rows.Next() {
		var r nowcastRow
		if err := rows.Scan(&r.Region, &r.Date, &r.AsOf, &r.Version, &r.Reported, &r.Median, &r.Q025, &r.Q975, &r.Complete,
			&r.RMean, &r.RQ025, &r.RMedian, &r.RQ975, &r.ComputedAt); err != nil {
			t.Fatal(err)
		}
		r.ComputedAt = r.ComputedAt.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func fmtRows(rows []nowcastRow) string {
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "  %s %s as of %s v%d reported %d median %g [%g, %g] completeness %g R %s %s %s %s at %s\n",
			r.Region, r.Date, r.AsOf, r.Version, r.Reported, r.Median, r.Q025, r.Q975, r.Complete,
			fmtP(r.RMean), fmtP(r.RQ025), fmtP(r.RMedian), fmtP(r.RQ975), r.ComputedAt.Format(time.DateTime))
	}
	return b.String()
}

func fmtP(p *float64) string {
	if p == nil {
		return "NULL"
	}
	return fmt.Sprint(*p)
}
