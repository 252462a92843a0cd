#!/usr/bin/env bash
# A local ClickHouse server on loopback for the quick start and the tests,
# without Docker and without root (beyond installing the Debian package).
# Its config, data and logs live under $EPIWATCH_DATA_DIR/clickhouse
# (default ./data/clickhouse).
#
#   deploy/local/clickhouse.sh start    # install if missing, start, wait until it answers
#   deploy/local/clickhouse.sh stop     # stop it (waits for the process to exit)
#   deploy/local/clickhouse.sh status   # exit 0 when it answers
#   deploy/local/clickhouse.sh client [ARGS]  # clickhouse-client against it
#
# Ports: CLICKHOUSE_TCP_PORT (default 9000, native protocol — epiwatch's
# clickhouse.addr), CLICKHOUSE_HTTP_PORT (default 8123).
# Users: `default` (no password, loopback only) and `analyst` (read-only,
# password from CLICKHOUSE_ANALYST_PASSWORD, default "analyst").
set -euo pipefail
cd "$(dirname "$0")/../.."

data_dir="${EPIWATCH_DATA_DIR:-$PWD/data}"
mkdir -p "$data_dir"
data_dir="$(cd "$data_dir" && pwd)"
dir="$data_dir/clickhouse"
tcp="${CLICKHOUSE_TCP_PORT:-9000}"
http="${CLICKHOUSE_HTTP_PORT:-8123}"
pidfile="$dir/clickhouse.pid"

say() { printf 'clickhouse: %s\n' "$*" >&2; }

server_bin() {
  command -v clickhouse-server 2>/dev/null || { [ -x /usr/sbin/clickhouse-server ] && echo /usr/sbin/clickhouse-server; } || true
}

answers() {
  # The HTTP interface answers "Ok." on /ping once the server is ready.
  local body
  body="$( { exec 3<>"/dev/tcp/127.0.0.1/$http" && printf 'GET /ping HTTP/1.0\r\n\r\n' >&3 && timeout 2 cat <&3; } 2>/dev/null || true)"
  [[ "$body" == *"Ok."* ]]
}

running_pid() {
  [ -f "$pidfile" ] || return 1
  local pid
  pid="$(cat "$pidfile")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

write_config() {
  mkdir -p "$dir/data/tmp" "$dir/data/user_files" "$dir/log"
  local analyst_pw="${CLICKHOUSE_ANALYST_PASSWORD:-analyst}"
  local analyst_sha
  analyst_sha="$(printf '%s' "$analyst_pw" | sha256sum | cut -d' ' -f1)"
  cat >"$dir/config.xml" <<XML
<?xml version="1.0"?>
<!-- Written by deploy/local/clickhouse.sh; edits are overwritten on start. -->
<yandex>
  <logger>
    <level>warning</level>
    <log>$dir/log/server.log</log>
    <errorlog>$dir/log/error.log</errorlog>
    <size>100M</size>
    <count>2</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>$tcp</tcp_port>
  <http_port>$http</http_port>
  <path>$dir/data/</path>
  <tmp_path>$dir/data/tmp/</tmp_path>
  <user_files_path>$dir/data/user_files/</user_files_path>
  <users_config>$dir/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
XML
  # ClickHouse 18.16 has no SQL roles: the read-only analyst is a users.xml
  # user with a readonly profile limited to the epiwatch database.
  # (schemas/clickhouse/analyst_role.sql does the same with SQL roles on
  # current ClickHouse.)
  cat >"$dir/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <profiles>
    <default><max_memory_usage>4000000000</max_memory_usage></default>
    <readonly><readonly>2</readonly><max_memory_usage>2000000000</max_memory_usage></readonly>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
    <analyst>
      <password_sha256_hex>$analyst_sha</password_sha256_hex>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>readonly</profile>
      <quota>default</quota>
      <allow_databases><database>${EPIWATCH_CLICKHOUSE_DATABASE:-epiwatch}</database></allow_databases>
    </analyst>
  </users>
  <quotas><default></default></quotas>
</yandex>
XML
}

install_if_missing() {
  [ -n "$(server_bin)" ] && return 0
  say "clickhouse-server is not installed; installing the Debian package"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends clickhouse-server clickhouse-client >/dev/null
}

start() {
  if pid="$(running_pid)"; then
    if answers; then say "already running (pid $pid, tcp 127.0.0.1:$tcp)"; return 0; fi
  fi
  if answers; then
    say "something already answers on 127.0.0.1:$http and is not ours; set CLICKHOUSE_TCP_PORT/CLICKHOUSE_HTTP_PORT"
    return 1
  fi
  install_if_missing
  write_config
  local bin
  bin="$(server_bin)"
  say "starting $bin (tcp 127.0.0.1:$tcp, http 127.0.0.1:$http, data $dir/data)"
  # setsid: the server outlives this script and is not killed with its
  # process group (test runners kill groups).
  setsid "$bin" --config-file="$dir/config.xml" >"$dir/log/stdout.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 120); do
    if answers; then say "ready"; return 0; fi
    if ! running_pid >/dev/null; then
      say "server exited during start; last log lines:"
      tail -n 20 "$dir/log/error.log" "$dir/log/stdout.log" >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.5
  done
  say "server did not answer within 60 s; see $dir/log/"
  return 1
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then say "not running"; rm -f "$pidfile"; return 0; fi
  kill "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; say "stopped"; return 0; }
    sleep 0.5
  done
  say "did not stop in 30 s; killing"
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status)
    if answers; then echo "running (tcp 127.0.0.1:$tcp)"; else echo "not running"; exit 1; fi ;;
  client) shift; exec clickhouse-client --host 127.0.0.1 --port "$tcp" "$@" ;;
  -h|--help|help) sed -n '2,16p' "$0" ;;
  *) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac
