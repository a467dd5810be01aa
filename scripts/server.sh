#!/usr/bin/env bash
# Throwaway PostgreSQL servers for the demo, the integration tests and the
# benchmarks. Each server lives in one folder: data/, a socket, a log, a port
# file and a freshly generated master key file. Servers run as the postgres
# OS user, listen on 127.0.0.1 only, and are stopped by their own pid file.
#
#   server.sh install VERSION          build and install the extension
#   server.sh init VERSION DIR         initdb, master key, postgresql.conf
#   server.sh start VERSION DIR        start (and wait until ready)
#   server.sh stop VERSION DIR         fast shutdown
#   server.sh psql VERSION DIR [ARGS]  psql as the postgres superuser
#   server.sh bindir VERSION           the server binaries of VERSION
#
# CORTEX_VAULT_PG_CONFIG, when set, names the pg_config of the build to use
# instead of the one pgrx registered for VERSION.
set -euo pipefail
cd "$(dirname "$0")/.."

pg_config_for() {
    # CORTEX_VAULT_PG_CONFIG names another build (the benchmarks use it).
    if [[ -n ${CORTEX_VAULT_PG_CONFIG:-} ]]; then
        echo "$CORTEX_VAULT_PG_CONFIG"
        return
    fi
    local cfg="${PGRX_HOME:-$HOME/.pgrx}/config.toml"
    local path
    path=$(sed -n "s/^pg$1 = \"\(.*\)\"$/\1/p" "$cfg" 2>/dev/null)
    [[ -n $path ]] || { echo "PostgreSQL $1 is not registered; run scripts/setup.sh" >&2; exit 1; }
    echo "$path"
}

bindir() { "$(pg_config_for "$1")" --bindir; }

as_pg() { runuser -u postgres -- "$@"; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cmd=${1:?usage: server.sh install|init|start|stop|psql|bindir VERSION [DIR]}
ver=${2:?PostgreSQL major version}
case $cmd in
install)
    # Release build when CORTEX_VAULT_RELEASE=1 (demo, benchmarks).
    flags=()
    [[ ${CORTEX_VAULT_RELEASE:-0} == 1 ]] && flags+=(--release)
    cargo pgrx install "${flags[@]}" --pg-config "$(pg_config_for "$ver")" \
        --features "pg$ver" --no-default-features >/dev/null
    ;;
init)
    dir=${3:?server folder}
    mkdir -p "$dir"
    chown postgres "$dir"
    chmod 700 "$dir"
    as_pg "$(bindir "$ver")/initdb" -D "$dir/data" -U postgres --auth=trust \
        --no-instructions -E UTF8 --locale=C >/dev/null
    # One master key version and one context token key, 32 random bytes as
    # hex each, readable only by postgres.
    for key in master token; do
        python3 -c 'import secrets; print(secrets.token_hex(32))' >"$dir/$key.key"
        chown postgres "$dir/$key.key"
        chmod 600 "$dir/$key.key"
    done
    free_port >"$dir/port"
    cat >>"$dir/data/postgresql.conf" <<CONF
# cortex_vault throwaway server
listen_addresses = '127.0.0.1'
port = $(cat "$dir/port")
unix_socket_directories = '$dir'
shared_preload_libraries = 'cortex_vault'
cortex_vault.master_key_file = '$dir/master.key'
cortex_vault.token_key_file = '$dir/token.key'
logging_collector = off
CONF
    ;;
start)
    dir=${3:?server folder}
    as_pg "$(bindir "$ver")/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
    ;;
stop)
    dir=${3:?server folder}
    # Only a server that is running: a pid file left by one that died (a
    # machine restart, a killed process) needs no stop.
    if [[ -f $dir/data/postmaster.pid ]] &&
        as_pg "$(bindir "$ver")/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_pg "$(bindir "$ver")/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    fi
    ;;
psql)
    dir=${3:?server folder}
    shift 3
    "$(bindir "$ver")/psql" -X -v ON_ERROR_STOP=1 -h "$dir" -p "$(cat "$dir/port")" \
        -U postgres -d postgres "$@"
    ;;
bindir)
    bindir "$ver"
    ;;
*)
    echo "unknown command $cmd" >&2
    exit 2
    ;;
esac
