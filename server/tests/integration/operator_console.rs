//! The operator console from the browser: accounts (search, plan and limits, modules, disable,
//! reset links), limit requests end to end, the review queue and instances across tenants, the
//! audit log; and a customer getting the unknown page's 404 on every /admin path and nothing
//! from every operator server function.
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{spawn_app, unique_email, Backend, Browser, TestApp, PASSWORD};

on_every_database!(
    customers_get_nothing_from_the_operator_console,
    operators_manage_accounts_from_the_browser,
    limit_requests_go_from_the_dashboard_to_an_operator_and_back,
    operators_review_paused_instances_across_tenants
);

/// Every operator page.
const PAGES: [&str; 8] = [
    "/admin",
    "/admin/accounts",
    "/admin/accounts/1",
    "/admin/accounts/not-a-number",
    "/admin/reviews",
    "/admin/limit-requests",
    "/admin/instances",
    "/admin/audit",
];

async fn operator(app: &TestApp) -> (Browser, String) {
    let email = unique_email("operator");
    let made = app.wag_with_input(&["admin", "create-user", "--email", &email, "--admin"], Some(PASSWORD));
    assert!(made.success, "{}", made.stderr);
    let browser = app.browser();
    browser.login(&email, PASSWORD).await;
    (browser, email)
}

/// The account as `wag admin list-users --json` shows it.
fn account(app: &TestApp, email: &str) -> Value {
    let listed = app.wag(&["admin", "list-users", "--json"]);
    let all: Value = serde_json::from_str(listed.stdout.trim()).expect("list-users JSON");
    all.as_array().unwrap().iter().find(|a| a["email"] == email).cloned().unwrap_or_else(|| panic!("no {email}"))
}

fn audit_actions(app: &TestApp, email: &str) -> Vec<(String, String)> {
    let log = app.wag(&["admin", "audit-log", "--email", email, "--json"]);
    let rows: Value = serde_json::from_str(log.stdout.trim()).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| (r["action"].as_str().unwrap().to_string(), r["actor"].as_str().unwrap().to_string()))
        .collect()
}

/// The page text without Leptos's hydration markers.
fn text(body: &str) -> String {
    body.replace("<!-- -->", "")
}

async fn linked_sandbox(app: &TestApp, customer: &Browser, name: &str) -> (String, String) {
    let key = customer.create_api_key(&format!("{name} key")).await;
    let instance = customer.create_instance(name).await;
    let linked = app
        .api()
        .post(app.url("/api/sandbox/link"))
        .bearer_auth(&key)
        .json(&json!({"instance_id": instance}))
        .send()
        .await
        .unwrap();
    assert_eq!(linked.status(), StatusCode::OK);
    (key, instance)
}

async fn send(app: &TestApp, key: &str, instance: &str, message: &str) -> (StatusCode, Value) {
    let body = json!({
        "instance_id": instance,
        "phone": "+966501234567",
        "message": message,
        "message_purpose": "transactional",
    });
    let sent = app.api().post(app.url("/api/send-message")).bearer_auth(key).json(&body).send().await.unwrap();
    let status = sent.status();
    (status, sent.json().await.unwrap_or(Value::Null))
}

async fn customers_get_nothing_from_the_operator_console(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let email = unique_email("tenant");
    let customer = app.browser();
    customer.signup(&email, PASSWORD).await;
    let instance = customer.create_instance("Front desk").await;
    let other = unique_email("neighbour");
    app.browser().signup(&other, PASSWORD).await;
    let (mine, theirs) = (account(&app, &email), account(&app, &other));
    let (my_id, their_id) = (mine["id"].to_string(), theirs["id"].to_string());
    // A request of the customer's own, for the decide function to try.
    let asked = customer
        .submit(
            "/dashboard",
            "/_fn/limit-request",
            &[
                ("daily_limit", "900"),
                ("monthly_limit", "9000"),
                ("use_case", "Order updates for the shop's buyers"),
                ("expected_volume", "about 500 a day"),
            ],
        )
        .await;
    assert!(asked.status.is_redirection(), "{}", asked.status);

    let unknown = customer.get("/no-such-page").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    for path in PAGES.iter().copied().chain([format!("/admin/accounts/{their_id}").as_str()]) {
        let page = customer.get(path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(page.body.contains("Page not found."), "{path}");
        assert!(!page.body.contains(&other), "{path} shows nothing of another account");
        assert!(!page.body.contains("Audit log") && !page.body.contains("Operator overview"), "{path}");
    }

    // Reads answer nothing.
    for (function, form) in [
        ("/_fn/admin_overview", vec![]),
        ("/_fn/admin/accounts", vec![("query", "")]),
        ("/_fn/admin/account", vec![("id", their_id.as_str())]),
        ("/_fn/admin/audit", vec![]),
        ("/_fn/admin/limit-requests", vec![("status", "pending")]),
        ("/_fn/admin/instances", vec![("state_filter", "")]),
        ("/_fn/admin/reviews", vec![]),
    ] {
        let called = customer.submit("/dashboard", function, &form).await;
        assert!(!called.body.contains(&other) && !called.body.contains("@example.com"), "{function}: {}", called.body);
        assert!(!called.status.is_success() || called.body.contains("Not found"), "{function}: {}", called.status);
    }
    // Actions change nothing.
    let actions: [(&str, Vec<(&str, &str)>); 9] = [
        ("/_fn/admin/account/role", vec![("id", &my_id), ("role", "admin")]),
        (
            "/_fn/admin/account/plan",
            vec![("id", &my_id), ("plan", "scale"), ("daily_limit", "99999"), ("monthly_limit", "")],
        ),
        ("/_fn/admin/account/modules", vec![("id", &my_id), ("api", "on"), ("threecx", "on")]),
        ("/_fn/admin/account/disabled", vec![("id", &their_id), ("disable", "true")]),
        ("/_fn/admin/account/reset-link", vec![("id", &their_id)]),
        ("/_fn/admin/instances/review", vec![("id", &instance), ("action", "pause"), ("note", "mine now")]),
        ("/_fn/admin/instances/review", vec![("id", &instance), ("action", "keep"), ("note", "x")]),
        (
            "/_fn/admin/limit-requests/decide",
            vec![("id", "1"), ("decision", "approve"), ("daily_limit", "900"), ("monthly_limit", "9000")],
        ),
        ("/_fn/admin/limit-requests/decide", vec![("id", "1"), ("decision", "decline"), ("note", "no")]),
    ];
    for (function, form) in &actions {
        let called = customer.submit("/dashboard", function, form).await;
        assert!(!called.body.contains("reset-password?token="), "{function}");
    }
    let (mine_after, theirs_after) = (account(&app, &email), account(&app, &other));
    assert_eq!(mine_after, mine, "the customer's own plan, limits and modules are unchanged");
    assert_eq!(theirs_after, theirs, "the other account is not disabled");
    assert!(app.wag(&["admin", "audit-log", "--json"]).stdout.trim() == "[]", "no operator action was recorded");
    assert!(app.wag(&["admin", "review-queue"]).stdout.contains("no instance is paused"));
    let dashboard = text(&customer.get("/dashboard").await.body);
    assert!(dashboard.contains("is waiting for an operator"), "the request is still waiting");
    app.finish().await;
}

async fn operators_manage_accounts_from_the_browser(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let email = unique_email("florist");
    let customer = app.browser();
    customer.signup(&email, PASSWORD).await;
    let key = customer.create_api_key("Shop").await;
    let id = account(&app, &email)["id"].to_string();
    let (op, op_email) = operator(&app).await;
    let op_id = account(&app, &op_email)["id"].to_string();

    // Search by a part of the email, wildcards taken literally.
    let part = &email[..12];
    let found = text(&op.get(&format!("/admin/accounts?q={part}")).await.body);
    assert!(found.contains(&format!(">{email}</a>")) && !found.contains(&format!(">{op_email}</a>")), "{found}");
    let none = text(&op.get("/admin/accounts?q=%25_").await.body);
    assert!(none.contains("No account matches."), "% and _ match themselves");
    let everyone = text(&op.get("/admin/accounts").await.body);
    assert!(everyone.contains(&format!(">{email}</a>")) && everyone.contains(&format!(">{op_email}</a>")));

    let page_path = format!("/admin/accounts/{id}");
    let page = op.get(&page_path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let body = text(&page.body);
    assert!(body.contains("Shop") && body.contains("Plan and reviewed limits"), "keys and actions are shown");
    assert_eq!(op.get("/admin/accounts/999999999").await.status, StatusCode::NOT_FOUND);

    // Plan and limits; a bad limit changes nothing.
    let bad = op
        .submit(
            &page_path,
            "/_fn/admin/account/plan",
            &[("id", &id), ("plan", "growth"), ("daily_limit", "-3"), ("monthly_limit", "")],
        )
        .await;
    assert_eq!(bad.location.as_deref(), Some(page_path.as_str()));
    assert!(text(&op.get(&page_path).await.body).contains("positive whole number"));
    let before = account(&app, &email);
    let set = [("id", id.as_str()), ("plan", "growth"), ("daily_limit", "1234"), ("monthly_limit", "")];
    op.submit(&page_path, "/_fn/admin/account/plan", &set).await;
    let after = account(&app, &email);
    assert_eq!(after["plan"], "growth");
    assert_eq!(after["daily_limit"], 1234);
    assert_ne!(before["daily_limit"], after["daily_limit"]);

    // Modules: 3CX on, API off (unchecked boxes are absent from the form).
    op.submit(&page_path, "/_fn/admin/account/modules", &[("id", &id), ("threecx", "on")]).await;
    let after = account(&app, &email);
    assert_eq!((after["api_enabled"].as_bool(), after["threecx_enabled"].as_bool()), (Some(false), Some(true)));
    op.submit(&page_path, "/_fn/admin/account/modules", &[("id", &id), ("api", "on"), ("threecx", "on")]).await;

    // Disable: the key is refused, the customer's session ends; enable brings both back.
    let own = op
        .submit(
            &format!("/admin/accounts/{op_id}"),
            "/_fn/admin/account/disabled",
            &[("id", &op_id), ("disable", "true")],
        )
        .await;
    assert!(own.status.is_redirection());
    assert_eq!(account(&app, &op_email)["role"], "admin");
    assert!(text(&op.get(&format!("/admin/accounts/{op_id}")).await.body).contains("cannot disable your own account"));
    op.submit(&page_path, "/_fn/admin/account/disabled", &[("id", &id), ("disable", "true")]).await;
    let events = || app.api().get(app.url("/api/events")).bearer_auth(&key).send();
    let mut status = events().await.unwrap().status();
    for _ in 0..50 {
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        status = events().await.unwrap().status();
    }
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a disabled account's key is refused");
    assert!(customer.get("/dashboard").await.status.is_redirection(), "its session ended");
    assert!(text(&op.get(&page_path).await.body).contains("This account is disabled"));
    op.submit(&page_path, "/_fn/admin/account/disabled", &[("id", &id), ("disable", "false")]).await;

    // Roles: an operator cannot demote themselves; another account can be made an operator.
    op.submit(&format!("/admin/accounts/{op_id}"), "/_fn/admin/account/role", &[("id", &op_id), ("role", "customer")])
        .await;
    assert_eq!(account(&app, &op_email)["role"], "admin");
    op.submit(&page_path, "/_fn/admin/account/role", &[("id", &id), ("role", "admin")]).await;
    assert_eq!(account(&app, &email)["role"], "admin");
    op.submit(&page_path, "/_fn/admin/account/role", &[("id", &id), ("role", "customer")]).await;
    assert_eq!(account(&app, &email)["role"], "customer");

    // A reset link, shown once, works for the customer.
    let made = op.submit(&page_path, "/_fn/admin/account/reset-link", &[("id", &id)]).await;
    assert_eq!(made.location.as_deref(), Some(page_path.as_str()));
    let shown = op.get(&page_path).await;
    let link = shown.secret("new-reset-link").expect("the link is shown once");
    assert!(op.get(&page_path).await.secret("new-reset-link").is_none(), "and only once");
    let path = &link[link.find("/reset-password").unwrap()..];
    let token = path.split("token=").nth(1).unwrap();
    let visitor = app.browser();
    let new_password = "a fresh and long password";
    let done = visitor.submit(path, "/_fn/reset-password", &[("token", token), ("password", new_password)]).await;
    assert!(done.location.as_deref().unwrap_or_default().ends_with("/login"), "{:?}", done.location);
    let back = app.browser();
    back.login(&email, new_password).await;
    assert_eq!(back.get("/dashboard").await.status, StatusCode::OK);

    // Every action is in the audit log under the operator's email, without the link's token.
    let actions = audit_actions(&app, &email);
    let names: Vec<&str> = actions.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        names,
        [
            "reset_password_link",
            "set_role",
            "set_role",
            "enable_user",
            "disable_user",
            "set_module",
            "set_module",
            "set_plan"
        ],
        "{actions:?}"
    );
    assert!(actions.iter().all(|(_, actor)| *actor == op_email));
    let log = app.wag(&["admin", "audit-log", "--json"]).stdout;
    assert!(!log.contains(token), "no token in the audit log");
    assert!(log.contains("growth (1234/day"), "before and after are recorded: {log}");
    let global = text(&op.get("/admin/audit").await.body);
    assert!(global.contains("set_plan") && global.contains(&op_email), "{global}");
    let on_account = text(&op.get(&page_path).await.body);
    assert!(on_account.contains("reset_password_link") && on_account.contains("disable_user"));
    app.finish().await;
}

async fn limit_requests_go_from_the_dashboard_to_an_operator_and_back(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let email = unique_email("clinic");
    let customer = app.browser();
    customer.signup(&email, PASSWORD).await;
    let dashboard = text(&customer.get("/dashboard").await.body);
    assert!(dashboard.contains("Request a higher reviewed limit"), "the form is on the dashboard: {dashboard}");
    let ask = |daily: &'static str, monthly: &'static str, use_case: &'static str| {
        let customer = &customer;
        async move {
            let fields = [
                ("daily_limit", daily),
                ("monthly_limit", monthly),
                ("use_case", use_case),
                ("expected_volume", "about 2,000 reminders a day"),
            ];
            customer.submit("/dashboard", "/_fn/limit-request", &fields).await;
            text(&customer.get("/dashboard").await.body)
        }
    };
    let use_case = "Appointment reminders and results-ready notices to our patients";
    // Refused forms keep what was typed and file nothing.
    let refused = ask("5000", "100", use_case).await;
    assert!(refused.contains("at least the daily limit"), "{refused}");
    assert!(refused.contains(use_case), "the form keeps its text");
    assert!(ask("many", "100000", use_case).await.contains("whole number"));
    assert!(ask("2500", "60000", "hi").await.contains("Describe the use case"));
    let (op, op_email) = operator(&app).await;
    assert!(text(&op.get("/admin/limit-requests").await.body).contains("No requests here."));

    let waiting = ask("2,500", "60000", use_case).await;
    assert!(waiting.contains("2500 a day, 60000 a month") && waiting.contains("waiting for an operator"), "{waiting}");
    assert!(!waiting.contains("Send the request"), "no second form while one waits");
    let twice = customer
        .submit(
            "/dashboard",
            "/_fn/limit-request",
            &[("daily_limit", "3000"), ("monthly_limit", "70000"), ("use_case", use_case), ("expected_volume", "more")],
        )
        .await;
    assert!(twice.status.is_redirection());
    assert!(text(&customer.get("/dashboard").await.body).contains("still waiting for review"));

    // The operator sees it, approves other values than asked.
    let queue = text(&op.get("/admin/limit-requests").await.body);
    assert!(
        queue.contains(&email) && queue.contains(use_case) && queue.contains("about 2,000 reminders a day"),
        "{queue}"
    );
    let request_id = {
        let marker = "name=\"id\" value=\"";
        let start = queue.find(marker).unwrap() + marker.len();
        queue[start..start + queue[start..].find('"').unwrap()].to_string()
    };
    let fields = [
        ("id", request_id.as_str()),
        ("decision", "approve"),
        ("daily_limit", "2000"),
        ("monthly_limit", "50000"),
        ("note", "Granted for reminders; ask again in December."),
    ];
    let approved = op.submit("/admin/limit-requests", "/_fn/admin/limit-requests/decide", &fields).await;
    assert_eq!(approved.location.as_deref(), Some("/admin/limit-requests"));
    assert!(text(&op.get("/admin/limit-requests").await.body).contains("limits are now 2000 a day"));
    let again = op.submit("/admin/limit-requests", "/_fn/admin/limit-requests/decide", &fields).await;
    assert!(again.status.is_redirection());
    assert!(text(&op.get("/admin/limit-requests").await.body).contains("already decided"));
    let limits = account(&app, &email);
    assert_eq!((limits["daily_limit"].as_i64(), limits["monthly_limit"].as_i64()), (Some(2000), Some(50000)));
    let outcome = text(&customer.get("/dashboard").await.body);
    assert!(outcome.contains("Approved") && outcome.contains("2000 a day and 50000 a month"), "{outcome}");
    assert!(outcome.contains("ask again in December") && outcome.contains(" / 2000<"), "the usage meter shows it");
    let decided = text(&op.get("/admin/limit-requests?status=approved").await.body);
    assert!(decided.contains("approved: 2000/day, 50000/month") && decided.contains(&op_email));

    // A second request, declined with a reason the customer reads.
    ask("9000", "200000", use_case).await;
    let queue = text(&op.get("/admin/limit-requests").await.body);
    let marker = "name=\"id\" value=\"";
    let start = queue.find(marker).unwrap() + marker.len();
    let second = queue[start..start + queue[start..].find('"').unwrap()].to_string();
    assert_ne!(second, request_id);
    let no_reason = [("id", second.as_str()), ("decision", "decline"), ("note", "  ")];
    op.submit("/admin/limit-requests", "/_fn/admin/limit-requests/decide", &no_reason).await;
    assert!(text(&op.get("/admin/limit-requests").await.body).contains("Give the customer a reason"));
    let reason = "Volume above what the use case needs.";
    let decline = [("id", second.as_str()), ("decision", "decline"), ("note", reason)];
    op.submit("/admin/limit-requests", "/_fn/admin/limit-requests/decide", &decline).await;
    let outcome = text(&customer.get("/dashboard").await.body);
    assert!(outcome.contains("Declined") && outcome.contains(reason), "{outcome}");
    assert!(outcome.contains("Send the request"), "a new request can be made");
    assert_eq!(account(&app, &email)["daily_limit"], 2000, "a decline changes no limit");
    let actions = audit_actions(&app, &email);
    let names: Vec<&str> = actions.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(names, ["decide_limit_request", "set_limits", "decide_limit_request"], "{actions:?}");
    app.finish().await;
}

async fn operators_review_paused_instances_across_tenants(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let customer = app.browser();
    let email = unique_email("dealer");
    customer.signup(&email, PASSWORD).await;
    let (key, instance) = linked_sandbox(&app, &customer, "Showroom").await;
    let (status, _) = send(&app, &key, &instance, "Your service appointment is confirmed for Monday at 10:00.").await;
    assert_eq!(status, StatusCode::OK);
    let pitch = "HUGE SALE this weekend only! 50% off every car, use promo code SAVE50, limited offer, buy now!";
    let (status, refused) = send(&app, &key, &instance, pitch).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let other = app.browser();
    other.signup(&unique_email("bakery"), PASSWORD).await;
    let other_instance = other.create_instance("Counter").await;
    let (op, op_email) = operator(&app).await;

    // Every tenant's instances; states filter.
    let all = text(&op.get("/admin/instances").await.body);
    assert!(all.contains(&instance) && all.contains(&other_instance) && all.contains(&email), "{all}");
    assert!(all.contains("0 of the last 1 failed (0 %)") && all.contains("no sends yet"), "{all}");
    let connected = text(&op.get("/admin/instances?state=connected").await.body);
    assert!(connected.contains(&instance) && !connected.contains(&other_instance));
    assert!(text(&op.get("/admin/reviews").await.body).contains("Nothing waits for review."));

    // Pause with a reason: the customer's sends answer 423 and the queue shows the blocks. A
    // reason too long for the customer's banner changes nothing.
    let long = "x".repeat(256);
    let too_long =
        [("id", instance.as_str()), ("action", "pause"), ("note", long.as_str()), ("back", "/admin/instances")];
    op.submit("/admin/instances", "/_fn/admin/instances/review", &too_long).await;
    assert!(text(&op.get("/admin/instances").await.body).contains("Keep a reason under 255 characters."));
    assert!(app.wag(&["admin", "review-queue"]).stdout.contains("no instance is paused"));
    let reason = "Promotional content sent as transactional";
    let pause = [("id", instance.as_str()), ("action", "pause"), ("note", reason), ("back", "/admin/instances")];
    let paused = op.submit("/admin/instances", "/_fn/admin/instances/review", &pause).await;
    assert_eq!(paused.location.as_deref(), Some("/admin/instances"));
    let mut refused = send(&app, &key, &instance, "Your car is ready for pickup.").await;
    for _ in 0..50 {
        if refused.0.as_u16() == 423 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        refused = send(&app, &key, &instance, "Your car is ready for pickup.").await;
    }
    assert_eq!(refused.0.as_u16(), 423, "{}", refused.1);
    assert_eq!(refused.1["error"], "instance_paused_for_review");
    let queue = text(&op.get("/admin/reviews").await.body);
    assert!(queue.contains(&instance) && queue.contains(reason) && queue.contains(&email), "{queue}");
    assert!(queue.contains("+966•••••••67"), "masked numbers: {queue}");
    assert!(!queue.contains("+966501234567"), "never the full number");
    assert!(
        queue.contains("<code>promo_code</code>") && queue.contains(">100<"),
        "the block's reasons and score: {queue}"
    );

    // Keep paused with a note: the customer reads it on the instance.
    let note = "Send only order and service updates; we will look again on Monday.";
    let keep = [("id", instance.as_str()), ("action", "keep"), ("note", note), ("back", "/admin/reviews")];
    op.submit("/admin/reviews", "/_fn/admin/instances/review", &keep).await;
    let manage = text(&customer.get(&format!("/instances/{instance}/manage")).await.body);
    assert!(manage.contains("paused for responsible messaging review") && manage.contains(note), "{manage}");
    let empty_note = [("id", instance.as_str()), ("action", "keep"), ("note", " "), ("back", "/admin/reviews")];
    op.submit("/admin/reviews", "/_fn/admin/instances/review", &empty_note).await;
    assert!(text(&op.get("/admin/reviews").await.body).contains("Write the note"));

    // Resume with a note: sending works again and the note stays readable.
    let resumed_note = "Resumed after review: keep to transactional messages.";
    let resume = [("id", instance.as_str()), ("action", "resume"), ("note", resumed_note), ("back", "/admin/reviews")];
    op.submit("/admin/reviews", "/_fn/admin/instances/review", &resume).await;
    assert!(text(&op.get("/admin/reviews").await.body).contains("Nothing waits for review."));
    let mut sent = send(&app, &key, &instance, "Your car is ready for pickup.").await;
    for _ in 0..50 {
        if sent.0 == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        sent = send(&app, &key, &instance, "Your car is ready for pickup.").await;
    }
    assert_eq!(sent.0, StatusCode::OK, "{}", sent.1);
    let manage = text(&customer.get(&format!("/instances/{instance}/manage")).await.body);
    assert!(manage.contains("reviewed this instance and resumed it") && manage.contains(resumed_note), "{manage}");
    let resume_again = op.submit("/admin/reviews", "/_fn/admin/instances/review", &resume).await;
    assert!(resume_again.status.is_redirection());

    // The overview counts the refusal by code; the audit log has the three actions.
    let overview = text(&op.get("/admin").await.body);
    assert!(overview.contains("<code>policy_violation</code></td><td>1</td>"), "{overview}");
    assert!(overview.contains("aria-label=\"Messages per day:"), "the 7-day chart is drawn");
    let actions = audit_actions(&app, &email);
    let names: Vec<&str> = actions.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(names, ["resume_instance", "keep_paused", "pause_instance"], "{actions:?}");
    assert!(actions.iter().all(|(_, actor)| *actor == op_email));
    app.finish().await;
}
