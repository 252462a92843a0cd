#!/usr/bin/env bash
# A local production-shaped cluster on loopback, without Docker and without
# root (beyond setup.sh installing the packages): a 3-node NATS JetStream
# cluster, one ZooKeeper, and ClickHouse 18.16 as 2 shards x 2 replicas.
# Config, data and logs live under $EPIWATCH_DATA_DIR/cluster (default
# ./data/cluster), one directory per node.
#
#   deploy/local/cluster.sh start          # start every node, wait until all answer
#   deploy/local/cluster.sh stop           # stop every node (waits for exit)
#   deploy/local/cluster.sh status         # each node up/down with its ports; exit 1 if any is down
#   deploy/local/cluster.sh env            # export lines pointing epiwatch at the cluster
#   deploy/local/cluster.sh kill NODE      # kill -9 one node (failure drills)
#   deploy/local/cluster.sh restart NODE   # start (or stop and start) one node on its data
#   deploy/local/cluster.sh client [NODE] [ARGS]  # clickhouse-client (default ch-1),
#                                          # zkCli.sh (zk-1), or the `nats` CLI if installed
#
# Nodes and ports (all 127.0.0.1; none is a single-node default, so
# deploy/local/clickhouse.sh can run at the same time):
#   nats-1  client 14222  cluster 16222  monitoring 18222
#   nats-2  client 14223  cluster 16223  monitoring 18223
#   nats-3  client 14224  cluster 16224  monitoring 18224
#   zk-1    client 12181
#   ch-1    native 19001  http 18131  interserver 19011   shard 01 replica ch-1
#   ch-2    native 19002  http 18132  interserver 19012   shard 01 replica ch-2
#   ch-3    native 19003  http 18133  interserver 19013   shard 02 replica ch-3
#   ch-4    native 19004  http 18134  interserver 19014   shard 02 replica ch-4
# EPIWATCH_CLUSTER_PORT_OFFSET (default 0) is added to every port (the tests
# use it to run beside a developer's cluster).
#
# NATS: the official nats-server at the version in go.mod, built by setup.sh
# into ./bin (NATS_SERVER_BIN overrides); JetStream on, cluster "epiwatch".
# ZooKeeper: Debian's zookeeper 3.8 jar, our own config (not the system service).
# ClickHouse: Debian's clickhouse-server 18.16; remote_servers cluster
# "epiwatch", macros {shard} {replica} {cluster}, distributed DDL, so
# ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/t', '{replica}')
# and ON CLUSTER epiwatch work. User `default`, no password, loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"

data_dir="${EPIWATCH_DATA_DIR:-$PWD/data}"
mkdir -p "$data_dir"
data_dir="$(cd "$data_dir" && pwd)"
base="$data_dir/cluster"
off="${EPIWATCH_CLUSTER_PORT_OFFSET:-0}"
cluster_name=epiwatch
start_timeout="${EPIWATCH_CLUSTER_START_TIMEOUT:-90}" # seconds, for the whole start

nats_nodes=(nats-1 nats-2 nats-3)
ch_nodes=(ch-1 ch-2 ch-3 ch-4)
all_nodes=(nats-1 nats-2 nats-3 zk-1 ch-1 ch-2 ch-3 ch-4)

say() { printf 'cluster: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# Ports of node $1 (index from its name).
idx() { echo "${1##*-}"; }
nats_client() { echo $((14221 + $(idx "$1") + off)); }
nats_route() { echo $((16221 + $(idx "$1") + off)); }
nats_mon() { echo $((18221 + $(idx "$1") + off)); }
zk_port() { echo $((12181 + off)); }
ch_tcp() { echo $((19000 + $(idx "$1") + off)); }
ch_http() { echo $((18130 + $(idx "$1") + off)); }
ch_inter() { echo $((19010 + $(idx "$1") + off)); }
ch_shard() { printf '%02d' $((($(idx "$1") + 1) / 2)); }

ports_of() {
  case "$1" in
    nats-*) echo "client $(nats_client "$1") cluster $(nats_route "$1") monitoring $(nats_mon "$1")" ;;
    zk-1) echo "client $(zk_port)" ;;
    ch-*) echo "native $(ch_tcp "$1") http $(ch_http "$1") interserver $(ch_inter "$1") shard $(ch_shard "$1")" ;;
  esac
}

valid_node() {
  local n
  for n in "${all_nodes[@]}"; do [ "$n" = "$1" ] && return 0; done
  die "unknown node '$1' (nodes: ${all_nodes[*]})"
}

nats_version() { sed -n 's#^[[:space:]]*github.com/nats-io/nats-server/v2 \(v[^ ]*\).*#\1#p' "$root/go.mod" | head -1; }
nats_bin() { echo "${NATS_SERVER_BIN:-$root/bin/nats-server}"; }
ch_bin() { command -v clickhouse-server 2>/dev/null || { [ -x /usr/sbin/clickhouse-server ] && echo /usr/sbin/clickhouse-server; } || true; }
zk_jar=/usr/share/java/zookeeper.jar

check_binaries() {
  local b missing=()
  b="$(nats_bin)"
  [ -x "$b" ] || missing+=("nats-server ($b)")
  [ -n "$(ch_bin)" ] || missing+=("clickhouse-server")
  [ -f "$zk_jar" ] || missing+=("zookeeper ($zk_jar)")
  command -v java >/dev/null || missing+=("java")
  ((${#missing[@]} == 0)) || die "missing: ${missing[*]}; run deploy/local/setup.sh"
  local want have
  want="$(nats_version)"
  have="$("$b" --version 2>/dev/null | sed -n 's/.*\(v[0-9][^ ]*\).*/\1/p')"
  [ -z "$want" ] || [ "$have" = "$want" ] || say "warning: $b is $have, go.mod has $want; run deploy/local/setup.sh"
}

# --- probes -----------------------------------------------------------------

# tcp_send PORT DATA: writes DATA to 127.0.0.1:PORT, prints the answer (2 s max).
tcp_send() {
  { exec 3<>"/dev/tcp/127.0.0.1/$1" && printf '%b' "$2" >&3 && timeout 2 cat <&3; exec 3<&- 3>&-; } 2>/dev/null || true
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
http_get() { tcp_send "$1" "GET $2 HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"; }

# answers NODE [strict]: the node serves. For NATS, strict also requires
# JetStream to be current with the meta leader (plain /healthz).
answers() {
  local body
  case "$1" in
    nats-*)
      local path='/healthz?js-enabled-only=true'
      [ "${2:-}" = strict ] && path='/healthz'
      body="$(http_get "$(nats_mon "$1")" "$path")"
      [[ "$body" == "HTTP/1."?" 200"* ]] ;;
    zk-1)
      body="$(tcp_send "$(zk_port)" 'ruok')"
      [ "$body" = imok ] ;;
    ch-*)
      body="$(http_get "$(ch_http "$1")" '/?query=SELECT%201')"
      [[ "$body" == "HTTP/1."?" 200"* && "$body" == *$'\n1'* ]] ;;
  esac
}

# --- processes ----------------------------------------------------------------

pidfile() { echo "$base/$1/pid"; }
running_pid() {
  local f pid
  f="$(pidfile "$1")"
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  [ -n "$pid" ] && alive "$pid" || return 1
  # A stale pid file whose pid was reused by something else is not ours.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$base/$1/" || return 1
  echo "$pid"
}

# alive PID: the process exists and is not a zombie (whoever reaps orphans
# here may be slow to).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local st
  st="$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)"
  [ "$st" != Z ] && [ -n "$st" ]
}

main_port() {
  case "$1" in nats-*) nats_client "$1" ;; zk-1) zk_port ;; ch-*) ch_tcp "$1" ;; esac
}

write_nats() {
  local n="$1" d="$base/$1" routes="" m
  mkdir -p "$d/store" "$d/log"
  for m in "${nats_nodes[@]}"; do routes+="    nats-route://127.0.0.1:$(nats_route "$m")"$'\n'; done
  cat >"$d/nats.conf" <<CONF
# Written by deploy/local/cluster.sh; edits are overwritten on start.
server_name: $n
listen: 127.0.0.1:$(nats_client "$n")
http: 127.0.0.1:$(nats_mon "$n")
log_file: "$d/log/nats.log"
jetstream {
  store_dir: "$d/store"
  max_memory_store: 256MB
  max_file_store: 4GB
}
cluster {
  name: $cluster_name
  listen: 127.0.0.1:$(nats_route "$n")
  routes: [
$routes  ]
}
CONF
}

write_zk() {
  local d="$base/zk-1"
  mkdir -p "$d/data" "$d/log"
  cat >"$d/zoo.cfg" <<CONF
# Written by deploy/local/cluster.sh; edits are overwritten on start.
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$d/data
clientPort=$(zk_port)
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,mntr,stat
autopurge.purgeInterval=1
CONF
}

write_ch() {
  local n="$1" d="$base/$1" shards="" s r
  mkdir -p "$d/data/tmp" "$d/data/user_files" "$d/log"
  for s in 1 2; do
    shards+="      <shard>
        <internal_replication>true</internal_replication>"
    for r in $((2 * s - 1)) $((2 * s)); do
      shards+="
        <replica><host>127.0.0.1</host><port>$(ch_tcp "ch-$r")</port></replica>"
    done
    shards+="
      </shard>
"
  done
  cat >"$d/config.xml" <<XML
<?xml version="1.0"?>
<!-- Written by deploy/local/cluster.sh; edits are overwritten on start. -->
<yandex>
  <logger>
    <level>warning</level>
    <log>$d/log/server.log</log>
    <errorlog>$d/log/error.log</errorlog>
    <size>100M</size>
    <count>2</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>$(ch_tcp "$n")</tcp_port>
  <http_port>$(ch_http "$n")</http_port>
  <interserver_http_port>$(ch_inter "$n")</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <path>$d/data/</path>
  <tmp_path>$d/data/tmp/</tmp_path>
  <user_files_path>$d/data/user_files/</user_files_path>
  <users_config>$d/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <remote_servers>
    <$cluster_name>
$shards    </$cluster_name>
  </remote_servers>
  <zookeeper>
    <node><host>127.0.0.1</host><port>$(zk_port)</port></node>
    <session_timeout_ms>30000</session_timeout_ms>
  </zookeeper>
  <macros>
    <cluster>$cluster_name</cluster>
    <shard>$(ch_shard "$n")</shard>
    <replica>$n</replica>
  </macros>
  <distributed_ddl>
    <path>/clickhouse/task_queue/ddl</path>
  </distributed_ddl>
</yandex>
XML
  cat >"$d/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <profiles>
    <default><max_memory_usage>2000000000</max_memory_usage></default>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default></default></quotas>
</yandex>
XML
}

# launch NODE: starts the node's process in the background (no waiting).
launch() {
  local n="$1" d="$base/$1" pid
  if pid="$(running_pid "$n")"; then return 0; fi
  local p
  p="$(main_port "$n")"
  if port_open "$p"; then
    die "$n: something that is not ours already listens on 127.0.0.1:$p; stop it or set EPIWATCH_CLUSTER_PORT_OFFSET"
  fi
  # setsid: the servers outlive this script and are not killed with its
  # process group (test runners kill groups).
  case "$n" in
    nats-*)
      write_nats "$n"
      setsid "$(nats_bin)" -c "$d/nats.conf" >"$d/log/stdout.log" 2>&1 </dev/null & ;;
    zk-1)
      write_zk
      # -Dzookeeper.root.logger / log4j: Debian's jar logs via slf4j; without
      # a binding it logs nothing, which is fine here.
      setsid java -Xms64m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
        -Dzookeeper.log.dir="$d/log" -Dzookeeper.datadir="$d/" \
        -cp "$zk_jar" org.apache.zookeeper.server.quorum.QuorumPeerMain "$d/zoo.cfg" \
        >"$d/log/stdout.log" 2>&1 </dev/null & ;;
    ch-*)
      write_ch "$n"
      setsid "$(ch_bin)" --config-file="$d/config.xml" >"$d/log/stdout.log" 2>&1 </dev/null & ;;
  esac
  echo $! >"$(pidfile "$n")"
  say "started $n (pid $!; $(ports_of "$n"))"
}

# wait_nodes DEADLINE MODE NODE...: waits until each node answers.
wait_nodes() {
  local deadline="$1" mode="$2" n
  shift 2
  for n in "$@"; do
    until answers "$n" "$mode"; do
      if ! running_pid "$n" >/dev/null; then
        say "$n exited during start; last log lines:"
        tail -n 20 "$base/$n"/log/*.log >&2 2>/dev/null || true
        return 1
      fi
      if ((SECONDS >= deadline)); then
        say "$n did not answer within ${start_timeout}s ($(ports_of "$n")); see $base/$n/log/"
        tail -n 10 "$base/$n"/log/*.log >&2 2>/dev/null || true
        return 1
      fi
      sleep 0.3
    done
  done
}

# ch_query NODE SQL: the result of SQL over the node's HTTP interface (cheaper
# than starting clickhouse-client); fails unless the answer is 200.
ch_query() {
  local resp
  resp="$(tcp_send "$(ch_http "$1")" "POST / HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: ${#2}\r\n\r\n$2")"
  [[ "$resp" == "HTTP/1."?" 200"* ]] || return 1
  printf '%s\n' "${resp#*$'\r\n\r\n'}"
}

wait_ch_cluster() {
  local deadline="$1" n got
  for n in "${ch_nodes[@]}"; do
    until got="$(ch_query "$n" "SELECT count() FROM system.clusters WHERE cluster = '$cluster_name'" 2>/dev/null)" && [ "$got" = 4 ]; do
      if ((SECONDS >= deadline)); then
        say "$n: cluster '$cluster_name' not visible in system.clusters (got '${got:-no answer}', want 4 rows)"
        return 1
      fi
      sleep 0.3
    done
    # ZooKeeper reachable from ClickHouse (replicated tables, ON CLUSTER).
    until ch_query "$n" "SELECT count() FROM system.zookeeper WHERE path = '/'" >/dev/null 2>&1; do
      if ((SECONDS >= deadline)); then
        say "$n: cannot reach ZooKeeper at 127.0.0.1:$(zk_port) (system.zookeeper fails); see $base/$n/log/"
        return 1
      fi
      sleep 0.3
    done
  done
}

start_all() {
  check_binaries
  mkdir -p "$base"
  local deadline=$((SECONDS + start_timeout)) n p
  # Refuse before starting anything when a port is held by something else.
  for n in "${all_nodes[@]}"; do
    running_pid "$n" >/dev/null && continue
    p="$(main_port "$n")"
    ! port_open "$p" || die "$n: something that is not ours already listens on 127.0.0.1:$p; stop it or set EPIWATCH_CLUSTER_PORT_OFFSET"
  done
  for n in zk-1 "${nats_nodes[@]}"; do mkdir -p "$base/$n"; launch "$n"; done
  # ClickHouse 18.16 connects to ZooKeeper once at start for its DDL worker;
  # started before ZooKeeper answers, it later crashes on ON CLUSTER DDL.
  wait_nodes "$deadline" lax zk-1
  for n in "${ch_nodes[@]}"; do mkdir -p "$base/$n"; launch "$n"; done
  wait_nodes "$deadline" lax zk-1 "${nats_nodes[@]}" "${ch_nodes[@]}"
  # JetStream meta leader elected and every server current with it.
  wait_nodes "$deadline" strict "${nats_nodes[@]}"
  wait_ch_cluster "$deadline"
  say "ready: NATS nats://127.0.0.1:$(nats_client nats-1),…$(nats_client nats-3); ClickHouse cluster '$cluster_name' on 127.0.0.1:$(ch_tcp ch-1)…$(ch_tcp ch-4); ZooKeeper 127.0.0.1:$(zk_port)"
}

stop_node() {
  local n="$1" pid
  if ! pid="$(running_pid "$n")"; then rm -f "$(pidfile "$n")"; return 0; fi
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    alive "$pid" || { rm -f "$(pidfile "$n")"; say "stopped $n"; return 0; }
    sleep 0.5
  done
  say "$n did not stop in 30 s; killing"
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$(pidfile "$n")"
}

stop_all() {
  local n pids=()
  # ClickHouse first (it holds ZooKeeper sessions), then ZooKeeper and NATS;
  # nodes of a kind stop in parallel.
  for n in "${ch_nodes[@]}"; do stop_node "$n" & pids+=($!); done
  wait "${pids[@]}"
  pids=()
  for n in zk-1 "${nats_nodes[@]}"; do stop_node "$n" & pids+=($!); done
  wait "${pids[@]}"
  say "stopped"
}

status_all() {
  local n state rc=0 pid
  for n in "${all_nodes[@]}"; do
    if answers "$n"; then
      state=up
    elif pid="$(running_pid "$n")"; then
      state="starting (pid $pid, not answering)"; rc=1
    else
      state=down; rc=1
    fi
    printf '%-7s %-5s 127.0.0.1 %s\n' "$n" "$state" "$(ports_of "$n")"
  done
  return $rc
}

print_env() {
  local urls="" chs="" n
  for n in "${nats_nodes[@]}"; do urls+="${urls:+,}nats://127.0.0.1:$(nats_client "$n")"; done
  for n in "${ch_nodes[@]}"; do chs+="${chs:+,}127.0.0.1:$(ch_tcp "$n")"; done
  cat <<ENV
# epiwatch against the local cluster (deploy/local/cluster.sh). clickhouse.addr
# lists the four nodes, tried in order (ch-1 first; the next one when it is
# down). clickhouse.cluster turns on cluster mode: migrate
# creates replicated tables ON CLUSTER with Distributed tables of the same
# names. The events stream is kept within the 4 GB each NATS node reserves.
export EPIWATCH_NATS_URL=$urls
export EPIWATCH_STREAM_REPLICAS=3
export EPIWATCH_STREAM_EVENTS_MAX_BYTES=1073741824
export EPIWATCH_CLICKHOUSE_ADDR=$chs
export EPIWATCH_CLICKHOUSE_CLUSTER=$cluster_name
ENV
}

client() {
  local n="${1:-ch-1}"
  [ $# -gt 0 ] && shift
  valid_node "$n"
  case "$n" in
    ch-*) exec clickhouse-client --host 127.0.0.1 --port "$(ch_tcp "$n")" "$@" ;;
    zk-1) exec /usr/share/zookeeper/bin/zkCli.sh -server "127.0.0.1:$(zk_port)" "$@" ;;
    nats-*)
      command -v nats >/dev/null || die "no \`nats\` CLI installed; connect a client to nats://127.0.0.1:$(nats_client "$n") (monitoring http://127.0.0.1:$(nats_mon "$n"))"
      exec nats --server "nats://127.0.0.1:$(nats_client "$n")" "$@" ;;
  esac
}

usage() { sed -n '2,40p' "$0"; }

case "${1:-}" in
  start) start_all ;;
  stop) stop_all ;;
  status) status_all ;;
  env) print_env ;;
  kill)
    [ $# -eq 2 ] || die "usage: cluster.sh kill NODE"
    valid_node "$2"
    if pid="$(running_pid "$2")"; then
      kill -9 "$pid"
      for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
      rm -f "$(pidfile "$2")"
      say "killed $2 (pid $pid, SIGKILL)"
    else
      say "$2 is not running"
    fi ;;
  restart)
    [ $# -eq 2 ] || die "usage: cluster.sh restart NODE"
    valid_node "$2"
    check_binaries
    stop_node "$2"
    mkdir -p "$base/$2"
    launch "$2"
    deadline=$((SECONDS + start_timeout))
    wait_nodes "$deadline" lax "$2"
    case "$2" in nats-*) wait_nodes "$deadline" strict "$2" ;; esac
    say "$2 is up" ;;
  client) shift; client "$@" ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
