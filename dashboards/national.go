package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/geomap"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// National is the national situation: every region's restriction level, R
// with its credible interval, ПЗК, incidence and positivity, a map coloured
// by level, and the latest decisions and alerts.
func National(p Plan) *dashboard.DashboardBuilder {
	id := &ids{}
	return newDashboard("epiwatch — national situation", NationalUID,
		"Every region's restriction level and the indicators the national plan's rule compares (R and infectious-bed occupancy, ПЗК), from ClickHouse.",
		"epidemiology", "now-90d", "5m").
		WithVariable(countryVariable()).
		WithRow(row(id, "Regions")).
		WithPanel(regionsTable(id, p)).
		WithPanel(regionsMap(id)).
		WithRow(row(id, "Trend")).
		WithPanel(nationalCases(id)).
		WithPanel(nationalLevels(id)).
		WithRow(row(id, "Early warnings")).
		WithPanel(nationalAlarms(id)).
		WithRow(row(id, "Decisions and alerts")).
		WithPanel(nationalDecisions(id)).
		WithPanel(nationalAlerts(id))
}

func countryVariable() *dashboard.QueryVariableBuilder {
	return dashboard.NewQueryVariableBuilder("country").
		Label("Country").
		Description("ISO 3166-1 code of the country whose regions are shown.").
		Datasource(ClickHouseDatasource()).
		Query(dashboard.StringOrMap{String: cog.ToPtr(countryVariableSQL)}).
		Definition(countryVariableSQL).
		Refresh(dashboard.VariableRefreshOnDashboardLoad).
		Current(dashboard.VariableOption{Text: dashboard.StringOrArrayOfString{String: cog.ToPtr("KZ")}, Value: dashboard.StringOrArrayOfString{String: cog.ToPtr("KZ")}})
}

// regionsTable is the sortable table of regions.
func regionsTable(id *ids, p Plan) *table.PanelBuilder {
	return tablePanel(id).
		Title("Regions: restriction level, R, ПЗК, incidence, positivity").
		Description("Latest indicators of every region on or before the end of the time range, and its current restriction level (the latest decision's). R is the posterior mean with its 95 % credible interval (Cori et al. 2013); ПЗК is infectious-bed occupancy over fresh facilities. Colours follow the plan's bands: "+p.bandsText()+". Empty means not available (no data, or R not estimable). Click a region to open its dashboard.").
		Datasource(ClickHouseDatasource()).
		WithTarget(NewClickHouseTable(nationalRegionsSQL).RefId("A")).
		Height(14).Span(14).
		SortBy(sortBy("Level", true)).
		WithTransformation(organize([]string{
			"region", "name", "level", "level_name", "r_mean", "r_q025", "r_q975", "bed_occupancy_pct",
			"cases_7d_per_100k", "positivity_7d_pct", "stale_facilities", "r_status", "missing_feeds", "data_date", "lat", "lon",
		}, "lat", "lon")).
		OverrideByName("region", []dashboard.DynamicConfigValue{displayName("Region"), regionLink("region"), width(80)}).
		OverrideByName("name", []dashboard.DynamicConfigValue{displayName("Name")}).
		OverrideByName("level", []dashboard.DynamicConfigValue{displayName("Level"), thresholdsProp(levelThresholds()), mappingsProp(levelMappings()), colorBackground(), width(70)}).
		OverrideByName("level_name", []dashboard.DynamicConfigValue{displayName("Restriction level")}).
		OverrideByName("r_mean", []dashboard.DynamicConfigValue{displayName("R"), decimals(2), thresholdsProp(p.rThresholds()), colorBackground()}).
		OverrideByName("r_q025", []dashboard.DynamicConfigValue{displayName("R 2.5 %"), decimals(2)}).
		OverrideByName("r_q975", []dashboard.DynamicConfigValue{displayName("R 97.5 %"), decimals(2), thresholdsProp(p.rThresholds()), colorText()}).
		OverrideByName("bed_occupancy_pct", []dashboard.DynamicConfigValue{displayName("ПЗК %"), decimals(1), thresholdsProp(p.occupancyThresholds()), colorBackground()}).
		OverrideByName("cases_7d_per_100k", []dashboard.DynamicConfigValue{displayName("Cases 7 d / 100k"), decimals(1)}).
		OverrideByName("positivity_7d_pct", []dashboard.DynamicConfigValue{displayName("Positivity 7 d %"), decimals(1)}).
		OverrideByName("stale_facilities", []dashboard.DynamicConfigValue{displayName("Stale facilities"),
			thresholdsProp(thresholds("text", step{1, "orange"})), colorText()}).
		OverrideByName("r_status", []dashboard.DynamicConfigValue{displayName("R status"), mappingsProp(rStatusMappings()), colorText(), width(100)}).
		OverrideByName("missing_feeds", []dashboard.DynamicConfigValue{displayName("Missing feeds"), fixedColor("orange"), colorText()}).
		OverrideByName("data_date", []dashboard.DynamicConfigValue{displayName("Data as of"), unit("time:YYYY-MM-DD")})
}

// regionsMap places every region's administrative centre, coloured by its
// restriction level.
func regionsMap(id *ids) *geomap.PanelBuilder {
	markers := common.NewMapLayerOptionsBuilder().
		Type("markers").
		Name("Regions").
		Tooltip(true).
		Location(common.NewFrameGeometrySourceBuilder().Mode(common.FrameGeometrySourceModeCoords).Latitude("lat").Longitude("lon")).
		Config(map[string]any{
			"showLegend": true,
			"style": map[string]any{
				"color":   map[string]any{"field": "level", "fixed": "dark-green"},
				"size":    map[string]any{"fixed": 14, "min": 2, "max": 15},
				"opacity": 0.85,
				"symbol":  map[string]any{"fixed": "img/icons/marker/circle.svg", "mode": "fixed"},
				"text":    map[string]any{"field": "region", "fixed": "", "mode": "field"},
				"textConfig": map[string]any{
					"fontSize": 10, "offsetX": 0, "offsetY": -16, "textAlign": "center", "textBaseline": "bottom",
				},
			},
		})
	return geomap.NewPanelBuilder().
		Id(id.next()).
		Title("Restriction level by region").
		Description("Each region's administrative centre (coordinates from the region reference, schemas/regions.csv), coloured by its current restriction level: green 1 … red 4, grey without a decision yet.").
		Datasource(ClickHouseDatasource()).
		WithTarget(NewClickHouseTable(nationalRegionsSQL).RefId("A")).
		Height(14).Span(10).
		View(geomap.NewMapViewConfigBuilder().Id("coords").Lat(46).Lon(70).Zoom(4)).
		Controls(geomap.NewControlsOptionsBuilder().ShowZoom(true).MouseWheelZoom(false).ShowAttribution(true)).
		Basemap(common.NewMapLayerOptionsBuilder().Type("default").Name("Basemap")).
		Layers([]cog.Builder[common.MapLayerOptions]{markers}).
		Tooltip(geomap.NewTooltipOptionsBuilder().Mode(geomap.TooltipModeDetails)).
		Thresholds(thresholdsBuilder(levelThresholds())).
		ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdThresholds)).
		Mappings(levelMappings()).
		Min(0).Max(4)
}

func nationalCases(id *ids) *timeseries.PanelBuilder {
	return seriesPanel(id).
		Title("Confirmed cases per day, country").
		Description("Sum over the country's regions of confirmed cases by report date, and the 7-day average. The last days grow as late reports arrive.").
		Datasource(ClickHouseDatasource()).
		WithTarget(NewClickHouseTimeSeries(nationalCasesSQL).RefId("A")).
		Height(8).Span(12).
		Unit("short").Min(0).
		DrawStyle(common.GraphDrawStyleBars).FillOpacity(60).
		OverrideByName("cases_reported", []dashboard.DynamicConfigValue{displayName("cases by report date")}).
		OverrideByName("cases_7d_average", []dashboard.DynamicConfigValue{displayName("7-day average"),
			prop("custom.drawStyle", "line"), prop("custom.lineWidth", 2), prop("custom.fillOpacity", 0), decimals(1)})
}

func nationalLevels(id *ids) *timeseries.PanelBuilder {
	return seriesPanel(id).
		Title("Regions by restriction level").
		Description("How many of the country's regions were decided at each level, per data day.").
		Datasource(ClickHouseDatasource()).
		WithTarget(NewClickHouseTimeSeries(nationalLevelsSQL).RefId("A")).
		Height(8).Span(12).
		Unit("short").Min(0).Decimals(0).
		DrawStyle(common.GraphDrawStyleBars).FillOpacity(80).
		Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).
		OverrideByName("level_1", []dashboard.DynamicConfigValue{displayName("level 1"), fixedColor(levelColors[1])}).
		OverrideByName("level_2", []dashboard.DynamicConfigValue{displayName("level 2"), fixedColor(levelColors[2])}).
		OverrideByName("level_3", []dashboard.DynamicConfigValue{displayName("level 3"), fixedColor(levelColors[3])}).
		OverrideByName("level_4_plus", []dashboard.DynamicConfigValue{displayName("level 4+"), fixedColor(levelColors[4])})
}

// nationalAlarms is the newest day's aberration alarms, the largest excess
// first.
func nationalAlarms(id *ids) *table.PanelBuilder {
	return tablePanel(id).
		Title("Signals: today's alarms").
		Description("Early warnings, not decisions: every alarm of the detect stage on the newest day with signals (on or before the end of the time range), the largest excess first. EARS C2/C3 compare a day's count of confirmed cases, positive tests or occupied infectious beds with the days just before; Farrington and Noufaily compare ISO weeks with past years. Excess is the count over the detector's upper bound. Provisional: the day's count may still grow. A signal never changes a restriction level; read it beside R and ПЗК.").
		Datasource(ClickHouseDatasource()).
		WithTarget(NewClickHouseTable(nationalAlarmsSQL).RefId("A")).
		Height(8).Span(24).
		NoValue("no alarms").
		SortBy(sortBy("Excess", true)).
		OverrideByName("region", []dashboard.DynamicConfigValue{displayName("Region"), regionLink("region"), width(80)}).
		OverrideByName("name", []dashboard.DynamicConfigValue{displayName("Name")}).
		OverrideByName("date", []dashboard.DynamicConfigValue{displayName("Day"), unit("time:YYYY-MM-DD"), width(100)}).
		OverrideByName("period", []dashboard.DynamicConfigValue{displayName("Period"), width(70)}).
		OverrideByName("stream", []dashboard.DynamicConfigValue{displayName("Series"), mappingsProp(signalStreamMappings())}).
		OverrideByName("method", []dashboard.DynamicConfigValue{displayName("Method"), mappingsProp(signalMethodMappings()), width(100)}).
		OverrideByName("observed", []dashboard.DynamicConfigValue{displayName("Observed"), decimals(0), width(90)}).
		OverrideByName("upper_bound", []dashboard.DynamicConfigValue{displayName("Upper bound"), decimals(1), width(100)}).
		OverrideByName("excess", []dashboard.DynamicConfigValue{displayName("Excess"), unit("x"), decimals(2), width(90),
			thresholdsProp(thresholds("orange", step{1.5, "red"})), colorBackground()}).
		OverrideByName("provisional", []dashboard.DynamicConfigValue{displayName("Provisional"), width(100), colorText(), provisionalMappings()})
}

func nationalDecisions(id *ids) *table.PanelBuilder {
	return decisionsTable(id, "Latest decisions that change a level or strengthen", nationalDecisionsSQL, true).
		Description("Restriction decisions in the time range that changed a region's level, or strengthened at the strictest level, newest first, with the rule-set clause that fired and its inputs.")
}

func nationalAlerts(id *ids) *table.PanelBuilder {
	return alertsTable(id, "Latest alert deliveries", nationalAlertsSQL, true).
		Description("Alert deliveries to Alertmanager and webhooks in the time range, newest first; failed deliveries are retried and escalated.")
}

// decisionsTable is shared by the national and region dashboards.
func decisionsTable(id *ids, title, sql string, withRegion bool) *table.PanelBuilder {
	b := tablePanel(id).
		Title(title).
		Datasource(ClickHouseDatasource()).
		WithTarget(NewClickHouseTable(sql).RefId("A")).
		Height(10).Span(24).
		SortBy(sortBy("Decided at", true)).
		OverrideByName("decided_at", []dashboard.DynamicConfigValue{displayName("Decided at"), width(170)}).
		OverrideByName("date", []dashboard.DynamicConfigValue{displayName("Data day"), unit("time:YYYY-MM-DD"), width(100)}).
		OverrideByName("action", []dashboard.DynamicConfigValue{displayName("Action"), mappingsProp(actionMappings()), colorText(), width(90)}).
		OverrideByName("level_from_name", []dashboard.DynamicConfigValue{displayName("From level")}).
		OverrideByName("level_to_name", []dashboard.DynamicConfigValue{displayName("To level")}).
		OverrideByName("clause", []dashboard.DynamicConfigValue{displayName("Clause")}).
		OverrideByName("r_mean", []dashboard.DynamicConfigValue{displayName("R"), decimals(2)}).
		OverrideByName("r_q975", []dashboard.DynamicConfigValue{displayName("R 97.5 %"), decimals(2)}).
		OverrideByName("bed_occupancy_pct", []dashboard.DynamicConfigValue{displayName("ПЗК %"), decimals(1)}).
		OverrideByName("origin", []dashboard.DynamicConfigValue{displayName("Origin"), mappingsProp(originMappings()), colorText(), width(80)}).
		OverrideByName("set_by", []dashboard.DynamicConfigValue{displayName("Set by")}).
		OverrideByName("rule_level_to", []dashboard.DynamicConfigValue{displayName("Rule's level"), width(90)}).
		OverrideByName("r_status", []dashboard.DynamicConfigValue{displayName("R status"), mappingsProp(rStatusMappings()), colorText(), width(100)}).
		OverrideByName("r_cases", []dashboard.DynamicConfigValue{displayName("R from cases"), width(90)}).
		OverrideByName("reason", []dashboard.DynamicConfigValue{displayName("Reason")})
	if withRegion {
		b = b.OverrideByName("region", []dashboard.DynamicConfigValue{displayName("Region"), regionLink("region"), width(80)}).
			OverrideByName("region_name", []dashboard.DynamicConfigValue{displayName("Name")})
	}
	return b
}

// alertsTable is shared by the national and region dashboards.
func alertsTable(id *ids, title, sql string, withRegion bool) *table.PanelBuilder {
	b := tablePanel(id).
		Title(title).
		Datasource(ClickHouseDatasource()).
		WithTarget(NewClickHouseTable(sql).RefId("A")).
		Height(9).Span(24).
		SortBy(sortBy("At", true)).
		OverrideByName("at", []dashboard.DynamicConfigValue{displayName("At"), width(170)}).
		OverrideByName("channel", []dashboard.DynamicConfigValue{displayName("Channel")}).
		OverrideByName("kind", []dashboard.DynamicConfigValue{displayName("Kind")}).
		OverrideByName("status", []dashboard.DynamicConfigValue{displayName("Status"), mappingsProp(statusMappings()), colorText(), width(80)}).
		OverrideByName("attempts", []dashboard.DynamicConfigValue{displayName("Attempts"), width(80)}).
		OverrideByName("escalated", []dashboard.DynamicConfigValue{displayName("Escalated"), width(90)}).
		OverrideByName("error", []dashboard.DynamicConfigValue{displayName("Error")}).
		OverrideByName("decision_id", []dashboard.DynamicConfigValue{displayName("Decision")})
	if withRegion {
		b = b.OverrideByName("region", []dashboard.DynamicConfigValue{displayName("Region"), regionLink("region"), width(80)})
	}
	return b
}
