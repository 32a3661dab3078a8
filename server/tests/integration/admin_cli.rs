//! Every `wag admin` command, run as the real binary against the test database while the
//! server runs, including the error cases.
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{spawn_app, Backend, PASSWORD};

on_every_database!(
    admin_commands_and_their_errors,
    users_are_listed_and_roles_change,
    a_disabled_account_is_refused_everywhere,
    a_reset_link_works_once_within_the_hour_and_ends_sessions
);

/// `disable-user`: the account's API key answers 401 `account_disabled` (within the cache's
/// follow interval), its open portal session ends, and signing in says why, but only after the
/// right password; `enable-user` undoes it. Both are in the audit log.
async fn a_disabled_account_is_refused_everywhere(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let email = "shop@example.com";
    assert!(app.wag(&["admin", "create-user", "--email", email, "--password", PASSWORD]).success);
    let key = app.wag(&["admin", "create-api-key", "--email", email, "--name", "ERP"]).last_line();
    let browser = app.browser();
    browser.login(email, PASSWORD).await;
    assert_eq!(browser.get("/dashboard").await.status, StatusCode::OK);
    let events = |key: String| {
        let api = app.api();
        let url = app.url("/api/events");
        async move { api.get(url).bearer_auth(key).send().await.unwrap() }
    };
    assert_eq!(events(key.clone()).await.status(), StatusCode::OK);

    let disabled = app.wag(&["admin", "disable-user", "--email", email]);
    assert!(disabled.success && disabled.stdout.contains("disabled"), "{disabled:?}");
    // Servers follow the change counter; on a loaded machine that can take a moment.
    let mut refused = events(key.clone()).await;
    for _ in 0..50 {
        if refused.status() == StatusCode::UNAUTHORIZED {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        refused = events(key.clone()).await;
    }
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "account_disabled");
    assert!(body["message"].as_str().unwrap().contains("disabled"));
    let page = browser.get("/dashboard").await;
    assert!(page.status.is_redirection(), "the open session ended: {}", page.status);
    let wrong = app.browser().login(email, "not the password at all").await;
    assert!(!format!("{}{}", wrong.body, wrong.location.unwrap_or_default()).contains("disabled"));
    let again = app.browser();
    let posted = again.login(email, PASSWORD).await;
    let shown = match posted.location {
        Some(to) => again.get(to.trim_start_matches(&app.base)).await.body,
        None => posted.body,
    };
    assert!(shown.contains("This account is disabled"), "sign-in says why");
    assert_ne!(again.get("/dashboard").await.status, StatusCode::OK);

    assert!(app.wag(&["admin", "enable-user", "--email", email]).success);
    let mut back_in = events(key.clone()).await.status();
    for _ in 0..50 {
        if back_in == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        back_in = events(key.clone()).await.status();
    }
    assert_eq!(back_in, StatusCode::OK);
    let back = app.browser();
    back.login(email, PASSWORD).await;
    assert_eq!(back.get("/dashboard").await.status, StatusCode::OK);
    let log = app.wag(&["admin", "audit-log", "--email", email, "--json"]);
    let rows: Value = serde_json::from_str(log.stdout.trim()).unwrap();
    let actions: Vec<&str> = rows.as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(&actions[..2], ["enable_user", "disable_user"]);
    app.finish().await;
}

/// `list-users` (text and JSON) and `set-role`: a customer made an operator sees /admin at once,
/// and loses it again when made a customer.
async fn users_are_listed_and_roles_change(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let email = "desk@example.com";
    assert!(app.wag(&["admin", "create-user", "--email", email, "--password", PASSWORD, "--plan", "growth"]).success);
    assert!(
        app.wag(&["admin", "create-user", "--email", "ops@example.com", "--password", PASSWORD, "--admin"]).success
    );
    let listed = app.wag(&["admin", "list-users", "--json"]);
    assert!(listed.success, "{listed:?}");
    let users: Value = serde_json::from_str(listed.stdout.trim()).unwrap();
    let users = users.as_array().unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["email"], email);
    assert_eq!(users[0]["role"], "customer");
    assert_eq!(users[0]["plan"], "growth");
    assert_eq!(users[0]["daily_limit"], 500);
    assert_eq!(users[1]["role"], "admin");
    assert!(users.iter().all(|u| u.get("password_hash").is_none()), "no secret is listed");
    let text = app.wag(&["admin", "list-users"]);
    assert_eq!(text.stdout.lines().count(), 2);
    assert!(text.stdout.lines().next().unwrap().contains(email));

    let browser = app.browser();
    browser.login(email, PASSWORD).await;
    assert_eq!(browser.get("/admin").await.status, StatusCode::NOT_FOUND);
    let made = app.wag(&["admin", "set-role", "--email", email, "--role", "admin"]);
    assert!(made.success && made.stdout.contains("now admin"), "{made:?}");
    assert_eq!(browser.get("/admin").await.status, StatusCode::OK, "the role counts from the next page");
    assert!(app.wag(&["admin", "set-role", "--email", email, "--role", "customer"]).success);
    assert_eq!(browser.get("/admin").await.status, StatusCode::NOT_FOUND);
    let bad = app.wag(&["admin", "set-role", "--email", email, "--role", "root"]);
    assert!(!bad.success && bad.stderr.contains("Unknown role"), "{bad:?}");
    let nobody = app.wag(&["admin", "set-role", "--email", "nobody@example.com", "--role", "admin"]);
    assert!(!nobody.success);

    // Every one of those actions is in the audit log, newest first, as "cli"; failed ones are not.
    assert!(app.wag(&["admin", "set-plan", "--email", email, "--plan", "scale", "--daily-limit", "900"]).success);
    let log = app.wag(&["admin", "audit-log", "--email", email, "--json"]);
    assert!(log.success, "{log:?}");
    let rows: Value = serde_json::from_str(log.stdout.trim()).unwrap();
    let rows = rows.as_array().unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["set_plan", "set_role", "set_role", "create_user"]);
    assert!(rows.iter().all(|r| r["actor"] == "cli" && r["account_id"] == users[0]["id"]));
    assert_eq!(rows[0]["before"], "growth (500/day, 10000/month)");
    assert_eq!(rows[0]["after"], "scale (900/day, 30000/month)");
    assert_eq!((rows[1]["before"].as_str(), rows[1]["after"].as_str()), (Some("admin"), Some("customer")));
    let all = app.wag(&["admin", "audit-log"]);
    assert_eq!(all.stdout.lines().count(), 5, "both accounts' rows: {}", all.stdout);
    app.finish().await;
}

async fn admin_commands_and_their_errors(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let email = "ops@example.com";

    let created =
        app.wag(&["admin", "create-user", "--email", email, "--password", PASSWORD, "--admin", "--plan", "growth"]);
    assert!(created.success, "{created:?}");
    assert!(created.stdout.contains("admin"));
    let fails = |args: &[&str], needle: &str| {
        let out = app.wag(args);
        assert!(!out.success, "{args:?} should fail");
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.trim().lines().count(), 1, "one-line error: {}", out.stderr);
    };
    fails(&["admin", "create-user", "--email", email, "--password", PASSWORD], "already exists");
    fails(
        &["admin", "create-user", "--email", "x@example.com", "--password", PASSWORD, "--plan", "gold"],
        "Unknown plan",
    );
    fails(&["admin", "create-user", "--email", "x@example.com", "--password", "short"], "at least 10");
    fails(&["admin", "create-user", "--email", "not-an-email", "--password", PASSWORD], "valid email");

    // The account works in the portal at once.
    let browser = app.browser();
    browser.login(email, PASSWORD).await;
    let dashboard = browser.get("/dashboard").await;
    assert!(dashboard.body.contains("Growth") && dashboard.body.contains("0 / 500"), "plan shown");

    let plan = app.wag(&["admin", "set-plan", "--email", email, "--plan", "starter", "--daily-limit", "250"]);
    assert!(plan.success, "{plan:?}");
    assert!(browser.get("/dashboard").await.body.contains("0 / 250"), "the reviewed limit overrides the plan's");
    fails(&["admin", "set-plan", "--email", "nobody@example.com", "--plan", "starter"], "No account");
    fails(&["admin", "set-plan", "--email", email, "--plan", "platinum"], "Unknown plan");
    fails(&["admin", "set-plan", "--email", email, "--plan", "starter", "--daily-limit=-5"], "positive");
    let none = app.wag(&["admin", "set-plan", "--email", email, "--plan", "none"]);
    assert!(none.success);
    assert!(browser.get("/dashboard").await.body.contains("No active plan"));

    assert!(app.wag(&["admin", "set-module", "--email", email, "--module", "3cx", "--enabled", "true"]).success);
    fails(&["admin", "set-module", "--email", email, "--module", "fax", "--enabled", "true"], "Unknown module");
    fails(&["admin", "set-module", "--email", email, "--module", "api", "--enabled", "maybe"], "true or false");
    let account = gateway::accounts::find_by_email(&app.conn, email).await.unwrap().unwrap();
    assert!(account.threecx_enabled);

    let key_out = app.wag(&["admin", "create-api-key", "--email", email, "--name", "Billing"]);
    assert!(key_out.success, "{key_out:?}");
    let key = key_out.last_line();
    assert!(key.starts_with("wag_") && key.len() == 44, "the key alone on the last line: {key}");
    fails(&["admin", "create-api-key", "--email", "nobody@example.com", "--name", "x"], "No account");

    let instance_out = app.wag(&["admin", "create-instance", "--email", email, "--name", "CLI line"]);
    assert!(instance_out.success, "{instance_out:?}");
    let instance = instance_out.last_line();
    assert!(instance.starts_with("inst_"), "the id alone on the last line: {instance}");
    fails(
        &["admin", "create-instance", "--email", email, "--name", "x", "--connector", "carrier-pigeon"],
        "Unknown connector",
    );
    fails(&["admin", "create-instance", "--email", "nobody@example.com", "--name", "x"], "No account");

    // 3CX integrations need the module, an instance of the account and a well-formed allowlist.
    let tcx = |extra: &[&str]| {
        let mut args = vec!["admin", "create-3cx-integration", "--email", email, "--instance", instance.as_str()];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    fn as_refs(args: &[String]) -> Vec<&str> {
        args.iter().map(String::as_str).collect()
    }
    assert!(app.wag(&["admin", "set-module", "--email", email, "--module", "3cx", "--enabled", "false"]).success);
    fails(&as_refs(&tcx(&[])), "3CX Middleware is not enabled");
    assert!(app.wag(&["admin", "set-module", "--email", email, "--module", "3cx", "--enabled", "true"]).success);
    fails(&as_refs(&tcx(&["--ip-allowlist", "10.0.0.300"])), "is not an IP address");
    fails(&as_refs(&tcx(&["--hmac-secret", "short"])), "16 to 256");
    fails(
        &["admin", "create-3cx-integration", "--email", email, "--instance", "inst_01aaaaaaaaaaaaaaaaaaaaaaaa"],
        "No instance of this account",
    );
    let created = app.wag(&as_refs(&tcx(&[
        "--ip-allowlist",
        "203.0.113.0/24,2001:db8::/32",
        "--hmac-secret",
        "a-long-enough-hmac-secret",
    ])));
    assert!(created.success, "{created:?}");
    assert!(created.stdout.lines().any(|l| l.starts_with("integration_id=tcx_")));
    assert!(created.stdout.lines().any(|l| l.starts_with("secret=tcxs_")));
    fails(&as_refs(&tcx(&[])), "already has a 3CX integration");
    // An empty --hmac-secret generates one and prints it (else the integration could not be used).
    let second = app.wag(&["admin", "create-instance", "--email", email, "--name", "Second line"]).last_line();
    let generated =
        app.wag(&["admin", "create-3cx-integration", "--email", email, "--instance", &second, "--hmac-secret", ""]);
    assert!(generated.success, "{generated:?}");
    assert!(generated.stdout.lines().any(|l| l.starts_with("hmac_secret=tcxh_")), "{}", generated.stdout);
    assert!(!created.stdout.contains("hmac_secret="), "a given secret is not printed back");

    // The running server sees the CLI's instance and key at once.
    let call = || {
        app.api().post(app.url("/api/sandbox/link")).bearer_auth(&key).json(&json!({"instance_id": instance})).send()
    };
    let linked = call().await.unwrap();
    assert_eq!(linked.status(), StatusCode::OK);
    assert_eq!(linked.json::<Value>().await.unwrap()["status"], "connected");

    // A revocation by the CLI (another process) reaches the running server within a second,
    // although the server keeps keys in memory.
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wag"));
    command
        .envs(app.extra_env.iter().cloned())
        .env("WAG_DATABASE_URL", &app.db.url)
        .env("WAG_DATA_DIR", &app.db.data_dir);
    let revoked = command.args(["admin", "revoke-api-key", "--key", &key]).output().unwrap();
    assert!(revoked.status.success(), "{revoked:?}");
    let since = std::time::Instant::now();
    loop {
        let answer = call().await.unwrap().json::<Value>().await.unwrap();
        if answer["error"] == "revoked_api_key" {
            break;
        }
        assert!(since.elapsed() < std::time::Duration::from_secs(1), "still accepted a second after revocation");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    fails(&["admin", "revoke-api-key", "--key", "wag_nothing"], "No API key");

    // Secrets can come on standard input instead of the command line (out of `ps` and history).
    let piped = "piped@example.com";
    let created = app.wag_with_input(&["admin", "create-user", "--email", piped], Some(&format!("{PASSWORD}\n")));
    assert!(created.success, "{created:?}");
    assert!(!created.stdout.contains(PASSWORD) && !created.stderr.contains(PASSWORD), "the password is not echoed");
    let piped_browser = app.browser();
    piped_browser.login(piped, PASSWORD).await;
    assert_eq!(piped_browser.get("/dashboard").await.status, StatusCode::OK, "the piped password signs in");
    let missing = app.wag_with_input(&["admin", "create-user", "--email", "nopass@example.com"], Some(""));
    assert!(!missing.success && missing.stderr.contains("--password"), "{missing:?}");
    let piped_key = app.wag(&["admin", "create-api-key", "--email", piped, "--name", "Piped"]).last_line();
    let revoked = app.wag_with_input(&["admin", "revoke-api-key"], Some(&format!("{piped_key}\r\n")));
    assert!(revoked.success, "{revoked:?}");
    assert!(!revoked.stdout.contains(&piped_key), "the key is not echoed");

    // Bad configuration is refused with the variable's name.
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wag"));
    let out =
        command.args(["migrate"]).env("WAG_LOG_FORMAT", "xml").env("WAG_DATA_DIR", &app.db.data_dir).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("WAG_LOG_FORMAT"));
    app.finish().await;
}

/// `reset-password` prints a link; using it sets the password and ends the account's other
/// sessions; a refused password spends nothing; a used or expired link is refused.
async fn a_reset_link_works_once_within_the_hour_and_ends_sessions(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let email = "forgetful@example.com";
    assert!(app.wag(&["admin", "create-user", "--email", email, "--password", PASSWORD]).success);
    let signed_in = app.browser();
    signed_in.login(email, PASSWORD).await;
    assert_eq!(signed_in.get("/dashboard").await.status, StatusCode::OK);

    let link = |app: &crate::common::TestApp| {
        let out = app.wag(&["admin", "reset-password", "--email", email]);
        assert!(out.success, "{out:?}");
        let url = out.last_line();
        assert!(url.contains("/reset-password?token="), "{url}");
        let (_, path) = url.split_at(url.find("/reset-password").unwrap());
        let token = path.split("token=").nth(1).unwrap().to_string();
        (path.to_string(), token)
    };
    let (path, token) = link(&app);
    let visitor = app.browser();
    let page = visitor.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("New password"), "{}", page.body);

    // Too short: refused, and the link still works.
    let short = visitor.submit(&path, "/_fn/reset-password", &[("token", &token), ("password", "short")]).await;
    assert!(short.location.as_deref().unwrap_or_default().contains("/reset-password?token="), "{:?}", short.location);
    let new_password = "a brand new long password";
    let done = visitor.submit(&path, "/_fn/reset-password", &[("token", &token), ("password", new_password)]).await;
    assert!(done.location.as_deref().unwrap_or_default().ends_with("/login"), "{:?}", done.location);

    // Every earlier session ended; the new password works, the old one not.
    assert!(signed_in.get("/dashboard").await.status.is_redirection());
    let fresh = app.browser();
    fresh.login(email, new_password).await;
    assert_eq!(fresh.get("/dashboard").await.status, StatusCode::OK);
    let old = app.browser();
    old.login(email, PASSWORD).await;
    assert_ne!(old.get("/dashboard").await.status, StatusCode::OK);

    // Used once: the page says so and a post is refused.
    assert!(visitor.get(&path).await.body.contains("not valid any more"));
    let fields = [("token", token.as_str()), ("password", "yet another long password")];
    let again = visitor.post_raw(&path, "/_fn/reset-password", &fields).await;
    assert!(!again.location.as_deref().unwrap_or_default().ends_with("/login"));
    let fresh_again = app.browser();
    fresh_again.login(email, "yet another long password").await;
    assert_ne!(fresh_again.get("/dashboard").await.status, StatusCode::OK, "a spent link changed nothing");

    // An hour later a link is spent too.
    let (path, token) = link(&app);
    use sea_orm::{ConnectionTrait, Statement};
    let sql = "UPDATE password_resets SET expires_at = expires_at - 3601 WHERE used_at IS NULL";
    app.conn.execute_raw(Statement::from_string(app.conn.get_database_backend(), sql)).await.unwrap();
    assert!(app.browser().get(&path).await.body.contains("not valid any more"));
    let late = app.browser();
    let fields = [("token", token.as_str()), ("password", "too late a long password")];
    late.post_raw(&path, "/_fn/reset-password", &fields).await;
    let check = app.browser();
    check.login(email, "too late a long password").await;
    assert_ne!(check.get("/dashboard").await.status, StatusCode::OK);
    let log = app.wag(&["admin", "audit-log", "--email", email]);
    assert!(log.stdout.contains("reset_password_link") && !log.stdout.contains(&token), "no token in the log");
    app.finish().await;
}
