#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    const ANTHROPIC: &str = "sk-ant-api03-TESTVALUE0000000000000000000000000000000000AA";
    const OPENAI: &str = "sk-proj-TESTVALUE11111111111111111111111111111111";

    #[pg_test]
    fn round_trip_as_ordinary_roles() {
        setup();
        let id = create(ORG_A, "anthropic-prod", ANTHROPIC, Some("agent-a"));
        assert_eq!(read(ORG_A, Some("agent-a"), &id), ANTHROPIC);
        // The value is stored only as ciphertext.
        let stored = text(&format!(
            "SELECT encode(ciphertext, 'escape') FROM cortex_vault.secret_versions \
             WHERE secret_id = '{id}'"
        ))
        .unwrap();
        assert!(!stored.contains("TESTVALUE"));
    }

    #[pg_test]
    fn test_roles_are_not_privileged() {
        setup();
        let privileged = Spi::get_one::<i64>(
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE 't\\_%' \
             AND (rolsuper OR rolbypassrls)",
        );
        assert_eq!(privileged, Ok(Some(0)));
        as_role("t_reader", Some(ORG_A));
        assert_eq!(text("SELECT current_user::text").as_deref(), Some("t_reader"));
        reset_role();
    }

    #[pg_test]
    fn other_organization_is_refused() {
        setup();
        let id = create(ORG_A, "key", ANTHROPIC, None);
        assert_eq!(read(ORG_B, None, &id), "ERROR 42704: secret not found");
    }

    #[pg_test]
    fn other_deployment_is_refused() {
        setup();
        let id = create(ORG_A, "key", ANTHROPIC, Some("agent-a"));
        assert_eq!(read(ORG_A, Some("agent-b"), &id), "ERROR 42704: secret not found");
        assert_eq!(read(ORG_A, None, &id), "ERROR 42704: secret not found");
        assert_eq!(read(ORG_A, Some("agent-a"), &id), ANTHROPIC);
    }

    #[pg_test]
    fn organization_wide_secret_is_readable_by_every_deployment() {
        setup();
        let id = create(ORG_A, "shared", OPENAI, None);
        assert_eq!(read(ORG_A, Some("agent-a"), &id), OPENAI);
        assert_eq!(read(ORG_A, None, &id), OPENAI);
    }

    #[pg_test]
    fn writer_cannot_read_a_value() {
        setup();
        let id = create(ORG_A, "key", ANTHROPIC, None);
        as_role("t_writer", Some(ORG_A));
        let got = outcome(&format!("SELECT cortex_vault.read_secret('{id}')"));
        assert!(
            got.starts_with("ERROR 42501: permission denied for function read_secret"),
            "{got}"
        );
        let got = outcome("SELECT cortex_vault.read_secret_by_name('key')");
        assert!(got.starts_with("ERROR 42501"), "{got}");
        // Nor through the tables underneath.
        let got = outcome("SELECT ciphertext::text FROM cortex_vault.secret_versions");
        assert!(got.starts_with("ERROR 42501"), "{got}");
        reset_role();
    }

    #[pg_test]
    fn reader_cannot_write_and_nobody_can_do_anything() {
        setup();
        as_role("t_reader", Some(ORG_A));
        let got = outcome("SELECT cortex_vault.create_secret('n', 'v')");
        assert!(got.starts_with("ERROR 42501"), "{got}");
        as_role("t_nobody", Some(ORG_A));
        for sql in [
            "SELECT cortex_vault.create_secret('n', 'v')",
            "SELECT cortex_vault.read_secret_by_name('n')",
            "SELECT count(*) FROM cortex_vault.secret_metadata",
            "SELECT count(*) FROM cortex_vault.audit_log",
            "SELECT cortex_vault.create_org()",
        ] {
            assert!(outcome(sql).starts_with("ERROR 42501"), "{sql}");
        }
        // Policies call this one, so every role may.
        assert_eq!(text("SELECT cortex_vault.current_org_id()::text").as_deref(), Some(ORG_A));
        reset_role();
    }

    #[pg_test]
    fn unset_empty_and_malformed_context_is_refused() {
        setup();
        let id = create(ORG_A, "key", ANTHROPIC, None);
        let read_sql = format!("SELECT cortex_vault.read_secret('{id}')");
        as_role("t_reader", None);
        run("RESET cortex_vault.org_id");
        assert_eq!(outcome(&read_sql), "ERROR 42501: no organization context is set");
        context(Some(""), None);
        assert_eq!(outcome(&read_sql), "ERROR 42501: no organization context is set");
        context(Some("   "), None);
        assert_eq!(outcome(&read_sql), "ERROR 42501: no organization context is set");
        context(Some("not-a-uuid"), None);
        assert_eq!(outcome(&read_sql), "ERROR 22P02: cortex_vault.org_id is malformed");
        // Policies see no organization rather than failing open.
        context(Some(""), None);
        assert_eq!(text("SELECT cortex_vault.current_org_id()::text"), None);
        as_role("t_writer", Some(""));
        let got = outcome("SELECT cortex_vault.create_secret('x', 'y')");
        assert_eq!(got, "ERROR 42501: no organization context is set");
        reset_role();
    }

    #[pg_test]
    fn missing_and_foreign_secrets_are_indistinguishable() {
        setup();
        let foreign = create(ORG_B, "key", OPENAI, None);
        let missing = "5e5e5e5e-0000-4000-8000-000000000000";
        as_role("t_reader", Some(ORG_A));
        let detail = |id: &str| {
            run(&format!(
                "DO $$ BEGIN PERFORM cortex_vault.read_secret('{id}'); \
                 EXCEPTION WHEN OTHERS THEN DECLARE s text; m text; d text; h text; BEGIN \
                 GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT, \
                 d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT; \
                 PERFORM set_config('t.err', concat_ws('|', s, m, d, h), true); END; END $$"
            ));
            text("SELECT current_setting('t.err')").unwrap()
        };
        let a = detail(&foreign);
        let b = detail(missing);
        assert!(a.starts_with("42704|secret not found|"), "{a}");
        assert_eq!(a, b);
        // By name as well.
        let by_name = outcome("SELECT cortex_vault.read_secret_by_name('key')");
        let missing_name = outcome("SELECT cortex_vault.read_secret_by_name('nope')");
        assert_eq!(by_name, missing_name);
        reset_role();
    }

    #[pg_test]
    fn ciphertext_moved_to_another_row_fails_to_decrypt() {
        setup();
        let a1 = create(ORG_A, "one", ANTHROPIC, Some("agent-a"));
        let a2 = create(ORG_A, "two", OPENAI, Some("agent-a"));
        let b1 = create(ORG_B, "one", OPENAI, Some("agent-a"));
        // Copy a1's ciphertext over a2's (same org, deployment and version)
        // and over b1's (another organization).
        for target in [&a2, &b1] {
            run(&format!(
                "UPDATE cortex_vault.secret_versions SET ciphertext = \
                 (SELECT ciphertext FROM cortex_vault.secret_versions WHERE secret_id = '{a1}') \
                 WHERE secret_id = '{target}'"
            ));
        }
        let got = read(ORG_A, Some("agent-a"), &a2);
        assert_eq!(got, "ERROR XX001: stored secret could not be decrypted");
        let got = read(ORG_B, Some("agent-a"), &b1);
        assert_eq!(got, "ERROR XX001: stored secret could not be decrypted");
        // Moving the secret to another deployment breaks it too.
        run(&format!(
            "UPDATE cortex_vault.secrets SET deployment_id = 'agent-b' WHERE id = '{a1}'"
        ));
        let got = read(ORG_A, Some("agent-b"), &a1);
        assert_eq!(got, "ERROR XX001: stored secret could not be decrypted");
    }

    #[pg_test]
    fn rotation_with_and_without_check_and_set() {
        setup();
        let id = create(ORG_A, "key", "value-one", None);
        as_role("t_writer", Some(ORG_A));
        let rotate = |value: &str, expected: &str| {
            outcome(&format!("SELECT cortex_vault.rotate_secret('{id}', '{value}', {expected})"))
        };
        assert_eq!(rotate("value-two", "NULL"), "2");
        assert_eq!(rotate("value-three", "1"), "ERROR 40001: secret version does not match");
        assert_eq!(rotate("value-three", "2"), "3");
        let version = text(&format!(
            "SELECT version::text FROM cortex_vault.secret_metadata WHERE id = '{id}'"
        ));
        assert_eq!(version.as_deref(), Some("3"));
        reset_role();
        assert_eq!(read(ORG_A, None, &id), "value-three");
        // Another organization cannot rotate it.
        as_role("t_writer", Some(ORG_B));
        assert_eq!(rotate("evil", "NULL"), "ERROR 42704: secret not found");
        reset_role();
    }

    #[pg_test]
    fn delete_destroys_every_version() {
        setup();
        let id = create(ORG_A, "key", "v1", None);
        as_role("t_writer", Some(ORG_A));
        run(&format!("SELECT cortex_vault.rotate_secret('{id}', 'v2')"));
        as_role("t_writer", Some(ORG_B));
        let got = outcome(&format!("SELECT cortex_vault.delete_secret('{id}')"));
        assert_eq!(got, "ERROR 42704: secret not found");
        as_role("t_writer", Some(ORG_A));
        assert_eq!(outcome(&format!("SELECT cortex_vault.delete_secret('{id}')")), "ok");
        reset_role();
        assert_eq!(read(ORG_A, None, &id), "ERROR 42704: secret not found");
        let left = Spi::get_one::<i64>(&format!(
            "SELECT count(*) FROM cortex_vault.secret_versions WHERE secret_id = '{id}'"
        ));
        assert_eq!(left, Ok(Some(0)));
    }

    #[pg_test]
    fn null_arguments_give_clear_errors() {
        setup();
        as_role("t_writer", Some(ORG_A));
        let cases = [
            ("SELECT cortex_vault.create_secret(NULL, 'v')", "name"),
            ("SELECT cortex_vault.create_secret('n', NULL)", "secret"),
            ("SELECT cortex_vault.rotate_secret(NULL, 'v')", "secret_id"),
            (
                "SELECT cortex_vault.rotate_secret('5e5e5e5e-0000-4000-8000-000000000000', NULL)",
                "new_secret",
            ),
            ("SELECT cortex_vault.delete_secret(NULL)", "secret_id"),
        ];
        for (sql, arg) in cases {
            assert_eq!(
                outcome(sql),
                format!("ERROR 22004: argument \"{arg}\" must not be null"),
                "{sql}"
            );
        }
        as_role("t_reader", Some(ORG_A));
        let got = outcome("SELECT cortex_vault.read_secret(NULL)");
        assert_eq!(got, "ERROR 22004: argument \"secret_id\" must not be null");
        let got = outcome("SELECT cortex_vault.read_secret_by_name(NULL)");
        assert_eq!(got, "ERROR 22004: argument \"name\" must not be null");
        as_role("t_admin", Some(ORG_A));
        let got = outcome("SELECT cortex_vault.create_org(NULL)");
        assert_eq!(got, "ERROR 22004: argument \"org_id\" must not be null");
        let got = outcome("SELECT cortex_vault.shred_org(NULL)");
        assert_eq!(got, "ERROR 22004: argument \"org_id\" must not be null");
        // The session goes on after each error.
        assert_eq!(text("SELECT 'alive'").as_deref(), Some("alive"));
        reset_role();
    }

    #[pg_test]
    fn malformed_arguments_give_clear_errors() {
        setup();
        as_role("t_writer", Some(ORG_A));
        let got = outcome("SELECT cortex_vault.create_secret('', 'v')");
        assert_eq!(got, "ERROR 22023: argument \"name\" is not a valid label");
        let got = outcome("SELECT cortex_vault.create_secret('n', '')");
        assert_eq!(got, "ERROR 22023: secret value is empty or too long");
        let got = outcome("SELECT cortex_vault.create_secret('n', repeat('x', 65537))");
        assert_eq!(got, "ERROR 22023: secret value is empty or too long");
        let got = outcome("SELECT cortex_vault.create_secret('n', 'v', '')");
        assert_eq!(got, "ERROR 22023: argument \"deployment_id\" is not a valid label");
        // A padded deployment could never be read, since the context is trimmed.
        let got = outcome("SELECT cortex_vault.create_secret('n', 'v', ' prod')");
        assert_eq!(got, "ERROR 22023: argument \"deployment_id\" is not a valid label");
        run("SELECT cortex_vault.create_secret('dup', 'v1')");
        let got = outcome("SELECT cortex_vault.create_secret('dup', 'v2')");
        assert_eq!(got, "ERROR 23505: a secret with this name already exists");
        reset_role();
    }

    #[pg_test]
    fn read_by_name_prefers_the_deployment_then_the_organization() {
        setup();
        create(ORG_A, "llm", "org-wide-value", None);
        create(ORG_A, "llm", "agent-a-value", Some("agent-a"));
        as_role("t_reader", Some(ORG_A));
        context(Some(ORG_A), Some("agent-a"));
        assert_eq!(outcome("SELECT cortex_vault.read_secret_by_name('llm')"), "agent-a-value");
        let got = outcome("SELECT cortex_vault.read_secret_by_name('llm', 'agent-a')");
        assert_eq!(got, "agent-a-value");
        // Naming another deployment than the one in context finds nothing.
        let got = outcome("SELECT cortex_vault.read_secret_by_name('llm', 'agent-b')");
        assert_eq!(got, "ERROR 42704: secret not found");
        context(Some(ORG_A), Some("agent-c"));
        assert_eq!(outcome("SELECT cortex_vault.read_secret_by_name('llm')"), "org-wide-value");
        reset_role();
    }

    #[pg_test]
    fn metadata_shows_no_value_and_only_the_own_organization() {
        setup();
        create(ORG_A, "a-key", ANTHROPIC, Some("agent-a"));
        create(ORG_A, "a-other", OPENAI, Some("agent-b"));
        create(ORG_B, "b-key", OPENAI, None);
        as_role("t_reader", Some(ORG_A));
        let all = text(
            "SELECT string_agg(m::text, ';' ORDER BY name) FROM cortex_vault.secret_metadata m",
        )
        .unwrap();
        assert!(all.contains("a-key") && all.contains("a-other"), "{all}");
        assert!(!all.contains("b-key") && !all.contains("TESTVALUE"), "{all}");
        context(Some(ORG_A), Some("agent-a"));
        let names =
            text("SELECT string_agg(name, ',' ORDER BY name) FROM cortex_vault.secret_metadata");
        assert_eq!(names.as_deref(), Some("a-key"));
        as_role("t_reader", None);
        let n = Spi::get_one::<i64>("SELECT count(*) FROM cortex_vault.secret_metadata");
        assert_eq!(n, Ok(Some(0)));
        reset_role();
    }

    #[pg_test]
    fn audit_rows_for_each_operation_without_values() {
        setup();
        let id = create(ORG_A, "key", ANTHROPIC, Some("agent-a"));
        read(ORG_A, Some("agent-a"), &id);
        as_role("t_writer", Some(ORG_A));
        run("SET LOCAL cortex_vault.actor = 'alice@example.com'");
        run(&format!("SELECT cortex_vault.rotate_secret('{id}', '{OPENAI}')"));
        run(&format!("SELECT cortex_vault.delete_secret('{id}')"));
        run("RESET cortex_vault.actor");

        as_role("t_auditor", Some(ORG_A));
        let ops = text(
            "SELECT string_agg(operation || ':' || outcome || ':' || db_user, ',' ORDER BY id) \
             FROM cortex_vault.audit_log",
        );
        assert_eq!(
            ops.as_deref(),
            Some(
                "create_org:success:t_admin,create:success:t_writer,read:success:t_reader,\
                 rotate:success:t_writer,delete:success:t_writer"
            )
        );
        let actor = text("SELECT actor FROM cortex_vault.audit_log WHERE operation = 'rotate'");
        assert_eq!(actor.as_deref(), Some("alice@example.com"));
        let secret =
            text("SELECT secret_id::text FROM cortex_vault.audit_log WHERE operation = 'read'");
        assert_eq!(secret.as_deref(), Some(id.as_str()));
        // Organization B's auditor sees none of it.
        context(Some(ORG_B), None);
        let n = text("SELECT string_agg(operation, ',') FROM cortex_vault.audit_log");
        assert_eq!(n.as_deref(), Some("create_org"));
        reset_role();

        let rows = text("SELECT string_agg(a::text, ' ') FROM cortex_vault.audit_log a").unwrap();
        assert!(!rows.contains("TESTVALUE"), "a value reached the audit trail");
    }

    #[pg_test]
    fn audit_log_is_append_only_even_for_the_superuser() {
        setup();
        for sql in [
            "UPDATE cortex_vault.audit_log SET outcome = 'x'",
            "DELETE FROM cortex_vault.audit_log",
            "TRUNCATE cortex_vault.audit_log",
        ] {
            let got = outcome(sql);
            assert_eq!(got, "ERROR 42501: audit_log is append-only", "{sql}");
        }
        as_role("t_auditor", Some(ORG_A));
        let got = outcome("DELETE FROM cortex_vault.audit_log");
        assert!(got.starts_with("ERROR 42501: permission denied"), "{got}");
        reset_role();
    }

    #[pg_test]
    fn org_key_rotation_keeps_values_readable() {
        setup();
        let id = create(ORG_A, "key", ANTHROPIC, Some("agent-a"));
        as_role("t_writer", Some(ORG_A));
        run(&format!("SELECT cortex_vault.rotate_secret('{id}', '{OPENAI}')"));
        reset_role();
        let before = text(&format!(
            "SELECT string_agg(encode(ciphertext, 'hex'), ',' ORDER BY version) \
             FROM cortex_vault.secret_versions WHERE secret_id = '{id}'"
        ));
        as_role("t_admin", Some(ORG_A));
        assert_eq!(outcome("SELECT cortex_vault.rotate_org_key()"), "2");
        reset_role();
        let after = text(&format!(
            "SELECT string_agg(encode(ciphertext, 'hex'), ',' ORDER BY version) \
             FROM cortex_vault.secret_versions WHERE secret_id = '{id}'"
        ));
        assert_ne!(before, after);
        let kv = text(&format!(
            "SELECT key_version::text FROM cortex_vault.org_keys WHERE org_id = '{ORG_A}'"
        ));
        assert_eq!(kv.as_deref(), Some("2"));
        assert_eq!(read(ORG_A, Some("agent-a"), &id), OPENAI);
    }

    #[pg_test]
    fn shredded_organization_cannot_be_read_or_written() {
        setup();
        let id = create(ORG_A, "key", ANTHROPIC, None);
        let other = create(ORG_B, "key", OPENAI, None);
        as_role("t_admin", None);
        assert_eq!(outcome(&format!("SELECT cortex_vault.shred_org('{ORG_A}')")), "ok");
        let again = outcome(&format!("SELECT cortex_vault.shred_org('{ORG_A}')"));
        assert_eq!(again, "ERROR 55000: organization has been shredded");
        reset_role();
        assert_eq!(read(ORG_A, None, &id), "ERROR 42704: secret not found");
        as_role("t_writer", Some(ORG_A));
        let got = outcome("SELECT cortex_vault.create_secret('k', 'v')");
        assert_eq!(got, "ERROR 55000: organization has been shredded");
        reset_role();
        let keys = Spi::get_one::<i64>(&format!(
            "SELECT count(*) FROM cortex_vault.org_keys WHERE org_id = '{ORG_A}'"
        ));
        assert_eq!(keys, Ok(Some(0)));
        assert_eq!(read(ORG_B, None, &other), OPENAI);
    }

    #[pg_test]
    fn org_registration_errors() {
        setup();
        as_role("t_admin", None);
        let got = outcome(&format!("SELECT cortex_vault.create_org('{ORG_A}')"));
        assert_eq!(got, "ERROR 42710: organization is already registered");
        let fresh = outcome("SELECT cortex_vault.create_org()::text");
        assert_eq!(fresh.len(), 36, "{fresh}");
        reset_role();
        as_role("t_writer", Some("5e5e5e5e-0000-4000-8000-000000000000"));
        let got = outcome("SELECT cortex_vault.create_secret('k', 'v')");
        assert_eq!(got, "ERROR 42704: organization is not registered");
        reset_role();
    }

    #[pg_test]
    fn master_key_rotation_with_one_version_rewraps_nothing() {
        setup();
        as_role("t_admin", None);
        assert_eq!(outcome("SELECT cortex_vault.rotate_master_key()"), "0");
        reset_role();
    }

    #[pg_test]
    fn sealed_values_round_trip_and_tampering_is_refused() {
        setup();
        let public =
            Spi::get_one::<Vec<u8>>("SELECT cortex_vault.sealing_public_key()").unwrap().unwrap();
        let key: [u8; 32] = public.as_slice().try_into().unwrap();
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        // The sealed plaintext is the organization id followed by the value.
        let org_a = crate::context::parse_uuid(ORG_A).unwrap();
        let org_b = crate::context::parse_uuid(ORG_B).unwrap();
        let boxed = |org: &pgrx::Uuid, value: &str| {
            let mut plain = org.as_bytes().to_vec();
            plain.extend_from_slice(value.as_bytes());
            crate::crypto::sealed::seal(&key, &plain).unwrap()
        };
        let sealed = boxed(&org_a, ANTHROPIC);
        as_role("t_writer", Some(ORG_A));
        let id = text(&format!(
            "SELECT cortex_vault.create_secret_sealed('sealed', '\\x{}', 'agent-a')::text",
            hex(&sealed)
        ))
        .unwrap();
        let rotated = boxed(&org_a, OPENAI);
        let got = outcome(&format!(
            "SELECT cortex_vault.rotate_secret_sealed('{id}', '\\x{}', 1)",
            hex(&rotated)
        ));
        assert_eq!(got, "2");
        let mut bad = sealed.clone();
        bad[40] ^= 1;
        let got = outcome(&format!(
            "SELECT cortex_vault.create_secret_sealed('bad', '\\x{}')",
            hex(&bad)
        ));
        assert_eq!(got, "ERROR 22023: sealed value could not be opened");
        // A box made for another organization is refused here.
        let foreign = boxed(&org_b, OPENAI);
        let got = outcome(&format!(
            "SELECT cortex_vault.create_secret_sealed('moved', '\\x{}')",
            hex(&foreign)
        ));
        assert_eq!(got, "ERROR 22023: sealed value was made for another organization");
        let got = outcome("SELECT cortex_vault.create_secret_sealed('n', NULL)");
        assert_eq!(got, "ERROR 22004: argument \"sealed_secret\" must not be null");
        reset_role();
        assert_eq!(read(ORG_A, Some("agent-a"), &id), OPENAI);
        // Any role may read the public key; only writers may store.
        as_role("t_nobody", None);
        let n = Spi::get_one::<i32>("SELECT length(cortex_vault.sealing_public_key())");
        assert_eq!(n, Ok(Some(32)));
        let got = outcome(&format!(
            "SELECT cortex_vault.create_secret_sealed('x', '\\x{}')",
            hex(&sealed)
        ));
        assert!(got.starts_with("ERROR 42501"), "{got}");
        reset_role();
    }
}
