#!/usr/bin/env bash
# The main job end to end on a fresh machine: installs what is missing,
# builds and installs the extension into PostgreSQL 15, starts a throwaway
# server as the postgres OS user with a freshly generated master key file,
# and runs the BYOK scenario of scripts/demo.sql, printing each step.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${CORTEX_VAULT_DEMO_DIR:-/tmp/cortex_vault_demo}
VER=15

bash scripts/setup.sh
echo "==> building and installing cortex_vault into PostgreSQL $VER (release build)"
CORTEX_VAULT_RELEASE=1 bash scripts/server.sh install "$VER"

# A previous demo server in the same folder is stopped by its own pid file.
if [[ -f $DIR/data/postmaster.pid ]]; then
    bash scripts/server.sh stop "$VER" "$DIR"
fi
rm -rf "$DIR"
echo "==> starting a throwaway PostgreSQL $VER server in $DIR"
bash scripts/server.sh init "$VER" "$DIR"
bash scripts/server.sh start "$VER" "$DIR"
grep -o 'cortex_vault: loaded.*' "$DIR/server.log"

bash scripts/server.sh psql "$VER" "$DIR" -f scripts/demo.sql 2>&1

echo
echo "== 10. The server log keeps a line for every read and every refusal"
grep -o 'cortex_vault audit: .*' "$DIR/server.log"

bash scripts/server.sh psql "$VER" "$DIR" -f scripts/demo_isolation.sql 2>&1

BIN=$(bash scripts/server.sh bindir "$VER")
cat <<MSG

The server is still running.
  psql:  $BIN/psql -h $DIR -p $(cat "$DIR/port") -U postgres
  stop:  runuser -u postgres -- $BIN/pg_ctl -D $DIR/data stop
MSG
