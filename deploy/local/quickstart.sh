#!/usr/bin/env bash
# epiwatch quick start: installs what is missing, starts a local ClickHouse on
# loopback, builds epiwatch and runs the whole pipeline (embedded NATS
# JetStream, ingest API, processors, ClickHouse sink, alerter) fed by a
# simulated outbreak posted through the ingest API.
#
#   deploy/local/quickstart.sh                 # 120 simulated days, 20 Kazakhstan regions,
#                                              # with the data-quality situations on
#   deploy/local/quickstart.sh --days 60 --seed 7
#   deploy/local/quickstart.sh --exit-when-done  # stop after the simulation has landed
#
# Extra arguments go to 'epiwatch run --simulate'. Data stays in ./data;
# ClickHouse keeps running afterwards (deploy/local/clickhouse.sh stop).
set -euo pipefail
cd "$(dirname "$0")/../.."
export EPIWATCH_DATA_DIR="${EPIWATCH_DATA_DIR:-$PWD/data}"

deploy/local/setup.sh --quickstart
deploy/local/clickhouse.sh start
mkdir -p bin
echo "quickstart: building bin/epiwatch" >&2
go build -o bin/epiwatch ./cmd/epiwatch
# --data-quality: the outbreak comes with what real data bring (a late case
# feed, a sporadic region, duplicate notifications, corrections, closing and
# silent hospitals), so the dashboards and decisions show how each is handled.
exec bin/epiwatch run --data-dir "$EPIWATCH_DATA_DIR" --simulate --data-quality "$@"
