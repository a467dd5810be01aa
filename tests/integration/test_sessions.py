"""Behaviour that needs more than one session: key rotation waits for value
writers, binding changes reach other sessions' caches, and the server log
keeps a line for every read and every refusal."""

import psycopg2
import pytest

from conftest import ORG_A, ORG_B, as_role, create_secret, install_vault, read_secret


def test_org_key_rotation_waits_for_an_open_writer(server):
    server.start()
    admin, writer = server.connect(), server.connect()
    install_vault(admin)
    w = as_role(writer, "it_writer", ORG_A)
    w.execute("BEGIN")
    w.execute("SELECT cortex_vault.create_secret('pending', 'sk-ant-api03-pending')")
    sid = w.fetchone()[0]

    # While the writer's transaction is open, rotation cannot start.
    a = as_role(admin, "it_admin", ORG_A)
    a.execute("SET lock_timeout = '300ms'")
    with pytest.raises(psycopg2.Error) as err:
        a.execute("SELECT cortex_vault.rotate_org_key()")
    assert err.value.pgcode == "55P03"

    # Once it commits, rotation re-encrypts its value too.
    w.execute("COMMIT")
    a.execute("SELECT cortex_vault.rotate_org_key()")
    assert a.fetchone()[0] == 1
    a.execute("RESET ROLE")
    assert read_secret(admin, ORG_A, sid) == "sk-ant-api03-pending"


def test_binding_changes_reach_other_sessions(server):
    server.start()
    admin = server.connect()
    cur = install_vault(admin)
    cur.execute("CREATE ROLE it_tenant LOGIN IN ROLE cortex_vault_reader")
    sid_b = create_secret(admin, ORG_B, "k", "sk-proj-of-b")
    tenant = server.connect(user="it_tenant")
    t = tenant.cursor()
    t.execute(f"SET cortex_vault.org_id = '{ORG_B}'")
    t.execute("SELECT cortex_vault.read_secret(%s)", (sid_b,))
    assert t.fetchone()[0] == "sk-proj-of-b"

    # Bound to A by another session: B is refused from the next transaction.
    a = as_role(admin, "it_admin", None)
    a.execute("SELECT cortex_vault.bind_role('it_tenant', %s)", (ORG_A,))
    with pytest.raises(psycopg2.Error) as err:
        t.execute("SELECT cortex_vault.read_secret(%s)", (sid_b,))
    assert err.value.pgcode == "42501"

    # Unbound again: the cached binding is dropped as well.
    a.execute("SELECT cortex_vault.unbind_role('it_tenant', %s)", (ORG_A,))
    t.execute("SELECT cortex_vault.read_secret(%s)", (sid_b,))
    assert t.fetchone()[0] == "sk-proj-of-b"


def test_server_log_keeps_reads_and_refusals(server):
    server.start()
    conn = server.connect()
    install_vault(conn)
    sid = create_secret(conn, ORG_A, "k", "sk-ant-api03-logged")
    assert read_secret(conn, ORG_A, sid) == "sk-ant-api03-logged"
    with pytest.raises(psycopg2.Error):
        read_secret(conn, ORG_B, sid)
    log = server.log_text()
    assert f"operation=read outcome=success org={ORG_A} deployment=\"\" secret={sid} " \
           'db_user="it_reader"' in log
    assert f"operation=read outcome=denied org={ORG_B} deployment=\"\" secret={sid} " \
           'db_user="it_reader"' in log
    assert "sk-ant-api03-logged" not in log
