#!/usr/bin/env bash
# The benchmarks of docs/benchmarks.md, end to end: installs what is missing,
# builds and installs the extension (release build), starts a throwaway
# server, loads 1,000 organizations with 3 deployments each and provider-
# shaped keys, runs pgbench with the scripts of bench/ alternating each vault
# figure with its baseline, and writes docs/benchmarks.md and
# docs/benchmarks.png. Every figure is a ratio measured in the same run.
#
#   bash scripts/bench.sh           small scale: 10k and 100k secrets, short rounds
#   bash scripts/bench.sh --full    full scale: up to 1M secrets, longer rounds
#
# Environment, for running against another PostgreSQL build:
#   CORTEX_VAULT_BENCH_PG_CONFIG   its pg_config; the extension is installed
#                                  there and the server run from its binaries
#   CORTEX_VAULT_BENCH_TARGET_DIR  cargo target folder for that build
#   CORTEX_VAULT_BENCH_NO_INSTALL  1: use the extension already installed there
#   CORTEX_VAULT_BENCH_DIR         server folder (default /tmp/cortex_vault_bench)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIR=${CORTEX_VAULT_BENCH_DIR:-/tmp/cortex_vault_bench}
PG_CONFIG=${CORTEX_VAULT_BENCH_PG_CONFIG:-}
VER=15
# The Debian Python: it has psycopg2 (scripts/setup.sh) and matplotlib.
PY=/usr/bin/python3

# Scale. Organizations and the isolated table are the issue's figures at
# both scales; secrets grow to 100k by default and to 1M with --full.
ORGS=1000
APP_ROWS_PER_ORG=1000
MEMORY_READS=100000
SCALES="10000 100000"
ROUNDS=10
SECS=2
ROTATE_REPS=3
MODE=default
case ${1:-} in
--full)
    SCALES="10000 100000 1000000"
    ROUNDS=15
    SECS=5
    ROTATE_REPS=5
    MODE=full
    ;;
"") ;;
*)
    echo "usage: bash scripts/bench.sh [--full]" >&2
    exit 2
    ;;
esac
COMMAND="bash scripts/bench.sh${1:+ $1}"

log() { printf '==> %s\n' "$*"; }
as_pg() { runuser -u postgres -- "$@"; }

# Toolchain, and matplotlib for the plot.
bash scripts/setup.sh
if ! "$PY" -c 'import matplotlib' 2>/dev/null; then
    log "installing python3-matplotlib"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3-matplotlib >/dev/null
fi

# Build and install the extension: into PostgreSQL 15 through server.sh, or
# into the PostgreSQL named by CORTEX_VAULT_BENCH_PG_CONFIG.
if [[ -z $PG_CONFIG ]]; then
    BIN=$(bash scripts/server.sh bindir "$VER")
    log "building and installing cortex_vault into PostgreSQL $VER (release build)"
    CORTEX_VAULT_RELEASE=1 bash scripts/server.sh install "$VER"
else
    BIN=$("$PG_CONFIG" --bindir)
    VER=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
    if [[ ${CORTEX_VAULT_BENCH_NO_INSTALL:-0} != 1 ]]; then
        log "building and installing cortex_vault into $PG_CONFIG (release build)"
        CARGO_TARGET_DIR=${CORTEX_VAULT_BENCH_TARGET_DIR:-$ROOT/target} cargo pgrx install \
            --release --pg-config "$PG_CONFIG" --features "pg$VER" --no-default-features \
            >/dev/null
    fi
fi

# The server, through scripts/server.sh; for another build it is told
# which pg_config to use.
if [[ -n $PG_CONFIG ]]; then
    export CORTEX_VAULT_PG_CONFIG=$PG_CONFIG
fi
server() { bash scripts/server.sh "$1" "$VER" "$DIR"; } # init|start|stop

new_master_key() { "$PY" -c 'import secrets; print(secrets.token_hex(32))'; }

# psql as the superuser (or -U ROLE) in the benchmark database.
sql() { "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$(cat "$DIR/port")" -U postgres "$@"; }

# Seconds since the epoch, with fractions; seconds elapsed since $1.
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

# A fresh server, stopped again on every way out of this script.
server stop
rm -rf "$DIR"
log "starting a throwaway PostgreSQL $VER server in $DIR"
server init
trap 'server stop' EXIT
# Same settings for both sides of every figure: the data set fits in shared
# buffers, and no checkpoint or autovacuum lands in the middle of a round
# (the loaders vacuum and analyze). Commits do not wait for the WAL flush,
# so that the ratios show the vault's CPU cost rather than the disk's flush
# time, which both sides would share.
cat >>"$DIR/data/postgresql.conf" <<CONF
shared_buffers = '2GB'
max_wal_size = '8GB'
checkpoint_timeout = '30min'
synchronous_commit = off
autovacuum = off
CONF
server start
BENCH_PORT=$(cat "$DIR/port")
export BENCH_BIN=$BIN BENCH_DIR=$DIR BENCH_PORT BENCH_RESULTS=$DIR/results.jsonl
measure() { "$PY" bench/measure.py "$@"; }
: >"$BENCH_RESULTS"
STARTED=$(now)

# Roles, helpers, baseline tables, organizations, the isolated table.
sql -d postgres -c "CREATE DATABASE bench"
sql -d bench -f bench/schema.sql
log "creating $ORGS organizations"
t0=$(now)
sql -d bench -U bench_admin \
    -c "SELECT count(cortex_vault.create_org(bench.org_uuid(i), 'Organization ' || i)) \
        FROM generate_series(1, $ORGS) AS i" >/dev/null
measure record "{\"figure\": \"load\", \"what\": \"create_org\", \"rows\": $ORGS, \
\"seconds\": $(elapsed "$t0")}"
log "loading the isolated table: $((ORGS * APP_ROWS_PER_ORG)) rows"
sql -d bench -U bench_app_owner -v orgs=$ORGS -v rows_per_org=$APP_ROWS_PER_ORG \
    -f bench/app_table.sql >/dev/null

# Grows the vault to $1 secrets through create_secret, copies the rows to
# the baseline tables, and rebuilds the lookup table.
loaded=0
grow_to() {
    local first=$((loaded / ORGS + 1)) last=$(($1 / ORGS)) t0
    log "loading secrets $((loaded + 1)) to $1 through create_secret"
    t0=$(now)
    sql -d bench -U bench_writer -c "CALL bench.add_secrets($first, $last, $ORGS)"
    measure record "{\"figure\": \"load\", \"what\": \"create_secret\", \
\"rows\": $(($1 - loaded)), \"seconds\": $(elapsed "$t0")}"
    sql -d bench -f bench/copy_plain.sql
    loaded=$1
}

# rotate_master_key() after a restart with one more master key version, as
# an operator runs it; repeated with a new version each time.
time_rotation() {
    local rep
    for rep in $(seq "$ROTATE_REPS"); do
        new_master_key >>"$DIR/master.key"
        server stop
        server start
        measure rotate --secrets "$loaded" --rep "$rep"
    done
}

# The read figure against its baseline with $1 clients.
read_ab() { # clients figure
    measure ab "$2" read_vault.sql:bench_reader read_plain.sql:bench_plain \
        --clients "$1" --rounds "$ROUNDS" --secs "$SECS" -D "nids=$loaded"
}

first_scale=${SCALES%% *}
for scale in $SCALES; do
    grow_to "$scale"
    log "rotate_master_key() at $scale secrets"
    time_rotation
    log "read_secret against its baseline at $scale secrets"
    read_ab 2 read_scale
    if [[ $scale != "$first_scale" ]]; then
        continue
    fi

    log "read_secret against its baseline: 1, 2, 4 and 8 clients"
    for c in 1 2 4 8; do
        read_ab "$c" read
    done
    log "create_secret against its baseline: 1 and 4 clients"
    for c in 1 4; do
        measure ab create create_vault.sql:bench_writer create_plain.sql:bench_plain \
            --clients "$c" --rounds "$ROUNDS" --secs "$SECS" -D "nids=$loaded"
    done
    # Two clients keep both cores busy: with one, each round trip waits for
    # a sleeping process to wake, which hides a query's own cost.
    log "queries on the isolated table against the owner's explicit WHERE"
    for q in recent summary; do
        measure ab "isolation_$q" "rls_$q.sql:bench_app" "owner_$q.sql:bench_app_owner" \
            --clients 2 --rounds "$ROUNDS" --secs "$SECS" -D "orgs=$ORGS"
    done
    log "backend memory across $MEMORY_READS reads"
    measure memory --reads "$MEMORY_READS"
done

log "decrypting a 200-byte value in Rust against copying 200 bytes"
CARGO_TARGET_DIR=${CORTEX_VAULT_BENCH_TARGET_DIR:-$ROOT/target}/bench-crypto \
    cargo build --release --quiet --manifest-path bench/crypto/Cargo.toml
measure record "{\"figure\": \"decrypt\", \"result\": $(
    "${CORTEX_VAULT_BENCH_TARGET_DIR:-$ROOT/target}/bench-crypto/release/cortex_vault_crypto_bench"
)}"

# Machine and run facts for the report, then the report itself.
server_version=$(sql -d bench -Atc "SHOW server_version")
measure record "{\"figure\": \"run\", \"mode\": \"$MODE\", \"command\": \"$COMMAND\", \
\"seconds\": $(elapsed "$STARTED"), \"server_version\": \"$server_version\", \
\"orgs\": $ORGS, \"app_rows\": $((ORGS * APP_ROWS_PER_ORG)), \"rounds\": $ROUNDS, \
\"secs\": $SECS, \"scales\": [${SCALES// /, }]}"
server stop
trap - EXIT
mkdir -p docs
"$PY" bench/report.py "$BENCH_RESULTS" docs/benchmarks.md docs/benchmarks.png
log "wrote docs/benchmarks.md and docs/benchmarks.png"
