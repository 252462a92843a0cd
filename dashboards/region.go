package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"

	"github.com/epiwatch/epiwatch/schemas"
)

// Region is one region in depth: R with its band and the plan's reference
// lines, ПЗК with its bands, cases, tests, beds by facility, contacts,
// vaccination, and the decision and alert history.
func Region(p Plan) *dashboard.DashboardBuilder {
	id := &ids{}
	return newDashboard("epiwatch — region", RegionUID,
		"One region's indicators, data and decisions, from ClickHouse.",
		"epidemiology", "now-90d", "5m").
		WithVariable(regionVariable()).
		WithRow(row(id, "Now")).
		WithPanel(regionNow(id, p)).
		WithRow(row(id, "The decision rule's inputs")).
		WithPanel(regionR(id, p)).
		WithPanel(regionOccupancy(id, p)).
		WithPanel(regionQuality(id)).
		WithRow(row(id, "Cases and tests")).
		WithPanel(regionCases(id)).
		WithPanel(regionTests(id)).
		WithPanel(regionNowcast(id)).
		WithRow(row(id, "Beds")).
		WithPanel(regionBeds(id, p)).
		WithPanel(regionStale(id)).
		WithRow(row(id, "Contacts and vaccination")).
		WithPanel(regionContacts(id)).
		WithPanel(regionVaccination(id)).
		WithRow(row(id, "Decisions and alerts")).
		WithPanel(regionLevelHistory(id)).
		WithPanel(decisionsTable(id, "Decision history", regionDecisionsSQL, false).
			Description("Every evaluation of the region's rule set in the time range, newest first: the action, the clause that fired, its inputs and the level change.")).
		WithPanel(alertsTable(id, "Alert history", regionAlertsSQL, false).
			Description("Every alert delivery record of the region in the time range, newest first."))
}

func regionVariable() *dashboard.QueryVariableBuilder {
	return dashboard.NewQueryVariableBuilder("region").
		Label("Region").
		Description("ISO 3166-2 code of the region (the region reference, schemas/regions.csv).").
		Datasource(ClickHouseDatasource()).
		Query(dashboard.StringOrMap{String: cog.ToPtr(regionVariableSQL)}).
		Definition(regionVariableSQL).
		Refresh(dashboard.VariableRefreshOnDashboardLoad).
		Current(dashboard.VariableOption{Text: dashboard.StringOrArrayOfString{String: cog.ToPtr("KZ-75")}, Value: dashboard.StringOrArrayOfString{String: cog.ToPtr("KZ-75")}})
}

func regionNow(id *ids, p Plan) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Id(id.next()).
		Title("${region} now").
		Description("The current restriction level and the latest indicators on or before the end of the time range: R with its interval, the probability that R is above 1 and the trend in words (EpiNow2's cut-offs of P(R < 1); unknown when R rests on too few cases or a feed is missing), the doubling time of cases (negative: halving) from R and the serial interval (Wallinga & Lipsitch 2007).").
		Datasource(ClickHouseDatasource()).
		WithTarget(NewClickHouseTable(regionLevelSQL).RefId("A")).
		WithTarget(NewClickHouseTable(regionLatestSQL).RefId("B")).
		Height(5).Span(24).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false).Fields("/^(current_level|current_level_name|r_mean|r_q025|r_q975|r_prob_above_1|trend_label|doubling_time|bed_occupancy_pct|cases_7d_per_100k|positivity_7d_pct|stale_facilities)$/")).
		ColorMode(common.BigValueColorModeBackground).
		GraphMode(common.BigValueGraphModeNone).
		TextMode(common.BigValueTextModeValueAndName).
		NoValue("n/a").
		Orientation(common.VizOrientationAuto).
		OverrideByName("current_level", []dashboard.DynamicConfigValue{displayName("Level"), thresholdsProp(levelThresholds()), mappingsProp(levelMappings()), decimals(0)}).
		OverrideByName("current_level_name", []dashboard.DynamicConfigValue{displayName("Restriction level"), fixedColor("transparent")}).
		OverrideByName("r_mean", []dashboard.DynamicConfigValue{displayName("R"), decimals(2), thresholdsProp(p.rThresholds())}).
		OverrideByName("r_q025", []dashboard.DynamicConfigValue{displayName("R 2.5 %"), decimals(2), fixedColor("transparent")}).
		OverrideByName("r_q975", []dashboard.DynamicConfigValue{displayName("R 97.5 %"), decimals(2), thresholdsProp(p.rThresholds())}).
		OverrideByName("r_prob_above_1", []dashboard.DynamicConfigValue{displayName("P(R > 1)"), unit("percentunit"), decimals(0),
			thresholdsProp(thresholds("green", step{0.4, "transparent"}, step{0.6, "orange"}, step{0.95, "red"}))}).
		OverrideByName("trend_label", []dashboard.DynamicConfigValue{displayName("Trend"), fixedColor("transparent")}).
		OverrideByName("doubling_time", []dashboard.DynamicConfigValue{displayName("Doubling (−halving) time"), unit("d"), decimals(0), fixedColor("transparent")}).
		OverrideByName("bed_occupancy_pct", []dashboard.DynamicConfigValue{displayName("ПЗК"), unit("percent"), decimals(1), thresholdsProp(p.occupancyThresholds())}).
		OverrideByName("cases_7d_per_100k", []dashboard.DynamicConfigValue{displayName("Cases 7 d / 100k"), decimals(1), fixedColor("transparent")}).
		OverrideByName("positivity_7d_pct", []dashboard.DynamicConfigValue{displayName("Positivity 7 d"), unit("percent"), decimals(1), fixedColor("transparent")}).
		OverrideByName("stale_facilities", []dashboard.DynamicConfigValue{displayName("Stale facilities"), decimals(0), thresholdsProp(thresholds("transparent", step{1, "orange"}))})
}

// regionR draws R's posterior mean inside its 95 % credible band, with the
// plan's reference lines (Plan.R).
func regionR(id *ids, p Plan) *timeseries.PanelBuilder {
	band := []dashboard.DynamicConfigValue{prop("custom.lineWidth", 0), prop("custom.fillOpacity", 0), fixedColor("blue")}
	return seriesPanel(id).
		Title("Reproduction number R with 95 % credible interval").
		Description("R over the 7-day window ending on each day (Cori et al. 2013, as EpiEstim), its 95 % credible interval as a band, and the officials' ratio R (cases of the last 4 days over the 4 before). Dashed lines: the plan's thresholds "+fmt.Sprintf("%.1f (ease at or below), %g and %g", p.R[0], p.R[1], p.R[2])+". Gaps: R not estimable (too few cases).").
		Datasource(ClickHouseDatasource()).
		WithTarget(NewClickHouseTimeSeries(regionRSQL).RefId("A")).
		Height(10).Span(12).
		Unit("none").Decimals(2).Min(0).AxisSoftMax(2).
		Thresholds(thresholdsBuilder(p.rThresholds())).
		ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed)).
		LineWidth(2).SpanNulls(common.BoolOrFloat64{Bool: cog.ToPtr(false)}).
		OverrideByName("r_mean", []dashboard.DynamicConfigValue{displayName("R (posterior mean)"), fixedColor("blue")}).
		OverrideByName("r_q975", append([]dashboard.DynamicConfigValue{displayName("R 97.5 %"), prop("custom.fillBelowTo", "r_q025"), prop("custom.fillOpacity", 20)}, band[0], band[2])).
		OverrideByName("r_q025", append([]dashboard.DynamicConfigValue{displayName("R 2.5 %")}, band...)).
		OverrideByName("r_ratio", []dashboard.DynamicConfigValue{displayName("ratio R (4 d / 4 d)"), fixedColor("purple"), prop("custom.lineStyle", map[string]any{"fill": "dash", "dash": []int{4, 4}}), prop("custom.lineWidth", 1)})
}

// regionOccupancy draws ПЗК inside the plan's bands at 50, 70 and 90 %.
func regionOccupancy(id *ids, p Plan) *timeseries.PanelBuilder {
	return seriesPanel(id).
		Title("Bed occupancy (ПЗК) with the plan's bands").
		Description("Infectious-bed occupancy (ПЗК, the percentage of the COVID-19 infectious bed fund occupied) over facilities with a fresh report, with ICU and provisional-bed occupancy. Bands: the plan's 50, 70 and 90 %.").
		Datasource(ClickHouseDatasource()).
		WithTarget(NewClickHouseTimeSeries(regionOccupancySQL).RefId("A")).
		Height(10).Span(12).
		Unit("percent").Decimals(1).Min(0).Max(100).
		Thresholds(thresholdsBuilder(p.occupancyThresholds())).
		ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeLineAndArea)).
		LineWidth(2).
		OverrideByName("bed_occupancy_pct", []dashboard.DynamicConfigValue{displayName("ПЗК (infectious beds)"), fixedColor("blue"), prop("custom.lineWidth", 3)}).
		OverrideByName("icu_occupancy_pct", []dashboard.DynamicConfigValue{displayName("ICU beds"), fixedColor("purple")}).
		OverrideByName("provisional_occupancy_pct", []dashboard.DynamicConfigValue{displayName("provisional beds"), fixedColor("text"), prop("custom.lineStyle", map[string]any{"fill": "dash", "dash": []int{6, 4}})})
}

// regionCases draws the cases with the detect stage's early warnings on
// them: the EARS C2 bound and the days a daily method alarmed.
func regionCases(id *ids) *timeseries.PanelBuilder {
	return seriesPanel(id).
		Title("Confirmed cases by report date (local / imported) and by onset date").
		Description("Bars: confirmed cases by report date, local and imported stacked. Line: the same cases by symptom-onset date (where known), which leads the report date; its last days fill in as cases are reported. Early warnings (the detect stage's signals): dashed, the EARS C2 upper bound of the day's cases from the days just before (a gap: no verdict, e.g. a missing day); red points, the days EARS C2 or C3 raised an alarm, at the count observed. A signal is a warning read beside R and ПЗК; it never changes a restriction level.").
		Datasource(ClickHouseDatasource()).
		WithTarget(NewClickHouseTimeSeries(regionCasesReportSQL).RefId("A")).
		WithTarget(NewClickHouseTimeSeries(regionCasesOnsetSQL).RefId("B")).
		WithTarget(NewClickHouseTimeSeries(regionCasesBoundSQL).RefId("C")).
		WithTarget(NewClickHouseTimeSeries(regionCasesAlarmsSQL).RefId("D")).
		Height(9).Span(12).
		Unit("short").Min(0).Decimals(0).
		DrawStyle(common.GraphDrawStyleBars).FillOpacity(70).
		Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal).Group("report")).
		OverrideByName("local_cases", []dashboard.DynamicConfigValue{displayName("local (report date)"), fixedColor("blue")}).
		OverrideByName("imported_cases", []dashboard.DynamicConfigValue{displayName("imported (report date)"), fixedColor("orange")}).
		OverrideByName("cases_by_onset_date", []dashboard.DynamicConfigValue{displayName("all (onset date)"), fixedColor("red"),
			prop("custom.drawStyle", "line"), prop("custom.fillOpacity", 0), prop("custom.lineWidth", 2), prop("custom.stacking", map[string]any{"mode": "none", "group": "onset"})}).
		OverrideByName("ears_c2_upper_bound", []dashboard.DynamicConfigValue{displayName("EARS C2 upper bound"), fixedColor("purple"), decimals(1),
			prop("custom.drawStyle", "line"), prop("custom.fillOpacity", 0), prop("custom.lineWidth", 1), prop("custom.lineStyle", map[string]any{"fill": "dash", "dash": []int{6, 4}}),
			prop("custom.spanNulls", false), prop("custom.stacking", map[string]any{"mode": "none", "group": "bound"})}).
		OverrideByName("alarm_cases", []dashboard.DynamicConfigValue{displayName("signal alarm (EARS C2/C3)"), fixedColor("red"),
			prop("custom.drawStyle", "points"), prop("custom.pointSize", 9), prop("custom.showPoints", "always"), prop("custom.fillOpacity", 0),
			prop("custom.stacking", map[string]any{"mode": "none", "group": "alarms"})})
}

// regionNowcast draws the newest nowcast: the recent days' cases by onset
// reported so far (bars), and the median of their eventual count (a line)
// inside its 95 % interval (a band, as R's).
func regionNowcast(id *ids) *timeseries.PanelBuilder {
	line := prop("custom.drawStyle", "line")
	band := []dashboard.DynamicConfigValue{line, prop("custom.lineWidth", 0), fixedColor("red")}
	return seriesPanel(id).
		Title("Cases by onset: reported and nowcast (recent days)").
		Description("Cases are reported days after they fall ill, so the last days' counts by onset date are still incomplete and always seem to fall. The nowcast estimates what each recent day's count will be once every report is in, from the region's reporting delays. Bars: cases by onset reported so far; line: the nowcast's median; band: the 95 % interval of the eventual count. From the region's newest nowcast on or before the end of the range (its as_of: reports known up to that day); every earlier estimate is kept in the nowcast table.").
		Datasource(ClickHouseDatasource()).
		WithTarget(NewClickHouseTimeSeries(regionNowcastSQL).RefId("A")).
		Height(9).Span(24).
		Unit("short").Min(0).Decimals(0).
		DrawStyle(common.GraphDrawStyleBars).FillOpacity(60).
		OverrideByName("reported_by_onset", []dashboard.DynamicConfigValue{displayName("reported so far (onset date)"), fixedColor("blue")}).
		OverrideByName("nowcast_median", []dashboard.DynamicConfigValue{displayName("nowcast (median)"), fixedColor("red"), line, prop("custom.fillOpacity", 0), prop("custom.lineWidth", 2)}).
		OverrideByName("nowcast_q975", append([]dashboard.DynamicConfigValue{displayName("nowcast 97.5 %"), prop("custom.fillBelowTo", "nowcast_q025"), prop("custom.fillOpacity", 20)}, band...)).
		OverrideByName("nowcast_q025", append([]dashboard.DynamicConfigValue{displayName("nowcast 2.5 %"), prop("custom.fillOpacity", 0)}, band...))
}

func regionTests(id *ids) *timeseries.PanelBuilder {
	return seriesPanel(id).
		Title("Tests and positivity").
		Description("Bars: tests by sample date and the positive ones. Line (right axis): the processor's 7-day positivity.").
		Datasource(ClickHouseDatasource()).
		WithTarget(NewClickHouseTimeSeries(regionTestsSQL).RefId("A")).
		WithTarget(NewClickHouseTimeSeries(regionPositivitySQL).RefId("B")).
		Height(9).Span(12).
		Unit("short").Min(0).
		DrawStyle(common.GraphDrawStyleBars).FillOpacity(60).
		OverrideByName("tests", []dashboard.DynamicConfigValue{displayName("tests"), fixedColor("blue")}).
		OverrideByName("positive_tests", []dashboard.DynamicConfigValue{displayName("positive"), fixedColor("red")}).
		OverrideByName("positivity_7d_pct", []dashboard.DynamicConfigValue{displayName("positivity 7 d"), unit("percent"), decimals(1), fixedColor("orange"),
			prop("custom.drawStyle", "line"), prop("custom.fillOpacity", 0), prop("custom.lineWidth", 2), prop("custom.axisPlacement", "right"), prop("min", 0)})
}

func regionQuality(id *ids) *table.PanelBuilder {
	return tablePanel(id).
		Title("Provisional days and data-quality flags").
		Description("Days the processor marks provisional (younger than the configured quantile of the region's reporting delay: counts still expected to grow; decisions wait for them by default) and days with data-quality flags, with the processor's reasons: "+
			schemas.FlagStaleFeed+" (a feed — cases, tests — has not reported through the day: missing, not zero, so R or positivity is not computed), "+
			schemas.FlagFewCases+" / "+schemas.FlagFewTests+" (R or positivity from too few observations: shown, but unknown for decisions), "+
			schemas.FlagBacklogDump+" (old cases arriving at once), "+
			schemas.FlagNegativeCorrection+" (a bed report corrected down), "+
			schemas.FlagMissingInput+" (no case or test report for a week, or no fresh bed report), "+
			schemas.IndicatorFlagStaleBeds+", "+
			schemas.FlagPresumedClosed+" (a facility silent for two weeks, left out), "+
			schemas.FlagUnknownFacility+", "+schemas.FlagOverCapacity+". Repeats are notifications of a person already counted in the same episode. A rule set says what each flag does to a decision; by default a flagged day can hold or strengthen a level, never ease it.").
		Datasource(ClickHouseDatasource()).
		WithTarget(NewClickHouseTable(regionQualitySQL).RefId("A")).
		Height(8).Span(24).
		OverrideByName("date", []dashboard.DynamicConfigValue{displayName("Day"), width(110)}).
		OverrideByName("provisional", []dashboard.DynamicConfigValue{displayName("Provisional"), width(100), colorBackground(), provisionalMappings()}).
		OverrideByName("missing_feeds", []dashboard.DynamicConfigValue{displayName("Missing feeds"), fixedColor("orange"), colorText(), width(120)}).
		OverrideByName("flags", []dashboard.DynamicConfigValue{displayName("Flags"), width(220)}).
		OverrideByName("cases_repeat", []dashboard.DynamicConfigValue{displayName("Repeats"), width(80)}).
		OverrideByName("r_status", []dashboard.DynamicConfigValue{displayName("R status"), mappingsProp(rStatusMappings()), colorText(), width(100)}).
		OverrideByName("r_cases", []dashboard.DynamicConfigValue{displayName("R from cases"), width(90)}).
		OverrideByName("reasons", []dashboard.DynamicConfigValue{displayName("Why")}).
		OverrideByName("cases", []dashboard.DynamicConfigValue{displayName("Cases"), width(80)}).
		OverrideByName("r_mean", []dashboard.DynamicConfigValue{displayName("R"), decimals(2), width(70)}).
		OverrideByName("bed_occupancy_pct", []dashboard.DynamicConfigValue{displayName("ПЗК %"), decimals(1), width(80)})
}

func regionBeds(id *ids, p Plan) *table.PanelBuilder {
	return tablePanel(id).
		Title("Beds by facility (latest report)").
		Description("Each facility's latest bed report per bed kind up to the end of the time range. Stale: the report is older than "+fmt.Sprint(p.BedMaxAge.Hours())+" h, so the processor leaves the facility out of ПЗК (pipeline/science/beds DefaultMaxAge).").
		Datasource(ClickHouseDatasource()).
		WithTarget(NewClickHouseTable(regionBedsSQL(p.BedMaxAge)).RefId("A")).
		Height(10).Span(14).
		SortBy(sortBy("Stale", true)).
		OverrideByName("facility_id", []dashboard.DynamicConfigValue{displayName("Facility id"), width(110)}).
		OverrideByName("facility", []dashboard.DynamicConfigValue{displayName("Facility")}).
		OverrideByName("bed_kind", []dashboard.DynamicConfigValue{displayName("Beds"), width(90)}).
		OverrideByName("occupied", []dashboard.DynamicConfigValue{displayName("Occupied"), width(90)}).
		OverrideByName("total", []dashboard.DynamicConfigValue{displayName("Total"), width(80)}).
		OverrideByName("occupancy_pct", []dashboard.DynamicConfigValue{displayName("Occupancy %"), decimals(1), thresholdsProp(p.occupancyThresholds()), prop("custom.cellOptions", map[string]any{"type": "gauge", "mode": "basic"}), prop("min", 0), prop("max", 100)}).
		OverrideByName("last_snapshot", []dashboard.DynamicConfigValue{displayName("Last report"), width(170)}).
		OverrideByName("age_hours", []dashboard.DynamicConfigValue{displayName("Age"), unit("h"), decimals(1), width(80)}).
		OverrideByName("stale", []dashboard.DynamicConfigValue{displayName("Stale"), width(70), colorBackground(),
			mappingsProp([]dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: map[string]dashboard.ValueMappingResult{
				"0": {Text: cog.ToPtr("fresh"), Color: cog.ToPtr("transparent"), Index: cog.ToPtr(int32(0))},
				"1": {Text: cog.ToPtr("STALE"), Color: cog.ToPtr("orange"), Index: cog.ToPtr(int32(1))},
			}}}})})
}

func regionStale(id *ids) *timeseries.PanelBuilder {
	return seriesPanel(id).
		Title("Infectious beds counted and stale facilities").
		Description("Occupied and total infectious beds the processor counted (fresh facilities only) and how many facilities were stale each day.").
		Datasource(ClickHouseDatasource()).
		WithTarget(NewClickHouseTimeSeries(regionStaleSQL).RefId("A")).
		Height(10).Span(10).
		Unit("short").Min(0).Decimals(0).
		OverrideByName("beds_total", []dashboard.DynamicConfigValue{displayName("beds total"), fixedColor("text")}).
		OverrideByName("beds_occupied", []dashboard.DynamicConfigValue{displayName("beds occupied"), fixedColor("blue"), prop("custom.fillOpacity", 20)}).
		OverrideByName("stale_facilities", []dashboard.DynamicConfigValue{displayName("stale facilities"), fixedColor("orange"),
			prop("custom.drawStyle", "bars"), prop("custom.fillOpacity", 80), prop("custom.axisPlacement", "right")})
}

func regionContacts(id *ids) *timeseries.PanelBuilder {
	return seriesPanel(id).
		Title("Contacts per case").
		Description("Contacts traced per confirmed case over 7 days, and (right axis) the percentage of contacts reported as a confirmed case within the 14-day follow-up.").
		Datasource(ClickHouseDatasource()).
		WithTarget(NewClickHouseTimeSeries(regionContactsSQL).RefId("A")).
		Height(8).Span(12).
		Unit("short").Min(0).Decimals(1).
		OverrideByName("contacts_per_case", []dashboard.DynamicConfigValue{displayName("contacts per case"), fixedColor("blue")}).
		OverrideByName("contacts_became_cases_pct", []dashboard.DynamicConfigValue{displayName("contacts who became cases"), unit("percent"), fixedColor("red"), prop("custom.axisPlacement", "right")})
}

func regionVaccination(id *ids) *timeseries.PanelBuilder {
	return seriesPanel(id).
		Title("Vaccination coverage").
		Description("Cumulative share of the region's population vaccinated, by dose.").
		Datasource(ClickHouseDatasource()).
		WithTarget(NewClickHouseTimeSeries(regionVaccinationSQL).RefId("A")).
		Height(8).Span(12).
		Unit("percent").Min(0).Max(100).Decimals(1).
		OverrideByName("vaccination_dose1_pct", []dashboard.DynamicConfigValue{displayName("dose 1"), fixedColor("light-green")}).
		OverrideByName("vaccination_dose2_pct", []dashboard.DynamicConfigValue{displayName("dose 2"), fixedColor("green")}).
		OverrideByName("vaccination_dose3_plus_pct", []dashboard.DynamicConfigValue{displayName("dose 3+"), fixedColor("dark-green")})
}

func regionLevelHistory(id *ids) *timeseries.PanelBuilder {
	return seriesPanel(id).
		Title("Restriction level").
		Description("The region's restriction level after each decision (1 mildest).").
		Datasource(ClickHouseDatasource()).
		WithTarget(NewClickHouseTimeSeries(regionLevelHistorySQL).RefId("A")).
		Height(6).Span(24).
		Unit("none").Decimals(0).Min(0).Max(4).
		LineInterpolation(common.LineInterpolationStepAfter).LineWidth(2).FillOpacity(30).
		Thresholds(thresholdsBuilder(levelThresholds())).
		ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdThresholds)).
		GradientMode(common.GraphGradientModeScheme).
		OverrideByName("level", []dashboard.DynamicConfigValue{displayName("level")})
}
