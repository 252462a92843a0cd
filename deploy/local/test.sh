#!/usr/bin/env bash
# Runs epiwatch's whole test suite on real components: it installs what is
# missing (setup.sh), starts a local ClickHouse 18.16 on loopback, points the
# compatibility tests at the current ClickHouse engine (chDB), and runs vet,
# every Go test (embedded NATS, real ClickHouse, real Alertmanager, promtool)
# and a bounded fuzzing pass. CI runs exactly this (.ci/run).
#
#   deploy/local/test.sh              # everything
#   FUZZTIME=1000000x deploy/local/test.sh # longer fuzzing (executions per target)
#   deploy/local/test.sh ./pipeline/... # only some packages (no fuzzing)
set -euo pipefail
cd "$(dirname "$0")/../.."
export EPIWATCH_DATA_DIR="${EPIWATCH_DATA_DIR:-$PWD/data}"

deploy/local/setup.sh

started_ch=0
if ! deploy/local/clickhouse.sh status >/dev/null 2>&1; then
  deploy/local/clickhouse.sh start
  started_ch=1
fi
cleanup() {
  if ((started_ch)); then deploy/local/clickhouse.sh stop || true; fi
}
trap cleanup EXIT

CHDB_LIB_PATH="$(deploy/local/chdb.sh path)"
export CHDB_LIB_PATH

pkgs=("$@")
((${#pkgs[@]})) || pkgs=(./...)

echo "== go vet"
go vet -tags chdb "${pkgs[@]}"

# The tests write their own configuration files; an EPIWATCH_* variable from
# this shell would override them (env beats file), e.g. every test sharing one
# data_dir. Only the ClickHouse address reaches them, through chtest.
export EPIWATCH_TEST_CLICKHOUSE_ADDR="127.0.0.1:${CLICKHOUSE_TCP_PORT:-9000}"
# setup.sh installed the local cluster's pieces: the cluster test
# (deploy/local/clustertest) must run, not skip.
export EPIWATCH_TEST_CLUSTER=require
for v in $(env | sed -n 's/^\(EPIWATCH_[A-Z0-9_]*\)=.*/\1/p'); do
  case "$v" in EPIWATCH_TEST_*|EPIWATCH_KEEP_TEST_DB) ;; *) unset "$v" ;; esac
done

echo "== go test"
go test -tags chdb -count=1 -timeout 20m "${pkgs[@]}"

if (($# == 0)); then
  # A count, not a duration: with a duration, Go 1.26's fuzz coordinator
  # can report its own deadline as a failure ("context deadline exceeded",
  # no crasher written; go.dev/issue/75804, fixed in Go 1.27). 100,000
  # executions take 2-10 s per target here.
  echo "== fuzzing (${FUZZTIME:-100000x} per target)"
  # Every Fuzz* function in the tree, each for a bounded time.
  while IFS= read -r line; do
    file=${line%%:*}
    name=$(sed -E 's/.*func (Fuzz[A-Za-z0-9_]+)\(.*/\1/' <<<"$line")
    pkg="./$(dirname "$file")"
    echo "-- $pkg $name"
    go test -run '^$' -fuzz "^${name}\$" -fuzztime "${FUZZTIME:-100000x}" "$pkg"
  done < <(grep -rEn --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+\(f \*testing\.F\)' . | grep -v '/vendor/')
fi
echo "== all tests passed"
