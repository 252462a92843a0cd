package clickhouse

// StoreColumns is, per table the sink writes, its column list (for
// TestColumnListsMatchTheDDL, an external test: chtest imports this package).
var StoreColumns = map[string]string{
	eventsTable.name:     eventsTable.columns,
	indicatorsTable.name: indicatorsTable.columns,
	decisionsTable.name:  decisionsTable.columns,
	alertsTable.name:     alertsTable.columns,
	signalsTable.name:    signalsTable.columns,
}
