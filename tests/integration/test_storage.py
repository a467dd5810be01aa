"""What reaches disk: table files, WAL, dumps. Canary values written through
create_secret must appear in none of them."""

import os
import pathlib
import subprocess
import uuid

from conftest import ORG_A, create_secret, install_vault, read_secret


def files_containing(root, needle):
    hits = []
    for path in pathlib.Path(root).rglob("*"):
        if path.is_file():
            try:
                if needle in path.read_bytes():
                    hits.append(str(path))
            except OSError:
                pass
    return hits


def flush(conn):
    cur = conn.cursor()
    cur.execute("CHECKPOINT")
    cur.execute("SELECT pg_switch_wal()")
    cur.execute("CHECKPOINT")


def test_canary_reaches_neither_wal_nor_table_files(server):
    server.start()
    conn = server.connect()
    install_vault(conn)
    literal = f"sk-ant-api03-CANARYLIT{uuid.uuid4().hex}"
    bound = f"sk-proj-CANARYBIND{uuid.uuid4().hex}"
    control = f"CONTROL{uuid.uuid4().hex}"

    # One canary as a SQL literal, one as a bind parameter (psycopg2 sends
    # literals; the server's extended protocol is covered by issue 4's tests).
    cur = conn.cursor()
    cur.execute("SET ROLE it_writer")
    cur.execute(f"SET cortex_vault.org_id = '{ORG_A}'")
    cur.execute(f"SELECT cortex_vault.create_secret('lit', '{literal}')")
    lit_id = cur.fetchone()[0]
    cur.execute("RESET ROLE")
    bind_id = create_secret(conn, ORG_A, "bind", bound)
    assert read_secret(conn, ORG_A, lit_id) == literal
    assert read_secret(conn, ORG_A, bind_id) == bound

    # A positive control: a plain table row is found by the same search.
    cur.execute("CREATE TABLE plain (v text)")
    cur.execute("INSERT INTO plain VALUES (%s)", (control,))
    cur.execute("SELECT pg_relation_filenode('cortex_vault.secret_versions')")
    filenode = cur.fetchone()[0]
    flush(conn)
    data = server.dir / "data"
    assert files_containing(data / "pg_wal", control.encode()), "search finds WAL bytes"
    assert files_containing(data / "base", control.encode()), "search finds table bytes"

    for canary in (literal, bound):
        assert files_containing(data, canary.encode()) == []

    # pg_waldump over every kept segment shows the inserts into
    # secret_versions, and neither canary.
    waldump = pathlib.Path(server.bindir()) / "pg_waldump"
    dumped = ""
    for seg in sorted(p.name for p in (data / "pg_wal").iterdir() if len(p.name) == 24):
        out = subprocess.run([str(waldump), "--path", str(data / "pg_wal"), seg],
                             capture_output=True, text=True, errors="replace")
        dumped += out.stdout
    assert f"/{filenode}" in dumped, "the WAL of the secret inserts was dumped"
    assert literal not in dumped and bound not in dumped


def test_dump_and_restore_keeps_secrets_readable(server):
    server.start()
    conn = server.connect()
    install_vault(conn)
    sid = create_secret(conn, ORG_A, "k", "sk-ant-api03-dumped", "agent-a")
    bindir = pathlib.Path(server.bindir())
    dump = server.dir / "vault.dump"
    env = dict(os.environ, PGHOST=str(server.dir), PGPORT=str(server.port), PGUSER="postgres")
    subprocess.run([str(bindir / "pg_dump"), "-Fc", "-f", str(dump), "postgres"], check=True, env=env)
    assert b"sk-ant-api03-dumped" not in dump.read_bytes()
    subprocess.run([str(bindir / "createdb"), "restored"], check=True, env=env)
    subprocess.run([str(bindir / "pg_restore"), "-d", "restored", str(dump)], check=True, env=env)
    restored = server.connect(dbname="restored")
    assert read_secret(restored, ORG_A, sid, "agent-a") == "sk-ant-api03-dumped"
    cur = restored.cursor()
    cur.execute("SELECT count(*) FROM cortex_vault.audit_log WHERE operation = 'create'")
    assert cur.fetchone()[0] == 1
