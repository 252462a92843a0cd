package clickhouse

// StoreColumns is, per table the package writes (the sink's, replay_runs and
// regions_store), its column list (for TestColumnListsMatchTheDDL, an external
// test: chtest imports this package).
var StoreColumns = map[string]string{
	eventsTable.name:     eventsTable.columns,
	indicatorsTable.name: indicatorsTable.columns,
	decisionsTable.name:  decisionsTable.columns,
	alertsTable.name:     alertsTable.columns,
	signalsTable.name:    signalsTable.columns,
	replayRunsTable.name: replayRunsTable.columns,
	regionsTable.name:    regionsTable.columns,
}
