#!/usr/bin/env bash
# Integration tests on one PostgreSQL major version: installs the extension
# into that version, then runs pytest against throwaway servers it starts.
#   run.sh VERSION WORKDIR COUNTS_FILE
set -euo pipefail
cd "$(dirname "$0")/../.."
ver=$1 work=$2 counts=$3
rm -rf "$work"
mkdir -p "$work"
chown postgres "$work"

bash scripts/server.sh install "$ver"
set +e
CORTEX_VAULT_PG=$ver CORTEX_VAULT_IT_DIR=$work /usr/bin/python3 -m pytest -p no:cacheprovider \
    -q -rfE tests/integration 2>&1 | tee "$work/pytest.log"
rc=${PIPESTATUS[0]}
set -e
/usr/bin/python3 - "$work/pytest.log" >"$counts" <<'PY'
import re, sys
text = open(sys.argv[1], errors="replace").read().splitlines()
last = next((l for l in reversed(text) if re.search(r"\d+ (passed|failed|error)", l)), "")
get = lambda w: sum(int(n) for n in re.findall(r"(\d+) " + w, last))
print(f"passed={get('passed')}\nfailed={get('failed') + get('errors?')}")
PY
exit "$rc"
