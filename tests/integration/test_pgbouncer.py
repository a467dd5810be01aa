"""A real PgBouncer in transaction pooling mode in front of a throwaway
server: interleaved clients of different organizations never see each
other's rows or keys, and strict mode turns a session-level context that
would leak to the next client into a refusal."""

import os
import random
import socket
import subprocess
import threading
import time

import psycopg2
import pytest

from conftest import install_vault

ORGS = [f"{i:08x}-0000-4000-8000-0000000000{i:02x}" for i in range(1, 5)]
BOUNCER = "/usr/sbin/pgbouncer"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Bouncer:
    def __init__(self, server, pool_size):
        self.dir = server.dir / "bouncer"
        self.dir.mkdir()
        self.port = free_port()
        (self.dir / "userlist.txt").write_text('"it_app" ""\n"postgres" ""\n')
        (self.dir / "pgbouncer.ini").write_text(f"""
[databases]
postgres = host={server.dir} port={server.port} dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.dir}/userlist.txt
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 200
logfile = {self.dir}/pgbouncer.log
pidfile = {self.dir}/pgbouncer.pid
""")
        subprocess.run(["chown", "-R", "postgres", str(self.dir)], check=True)
        subprocess.run(["runuser", "-u", "postgres", "--", BOUNCER, "-d",
                        str(self.dir / "pgbouncer.ini")], check=True)
        for _ in range(50):
            if (self.dir / "pgbouncer.pid").exists():
                break
            time.sleep(0.1)

    def connect(self):
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="it_app", dbname="postgres")
        conn.autocommit = True
        return conn

    def stop(self):
        pid_file = self.dir / "pgbouncer.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text().strip()), 15)


@pytest.fixture
def pooled(server):
    token_key = server.dir / "token.key"
    token_key.write_text(os.urandom(32).hex() + "\n")
    subprocess.run(["chown", "postgres", str(token_key)], check=True)
    token_key.chmod(0o600)
    server.set_conf(f"cortex_vault.token_key_file = '{token_key}'")
    server.start()
    conn = server.connect()
    cur = install_vault(conn)
    cur.execute("CREATE ROLE it_app LOGIN IN ROLE cortex_vault_reader")
    cur.execute("CREATE TABLE memory (org_id uuid NOT NULL, fact text)")
    cur.execute("CREATE INDEX ON memory (org_id)")
    cur.execute("GRANT SELECT ON memory TO it_app")
    cur.execute("SELECT cortex_vault.enable_org_isolation('memory')")
    tokens = {}
    for org in ORGS:
        cur.execute("SET ROLE it_admin")
        cur.execute("SELECT cortex_vault.create_org(%s)", (org,))
        cur.execute("SELECT cortex_vault.issue_context_token(%s, NULL, 600)", (org,))
        tokens[org] = cur.fetchone()[0]
        cur.execute("SET ROLE it_writer")
        cur.execute("SELECT set_config('cortex_vault.org_id', %s, false)", (org,))
        cur.execute("SELECT cortex_vault.create_secret('llm', %s)", (f"sk-key-of-{org}",))
        cur.execute("RESET ROLE")
        cur.execute("INSERT INTO memory SELECT %s, 'fact-' || %s || '-' || g "
                    "FROM generate_series(1, 5) g", (org, org))
    cur.execute("RESET cortex_vault.org_id")
    yield server, conn, tokens
    for b in pooled_bouncers:
        b.stop()
    pooled_bouncers.clear()


pooled_bouncers = []


def bouncer(server, pool_size):
    b = Bouncer(server, pool_size)
    pooled_bouncers.append(b)
    return b


def test_interleaved_clients_never_cross_organizations(pooled):
    server, conn, tokens = pooled
    conn.cursor().execute("ALTER SYSTEM SET cortex_vault.strict_context = on")
    conn.cursor().execute("SELECT pg_reload_conf()")
    time.sleep(0.5)
    pool = bouncer(server, pool_size=3)
    errors, checked = [], [0]

    def client(n):
        rng = random.Random(n)
        c = pool.connect()
        cur = c.cursor()
        for _ in range(25):
            org = rng.choice(ORGS)
            try:
                cur.execute("BEGIN")
                cur.execute("SET LOCAL cortex_vault.context_token = %s", (tokens[org],))
                cur.execute("SELECT array_agg(DISTINCT org_id::text) FROM memory")
                seen = cur.fetchone()[0]
                cur.execute("SELECT cortex_vault.read_secret_by_name('llm')")
                key = cur.fetchone()[0]
                cur.execute("COMMIT")
                if seen != [org] or key != f"sk-key-of-{org}":
                    errors.append((org, seen, key))
                checked[0] += 1
                # A careless client leaves a session-level context behind.
                if rng.random() < 0.2:
                    other = rng.choice(ORGS)
                    cur.execute("SELECT set_config('cortex_vault.org_id', %s, false)", (other,))
            except psycopg2.Error as e:
                cur.execute("ROLLBACK")
                errors.append((org, "error", e.pgcode, str(e).splitlines()[0]))
        c.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert checked[0] == 16 * 25

    # A client with no token sees nothing: the leftover session settings are
    # refused in strict mode rather than lending another client's context.
    c = pool.connect()
    cur = c.cursor()
    for _ in range(10):
        try:
            cur.execute("SELECT count(*) FROM memory")
            assert cur.fetchone()[0] == 0
        except psycopg2.Error as e:
            assert e.pgcode == "42501"


def test_session_level_context_leaks_without_strict_mode_and_not_with_it(pooled):
    server, conn, _ = pooled
    pool = bouncer(server, pool_size=1)
    careless, victim = pool.connect(), pool.connect()
    careless.cursor().execute("SET cortex_vault.org_id = %s", (ORGS[0],))

    # Without strict mode the next client on the same server connection
    # inherits the context: the danger this product's strict mode removes.
    cur = victim.cursor()
    cur.execute("SELECT count(*) FROM memory")
    assert cur.fetchone()[0] == 5

    conn.cursor().execute("ALTER SYSTEM SET cortex_vault.strict_context = on")
    conn.cursor().execute("SELECT pg_reload_conf()")
    time.sleep(0.5)
    with pytest.raises(psycopg2.Error) as err:
        cur.execute("SELECT count(*) FROM memory")
    assert err.value.pgcode == "42501"
    assert "was set for the whole session" in err.value.diag.message_detail \
        or "signed context token" in err.value.diag.message_detail
    with pytest.raises(psycopg2.Error) as err:
        cur.execute("SELECT cortex_vault.read_secret_by_name('llm')")
    assert err.value.pgcode == "42501"
