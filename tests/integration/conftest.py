"""Throwaway servers for the integration tests, built on scripts/server.sh."""

import os
import pathlib
import subprocess
import uuid

import psycopg2
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SERVER_SH = ROOT / "scripts" / "server.sh"
PG = os.environ.get("CORTEX_VAULT_PG", "15")
WORK = pathlib.Path(os.environ.get("CORTEX_VAULT_IT_DIR", "/tmp/cortex_vault_it"))

ORG_A = "0a0a0a0a-0000-4000-8000-00000000000a"
ORG_B = "0b0b0b0b-0000-4000-8000-00000000000b"


def sh(*args, check=True):
    return subprocess.run(["bash", str(SERVER_SH), *args], check=check,
                          capture_output=True, text=True)


def new_key_hex():
    return os.urandom(32).hex()


class Server:
    """One throwaway server; see scripts/server.sh for its folder layout."""

    def __init__(self, name):
        self.dir = WORK / f"{name}-{uuid.uuid4().hex[:8]}"
        sh("init", PG, str(self.dir))
        self.key_file = self.dir / "master.key"
        self.conf = self.dir / "data" / "postgresql.conf"
        self.log = self.dir / "server.log"
        self.port = int((self.dir / "port").read_text())
        # Keep every WAL segment so that searches see all that was written.
        self.set_conf("wal_keep_size = '1GB'")
        self.running = False

    def start(self):
        sh("start", PG, str(self.dir))
        self.running = True

    def stop(self):
        if self.running:
            sh("stop", PG, str(self.dir))
            self.running = False

    def restart(self):
        self.stop()
        self.start()

    def connect(self, user="postgres", dbname="postgres"):
        conn = psycopg2.connect(host=str(self.dir), port=self.port, user=user, dbname=dbname)
        conn.autocommit = True
        return conn

    def write_keys(self, *keys):
        """Replaces the master key file, keeping mode 0600 and the owner."""
        self.key_file.write_text("".join(k + "\n" for k in keys))
        subprocess.run(["chown", "postgres", str(self.key_file)], check=True)
        self.key_file.chmod(0o600)

    def keys(self):
        return [l for l in self.key_file.read_text().split() if l and not l.startswith("#")]

    def set_conf(self, line):
        with open(self.conf, "a") as f:
            f.write(line + "\n")

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def bindir(self):
        return sh("bindir", PG).stdout.strip()


@pytest.fixture
def server(request):
    srv = Server(request.node.name[:40])
    yield srv
    srv.stop()


def install_vault(conn):
    """The extension, the four duty roles given to test login roles, two orgs."""
    cur = conn.cursor()
    cur.execute("CREATE EXTENSION cortex_vault")
    for role, duty in [("it_admin", "admin"), ("it_writer", "writer"), ("it_reader", "reader"),
                       ("it_auditor", "auditor")]:
        cur.execute(f"DO $$ BEGIN CREATE ROLE {role} LOGIN; EXCEPTION WHEN duplicate_object "
                    f"THEN NULL; END $$")
        cur.execute(f"GRANT cortex_vault_{duty} TO {role}")
    admin = as_role(conn, "it_admin", None)
    for org in (ORG_A, ORG_B):
        admin.execute("SELECT cortex_vault.create_org(%s)", (org,))
    admin.execute("RESET ROLE")
    return cur


def as_role(conn, role, org, deployment=None):
    """A cursor acting as `role` with a session context (tests only)."""
    cur = conn.cursor()
    cur.execute(f"SET ROLE {role}")
    cur.execute("SELECT set_config('cortex_vault.org_id', %s, false), "
                "set_config('cortex_vault.deployment_id', %s, false)",
                (org or "", deployment or ""))
    return cur


def create_secret(conn, org, name, value, deployment=None):
    cur = as_role(conn, "it_writer", org)
    cur.execute("SELECT cortex_vault.create_secret(%s, %s, %s)", (name, value, deployment))
    sid = cur.fetchone()[0]
    cur.execute("RESET ROLE")
    return sid


def read_secret(conn, org, sid, deployment=None):
    cur = as_role(conn, "it_reader", org, deployment)
    try:
        cur.execute("SELECT cortex_vault.read_secret(%s)", (sid,))
        return cur.fetchone()[0]
    finally:
        cur.execute("RESET ROLE")
