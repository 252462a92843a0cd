#!/usr/bin/env bash
# The current ClickHouse engine as a library (chDB), for the compatibility
# tests that run every shipped DDL statement and query on current ClickHouse
# as well as on the local 18.16 server. The library comes from the npm
# package @chdb/lib-linux-x64-gnu and is cached outside the repository.
#
#   deploy/local/chdb.sh fetch   # download once into the cache (idempotent)
#   deploy/local/chdb.sh path    # print the path of libchdb.so (CHDB_LIB_PATH)
#
# CHDB_VERSION (default below) pins the engine; EPIWATCH_CACHE_DIR (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/epiwatch) is where it is kept.
set -euo pipefail

version="${CHDB_VERSION:-26.5.3}"
pkg="@chdb/lib-linux-x64-gnu"
cache="${EPIWATCH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/epiwatch}/chdb/$version"

say() { printf 'chdb: %s\n' "$*" >&2; }

find_lib() {
  [ -d "$cache" ] || return 1
  find "$cache" -name 'libchdb.so' -type f 2>/dev/null | head -n 1 | grep .
}

fetch() {
  if lib="$(find_lib)"; then echo "$lib"; return 0; fi
  command -v npm >/dev/null || {
    say "npm is needed to fetch $pkg; installing the Debian package npm"
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends npm >/dev/null
  }
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  say "downloading $pkg@$version (a few hundred MB, once)"
  (cd "$tmp" && npm pack --silent "$pkg@$version" >/dev/null 2>"$tmp/npm.log") || {
    say "npm pack failed:"; cat "$tmp/npm.log" >&2; return 1; }
  mkdir -p "$cache"
  tar -xzf "$tmp"/*.tgz -C "$cache"
  lib="$(find_lib)" || { say "the package has no libchdb.so"; return 1; }
  say "cached at $lib"
  echo "$lib"
}

case "${1:-}" in
  fetch) fetch ;;
  path)
    if lib="$(find_lib)"; then echo "$lib"; else say "not fetched; run deploy/local/chdb.sh fetch"; exit 1; fi ;;
  -h|--help|help) sed -n '2,12p' "$0" ;;
  *) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
