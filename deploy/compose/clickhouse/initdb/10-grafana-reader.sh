#!/bin/bash
# Run once by the clickhouse-server image on an empty data volume: a
# read-only user for Grafana's ClickHouse data source (the dashboards only
# SELECT). GRAFANA_CLICKHOUSE_PASSWORD comes from deploy/compose/compose.yaml.
set -euo pipefail
clickhouse client --user "${CLICKHOUSE_USER}" --password "${CLICKHOUSE_PASSWORD}" --multiquery <<SQL
CREATE USER IF NOT EXISTS grafana IDENTIFIED WITH sha256_password BY '${GRAFANA_CLICKHOUSE_PASSWORD}'
    SETTINGS readonly = 2;
GRANT SELECT ON ${CLICKHOUSE_DB}.* TO grafana;
SQL
