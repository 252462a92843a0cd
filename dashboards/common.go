package dashboards

import (
	"errors"
	"fmt"
	"time"

	"github.com/epiwatch/epiwatch/schemas"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Data source uids. The provisioning files in deploy/grafana/provisioning
// create data sources with exactly these uids, so the dashboards find them
// without a datasource variable.
const (
	ClickHouseUID = "epiwatch-clickhouse"
	PrometheusUID = "epiwatch-prometheus"
)

// Dashboard uids: stable, so links between dashboards and bookmarks survive
// regeneration.
const (
	NationalUID = "epiwatch-national"
	RegionUID   = "epiwatch-region"
	PipelineUID = "epiwatch-pipeline"
)

// Plan is what the dashboards draw from outside their own package: the
// decision rule's bands and the processor's bed staleness. It is read at
// generation time from where those numbers live (dashboards/cmd/gen: the
// shipped rule set kz-2020-plan and the beds package's default), so the
// dashboards never keep a second copy of them.
type Plan struct {
	// R are the R values the rule set compares with, ascending: the ease
	// bound, the moderate band's lower end, the strengthen bound (the plan:
	// 1 / 1.15 / 1.3). Colours change at each.
	R [3]float64
	// OccupancyPct are the ПЗК percentages it compares with, ascending (the
	// plan: 50 / 70 / 90).
	OccupancyPct [3]float64
	// BedMaxAge is the age after which a facility's latest bed snapshot no
	// longer counts towards ПЗК (the processor's default bed_max_age): the
	// beds table marks older snapshots stale.
	BedMaxAge time.Duration
}

// Validate reports a Plan the dashboards cannot draw: bands out of order,
// or a staleness age that is not a positive number of hours (the beds
// table compares ages in hours).
func (p Plan) Validate() error {
	for _, b := range []struct {
		name string
		cuts [3]float64
	}{{"R", p.R}, {"occupancy", p.OccupancyPct}} {
		if !(b.cuts[0] < b.cuts[1] && b.cuts[1] < b.cuts[2]) {
			return fmt.Errorf("dashboard plan: %s bands %v are not strictly ascending", b.name, b.cuts)
		}
	}
	if p.BedMaxAge <= 0 || p.BedMaxAge%time.Hour != 0 {
		return fmt.Errorf("dashboard plan: bed staleness %s is not a positive whole number of hours", p.BedMaxAge)
	}
	return nil
}

// bandsText is the bands as the descriptions quote them: "R 1.0 / 1.15 /
// 1.3, ПЗК 50 / 70 / 90 %".
func (p Plan) bandsText() string {
	return fmt.Sprintf("R %.1f / %g / %g, ПЗК %g / %g / %g %%", p.R[0], p.R[1], p.R[2], p.OccupancyPct[0], p.OccupancyPct[1], p.OccupancyPct[2])
}

// Restriction level colours, mildest first; level 0 means "no decision yet".
var levelColors = []string{"text", "green", "yellow", "orange", "red"}

var errEmptySQL = errors.New("empty SQL")

// ClickHouseDatasource is the reference every ClickHouse panel uses.
func ClickHouseDatasource() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr(ClickHousePluginID), Uid: cog.ToPtr(ClickHouseUID)}
}

// PrometheusDatasource is the reference every Prometheus panel uses.
func PrometheusDatasource() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr(PrometheusUID)}
}

// ids hands out panel ids, unique within one dashboard and stable across
// regenerations (Grafana's links to a panel use the id).
type ids struct{ n uint32 }

func (i *ids) next() uint32 { i.n++; return i.n }

// thresholds builds absolute thresholds: base colour, then value → colour.
func thresholds(base string, steps ...step) dashboard.ThresholdsConfig {
	out := dashboard.ThresholdsConfig{Mode: dashboard.ThresholdsModeAbsolute, Steps: []dashboard.Threshold{{Value: nil, Color: base}}}
	for _, s := range steps {
		out.Steps = append(out.Steps, dashboard.Threshold{Value: cog.ToPtr(s.value), Color: s.color})
	}
	return out
}

type step struct {
	value float64
	color string
}

func thresholdsBuilder(t dashboard.ThresholdsConfig) *dashboard.ThresholdsConfigBuilder {
	return dashboard.NewThresholdsConfigBuilder().Mode(t.Mode).Steps(t.Steps)
}

// bandThresholds colour a metric by three ascending cut points, each
// divided by per (100 to colour a ratio by percentage bands): green below
// the first, then yellow, orange, red.
func bandThresholds(cuts [3]float64, per float64) dashboard.ThresholdsConfig {
	for i := range cuts {
		cuts[i] /= per
	}
	return thresholds("green", step{cuts[0], "#EAB839"}, step{cuts[1], "orange"}, step{cuts[2], "red"})
}

// rThresholds colour R by the plan's bands.
func (p Plan) rThresholds() dashboard.ThresholdsConfig { return bandThresholds(p.R, 1) }

// occupancyThresholds colour ПЗК (percent) by the plan's bands.
func (p Plan) occupancyThresholds() dashboard.ThresholdsConfig {
	return bandThresholds(p.OccupancyPct, 1)
}

// levelThresholds colour a restriction level number: 0 none, 1 green … 4 red.
func levelThresholds() dashboard.ThresholdsConfig {
	var steps []step
	for lvl, c := range levelColors[1:] {
		steps = append(steps, step{float64(lvl + 1), c})
	}
	return thresholds(levelColors[0], steps...)
}

// levelMappings show level 0 as "no decision yet".
func levelMappings() []dashboard.ValueMapping {
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{
		Type:    dashboard.MappingTypeValueToText,
		Options: map[string]dashboard.ValueMappingResult{"0": {Text: cog.ToPtr("no decision yet"), Color: cog.ToPtr("text")}},
	}}}
}

// actionMappings colour decision actions (schemas.Action*).
func actionMappings() []dashboard.ValueMapping {
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{
		Type: dashboard.MappingTypeValueToText,
		Options: map[string]dashboard.ValueMappingResult{
			schemas.ActionStrengthen: {Color: cog.ToPtr("red"), Index: cog.ToPtr(int32(0))},
			schemas.ActionKeep:       {Color: cog.ToPtr("text"), Index: cog.ToPtr(int32(1))},
			schemas.ActionEase:       {Color: cog.ToPtr("green"), Index: cog.ToPtr(int32(2))},
		},
	}}}
}

// rStatusMappings words and colours R's status (schemas.RStatus*): only
// "ok" is an R decisions rely on.
func rStatusMappings() []dashboard.ValueMapping {
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{
		Type: dashboard.MappingTypeValueToText,
		Options: map[string]dashboard.ValueMappingResult{
			schemas.RStatusOK:           {Text: cog.ToPtr("ok"), Color: cog.ToPtr("text"), Index: cog.ToPtr(int32(0))},
			schemas.RStatusFewCases:     {Text: cog.ToPtr("few cases"), Color: cog.ToPtr("orange"), Index: cog.ToPtr(int32(1))},
			schemas.RStatusStaleFeed:    {Text: cog.ToPtr("feed missing"), Color: cog.ToPtr("red"), Index: cog.ToPtr(int32(2))},
			schemas.RStatusNotEstimable: {Text: cog.ToPtr("not estimable"), Color: cog.ToPtr("text"), Index: cog.ToPtr(int32(3))},
		},
	}}}
}

// originMappings tell a rule set's decision from a headquarters' manual
// level (schemas.Origin*).
func originMappings() []dashboard.ValueMapping {
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{
		Type: dashboard.MappingTypeValueToText,
		Options: map[string]dashboard.ValueMappingResult{
			schemas.OriginRule:   {Text: cog.ToPtr("rule"), Color: cog.ToPtr("text"), Index: cog.ToPtr(int32(0))},
			schemas.OriginManual: {Text: cog.ToPtr("MANUAL"), Color: cog.ToPtr("purple"), Index: cog.ToPtr(int32(1))},
		},
	}}}
}

// statusMappings colour alert delivery statuses (schemas.Alert*).
func statusMappings() []dashboard.ValueMapping {
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{
		Type: dashboard.MappingTypeValueToText,
		Options: map[string]dashboard.ValueMappingResult{
			schemas.AlertSent:   {Color: cog.ToPtr("green"), Index: cog.ToPtr(int32(0))},
			schemas.AlertFailed: {Color: cog.ToPtr("red"), Index: cog.ToPtr(int32(1))},
		},
	}}}
}

// signalStreamMappings names the detect stage's series.
func signalStreamMappings() []dashboard.ValueMapping {
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: map[string]dashboard.ValueMappingResult{
		schemas.SignalCases:         {Text: cog.ToPtr("confirmed cases"), Index: cog.ToPtr(int32(0))},
		schemas.SignalTestsPositive: {Text: cog.ToPtr("positive tests"), Index: cog.ToPtr(int32(1))},
		schemas.SignalBedsOccupied:  {Text: cog.ToPtr("occupied infectious beds"), Index: cog.ToPtr(int32(2))},
	}}}}
}

// signalMethodMappings names the detect stage's methods.
func signalMethodMappings() []dashboard.ValueMapping {
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: map[string]dashboard.ValueMappingResult{
		schemas.MethodEARSC2:     {Text: cog.ToPtr("EARS C2"), Index: cog.ToPtr(int32(0))},
		schemas.MethodEARSC3:     {Text: cog.ToPtr("EARS C3"), Index: cog.ToPtr(int32(1))},
		schemas.MethodFarrington: {Text: cog.ToPtr("Farrington"), Index: cog.ToPtr(int32(2))},
		schemas.MethodNoufaily:   {Text: cog.ToPtr("Noufaily"), Index: cog.ToPtr(int32(3))},
	}}}}
}

// provisionalMappings shows a 0/1 provisional column in words.
func provisionalMappings() dashboard.DynamicConfigValue {
	return mappingsProp([]dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: map[string]dashboard.ValueMappingResult{
		"0": {Text: cog.ToPtr("complete"), Color: cog.ToPtr("transparent"), Index: cog.ToPtr(int32(0))},
		"1": {Text: cog.ToPtr("PROVISIONAL"), Color: cog.ToPtr("blue"), Index: cog.ToPtr(int32(1))},
	}}}})
}

// Field-config override properties (dashboard.DynamicConfigValue ids are
// Grafana's field config paths).
func prop(id string, value any) dashboard.DynamicConfigValue {
	return dashboard.DynamicConfigValue{Id: id, Value: value}
}

func displayName(s string) dashboard.DynamicConfigValue { return prop("displayName", s) }
func unit(s string) dashboard.DynamicConfigValue        { return prop("unit", s) }
func decimals(n int) dashboard.DynamicConfigValue       { return prop("decimals", n) }
func colorBackground() dashboard.DynamicConfigValue {
	return prop("custom.cellOptions", map[string]any{"type": "color-background", "mode": "basic"})
}
func colorText() dashboard.DynamicConfigValue {
	return prop("custom.cellOptions", map[string]any{"type": "color-text"})
}
func thresholdsProp(t dashboard.ThresholdsConfig) dashboard.DynamicConfigValue {
	return prop("thresholds", t)
}
func mappingsProp(m []dashboard.ValueMapping) dashboard.DynamicConfigValue {
	return prop("mappings", m)
}
func fixedColor(c string) dashboard.DynamicConfigValue {
	return prop("color", map[string]any{"mode": "fixed", "fixedColor": c})
}
func width(px int) dashboard.DynamicConfigValue { return prop("custom.width", px) }
func links(title, url string) dashboard.DynamicConfigValue {
	return prop("links", []map[string]any{{"title": title, "url": url}})
}

// regionLink opens the region dashboard for the row's region, keeping the
// time range.
func regionLink(field string) dashboard.DynamicConfigValue {
	return links("Open the region dashboard", "/d/"+RegionUID+"/region?var-region=${__data.fields."+field+"}&${__url_time_range}")
}

// organize is Grafana's "organize fields" transformation: the column order,
// and columns left out of the display. Renaming is done with displayName
// overrides instead, so override matchers keep using the query's column
// names (which the tests check against what the query returns).
func organize(order []string, exclude ...string) dashboard.DataTransformerConfig {
	index := make(map[string]int, len(order))
	for i, f := range order {
		index[f] = i
	}
	ex := make(map[string]bool, len(exclude))
	for _, f := range exclude {
		ex[f] = true
	}
	return dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{
		"indexByName": index, "renameByName": map[string]string{}, "excludeByName": ex,
	}}
}

// sortBy is a table's initial sort, by displayed column name.
func sortBy(display string, desc bool) []cog.Builder[common.TableSortByFieldState] {
	return []cog.Builder[common.TableSortByFieldState]{common.NewTableSortByFieldStateBuilder().DisplayName(display).Desc(desc)}
}

// seriesPanel is a time-series panel with the next id, a legend below it and
// a tooltip listing every series (the SDK's defaults hide the legend).
func seriesPanel(id *ids) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Id(id.next()).
		Legend(common.NewVizLegendOptionsBuilder().DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom).ShowLegend(true)).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderNone))
}

// tablePanel is a table panel with the next id, a header, column filters and
// no footer.
func tablePanel(id *ids) *table.PanelBuilder {
	return table.NewPanelBuilder().
		Id(id.next()).
		ShowHeader(true).
		Filterable(true).
		Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{}))
}

// row is a dashboard row with the next panel id.
func row(id *ids, title string) *dashboard.RowBuilder {
	return dashboard.NewRowBuilder(title).Id(id.next())
}

// newDashboard is what every epiwatch dashboard shares: read-only, UTC,
// crosshair tooltips, the "epiwatch" tag and a drop-down to the others.
// tag is the audience ("epidemiology" or "operations").
func newDashboard(title, uid, description, tag, from, refresh string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description+" Generated by dashboards/cmd/gen; edit the Go builders, not this dashboard.").
		Tags([]string{"epiwatch", tag}).
		Readonly().
		Time(from, "now").
		Timezone(common.TimeZoneUtc).
		Refresh(refresh).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Link(dashboard.NewDashboardLinkBuilder("epiwatch").Type(dashboard.DashboardLinkTypeDashboards).Tags([]string{"epiwatch"}).AsDropdown(true).KeepTime(true))
}
