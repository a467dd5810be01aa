"""Master key loading, rotation across restarts and the fingerprint error."""

import re

import psycopg2
import pytest

from conftest import ORG_A, ORG_B, create_secret, install_vault, new_key_hex, read_secret


def fingerprints(conn):
    cur = conn.cursor()
    cur.execute("SELECT DISTINCT master_fingerprint FROM cortex_vault.org_keys")
    return {r[0] for r in cur.fetchall()}


def loaded_fingerprint(server):
    found = re.findall(r"master key version\(s\); newest fingerprint ([0-9a-f]{16})", server.log_text())
    assert found, "the server log names the loaded fingerprint"
    return found[-1]


def test_rotation_with_two_versions_and_restarts(server):
    server.start()
    conn = server.connect()
    install_vault(conn)
    a = create_secret(conn, ORG_A, "anthropic", "sk-ant-api03-rotation-a", "agent-a")
    b = create_secret(conn, ORG_B, "openai", "sk-proj-rotation-b")
    old_fp = loaded_fingerprint(server)
    assert fingerprints(conn) == {old_fp}
    conn.close()

    # A second version, newest last: old keys still unwrap, new ones wrap.
    server.write_keys(*server.keys(), new_key_hex())
    server.restart()
    new_fp = loaded_fingerprint(server)
    assert new_fp != old_fp
    assert "loaded 2 master key version(s)" in server.log_text()
    conn = server.connect()
    assert read_secret(conn, ORG_A, a, "agent-a") == "sk-ant-api03-rotation-a"
    cur = conn.cursor()
    cur.execute("SET ROLE it_admin")
    cur.execute("SELECT cortex_vault.rotate_master_key()")
    assert cur.fetchone()[0] == 2
    cur.execute("SELECT cortex_vault.rotate_master_key()")
    assert cur.fetchone()[0] == 0, "a second rotation has nothing left to rewrap"
    cur.execute("RESET ROLE")
    assert fingerprints(conn) == {new_fp}
    conn.close()

    # The old version can now be retired.
    server.write_keys(server.keys()[-1])
    server.restart()
    conn = server.connect()
    assert read_secret(conn, ORG_A, a, "agent-a") == "sk-ant-api03-rotation-a"
    assert read_secret(conn, ORG_B, b) == "sk-proj-rotation-b"
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM cortex_vault.audit_log WHERE operation = 'rotate_master_key'")
    assert cur.fetchone()[0] == 2
    assert "rewrapped 2 organization key(s)" in server.log_text()


def test_wrong_master_key_names_the_missing_fingerprint(server):
    server.start()
    conn = server.connect()
    install_vault(conn)
    sid = create_secret(conn, ORG_A, "k", "sk-ant-api03-wrong-key")
    old_fp = loaded_fingerprint(server)
    conn.close()

    server.write_keys(new_key_hex())
    server.restart()
    wrong_fp = loaded_fingerprint(server)
    conn = server.connect()
    with pytest.raises(psycopg2.Error) as err:
        read_secret(conn, ORG_A, sid)
    assert err.value.pgcode == "55000"
    assert err.value.pgerror.splitlines()[0] == \
        f"ERROR:  master key version {old_fp} is not loaded"
    assert err.value.diag.message_detail == f"The server loaded master key versions {wrong_fp}."
    assert "Add the key with this fingerprint" in err.value.diag.message_hint
    # Creating is refused too: no key is invented for the organization.
    with pytest.raises(psycopg2.Error) as err:
        create_secret(conn, ORG_A, "k2", "v")
    assert err.value.pgcode == "55000"
    cur = conn.cursor()
    cur.execute("RESET ROLE")
    cur.execute("SELECT count(*) FROM cortex_vault.secrets WHERE name = 'k2'")
    assert cur.fetchone()[0] == 0


def refusal_of_create_org(server):
    """Installs the extension and returns the error create_org() raises."""
    conn = server.connect()
    cur = conn.cursor()
    cur.execute("CREATE EXTENSION cortex_vault")
    with pytest.raises(psycopg2.Error) as err:
        cur.execute("SELECT cortex_vault.create_org()")
    assert err.value.pgcode == "55000"
    return err.value, cur


def test_missing_key_file_refuses_every_key_operation(server):
    server.write_keys(new_key_hex())
    server.key_file.unlink()
    server.start()
    assert "no master key loaded: cortex_vault.master_key_file is unusable: it does not exist" \
        in server.log_text()
    err, cur = refusal_of_create_org(server)
    assert err.diag.message_primary == "no master key is loaded"
    assert err.diag.message_detail == "Cortex_vault.master_key_file is unusable: it does not exist."
    cur.execute("SELECT count(*) FROM cortex_vault.orgs")
    assert cur.fetchone()[0] == 0


def test_key_file_readable_by_others_is_refused(server):
    server.key_file.chmod(0o644)
    server.start()
    assert "group or others may access it" in server.log_text()
    err, _ = refusal_of_create_org(server)
    assert err.diag.message_primary == "no master key is loaded"


def test_key_command_is_the_second_source(server):
    key = server.keys()[0]
    server.set_conf("cortex_vault.master_key_file = ''")
    server.set_conf(f"cortex_vault.master_key_command = 'cat {server.key_file}'")
    server.start()
    assert "loaded 1 master key version(s)" in server.log_text()
    conn = server.connect()
    install_vault(conn)
    sid = create_secret(conn, ORG_A, "k", "sk-ant-api03-from-command")
    assert read_secret(conn, ORG_A, sid) == "sk-ant-api03-from-command"
    assert key not in server.log_text()


def test_master_key_never_reaches_the_log_or_settings(server):
    key = server.keys()[0]
    server.start()
    conn = server.connect()
    install_vault(conn)
    cur = conn.cursor()
    cur.execute("SELECT string_agg(setting, ' ') FROM pg_settings WHERE name LIKE 'cortex_vault.%'")
    assert key not in (cur.fetchone()[0] or "")
    assert key not in server.log_text()
    # An ordinary role cannot even see where the key file is.
    cur.execute("SET ROLE it_reader")
    with pytest.raises(psycopg2.Error) as err:
        cur.execute("SHOW cortex_vault.master_key_file")
    assert err.value.pgcode == "42501"


def test_without_preloading_the_vault_refuses_with_a_hint(server):
    server.set_conf("shared_preload_libraries = ''")
    server.start()
    err, _ = refusal_of_create_org(server)
    assert err.diag.message_primary == "cortex_vault was not loaded at server start"
    assert "shared_preload_libraries" in err.diag.message_hint
