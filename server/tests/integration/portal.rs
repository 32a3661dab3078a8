//! The portal's rough edges a new customer meets: refused forms keep what was typed (never a
//! password), a private webhook target names the setting that allows it, the connect tab's
//! wording, the phone layout's hooks (menu, skip link, labelled table cells), and the server's
//! log as a file sees it (no colour codes, failed webhook deliveries named).
use std::{
    io::Read,
    process::{Child, Command, Stdio},
    time::Duration,
};

use reqwest::StatusCode;
use sea_orm::EntityTrait;

use crate::{
    common::{spawn_app, spawn_app_with, unique_email, Backend, Browser, Options, PASSWORD},
    webhooks::Receiver,
};

on_every_database!(
    refused_forms_keep_what_was_typed,
    phone_layout_hooks_and_wording,
    first_run_checklist_and_test_send,
    webhook_events_change_in_place_and_deliveries_show_their_payload,
);

async fn refused_forms_keep_what_was_typed(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let browser = app.browser();
    let email = unique_email("kept");

    // Sign-up with a short password: the email comes back, the password does not.
    let short = "short-pw";
    let refused = browser.signup(&email, short).await;
    assert_eq!(refused.location.as_deref(), Some("/signup"));
    let page = browser.get("/signup").await;
    assert!(page.body.contains(&format!("value=\"{email}\"")), "the email is kept: {}", page.body);
    assert!(!page.body.contains(short), "a password is never echoed");
    // Shown once: a reload starts empty.
    assert!(!browser.get("/signup").await.body.contains(&email));

    browser.signup(&email, PASSWORD).await;
    browser.logout().await;
    let wrong = "wrong password 123";
    let refused = browser.login(&email, wrong).await;
    assert_eq!(refused.location.as_deref(), Some("/login"));
    let page = browser.get("/login").await;
    assert!(page.body.contains(&format!("value=\"{email}\"")), "the email is kept");
    assert!(!page.body.contains(wrong), "a password is never echoed");

    // A webhook refused for its private target keeps the URL and the chosen events, and says
    // which setting a developer would change.
    browser.login(&email, PASSWORD).await;
    let instance = browser.create_instance("Kept line").await;
    let tab = format!("/instances/{instance}/manage?tab=webhook");
    let url = "http://127.0.0.1:9/hooks/dev";
    let fields =
        [("instance_id", instance.as_str()), ("url", url), ("events[0]", "message.read"), ("events[1]", "call.missed")];
    let posted = browser.submit(&tab, "/_fn/webhooks/add", &fields).await;
    assert_eq!(posted.location.as_deref(), Some(tab.as_str()));
    let page = browser.get(&tab).await;
    assert!(page.body.contains("WAG_ALLOW_PRIVATE_WEBHOOK_TARGETS"), "the setting is named");
    assert!(page.body.contains(&format!("value=\"{url}\"")), "the URL is kept");
    let checked: Vec<&str> = page
        .body
        .split("<input")
        .filter(|input| input.contains("type=\"checkbox\"") && input.contains(" checked"))
        .filter_map(|input| input.split("value=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(checked, ["message.read", "call.missed"], "the chosen events are kept, not the defaults");
    // The next visit shows the defaults again.
    let fresh = browser.get(&tab).await;
    assert!(!fresh.body.contains(url));
    app.finish().await;
}

async fn phone_layout_hooks_and_wording(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let browser = app.browser();
    browser.signup(&unique_email("phone"), PASSWORD).await;
    browser.create_api_key("ERP").await;

    let keys = browser.get("/api-keys").await;
    let skip = keys.body.find(">Skip to content</a>").expect("a skip link");
    assert!(skip < keys.body.find("<nav").unwrap(), "the skip link comes first");
    assert!(keys.body[..skip].ends_with("<a href=\"#main\" class=\"skip-link\""));
    assert!(keys.body.contains("id=\"main\""));
    assert!(keys.body.contains("id=\"nav-toggle\"") && keys.body.contains(">Menu</label>"), "a menu without script");
    assert!(keys.body.contains("data-label=\"Name\""), "table cells name their column for the phone layout");
    assert!(keys.body.contains("data-label=\"Status\" class=\"cell-status\""), "the status cell is marked");

    // Creating lands on the connect tab; once linked, the link is ended by "Unlink this number",
    // not a second "Log out" beside the account's.
    let id = browser.create_instance("Phone line").await;
    let connect = format!("/instances/{id}/manage?tab=connect");
    browser.submit(&connect, "/_fn/instances/link", &[("id", id.as_str()), ("action", "simulate_scan")]).await;
    let linked = browser.get(&connect).await;
    assert!(linked.body.contains("Unlink this number"));
    assert!(linked.body.contains("You stay signed in to the portal"));
    assert_eq!(linked.body.matches(">Log out<").count(), 1, "only the account's own Log out");

    // Ids are copied with a button (the script shows it); the text stays selectable.
    let instances = browser.get("/instances").await;
    assert!(instances.body.contains(&format!("id=\"copy-{id}\"")), "the id is a copy target");
    assert!(instances.body.contains(&format!("data-copy-target=\"#copy-{id}\"")));

    // Docs: one h1 per page, signed in or not; long pages list their sections; code is coloured.
    let visitor = app.browser();
    for path in ["/docs", "/docs/send", "/docs/api", "/acceptable-use"] {
        for (who, reader) in [("signed in", &browser), ("visitor", &visitor)] {
            let page = reader.get(path).await;
            assert_eq!(page.status, StatusCode::OK, "{path}");
            assert_eq!(page.body.matches("<h1").count(), 1, "{path} ({who}) has one h1");
        }
    }
    let receive = browser.get("/docs/receive").await;
    assert!(receive.body.contains("aria-label=\"On this page\""), "a long page has a table of contents");
    assert!(receive.body.contains("<h2 id=\"") && receive.body.contains("href=\"#"), "sections have anchors");
    assert!(receive.body.contains("class=\"tok-key\""), "JSON is coloured on the server");
    // The landing page's headings go h1, then h2 (no skipped level).
    let landing = visitor.get("/").await;
    assert!(landing.body.contains("<h2") && !landing.body.contains("<h3"), "h1 then h2 on the landing page");
    app.finish().await;
}

async fn first_run_checklist_and_test_send(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let browser = app.browser();
    browser.signup(&unique_email("first"), PASSWORD).await;
    let steps_done = |body: &str| body.matches("step step-done").count();

    let dashboard = browser.get("/dashboard").await;
    assert!(dashboard.body.contains("Get started"), "a new account sees the checklist");
    assert_eq!(steps_done(&dashboard.body), 0);
    browser.create_api_key("ERP").await;
    let id = browser.create_instance("First line").await;
    let connect = format!("/instances/{id}/manage?tab=connect");
    browser.submit(&connect, "/_fn/instances/link", &[("id", id.as_str()), ("action", "simulate_scan")]).await;
    assert_eq!(steps_done(&browser.get("/dashboard").await.body), 2, "key and linked instance");

    // A dry run shows the decision and its reasons, sends nothing, and keeps the form.
    let overview = format!("/instances/{id}/manage?tab=overview");
    let spam = "MEGA SALE!!! 70% off everything, buy now with promo code SAVE70 at bit.ly/deal";
    let form = |message: &'static str, dry: bool| {
        let mut fields = vec![
            ("instance_id", id.clone()),
            ("phone", "+966501234567".to_string()),
            ("message", message.to_string()),
            ("purpose", "transactional".to_string()),
        ];
        if dry {
            fields.push(("dry_run", "on".to_string()));
        }
        fields
    };
    let send = |fields: Vec<(&'static str, String)>| {
        let browser = &browser;
        let overview = overview.clone();
        async move {
            let form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let posted = browser.submit(&overview, "/_fn/instances/test-send", &form).await;
            assert_eq!(posted.location.as_deref(), Some(overview.as_str()));
            browser.get(&overview).await
        }
    };
    let page = browser.get(&overview).await;
    assert!(page.body.contains("Send a test message"));
    let dry = send(form(spam, true)).await;
    assert!(dry.body.contains("Dry run, nothing was sent"), "{}", dry.body);
    assert!(dry.body.contains("policy_violation") && dry.body.contains("Reasons:"), "the decision and its reasons");
    assert!(dry.body.contains("MEGA SALE"), "the message is kept for another try");
    let messages = gateway::entities::message::Entity::find().all(&app.conn).await.unwrap();
    assert!(messages.is_empty(), "a dry run sends nothing");

    let ok = "Your order #2041 has been shipped and arrives on Thursday.";
    let sent = send(form(ok, false)).await;
    assert!(sent.body.contains("Sent: message msg_"), "{}", sent.body);
    let messages = gateway::entities::message::Entity::find().all(&app.conn).await.unwrap();
    assert_eq!(messages.len(), 1, "the same pipeline as the API: logged once");
    // The first message is sent: the checklist has done its job.
    assert!(!browser.get("/dashboard").await.body.contains("Get started"));
    app.finish().await;
}

async fn webhook_events_change_in_place_and_deliveries_show_their_payload(backend: Backend) {
    let env = vec![
        ("WAG_ALLOW_PRIVATE_WEBHOOK_TARGETS", "true".to_string()),
        ("WAG_WEBHOOK_POLL_MS", "25".to_string()),
        ("WAG_WEBHOOK_RETRY_SCHEDULE", "3600".to_string()),
    ];
    let Some(app) = spawn_app_with(backend, Options { env, ..Options::default() }).await else { return };
    let (receiver, url) = Receiver::start(&[500]).await;
    let browser = app.browser();
    browser.signup(&unique_email("inplace"), PASSWORD).await;
    let instance = browser.create_instance("Hook line").await;
    let tab = format!("/instances/{instance}/manage?tab=webhook");
    let fields = [("instance_id", instance.as_str()), ("url", url.as_str()), ("events[0]", "message.received")];
    browser.submit(&tab, "/_fn/webhooks/add", &fields).await;
    let page = browser.get(&tab).await;
    let marker = "name=\"id\" value=\"whd_";
    let start = page.body.find(marker).expect("the destination") + marker.len() - 4;
    let destination = page.body[start..start + page.body[start..].find('"').unwrap()].to_string();
    // Destinations come before the form that adds one.
    assert!(page.body.find(&url) < page.body.find("Add a destination"));

    // Disabled, then given new events in place: still disabled, with the new events.
    let act = [("instance_id", instance.as_str()), ("id", destination.as_str()), ("command", "disable")];
    browser.submit(&tab, "/_fn/webhooks/destination", &act).await;
    let events = [
        ("instance_id", instance.as_str()),
        ("id", destination.as_str()),
        ("events[0]", "message.sent"),
        ("events[1]", "message.failed"),
    ];
    let posted = browser.submit(&tab, "/_fn/webhooks/events", &events).await;
    assert_eq!(posted.location.as_deref(), Some(tab.as_str()));
    let page = browser.get(&tab).await;
    assert!(page.body.contains("Events saved: message.sent, message.failed."), "{}", page.body);
    let none = [("instance_id", instance.as_str()), ("id", destination.as_str())];
    browser.submit(&tab, "/_fn/webhooks/events", &none).await;
    assert!(browser.get(&tab).await.body.contains("Choose at least one event."));
    let act = [("instance_id", instance.as_str()), ("id", destination.as_str()), ("command", "enable")];
    browser.submit(&tab, "/_fn/webhooks/destination", &act).await;

    // A failed delivery shows what was sent, what came back, and when it goes again.
    let test = [("instance_id", instance.as_str()), ("id", destination.as_str()), ("command", "test")];
    browser.submit(&tab, "/_fn/webhooks/destination", &test).await;
    receiver.wait_for("the test event", |events| !events.is_empty()).await;
    let mut page = browser.get(&tab).await;
    for _ in 0..100 {
        if page.body.contains("next try") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        page = browser.get(&tab).await;
    }
    assert!(page.body.contains("next try"), "the next retry is shown: {}", page.body);
    assert!(page.body.contains("Payload and answer"));
    assert!(page.body.contains("A test event from WA Gateway."), "the payload is shown");
    assert!(page.body.contains("The receiver answered"), "the answer is shown");
    app.finish().await;
}

/// `wag serve` as an operator runs it, its output going to a file.
struct Served {
    child: Child,
    log: std::path::PathBuf,
    base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    fn log_text(&self) -> String {
        let mut text = String::new();
        std::fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut text)).expect("read the log");
        text
    }
}

async fn serve_to_a_file(env: &[(&str, &str)]) -> Served {
    let dir = std::env::temp_dir().join(format!("wag-log-{}", ulid::Ulid::new().to_string().to_ascii_lowercase()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().expect("its address").port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let log = dir.join("wag.log");
    let file = std::fs::File::create(&log).expect("log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_wag"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("WAG_") || k == "NO_COLOR" || k == "RUST_LOG") {
        command.env_remove(key);
    }
    command
        .arg("serve")
        .env("WAG_LISTEN", format!("127.0.0.1:{port}"))
        .env("WAG_DATA_DIR", &dir)
        .env("WAG_PUBLIC_BASE_URL", &base)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log file"))
        .stderr(file);
    let served = Served { child: command.spawn().expect("start wag serve"), log, base };
    for _ in 0..240 {
        if let Ok(r) = reqwest::get(format!("{}/healthz", served.base)).await {
            if r.status() == StatusCode::OK {
                return served;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("wag serve did not come up; its log:\n{}", served.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_in_a_file_is_plain_and_names_failed_deliveries() {
    crate::common::within_limit(async {
        let (receiver, url) = Receiver::start(&[500]).await;
        let served = serve_to_a_file(&[
            ("WAG_ALLOW_PRIVATE_WEBHOOK_TARGETS", "true"),
            ("WAG_WEBHOOK_POLL_MS", "25"),
            ("WAG_WEBHOOK_RETRY_SCHEDULE", "3600"),
        ])
        .await;
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let browser = Browser { client, base: served.base.clone() };
        browser.signup(&unique_email("logs"), PASSWORD).await;
        let instance = browser.create_instance("Logged line").await;
        let tab = format!("/instances/{instance}/manage?tab=webhook");
        let fields = [("instance_id", instance.as_str()), ("url", url.as_str()), ("events[0]", "message.received")];
        browser.submit(&tab, "/_fn/webhooks/add", &fields).await;
        let page = browser.get(&tab).await;
        let secret = page.secret("new-webhook-secret").expect("the signing secret");
        let marker = "name=\"id\" value=\"whd_";
        let start = page.body.find(marker).expect("the destination") + marker.len() - 4;
        let destination = page.body[start..start + page.body[start..].find('"').unwrap()].to_string();
        let command = [("instance_id", instance.as_str()), ("id", destination.as_str()), ("command", "test")];
        browser.submit(&tab, "/_fn/webhooks/destination", &command).await;
        receiver.wait_for("the test event", |events| !events.is_empty()).await;

        let mut line = None;
        for _ in 0..200 {
            line = served.log_text().lines().find(|l| l.contains("webhook delivery failed")).map(str::to_string);
            if line.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let text = served.log_text();
        let line = line.unwrap_or_else(|| panic!("no failed delivery in the log:\n{text}"));
        assert!(line.contains(&destination), "the destination is named: {line}");
        assert!(line.contains("status=500"), "{line}");
        assert!(line.contains("next_attempt_at="), "the next attempt is named: {line}");
        assert!(!text.contains(&secret) && !text.contains("A test event from WA Gateway"), "no secret, no payload");
        assert!(!text.contains('\u{1b}'), "no colour codes in a file:\n{text}");
    })
    .await;
}
