"""Canary values through every path and every logging setting that could
carry them: the plain path's canaries must reach neither the server log nor
the audit trail; the sealed path's canaries must reach nothing at all."""

import os
import pathlib
import subprocess
import threading
import time
import uuid

import psycopg
import psycopg2
import pytest

from conftest import ORG_A, ROOT, install_vault

LOGGING = [
    "log_statement = 'all'",
    "log_min_duration_statement = 0",
    "log_parameter_max_length = -1",
    "log_parameter_max_length_on_error = -1",
    "log_min_error_statement = 'error'",
    "auto_explain.log_min_duration = 0",
    "auto_explain.log_analyze = on",
    "auto_explain.log_verbose = on",
    "auto_explain.log_nested_statements = on",
    "pg_stat_statements.track = 'all'",
]


def has_pgaudit(server):
    pkglib = subprocess.run([str(pathlib.Path(server.bindir()) / "pg_config"), "--pkglibdir"],
                            capture_output=True, text=True).stdout.strip()
    return (pathlib.Path(pkglib) / "pgaudit.so").exists()


def canary(tag):
    return f"sk-ant-api03-CANARY{tag}{uuid.uuid4().hex}"


def dsn(server, user):
    return f"host={server.dir} port={server.port} user={user} dbname=postgres"


@pytest.fixture
def logged(server):
    libs = ["cortex_vault", "pg_stat_statements", "auto_explain"]
    audit = has_pgaudit(server)
    if audit:
        libs.append("pgaudit")
        LOGGING_AUDIT = ["pgaudit.log = 'all'", "pgaudit.log_parameter = on"]
    else:
        LOGGING_AUDIT = []
    for line in LOGGING + LOGGING_AUDIT + [f"shared_preload_libraries = '{','.join(libs)}'"]:
        server.set_conf(line)
    server.start()
    conn = server.connect()
    install_vault(conn)
    conn.cursor().execute("CREATE EXTENSION pg_stat_statements")
    if audit:
        conn.cursor().execute("CREATE EXTENSION pgaudit")
    return server, conn, audit


def plain_literal(conn, sql):
    """Simple protocol, value inside the SQL text (psycopg2 interpolates)."""
    cur = conn.cursor()
    cur.execute("SET ROLE it_writer")
    cur.execute(f"SET cortex_vault.org_id = '{ORG_A}'")
    try:
        cur.execute(sql)
        return cur.fetchone()[0]
    finally:
        cur.execute("RESET ROLE")


def test_no_value_reaches_log_audit_statistics_or_wal(logged):
    server, conn, audit = logged
    c = {k: canary(k) for k in ["LIT", "BIND", "ROTLIT", "ROTBIND", "ERRLIT", "ERRBIND", "SEALED",
                                "PREPARED", "ESCAPED", "CAST"]}
    control = f"CONTROL{uuid.uuid4().hex}"

    # Plain path, value as a literal (simple protocol).
    sid = plain_literal(conn, f"SELECT cortex_vault.create_secret('lit', '{c['LIT']}')")
    plain_literal(conn, f"SELECT cortex_vault.rotate_secret('{sid}', '{c['ROTLIT']}')")
    with pytest.raises(psycopg2.Error) as err:
        plain_literal(conn, f"SELECT cortex_vault.create_secret('lit', '{c['ERRLIT']}')")
    assert err.value.pgcode == "23505"

    # A prepared statement run with EXECUTE, failing on a duplicate name.
    with pytest.raises(psycopg2.Error):
        plain_literal(conn, "PREPARE p(text, text) AS SELECT cortex_vault.create_secret($1, $2);"
                            f"EXECUTE p('lit', '{c['PREPARED']}')")
    # The function name spelled with a Unicode escape, failing the same way.
    with pytest.raises(psycopg2.Error):
        plain_literal(conn, "SELECT cortex_vault.U&\"create\\005Fsecret\""
                            f"('lit', '{c['ESCAPED']}')")
    # A value that makes a cast fail after the call: the error quotes it.
    cast_id = plain_literal(conn, f"SELECT cortex_vault.create_secret('cast', '{c['CAST']}')")
    cur = conn.cursor()
    cur.execute("SET ROLE it_reader")
    cur.execute(f"SET cortex_vault.org_id = '{ORG_A}'")
    with pytest.raises(psycopg2.Error) as err:
        cur.execute(f"SELECT cortex_vault.read_secret('{cast_id}')::int")
    assert err.value.pgcode == "22P02"
    assert c["CAST"] not in str(err.value), "nor does the client see the value in the error"
    cur.execute("RESET ROLE")

    # Plain path, value as a bind parameter (extended protocol).
    with psycopg.connect(dsn(server, "it_writer"), autocommit=True) as pconn:
        pconn.execute(f"SET cortex_vault.org_id = '{ORG_A}'")
        bid = pconn.execute("SELECT cortex_vault.create_secret(%s, %s)",
                            ("bind", c["BIND"])).fetchone()[0]
        pconn.execute("SELECT cortex_vault.rotate_secret(%s, %s)", (bid, c["ROTBIND"]))
        with pytest.raises(psycopg.Error) as perr:
            pconn.execute("SELECT cortex_vault.create_secret(%s, %s)", ("bind", c["ERRBIND"]))
        assert perr.value.sqlstate == "23505"

    # Sealed path, through the shipped client example, with a context token
    # (which must not reach the log either).
    cur = conn.cursor()
    cur.execute("SET ROLE it_admin")
    cur.execute("SELECT cortex_vault.issue_context_token(%s, NULL, 60)", (ORG_A,))
    token = cur.fetchone()[0]
    cur.execute("RESET ROLE")
    out = subprocess.run(
        ["/usr/bin/python3", str(ROOT / "examples" / "seal_and_store.py"), "--dsn",
         dsn(server, "it_writer"), "--org", ORG_A, "--name", "sealed", "--deployment", "agent-a"],
        input=c["SEALED"], capture_output=True, text=True, check=True,
        env=dict(os.environ, CORTEX_VAULT_CONTEXT_TOKEN=token))
    sealed_id = out.stdout.strip()
    cur = conn.cursor()
    cur.execute("SET ROLE it_reader")
    cur.execute(f"SET cortex_vault.org_id = '{ORG_A}'")
    cur.execute("SET cortex_vault.deployment_id = 'agent-a'")
    cur.execute("SELECT cortex_vault.read_secret(%s)", (sealed_id,))
    assert cur.fetchone()[0] == c["SEALED"]
    cur.execute("RESET ROLE")
    cur.execute(f"SELECT '{control}'")

    cur.execute("CHECKPOINT")
    cur.execute("SELECT pg_switch_wal()")
    cur.execute("SELECT string_agg(query, ' ') FROM pg_stat_statements")
    statements = cur.fetchone()[0]
    cur.execute("SELECT string_agg(a::text, ' ') FROM cortex_vault.audit_log a")
    trail = cur.fetchone()[0]
    log = server.log_text()

    # Positive controls: logging, statistics and the tools really ran.
    assert control in log
    assert "create_secret" in statements
    assert "invalid input syntax for type integer" in log, "the cast error was logged"
    assert "Query Text:" in log, "auto_explain logged plans"
    assert "redacted statement: SELECT cortex_vault.create_secret('***', '***')" in log
    assert "arameters: $1 = '***', $2 = '***'" in log, "bind parameters are logged, masked"
    if audit:
        assert "AUDIT: SESSION" in log
    assert token not in log, "a context token reached the server log"
    for name, value in c.items():
        assert value not in log, f"{name} canary in the server log"
        assert value not in trail, f"{name} canary in the audit trail"
    assert c["SEALED"] not in statements
    data = server.dir / "data"
    for path in data.rglob("*"):
        if path.is_file():
            assert c["SEALED"].encode() not in path.read_bytes(), f"sealed canary in {path}"


def test_pg_stat_activity_shows_the_call_redacted(logged):
    server, conn, _ = logged
    value = canary("ACTIVITY")
    seen = {}

    def slow_create():
        plain_literal(server.connect(),
                      f"SELECT cortex_vault.create_secret('slow', '{value}'), pg_sleep(2)")

    worker = threading.Thread(target=slow_create)
    worker.start()
    time.sleep(1)
    cur = conn.cursor()
    cur.execute("SELECT query FROM pg_stat_activity WHERE query LIKE '%create_secret%' "
                "AND pid <> pg_backend_pid()")
    seen["rows"] = [r[0] for r in cur.fetchall()]
    worker.join()
    assert seen["rows"], "the running call is visible"
    assert all(value not in q for q in seen["rows"])
    assert any("create_secret('***', '***')" in q for q in seen["rows"])
