#!/usr/bin/env bash
# Installs everything epiwatch's quick start and test suite need, from the
# project's own files only: Debian packages (only those missing), Go modules,
# the chDB engine library (npm) for the current-ClickHouse compatibility
# tests, and the local cluster's pieces (deploy/local/cluster.sh): ZooKeeper
# and the official nats-server built at go.mod's version into ./bin.
# Idempotent; safe to run on every CI run.
#
#   deploy/local/setup.sh              # everything (what the test suite needs)
#   deploy/local/setup.sh --no-chdb    # without the chDB library
#   deploy/local/setup.sh --quickstart # only what the quick start needs:
#                                      # ClickHouse and the Go modules
#                                      # (no Prometheus, chDB or cluster)
#
# Installing Debian packages needs root: run as root, or as a user who may
# sudo (the script calls sudo itself when it is not root).
set -euo pipefail
cd "$(dirname "$0")/../.."

want_chdb=1
want_prometheus=1
want_cluster=1
for a in "$@"; do
  case "$a" in
    --no-chdb) want_chdb=0 ;;
    --quickstart) want_chdb=0 want_prometheus=0 want_cluster=0 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $a" >&2; exit 2 ;;
  esac
done

say() { printf 'setup: %s\n' "$*" >&2; }

# Debian packages: the real servers the tests and the quick start run.
#   clickhouse-server/-client  ClickHouse 18.16 (Debian bookworm)
#   prometheus                 promtool, to check shipped Prometheus configs and rules
#   prometheus-alertmanager    a real Alertmanager for the alert tests; amtool
#   zookeeper                  ZooKeeper 3.8 for the local ClickHouse cluster (cluster.sh)
pkgs=(clickhouse-server clickhouse-client)
if ((want_prometheus)); then pkgs+=(prometheus prometheus-alertmanager); fi
if ((want_cluster)); then pkgs+=(zookeeper); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
  else
    SUDO=
  fi
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  # The packages' own services are not used: epiwatch starts its servers on
  # loopback with its own data directories (clickhouse.sh, the tests).
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's packages may have started system services; they would hold the
# ports (9093 alertmanager, 9090 prometheus, 2181 zookeeper) and are not used.
[ "$(id -u)" -eq 0 ] || SUDO=sudo
for svc in prometheus prometheus-alertmanager prometheus-node-exporter zookeeper; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    ${SUDO:-} systemctl stop "$svc" || true
    if [ "$svc" = zookeeper ]; then ${SUDO:-} systemctl disable --quiet "$svc" 2>/dev/null || true; fi
  fi
done

command -v go >/dev/null || { echo "setup: Go is not installed (https://go.dev/dl); epiwatch needs Go $(sed -n 's/^go //p' go.mod)" >&2; exit 1; }
say "downloading Go modules"
go mod download

if ((want_cluster)); then
  # The official nats-server for deploy/local/cluster.sh, at the version the
  # module uses (go.mod), into ./bin; rebuilt only when missing or another version.
  nats_want="$(sed -n 's#^[[:space:]]*github.com/nats-io/nats-server/v2 \(v[^ ]*\).*#\1#p' go.mod | head -1)"
  nats_have="$( { bin/nats-server --version 2>/dev/null || true; } | sed -n 's/.*\(v[0-9][^ ]*\).*/\1/p')"
  if [ "$nats_have" != "$nats_want" ]; then
    say "building nats-server $nats_want into ./bin"
    mkdir -p bin
    GOBIN="$PWD/bin" go install "github.com/nats-io/nats-server/v2@$nats_want"
  fi
fi

if ((want_chdb)); then
  say "fetching the chDB library (current ClickHouse engine, for compatibility tests)"
  deploy/local/chdb.sh fetch >/dev/null
fi
say "done"
