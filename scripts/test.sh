#!/usr/bin/env bash
# Runs every test on PostgreSQL 15, 17 and 18: the Rust unit tests and the
# #[pg_test] suite through `cargo pgrx test`, then the integration tests
# (restarts, key rotation, WAL and log searches) against throwaway servers.
# Ends with one summary line: "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

VERSIONS=${CORTEX_VAULT_PG_VERSIONS:-"15 17 18"}
bash scripts/setup.sh

# Test servers run as the postgres OS user; their data folders live where
# that user can write, outside the checkout's root-only places.
WORK=${CORTEX_VAULT_TEST_DIR:-/tmp/cortex_vault_test}
rm -rf "$WORK"
mkdir -p "$WORK"
chown postgres "$WORK"

# A master key file for the #[pg_test] servers: mode 0600, owned by postgres.
export CORTEX_VAULT_TEST_KEY_FILE="$WORK/pgtest-master.key"
python3 -c 'import secrets; print(secrets.token_hex(32))' >"$CORTEX_VAULT_TEST_KEY_FILE"
chown postgres "$CORTEX_VAULT_TEST_KEY_FILE"
chmod 600 "$CORTEX_VAULT_TEST_KEY_FILE"
export CORTEX_VAULT_TEST_TOKEN_KEY_FILE="$WORK/pgtest-token.key"
python3 -c 'import secrets; print(secrets.token_hex(32))' >"$CORTEX_VAULT_TEST_TOKEN_KEY_FILE"
chown postgres "$CORTEX_VAULT_TEST_TOKEN_KEY_FILE"
chmod 600 "$CORTEX_VAULT_TEST_TOKEN_KEY_FILE"

passed=0
failed=0
failures=()
record() { # name, exit code, counts file
    local p f
    p=$(sed -n 's/^passed=//p' "$3" 2>/dev/null || true)
    f=$(sed -n 's/^failed=//p' "$3" 2>/dev/null || true)
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    if [[ $2 -ne 0 ]]; then
        failures+=("$1")
        [[ ${f:-0} -gt 0 ]] || failed=$((failed + 1))
    fi
}

# Counts "test result: ok. N passed; M failed" lines of cargo test output.
count_cargo() {
    python3 - "$1" >"$2" <<'PY'
import re, sys
p = f = 0
for line in open(sys.argv[1], errors="replace"):
    m = re.search(r"test result: \w+\. (\d+) passed; (\d+) failed", line)
    if m:
        p += int(m.group(1)); f += int(m.group(2))
print(f"passed={p}\nfailed={f}")
PY
}

# Formatting and lints count as one test each.
for check in "cargo fmt --check" "cargo clippy --all-targets -- -D warnings"; do
    echo "==> $check"
    if $check; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$check"); fi
done

for v in $VERSIONS; do
    echo "==> cargo pgrx test pg$v"
    log="$WORK/pgrx-pg$v.log"
    set +e
    cargo pgrx test "pg$v" --runas postgres --pgdata "$WORK/pgrx-pg$v" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    count_cargo "$log" "$WORK/counts"
    record "pgrx pg$v" "$rc" "$WORK/counts"
done

for v in $VERSIONS; do
    echo "==> integration tests on PostgreSQL $v"
    set +e
    bash tests/integration/run.sh "$v" "$WORK/it-pg$v" "$WORK/counts"
    rc=$?
    set -e
    record "integration pg$v" "$rc" "$WORK/counts"
done

if ((${#failures[@]})); then
    echo "failing suites: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 && ${#failures[@]} -eq 0 ]]
