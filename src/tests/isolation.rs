//! The adversarial isolation suite: every check runs as an ordinary role
//! (t_app: no owner, no superuser, no BYPASSRLS) unless it tests the owner.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    /// An application table owned by t_owner, isolated, with two rows per
    /// organization; t_app may read and write it.
    fn app_table() {
        setup();
        run("CREATE ROLE t_owner NOLOGIN IN ROLE cortex_vault_admin");
        run("CREATE ROLE t_app NOLOGIN");
        run("GRANT CREATE ON SCHEMA public TO t_owner");
        as_role("t_owner", None);
        run("CREATE TABLE public.conversations (id serial, org_id uuid NOT NULL, \
             deployment_id text, body text, PRIMARY KEY (org_id, id))");
        run("CREATE INDEX ON public.conversations (org_id)");
        run("GRANT SELECT, INSERT, UPDATE, DELETE ON public.conversations TO t_app");
        run("GRANT USAGE ON SEQUENCE public.conversations_id_seq TO t_app");
        run(&format!(
            "INSERT INTO public.conversations (org_id, deployment_id, body) VALUES \
             ('{ORG_A}', 'agent-a', 'a1'), ('{ORG_A}', NULL, 'a2'), \
             ('{ORG_B}', 'agent-b', 'b1'), ('{ORG_B}', NULL, 'b2')"
        ));
        run("SELECT cortex_vault.enable_org_isolation('public.conversations')");
        reset_role();
    }

    fn bodies() -> String {
        text("SELECT coalesce(string_agg(body, ',' ORDER BY body), '') FROM public.conversations")
            .unwrap_or_default()
    }

    #[pg_test]
    fn each_organization_sees_only_its_rows() {
        app_table();
        as_role("t_app", Some(ORG_A));
        assert_eq!(bodies(), "a1,a2");
        context(Some(ORG_B), None);
        assert_eq!(bodies(), "b1,b2");
        // Counting, updating and deleting foreign rows touch nothing.
        context(Some(ORG_A), None);
        assert_eq!(
            outcome("UPDATE public.conversations SET body = 'x' WHERE body = 'b1' RETURNING id"),
            "ok"
        );
        assert_eq!(
            outcome("DELETE FROM public.conversations WHERE body LIKE 'b%' RETURNING id"),
            "ok"
        );
        reset_role();
        as_role("t_app", Some(ORG_B));
        assert_eq!(bodies(), "b1,b2");
        reset_role();
    }

    #[pg_test]
    fn unset_empty_and_malformed_context_see_nothing_or_fail() {
        app_table();
        as_role("t_app", None);
        assert_eq!(bodies(), "");
        run("RESET cortex_vault.org_id");
        assert_eq!(bodies(), "");
        context(Some("   "), None);
        assert_eq!(bodies(), "");
        context(Some("0a0a0a0a"), None);
        let got = outcome("SELECT count(*) FROM public.conversations");
        assert_eq!(got, "ERROR 22P02: cortex_vault.org_id is malformed");
        reset_role();
    }

    #[pg_test]
    fn the_owner_without_context_sees_nothing() {
        app_table();
        as_role("t_owner", None);
        assert_eq!(bodies(), "");
        context(Some(ORG_B), None);
        assert_eq!(bodies(), "b1,b2");
        reset_role();
    }

    #[pg_test]
    fn writing_a_row_into_another_organization_is_refused() {
        app_table();
        as_role("t_app", Some(ORG_A));
        let got = outcome(&format!(
            "INSERT INTO public.conversations (org_id, body) VALUES ('{ORG_B}', 'smuggled')"
        ));
        assert!(
            got.starts_with("ERROR 42501: new row violates row-level security policy"),
            "{got}"
        );
        let got = outcome(&format!(
            "UPDATE public.conversations SET org_id = '{ORG_B}' WHERE body = 'a1'"
        ));
        assert!(
            got.starts_with("ERROR 42501: new row violates row-level security policy"),
            "{got}"
        );
        reset_role();
        as_role("t_app", Some(ORG_B));
        assert_eq!(bodies(), "b1,b2");
        reset_role();
    }

    #[pg_test]
    fn a_filter_that_errors_on_foreign_rows_reveals_nothing() {
        app_table();
        as_role("t_app", Some(ORG_A));
        let got = outcome(&format!(
            "SELECT string_agg(body, ',' ORDER BY body) FROM public.conversations \
             WHERE CASE WHEN org_id = '{ORG_B}' THEN 1 / (length(body) - 2) ELSE 1 END = 1"
        ));
        assert_eq!(got, "a1,a2");
        let got = outcome(&format!(
            "SELECT count(*) FROM public.conversations WHERE org_id::text = '{ORG_B}' \
             AND CASE WHEN org_id::text = '{ORG_B}' THEN 1 / (length(body) - 2) ELSE 1 END = 1"
        ));
        assert_eq!(got, "0");
        reset_role();
    }

    #[pg_test]
    fn a_view_over_an_isolated_table_stays_isolated_and_is_reported() {
        app_table();
        as_role("t_owner", None);
        run("CREATE VIEW public.all_conversations AS SELECT * FROM public.conversations");
        run("GRANT SELECT ON public.all_conversations TO t_app");
        reset_role();
        as_role("t_app", Some(ORG_A));
        let got = text("SELECT string_agg(body, ',' ORDER BY body) FROM public.all_conversations");
        assert_eq!(got.as_deref(), Some("a1,a2"));
        reset_role();
        let problems = text(
            "SELECT array_to_string(problems, '; ') FROM cortex_vault.isolation_report() \
             WHERE table_name = 'public.conversations'::regclass",
        );
        assert_eq!(
            problems.as_deref(),
            Some("view public.all_conversations reads it with its owner's rights")
        );
    }

    #[pg_test]
    fn temporary_objects_cannot_stand_in_for_the_vault() {
        app_table();
        let id = create(ORG_A, "key", "sk-ant-api03-temp-shadow", None);
        as_role("t_reader", Some(ORG_A));
        run("CREATE TEMP TABLE secrets (org_id uuid, id uuid)");
        run("CREATE TEMP TABLE org_keys (org_id uuid)");
        run("CREATE FUNCTION pg_temp.current_org_id() RETURNS uuid LANGUAGE sql \
             AS $$ SELECT '0b0b0b0b-0000-4000-8000-00000000000b'::uuid $$");
        run("SET LOCAL search_path = pg_temp, public");
        let got = outcome(&format!("SELECT cortex_vault.read_secret('{id}')"));
        assert_eq!(got, "sk-ant-api03-temp-shadow");
        reset_role();
        as_role("t_app", Some(ORG_A));
        run("SET LOCAL search_path = pg_temp, public");
        assert_eq!(bodies(), "a1,a2");
        reset_role();
    }

    #[pg_test]
    fn deployment_isolation_narrows_within_the_organization() {
        app_table();
        as_role("t_owner", None);
        run("SELECT cortex_vault.enable_deployment_isolation('public.conversations')");
        reset_role();
        as_role("t_app", Some(ORG_A));
        context(Some(ORG_A), Some("agent-a"));
        assert_eq!(bodies(), "a1,a2");
        context(Some(ORG_A), Some("agent-z"));
        assert_eq!(bodies(), "a2", "another deployment sees organization-wide rows only");
        let got = outcome(&format!(
            "INSERT INTO public.conversations (org_id, deployment_id, body) \
             VALUES ('{ORG_A}', 'agent-a', 'forged')"
        ));
        assert!(
            got.starts_with("ERROR 42501: new row violates row-level security policy"),
            "{got}"
        );
        context(Some(ORG_A), None);
        assert_eq!(bodies(), "a1,a2", "the organization-wide context sees every deployment");
        reset_role();
    }

    #[pg_test]
    fn helpers_are_idempotent_refuse_wrong_types_and_undo_exactly() {
        app_table();
        as_role("t_owner", None);
        run("SELECT cortex_vault.enable_org_isolation('public.conversations')");
        let policies = text(
            "SELECT string_agg(polname, ',' ORDER BY polname) FROM pg_policy \
             WHERE polrelid = 'public.conversations'::regclass",
        );
        assert_eq!(policies.as_deref(), Some("cortex_vault_org"));
        let got =
            outcome("SELECT cortex_vault.enable_org_isolation('public.conversations', 'body')");
        assert_eq!(
            got,
            "ERROR 42804: column \"body\" of public.conversations has type text, not uuid"
        );
        let got =
            outcome("SELECT cortex_vault.enable_org_isolation('public.conversations', 'nope')");
        assert_eq!(got, "ERROR 42703: column \"nope\" of public.conversations does not exist");
        run("SELECT cortex_vault.enable_deployment_isolation('public.conversations')");
        run("SELECT cortex_vault.disable_org_isolation('public.conversations')");
        run("SELECT cortex_vault.disable_org_isolation('public.conversations')");
        let state = text(
            "SELECT relrowsecurity::text || relforcerowsecurity::text || \
             (SELECT count(*) FROM pg_policy WHERE polrelid = c.oid)::text \
             FROM pg_class c WHERE oid = 'public.conversations'::regclass",
        );
        assert_eq!(state.as_deref(), Some("falsefalse0"));
        reset_role();
        // Only an administrator may call the helpers.
        as_role("t_app", None);
        let got = outcome("SELECT cortex_vault.enable_org_isolation('public.conversations')");
        assert!(got.starts_with("ERROR 42501: permission denied for function"), "{got}");
        reset_role();
    }

    #[pg_test]
    fn report_names_what_is_wrong() {
        app_table();
        run("CREATE TABLE public.memory (org_id uuid, fact text)");
        run("CREATE POLICY open_door ON public.conversations FOR SELECT USING (true)");
        let report = text(
            "SELECT string_agg(table_name::text || ':' || array_to_string(problems, '|'), ' / ' \
             ORDER BY table_name::text) FROM cortex_vault.isolation_report()",
        )
        .unwrap();
        assert_eq!(
            report,
            "conversations:permissive policy \"open_door\" widens access beyond the organization / \
             memory:row-level security is disabled|row-level security is not forced, so the \
             owner bypasses it|no cortex_vault organization policy|no index leads with column \"org_id\""
        );
    }

    #[pg_test]
    fn policies_use_the_org_index_on_100k_rows() {
        app_table();
        run("CREATE TABLE public.big (org_id uuid NOT NULL, n int)");
        run("INSERT INTO public.big SELECT (lpad((i % 100)::text, 8, '0') || '-0000-4000-8000-000000000000')::uuid, i \
             FROM generate_series(1, 100000) i");
        run("CREATE INDEX big_org_idx ON public.big (org_id)");
        run("SELECT cortex_vault.enable_org_isolation('public.big')");
        run("GRANT SELECT ON public.big TO t_app");
        run("ANALYZE public.big");
        as_role("t_app", Some("00000007-0000-4000-8000-000000000000"));
        let plan = text("EXPLAIN (COSTS OFF) SELECT count(*) FROM public.big").unwrap_or_default();
        let plan = Spi::connect(|c| {
            c.select("EXPLAIN (COSTS OFF) SELECT sum(n) FROM public.big", None, &[])
                .unwrap()
                .map(|r| r.get::<String>(1).unwrap().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        }) + &plan;
        assert!(plan.contains("big_org_idx"), "{plan}");
        assert!(plan.contains("InitPlan"), "the context is evaluated once: {plan}");
        assert!(!plan.contains("Seq Scan"), "{plan}");
        let n = Spi::get_one::<i64>("SELECT count(*) FROM public.big");
        assert_eq!(n, Ok(Some(1000)));
        reset_role();
    }

    #[pg_test]
    fn audited_table_changes_reach_the_trail() {
        app_table();
        as_role("t_owner", None);
        run("SELECT cortex_vault.enable_audit('public.conversations')");
        reset_role();
        as_role("t_app", Some(ORG_A));
        run("SET LOCAL cortex_vault.actor = 'bob@acme.example'");
        run(&format!("INSERT INTO public.conversations (org_id, body) VALUES ('{ORG_A}', 'a3')"));
        run("UPDATE public.conversations SET body = 'a3b' WHERE body = 'a3'");
        run("DELETE FROM public.conversations WHERE body = 'a3b'");
        as_role("t_auditor", Some(ORG_A));
        let rows = text(
            "SELECT string_agg(operation || ':' || table_name || ':' || db_user || ':' || actor, ',' \
             ORDER BY id) FROM cortex_vault.audit_log WHERE table_name IS NOT NULL",
        );
        let expected = ["insert", "update", "delete"]
            .map(|op| format!("{op}:public.conversations:t_app:bob@acme.example"))
            .join(",");
        assert_eq!(rows, Some(expected));
        context(Some(ORG_B), None);
        let n = Spi::get_one::<i64>(
            "SELECT count(*) FROM cortex_vault.audit_log WHERE table_name IS NOT NULL",
        );
        assert_eq!(n, Ok(Some(0)));
        // The trigger function cannot be called to forge a row.
        let got = outcome("SELECT cortex_vault._audit_row_change()");
        assert!(got.starts_with("ERROR 42501") || got.starts_with("ERROR 0A000"), "{got}");
        reset_role();
    }

    #[pg_test]
    fn audit_trigger_pins_search_path_and_gives_the_callers_back() {
        app_table();
        as_role("t_owner", None);
        run("SELECT cortex_vault.enable_audit('public.conversations')");
        reset_role();
        as_role("t_app", Some(ORG_A));
        run("CREATE TEMP TABLE audit_log (org_id uuid)");
        run("SET LOCAL search_path = pg_temp, public");
        run(&format!("INSERT INTO public.conversations (org_id, body) VALUES ('{ORG_A}', 'a9')"));
        let path = text("SELECT current_setting('search_path')");
        assert_eq!(path.as_deref(), Some("pg_temp, public"));
        let temp_rows = Spi::get_one::<i64>("SELECT count(*) FROM pg_temp.audit_log");
        assert_eq!(temp_rows, Ok(Some(0)));
        reset_role();
        let n = Spi::get_one::<i64>(
            "SELECT count(*) FROM cortex_vault.audit_log WHERE operation = 'insert' AND db_user = 't_app'",
        );
        assert_eq!(n, Ok(Some(1)));
    }

    #[pg_test]
    fn export_returns_only_the_organizations_rows() {
        app_table();
        run("GRANT SELECT ON public.conversations TO t_writer");
        as_role("t_writer", Some(ORG_A));
        let doc = text("SELECT cortex_vault.export_org_data()::text").unwrap();
        assert!(doc.contains("\"a1\"") && doc.contains("\"a2\""), "{doc}");
        assert!(!doc.contains("\"b1\"") && !doc.contains(ORG_B), "{doc}");
        assert!(doc.contains("\"public.conversations\""), "{doc}");
        run("RESET cortex_vault.org_id");
        context(None, None);
        let got = outcome("SELECT cortex_vault.export_org_data()");
        assert_eq!(got, "ERROR 42501: no organization context is set");
        reset_role();
    }

    #[pg_test]
    fn truncate_is_refused_on_an_isolated_table() {
        app_table();
        run("GRANT TRUNCATE ON public.conversations TO t_app");
        as_role("t_app", Some(ORG_A));
        let got = outcome("TRUNCATE public.conversations");
        assert_eq!(got, "ERROR 42501: truncate is refused on an isolated table");
        reset_role();
        as_role("t_app", Some(ORG_B));
        assert_eq!(bodies(), "b1,b2");
        reset_role();
    }

    #[pg_test]
    fn partitions_and_children_are_isolated_and_late_ones_reported() {
        app_table();
        run("CREATE TABLE public.mem (tenant uuid NOT NULL, k text, v text) PARTITION BY LIST (k)");
        run("CREATE TABLE public.mem_a PARTITION OF public.mem FOR VALUES IN ('a')");
        run("CREATE INDEX ON public.mem (tenant)");
        run(&format!(
            "INSERT INTO public.mem VALUES ('{ORG_A}', 'a', 'va'), ('{ORG_B}', 'a', 'vb')"
        ));
        run("SELECT cortex_vault.enable_org_isolation('public.mem', 'tenant')");
        run("GRANT SELECT ON public.mem, public.mem_a TO t_app");
        as_role("t_app", Some(ORG_A));
        let direct = text("SELECT string_agg(v, ',') FROM public.mem_a");
        assert_eq!(direct.as_deref(), Some("va"), "a partition read directly stays isolated");
        reset_role();
        run("CREATE TABLE public.mem_b PARTITION OF public.mem FOR VALUES IN ('b')");
        let problems = text(
            "SELECT array_to_string(problems, '|') FROM cortex_vault.isolation_report() \
             WHERE table_name = 'public.mem_b'::regclass",
        )
        .unwrap();
        assert!(
            problems.starts_with("it is a partition or child of an isolated table"),
            "{problems}"
        );
    }

    #[pg_test]
    fn report_sees_changed_policies_leaky_indexes_and_disabled_triggers() {
        app_table();
        run("CREATE INDEX conversations_body_idx ON public.conversations (body)");
        run("ALTER POLICY cortex_vault_org ON public.conversations USING (true) WITH CHECK (true)");
        as_role("t_owner", None);
        run("SELECT cortex_vault.enable_audit('public.conversations')");
        reset_role();
        run("ALTER TABLE public.conversations DISABLE TRIGGER cortex_vault_audit");
        let problems = text(
            "SELECT array_to_string(problems, '|') FROM cortex_vault.isolation_report() \
             WHERE table_name = 'public.conversations'::regclass",
        )
        .unwrap();
        for expected in [
            "policy cortex_vault_org was changed after enable_org_isolation()",
            "audit trigger cortex_vault_audit is disabled",
            "index public.conversations_body_idx does not lead with column \"org_id\"",
        ] {
            assert!(problems.contains(expected), "{expected} in {problems}");
        }
    }

    #[pg_test]
    fn audit_needs_isolation_first() {
        app_table();
        run("CREATE TABLE public.loose (org_id uuid, x int)");
        let got = outcome("SELECT cortex_vault.enable_audit('public.loose')");
        assert_eq!(got, "ERROR 55000: public.loose is not under organization isolation");
    }
}
