//! Contexts that cannot be forged: signed tokens, role bindings and strict
//! mode, checked through the vault and through an isolated table.

#[pgrx::pg_schema]
mod tests {
    use crate::context::token;
    use crate::tests::support::*;
    use pgrx::prelude::*;

    /// An isolated table with one row per organization, readable by t_app.
    fn isolated() {
        setup();
        run("CREATE TABLE public.memory (org_id uuid NOT NULL, fact text)");
        run(&format!(
            "INSERT INTO public.memory VALUES ('{ORG_A}', 'fact-a'), ('{ORG_B}', 'fact-b')"
        ));
        run("SELECT cortex_vault.enable_org_isolation('public.memory')");
        run("CREATE ROLE t_app NOLOGIN");
        run("GRANT SELECT ON public.memory TO t_app");
    }

    fn facts() -> String {
        outcome("SELECT coalesce(string_agg(fact, ',' ORDER BY fact), '') FROM public.memory")
    }

    fn token_for(org: &str, deployment: Option<&str>, ttl: i32) -> String {
        as_role("t_admin", None);
        let dep = deployment.map(|d| format!("'{d}'")).unwrap_or_else(|| "NULL".into());
        let t = text(&format!("SELECT cortex_vault.issue_context_token('{org}', {dep}, {ttl})"));
        reset_role();
        t.expect("a token key is loaded for the tests")
    }

    fn set_token(token: &str) {
        run(&format!("SET LOCAL cortex_vault.context_token = '{token}'"));
    }

    #[pg_test]
    fn a_valid_token_carries_the_organization() {
        isolated();
        let t = token_for(ORG_A, None, 60);
        as_role("t_app", None);
        set_token(&t);
        assert_eq!(facts(), "fact-a");
        // Naming another organization beside the token is refused.
        context(Some(ORG_B), None);
        let got = facts();
        assert_eq!(got, "ERROR 42501: organization context refused");
        reset_role();
    }

    #[pg_test]
    fn a_token_with_a_changed_payload_is_refused() {
        isolated();
        let a = token_for(ORG_A, None, 60);
        let b = token_for(ORG_B, None, 60);
        let mut parts: Vec<&str> = a.split('.').collect();
        parts[1] = b.split('.').nth(1).unwrap();
        let forged = parts.join(".");
        as_role("t_app", None);
        set_token(&forged);
        assert_eq!(facts(), "ERROR 42501: organization context refused");
        set_token("v1.e30.AAAA");
        assert_eq!(facts(), "ERROR 42501: organization context refused");
        reset_role();
    }

    #[pg_test]
    fn an_expired_token_is_refused() {
        isolated();
        // Signed with the server's key file, outside the vault's functions.
        let path = text("SELECT current_setting('cortex_vault.token_key_file')").unwrap();
        let key_hex = std::fs::read_to_string(path).unwrap();
        let mut key = [0u8; 32];
        for (i, b) in key.iter_mut().enumerate() {
            *b = u8::from_str_radix(&key_hex.trim()[2 * i..2 * i + 2], 16).unwrap();
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        let claims = token::Claims { org: ORG_A.into(), dep: None, exp: now.as_secs() as i64 - 60 };
        let expired = token::sign(&key, &claims);
        let fresh = token::sign(&key, &token::Claims { exp: now.as_secs() as i64 + 60, ..claims });
        as_role("t_app", None);
        set_token(&fresh);
        assert_eq!(facts(), "fact-a", "a token signed outside the database verifies");
        set_token(&expired);
        assert_eq!(facts(), "ERROR 42501: organization context refused");
        reset_role();
    }

    #[pg_test]
    fn a_token_pins_the_deployment_for_vault_reads() {
        isolated();
        let id = create(ORG_A, "key", "sk-ant-api03-token-dep", Some("agent-a"));
        let t = token_for(ORG_A, Some("agent-b"), 60);
        as_role("t_reader", None);
        set_token(&t);
        let got = outcome(&format!("SELECT cortex_vault.read_secret('{id}')"));
        assert_eq!(got, "ERROR 42704: secret not found");
        context(None, Some("agent-a"));
        let got = outcome(&format!("SELECT cortex_vault.read_secret('{id}')"));
        assert_eq!(got, "ERROR 42501: organization context refused");
        reset_role();
    }

    #[pg_test]
    fn strict_mode_refuses_a_bare_setting() {
        isolated();
        let id = create(ORG_A, "key", "sk-ant-api03-strict", None);
        run("SET LOCAL cortex_vault.strict_context = on");
        as_role("t_app", Some(ORG_A));
        assert_eq!(facts(), "ERROR 42501: organization context refused");
        as_role("t_reader", Some(ORG_A));
        let got = outcome(&format!("SELECT cortex_vault.read_secret('{id}')"));
        assert_eq!(got, "ERROR 42501: organization context refused");
        // A transaction-local token is accepted.
        let t = token_for(ORG_A, None, 60);
        as_role("t_reader", None);
        set_token(&t);
        let got = outcome(&format!("SELECT cortex_vault.read_secret('{id}')"));
        assert_eq!(got, "sk-ant-api03-strict");
        reset_role();
    }

    #[pg_test]
    fn strict_mode_refuses_context_set_for_the_session() {
        isolated();
        run("SET LOCAL cortex_vault.strict_context = on");
        let t = token_for(ORG_A, None, 60);
        as_role("t_app", None);
        run(&format!("SET cortex_vault.context_token = '{t}'"));
        assert_eq!(facts(), "ERROR 42501: organization context refused");
        run(&format!("SET LOCAL cortex_vault.context_token = '{t}'"));
        assert_eq!(facts(), "fact-a");
        reset_role();
    }

    #[pg_test]
    fn a_bound_role_cannot_switch_organizations() {
        isolated();
        run("CREATE ROLE t_tenant_a NOLOGIN");
        run("GRANT SELECT ON public.memory TO t_tenant_a");
        as_role("t_admin", None);
        run(&format!("SELECT cortex_vault.bind_role('t_tenant_a', '{ORG_A}')"));
        reset_role();
        as_role("t_tenant_a", None);
        let why = detail_of("SELECT count(*) FROM public.memory");
        assert_eq!(facts(), "fact-a", "one binding supplies the context: {why:?}");
        context(Some(ORG_B), None);
        assert_eq!(facts(), "ERROR 42501: organization context refused");
        // A token for another organization does not help either.
        reset_role();
        let t = token_for(ORG_B, None, 60);
        as_role("t_tenant_a", None);
        set_token(&t);
        assert_eq!(facts(), "ERROR 42501: organization context refused");
        reset_role();
        // Strict mode accepts the binding as a trusted source.
        run("SET LOCAL cortex_vault.strict_context = on");
        as_role("t_tenant_a", None);
        assert_eq!(facts(), "fact-a");
        reset_role();
    }

    #[pg_test]
    fn binding_errors_are_clear() {
        setup();
        as_role("t_admin", None);
        let got = outcome(&format!("SELECT cortex_vault.bind_role('no_such_role', '{ORG_A}')"));
        assert_eq!(got, "ERROR 42704: role \"no_such_role\" does not exist");
        let got = outcome(
            "SELECT cortex_vault.bind_role('t_reader', '5e5e5e5e-0000-4000-8000-000000000000')",
        );
        assert_eq!(got, "ERROR 42704: organization is not registered");
        let got = outcome("SELECT cortex_vault.bind_role(NULL, NULL)");
        assert_eq!(got, "ERROR 22004: argument \"role\" must not be null");
        reset_role();
        as_role("t_writer", Some(ORG_A));
        let got = outcome(&format!("SELECT cortex_vault.bind_role('t_writer', '{ORG_B}')"));
        assert!(got.starts_with("ERROR 42501: permission denied"), "{got}");
        reset_role();
    }

    #[pg_test]
    fn a_token_cannot_be_read_back_by_an_ordinary_role() {
        isolated();
        let t = token_for(ORG_B, None, 60);
        as_role("t_app", None);
        run(&format!("SET cortex_vault.context_token = '{t}'"));
        // PostgreSQL 15 says "must be superuser or have privileges of ...", later
        // versions "permission denied to examine ..."; both refuse with 42501.
        let got = outcome("SELECT current_setting('cortex_vault.context_token')");
        assert!(got.starts_with("ERROR 42501: "), "{got}");
        assert!(!got.contains("v1."), "{got}");
        let got =
            outcome("SELECT count(*) FROM pg_settings WHERE name = 'cortex_vault.context_token'");
        assert_eq!(got, "0");
        reset_role();
    }

    #[pg_test]
    fn strict_mode_refuses_a_session_level_deployment_under_an_org_wide_token() {
        isolated();
        run("SET LOCAL cortex_vault.strict_context = on");
        let t = token_for(ORG_A, None, 60);
        as_role("t_app", None);
        set_token(&t);
        run("SET cortex_vault.deployment_id = 'agent-a'");
        assert_eq!(facts(), "ERROR 42501: organization context refused");
        let why = detail_of("SELECT count(*) FROM public.memory");
        assert_eq!(
            why.as_deref(),
            Some("cortex_vault.deployment_id was set for the whole session.")
        );
        run("SET LOCAL cortex_vault.deployment_id = 'agent-a'");
        assert_eq!(facts(), "fact-a");
        reset_role();
    }

    #[pg_test]
    fn a_binding_on_a_group_role_binds_its_members() {
        isolated();
        run("CREATE ROLE t_acme_agents NOLOGIN");
        run("CREATE ROLE t_bot1 NOLOGIN IN ROLE t_acme_agents");
        run("GRANT SELECT ON public.memory TO t_acme_agents");
        as_role("t_admin", None);
        run(&format!("SELECT cortex_vault.bind_role('t_acme_agents', '{ORG_A}')"));
        reset_role();
        as_role("t_bot1", Some(ORG_B));
        assert_eq!(facts(), "ERROR 42501: organization context refused");
        as_role("t_bot1", None);
        assert_eq!(facts(), "fact-a");
        reset_role();
    }
}
