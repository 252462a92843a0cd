package dashboards

import (
	"encoding/json"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
)

// The grafana-foundation-sdk ships no query type for the ClickHouse plugin, so
// this file adds one the way the SDK's custom-query example does: a struct
// implementing variants.Dataquery, a builder, and an unmarshaler registered
// with cog's runtime.

// ClickHousePluginID is the plugin id of Grafana's official ClickHouse data
// source (github.com/grafana/clickhouse-datasource).
const ClickHousePluginID = "grafana-clickhouse-datasource"

// Result formats of the ClickHouse plugin. The backend reads the numeric
// `format` (grafana/sqlds FormatQueryOption: 0 time series, 1 table); the
// v4 query editor reads `queryType` ("timeseries", "table") and, with
// editorType "sql", shows the raw SQL. Both are written so the panel renders
// the same on plugin v3 (which reads format) and v4.
const (
	chFormatTimeSeries = 0
	chFormatTable      = 1
)

// chPluginVersion marks the saved query as written for the v4 editor, so the
// editor does not run its v3 → v4 migration on it.
const chPluginVersion = "4.0.0"

// ClickHouseQuery is one SQL query of the ClickHouse data source.
type ClickHouseQuery struct {
	// RefId and Hide are expected on all queries.
	RefId string `json:"refId"`
	Hide  *bool  `json:"hide,omitempty"`

	Datasource *common.DataSourceRef `json:"datasource,omitempty"`
	// EditorType is "sql": the raw SQL editor, not the query builder.
	EditorType string `json:"editorType"`
	// QueryType is "table" or "timeseries" (plugin v4).
	QueryType string `json:"queryType"`
	// Format is the backend's result format: 0 time series, 1 table.
	Format int `json:"format"`
	// RawSql is the SQL, with Grafana macros ($__timeFilter(col),
	// $__dateFilter(col), $__fromTime, $__toTime) and template variables.
	RawSql        string `json:"rawSql"`
	PluginVersion string `json:"pluginVersion,omitempty"`
}

// ImplementsDataqueryVariant tells cog that ClickHouseQuery is a Dataquery.
func (q ClickHouseQuery) ImplementsDataqueryVariant() {}

// DataqueryType is the data source plugin id.
func (q ClickHouseQuery) DataqueryType() string { return ClickHousePluginID }

// Validate checks what the plugin needs to run the query.
func (q ClickHouseQuery) Validate() error {
	var errs cog.BuildErrors
	if q.RawSql == "" {
		errs = append(errs, cog.MakeBuildErrors("rawSql", errEmptySQL)...)
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// Equals compares two queries field by field.
func (q ClickHouseQuery) Equals(otherCandidate variants.Dataquery) bool {
	other, ok := otherCandidate.(ClickHouseQuery)
	if !ok {
		return false
	}
	if (q.Hide == nil) != (other.Hide == nil) || (q.Hide != nil && *q.Hide != *other.Hide) {
		return false
	}
	if (q.Datasource == nil) != (other.Datasource == nil) || (q.Datasource != nil && !q.Datasource.Equals(*other.Datasource)) {
		return false
	}
	return q.RefId == other.RefId && q.EditorType == other.EditorType && q.QueryType == other.QueryType &&
		q.Format == other.Format && q.RawSql == other.RawSql && q.PluginVersion == other.PluginVersion
}

// ClickHouseVariantConfig lets cog unmarshal dashboards holding ClickHouse
// queries (cog.NewRuntime().RegisterDataqueryVariant).
func ClickHouseVariantConfig() variants.DataqueryConfig {
	unmarshal := func(raw []byte) (variants.Dataquery, error) {
		q := ClickHouseQuery{}
		if err := json.Unmarshal(raw, &q); err != nil {
			return nil, err
		}
		return q, nil
	}
	return variants.DataqueryConfig{
		Identifier:                 ClickHousePluginID,
		DataqueryUnmarshaler:       unmarshal,
		StrictDataqueryUnmarshaler: unmarshal,
	}
}

var _ cog.Builder[variants.Dataquery] = (*ClickHouseQueryBuilder)(nil)

// ClickHouseQueryBuilder builds a ClickHouseQuery.
type ClickHouseQueryBuilder struct {
	internal *ClickHouseQuery
}

// NewClickHouseTable returns a query whose result Grafana reads as a table.
func NewClickHouseTable(sql string) *ClickHouseQueryBuilder {
	return newClickHouseQuery(sql, "table", chFormatTable)
}

// NewClickHouseTimeSeries returns a query whose result Grafana reads as time
// series: the first Date/DateTime column is the time, every numeric column a
// series.
func NewClickHouseTimeSeries(sql string) *ClickHouseQueryBuilder {
	return newClickHouseQuery(sql, "timeseries", chFormatTimeSeries)
}

func newClickHouseQuery(sql, queryType string, format int) *ClickHouseQueryBuilder {
	ds := ClickHouseDatasource()
	return &ClickHouseQueryBuilder{internal: &ClickHouseQuery{
		Datasource: &ds, EditorType: "sql", QueryType: queryType, Format: format,
		RawSql: sql, PluginVersion: chPluginVersion,
	}}
}

// Build returns the query.
func (b *ClickHouseQueryBuilder) Build() (variants.Dataquery, error) {
	if err := b.internal.Validate(); err != nil {
		return ClickHouseQuery{}, err
	}
	return *b.internal, nil
}

// RefId sets the query's reference id within its panel.
func (b *ClickHouseQueryBuilder) RefId(refID string) *ClickHouseQueryBuilder {
	b.internal.RefId = refID
	return b
}

// Hide hides the query's result from the panel.
func (b *ClickHouseQueryBuilder) Hide(hide bool) *ClickHouseQueryBuilder {
	b.internal.Hide = &hide
	return b
}
