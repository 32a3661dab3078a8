//! Customer webhooks against a local receiver: signed deliveries of every event kind (checked by
//! an independent Python implementation of Standard Webhooks), selection, retries, 410, replay,
//! SSRF refusals at save and connect time, a worker killed between claim and send, wake-ups
//! without polling, a burst shared by two servers, and one tenant's black-hole receiver not
//! delaying another tenant's deliveries.
use std::{
    collections::{HashMap, HashSet, VecDeque},
    io::Write,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use axum::{body::Bytes, extract::State, http::HeaderMap, http::StatusCode as AxumStatus, routing::post, Router};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{spawn_app_with, unique_email, Backend, Options, TestApp, PASSWORD};

on_every_database!(
    signed_deliveries_of_every_event_kind,
    retries_then_success_and_gone_disables,
    private_targets_are_refused_at_save_and_connect_time,
    a_worker_killed_between_claim_and_send_loses_nothing,
    the_webhook_tab_manages_destinations,
    new_deliveries_wake_the_worker_without_polling,
    a_burst_shared_by_two_servers_is_delivered_once_each,
    a_black_hole_receiver_does_not_delay_another_tenant,
);

#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
    pub(crate) at: Instant,
}

#[derive(Clone, Default)]
pub(crate) struct Receiver {
    pub(crate) got: Arc<Mutex<Vec<Received>>>,
    /// Statuses to answer, in order; 200 once empty.
    script: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    pub(crate) async fn start(script: &[u16]) -> (Receiver, String) {
        let receiver = Receiver::default();
        receiver.script.lock().unwrap().extend(script);
        let app = Router::new().route("/hook", post(receive)).with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    pub(crate) fn events(&self) -> Vec<Value> {
        self.got.lock().unwrap().iter().map(|r| serde_json::from_str(&r.body).unwrap()).collect()
    }

    pub(crate) async fn wait_for(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        for _ in 0..400 {
            let events = self.events();
            if done(&events) {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "the receiver never saw {what}: {:?}",
            self.events().iter().map(|e| e["event"].clone()).collect::<Vec<_>>()
        );
    }
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> AxumStatus {
    let at = Instant::now();
    receiver.got.lock().unwrap().push(Received { headers, body: String::from_utf8_lossy(&body).into_owned(), at });
    let status = receiver.script.lock().unwrap().pop_front().unwrap_or(200);
    AxumStatus::from_u16(status).unwrap()
}

pub(crate) fn fast_webhooks() -> Vec<(&'static str, String)> {
    vec![
        ("WAG_ALLOW_PRIVATE_WEBHOOK_TARGETS", "true".into()),
        ("WAG_WEBHOOK_POLL_MS", "25".into()),
        ("WAG_WEBHOOK_RETRY_SCHEDULE", "0,0,0".into()),
        // Short, so a killed worker's claim comes back soon; long enough that a slow attempt
        // on a loaded machine is not claimed twice.
        ("WAG_WEBHOOK_LEASE_SECS", "2".into()),
    ]
}

struct Setup {
    app: TestApp,
    key: String,
    instance: String,
}

async fn setup(backend: Backend, env: Vec<(&'static str, String)>) -> Option<Setup> {
    let app = spawn_app_with(backend, Options { env, ..Options::default() }).await?;
    let browser = app.browser();
    browser.signup(&unique_email("hooks"), PASSWORD).await;
    let key = browser.create_api_key("Hooks").await;
    let instance = browser.create_instance("Support Line").await;
    Some(Setup { app, key, instance })
}

impl Setup {
    async fn post(&self, path: &str, body: Value) -> StatusCode {
        self.app.api().post(self.app.url(path)).bearer_auth(&self.key).json(&body).send().await.unwrap().status()
    }

    fn set_webhook(&self, url: &str, events: &str) -> crate::common::CliOutput {
        self.app.wag(&["admin", "set-webhook", "--instance", &self.instance, "--url", url, "--events", events])
    }
}

pub(crate) fn verify_with_python(secret: &str, received: &[Received]) {
    // A child process waited on here must not hold up the test's runtime, which also runs the app.
    tokio::task::block_in_place(|| verify_with_python_blocking(secret, received))
}

fn verify_with_python_blocking(secret: &str, received: &[Received]) {
    let mut input = String::new();
    for r in received {
        let header = |name: &str| r.headers.get(name).unwrap().to_str().unwrap().to_string();
        input.push_str(
            &json!({
                "secret": secret,
                "id": header("webhook-id"),
                "timestamp": header("webhook-timestamp"),
                "body": r.body,
                "signature": header("webhook-signature"),
            })
            .to_string(),
        );
        input.push('\n');
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/verify_standard_webhooks.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs the independent verifier");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

async fn signed_deliveries_of_every_event_kind(backend: Backend) {
    let Some(s) = setup(backend, fast_webhooks()).await else { return };
    let (all_receiver, all_url) = Receiver::start(&[]).await;
    let (some_receiver, some_url) = Receiver::start(&[]).await;
    let every: Vec<_> = gateway::events::EventKind::ALL.iter().map(|k| k.as_str()).collect();
    let out = s.set_webhook(&all_url, &every.join(","));
    assert!(out.success, "{out:?}");
    let secret = out.last_line();
    assert!(secret.starts_with("whsec_"));
    assert!(s.set_webhook(&some_url, "message.received,recipient.opted_out").success);
    let bad = s.set_webhook(&some_url, "message.received,message.nope");
    assert!(!bad.success && bad.stderr.contains("Unknown event"));

    // Cause every kind of event.
    let account = gateway::accounts::find_by_email(&s.app.conn, &{
        let inst = gateway::instances::find_for_connector(&s.app.conn, &s.instance).await.unwrap().unwrap();
        gateway::accounts::find_by_id(&s.app.conn, inst.account_id).await.unwrap().unwrap().email
    })
    .await
    .unwrap()
    .unwrap();
    let registry_instance = gateway::instances::find_for_connector(&s.app.conn, &s.instance).await.unwrap().unwrap();
    s.app.running.as_ref().unwrap().state.registry.link_state(&registry_instance).await.unwrap(); // opens the session: QR codes
    assert_eq!(s.post("/api/sandbox/link", json!({"instance_id": s.instance})).await, StatusCode::OK);
    s.post("/api/sandbox/inbound", json!({"instance_id": s.instance, "from": "+966501234567", "message": "Hello"}))
        .await;
    s.post("/api/sandbox/inbound", json!({"instance_id": s.instance, "from": "+966501234568", "message": "STOP"}))
        .await;
    s.post(
        "/api/sandbox/inbound",
        json!({"instance_id": s.instance, "from": "+966501234569", "message": "hi all", "group_id": "g1@g.us"}),
    )
    .await;
    s.post("/api/sandbox/call", json!({"instance_id": s.instance, "from": "+966501234567", "status": "received"}))
        .await;
    s.post("/api/sandbox/call", json!({"instance_id": s.instance, "from": "+966501234567", "status": "missed"})).await;
    let send = |to: &'static str| {
        s.post("/api/send-message", json!({"instance_id": s.instance, "phone": to, "message": "Your order #1 shipped.", "message_purpose": "transactional"}))
    };
    assert_eq!(send("+966501234567").await, StatusCode::OK);
    assert_eq!(send("+15550000001").await, StatusCode::BAD_GATEWAY);
    s.post("/api/sandbox/disconnect", json!({"instance_id": s.instance})).await;
    s.post("/api/sandbox/reconnect", json!({"instance_id": s.instance})).await;
    gateway::inbound::group_updated(&s.app.conn, &registry_instance, "g1@g.us", "subject changed").await.unwrap();

    let got = all_receiver
        .wait_for("all 16 kinds", |events| every.iter().all(|k| events.iter().any(|e| e["event"] == *k)))
        .await;
    let received = all_receiver.got.lock().unwrap().clone();
    for r in &received {
        assert_eq!(r.headers["content-type"], "application/json");
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(r.headers["webhook-id"].to_str().unwrap(), body["event_id"].as_str().unwrap());
    }
    verify_with_python(&secret, &received);
    assert!(got.iter().all(|e| e["instance_name"] == "Support Line"));

    let some = some_receiver.wait_for("the chosen events", |events| events.len() >= 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let some_kinds: Vec<_> = some_receiver.events().iter().map(|e| e["event"].as_str().unwrap().to_string()).collect();
    assert!(some_kinds.iter().all(|k| k == "message.received" || k == "recipient.opted_out"), "{some_kinds:?}");
    assert!(some.iter().any(|e| e["event"] == "recipient.opted_out"));

    // Rotation: both secrets sign for 24 h.
    let destination =
        gateway::webhooks::destinations::list(&s.app.conn, account.id, &s.instance).await.unwrap()[0].clone();
    let new_secret = gateway::webhooks::destinations::rotate(
        &s.app.conn,
        &s.app.running.as_ref().unwrap().state.config.master_key,
        account.id,
        &destination.id,
    )
    .await
    .unwrap();
    let before = all_receiver.got.lock().unwrap().len();
    s.post(
        "/api/sandbox/inbound",
        json!({"instance_id": s.instance, "from": "+966501234567", "message": "after rotation"}),
    )
    .await;
    all_receiver
        .wait_for("a delivery after rotation", |events| events.iter().any(|e| e["text"] == "after rotation"))
        .await;
    let after: Vec<_> = all_receiver.got.lock().unwrap()[before..].to_vec();
    let rotated: Vec<_> = after.into_iter().filter(|r| r.body.contains("after rotation")).collect();
    assert_eq!(rotated[0].headers["webhook-signature"].to_str().unwrap().split(' ').count(), 2);
    verify_with_python(&new_secret, &rotated);
    verify_with_python(&secret, &rotated);

    // Replay an event to the destination.
    let first_event = got[0]["event_id"].as_str().unwrap().to_string();
    gateway::webhooks::destinations::replay(&s.app.conn, account.id, &destination.id, &first_event).await.unwrap();
    all_receiver
        .wait_for("the replayed event", |events| {
            events.iter().filter(|e| e["event_id"] == first_event.as_str()).count() == 2
        })
        .await;
    s.app.finish().await;
}

async fn retries_then_success_and_gone_disables(backend: Backend) {
    let Some(s) = setup(backend, fast_webhooks()).await else { return };
    let (flaky, flaky_url) = Receiver::start(&[500, 503]).await;
    assert!(s.set_webhook(&flaky_url, "message.received").success);
    s.post("/api/sandbox/link", json!({"instance_id": s.instance})).await;
    s.post("/api/sandbox/inbound", json!({"instance_id": s.instance, "from": "+966501234567", "message": "retry me"}))
        .await;
    flaky.wait_for("three attempts", |events| events.len() == 3).await;
    use sea_orm::EntityTrait;
    let mut delivery = None;
    for _ in 0..100 {
        let rows = gateway::entities::webhook_delivery::Entity::find().all(&s.app.conn).await.unwrap();
        if rows.iter().any(|d| d.status == "succeeded") {
            delivery = rows.into_iter().find(|d| d.status == "succeeded");
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let delivery = delivery.expect("the delivery succeeded after the retries");
    assert_eq!(delivery.attempts, 3);
    let attempts = gateway::entities::webhook_attempt::Entity::find().all(&s.app.conn).await.unwrap();
    let codes: Vec<_> = attempts.iter().filter(|a| a.delivery_id == delivery.id).map(|a| a.status_code).collect();
    assert_eq!(codes, [Some(500), Some(503), Some(200)]);

    let (gone, gone_url) = Receiver::start(&[410]).await;
    assert!(s.set_webhook(&gone_url, "message.received").success);
    s.post("/api/sandbox/inbound", json!({"instance_id": s.instance, "from": "+966501234567", "message": "anyone?"}))
        .await;
    gone.wait_for("one attempt", |events| events.len() == 1).await;
    let account_id =
        gateway::instances::find_for_connector(&s.app.conn, &s.instance).await.unwrap().unwrap().account_id;
    let mut disabled = false;
    for _ in 0..100 {
        let list = gateway::webhooks::destinations::list(&s.app.conn, account_id, &s.instance).await.unwrap();
        if list.iter().any(|d| {
            d.url == gone_url && !d.enabled && d.disabled_reason.as_deref() == Some("The receiver answered 410 Gone.")
        }) {
            disabled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(disabled, "410 disables the destination");
    s.post(
        "/api/sandbox/inbound",
        json!({"instance_id": s.instance, "from": "+966501234567", "message": "still there?"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gone.events().len(), 1, "a disabled destination gets nothing more");
    s.app.finish().await;
}

async fn private_targets_are_refused_at_save_and_connect_time(backend: Backend) {
    let env = vec![("WAG_WEBHOOK_POLL_MS", "25".to_string()), ("WAG_WEBHOOK_RETRY_SCHEDULE", "60".to_string())];
    let Some(s) = setup(backend, env).await else { return };
    let (receiver, url) = Receiver::start(&[]).await;
    for target in
        [url.as_str(), "http://localhost:9/hook", "http://10.0.0.8/hook", "http://[::1]/hook", "ftp://example.com/x"]
    {
        let out = s.set_webhook(target, "message.received");
        assert!(!out.success, "{target} must be refused");
    }
    // Saved while it resolved publicly, later resolving to loopback (DNS rebinding): the worker
    // checks the address it dials and refuses.
    let account_id =
        gateway::instances::find_for_connector(&s.app.conn, &s.instance).await.unwrap().unwrap().account_id;
    let key = s.app.running.as_ref().unwrap().state.config.master_key.clone();
    let rebinding = url.replace("127.0.0.1", "localhost");
    let kinds = [gateway::events::EventKind::MessageReceived];
    gateway::webhooks::destinations::create_or_replace(
        &s.app.conn,
        &key,
        account_id,
        &s.instance,
        &rebinding,
        &kinds,
        None,
    )
    .await
    .unwrap();
    s.post("/api/sandbox/link", json!({"instance_id": s.instance})).await;
    s.post("/api/sandbox/inbound", json!({"instance_id": s.instance, "from": "+966501234567", "message": "x"})).await;
    use sea_orm::EntityTrait;
    let mut errors = Vec::new();
    for _ in 0..100 {
        errors = gateway::entities::webhook_attempt::Entity::find()
            .all(&s.app.conn)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|a| a.error)
            .collect();
        if !errors.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(errors[0].contains("private"), "{errors:?}");
    assert!(receiver.events().is_empty(), "nothing reached the private address");
    s.app.finish().await;
}

async fn a_worker_killed_between_claim_and_send_loses_nothing(backend: Backend) {
    let mut env = fast_webhooks();
    // Leases are whole seconds and last at least their length: 3 s ends 3 to 4 s after the claim.
    env.retain(|(k, _)| *k != "WAG_WEBHOOK_LEASE_SECS");
    env.push(("WAG_WEBHOOK_LEASE_SECS", "3".into()));
    let Some(mut s) = setup(backend, env).await else { return };
    let (receiver, url) = Receiver::start(&[]).await;
    assert!(s.set_webhook(&url, "message.received").success);

    // The app's own worker would send at once (it is woken by new deliveries): stop the app and
    // drive workers by hand.
    let running = s.app.running.take().unwrap();
    let config = running.state.config.clone();
    running.stop().await;
    let instance = gateway::instances::find_for_connector(&s.app.conn, &s.instance).await.unwrap().unwrap();
    let message = gateway::connectors::InboundMessage {
        provider_message_id: "killed-worker-1".into(),
        from: gateway::connectors::Sender {
            address: "966501234567@s.whatsapp.net".into(),
            phone: Some("+966501234567".into()),
        },
        group_id: None,
        text: Some("do not lose me".into()),
        media: None,
        sent_at: gateway::time::now(),
    };
    gateway::inbound::receive(&s.app.conn, &instance, &message).await.unwrap();

    let worker =
        |db| gateway::webhooks::worker::Worker::new(db, config.master_key.clone(), config.webhooks.clone()).unwrap();
    // Claimed, then the process "dies" before sending.
    let doomed = worker(s.app.conn.clone());
    let claimed = doomed.claim(10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    drop(doomed);
    // Another worker cannot take it while the lease holds, and takes it once it ran out.
    let survivor = worker(s.app.conn.clone());
    assert!(survivor.claim(10).await.unwrap().is_empty(), "leased to the dead worker");
    tokio::time::sleep(Duration::from_millis(4100)).await;
    let again = survivor.claim(10).await.unwrap();
    assert_eq!(again.len(), 1, "the lease ran out");
    survivor.deliver(again.into_iter().next().unwrap()).await.unwrap();
    let events = receiver.wait_for("the delivery", |events| !events.is_empty()).await;
    assert_eq!(events[0]["text"], "do not lose me");
    // The dead worker's claim no longer owns the delivery: its late outcome changes nothing.
    use sea_orm::EntityTrait;
    let row = gateway::entities::webhook_delivery::Entity::find().one(&s.app.conn).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.attempts), ("succeeded", 1));
    assert_ne!(row.lease_owner, claimed[0].delivery.lease_owner);
    s.app.finish().await;
}

async fn the_webhook_tab_manages_destinations(backend: Backend) {
    let Some(app) = spawn_app_with(backend, Options { env: fast_webhooks(), ..Options::default() }).await else {
        return;
    };
    let browser = app.browser();
    browser.signup(&unique_email("tab"), PASSWORD).await;
    let instance = browser.create_instance("Support Line").await;
    let tab = format!("/instances/{instance}/manage?tab=webhook");
    let page = browser.get(&tab).await;
    assert_eq!(page.status, StatusCode::OK);
    let event_boxes =
        page.body.split("<input").filter(|i| i.contains("type=\"checkbox\"") && i.contains("name=\"events[")).count();
    assert_eq!(event_boxes, 16, "all 16 events");
    assert_eq!(page.body.matches("checked").count(), 4, "the four recommended ones ticked");

    let (receiver, url) = Receiver::start(&[]).await;
    let posted = browser
        .submit(
            &tab,
            "/_fn/webhooks/add",
            &[
                ("instance_id", instance.as_str()),
                ("url", url.as_str()),
                ("events[0]", "message.received"),
                ("events[3]", "recipient.opted_out"),
            ],
        )
        .await;
    assert_eq!(posted.location.as_deref(), Some(tab.as_str()));
    let shown = browser.get(&tab).await;
    let secret = shown.secret("new-webhook-secret").expect("the secret is shown once, in a field of its own");
    assert!(secret.starts_with("whsec_"));
    assert!(shown.new_api_key().is_none(), "the signing secret does not reuse the API key's field id");
    assert!(!browser.get(&tab).await.body.contains(&secret), "and only once");
    assert!(shown.body.contains("message.received, recipient.opted_out"));

    let marker = "name=\"id\" value=\"whd_";
    let start = shown.body.find(marker).unwrap() + marker.len() - 4;
    let id = shown.body[start..start + shown.body[start..].find('"').unwrap()].to_string();
    let act = |command: &'static str| {
        let id = id.clone();
        let instance = instance.clone();
        let tab = tab.clone();
        let browser = &browser;
        async move {
            browser
                .submit(
                    &tab,
                    "/_fn/webhooks/destination",
                    &[("instance_id", instance.as_str()), ("id", id.as_str()), ("command", command)],
                )
                .await
        }
    };
    act("test").await;
    let events = receiver.wait_for("the test event", |events| !events.is_empty()).await;
    assert_eq!(events[0]["event"], "webhook.test");
    verify_with_python(&secret, &receiver.got.lock().unwrap().clone());
    act("disable").await;
    assert!(browser.get(&tab).await.body.contains("Disabled"));
    act("enable").await;
    act("rotate").await;
    let rotated = browser.get(&tab).await;
    assert!(
        rotated.secret("new-webhook-secret").unwrap().starts_with("whsec_")
            && rotated.body.contains("previous secret also signs")
    );
    let bad =
        browser.submit(&tab, "/_fn/webhooks/add", &[("instance_id", instance.as_str()), ("url", "not a url")]).await;
    assert_eq!(bad.location.as_deref(), Some(tab.as_str()));
    assert!(browser.get(&tab).await.body.contains("Enter a full URL"));

    // Another account reaches none of it.
    let other = app.browser();
    other.signup(&unique_email("other"), PASSWORD).await;
    assert_eq!(other.get(&tab).await.status, StatusCode::NOT_FOUND);
    let posted = other
        .submit(
            "/instances",
            "/_fn/webhooks/destination",
            &[("instance_id", instance.as_str()), ("id", id.as_str()), ("command", "delete")],
        )
        .await;
    assert!(other.get(posted.location.as_deref().unwrap()).await.body.contains("Not found."));
    act("delete").await;
    assert!(browser.get(&tab).await.body.contains("No destinations yet."));
    app.finish().await;
}

/// Polls `done` every 20 ms until it holds, or fails after `limit` naming `what`.
async fn wait_until(what: &str, limit: Duration, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what} did not happen within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn source(instance: &gateway::instances::Instance) -> gateway::events::Source<'_> {
    gateway::events::Source {
        account_id: instance.account_id,
        instance_id: &instance.id,
        instance_name: &instance.name,
    }
}

async fn new_deliveries_wake_the_worker_without_polling(backend: Backend) {
    let mut env = fast_webhooks();
    // A minute between polls: only a wake-up explains a delivery within seconds.
    env.retain(|(k, _)| *k != "WAG_WEBHOOK_POLL_MS");
    env.push(("WAG_WEBHOOK_POLL_MS", "60000".into()));
    let Some(s) = setup(backend, env).await else { return };
    let (receiver, url) = Receiver::start(&[]).await;
    assert!(s.set_webhook(&url, "message.received,call.missed").success);
    assert_eq!(s.post("/api/sandbox/link", json!({"instance_id": s.instance})).await, StatusCode::OK);
    // Past the worker's first look at start.
    tokio::time::sleep(Duration::from_millis(300)).await;

    s.post("/api/sandbox/inbound", json!({"instance_id": s.instance, "from": "+966501234567", "message": "wake up"}))
        .await;
    wait_until("the delivery of an inbound message", Duration::from_secs(3), || {
        receiver.events().iter().any(|e| e["text"] == "wake up")
    })
    .await;

    if backend == Backend::Postgres {
        // A commit that does not wake this process itself, as another process's would not,
        // then the notification such a process sends (fan_out sends it inside the transaction,
        // but at most one per 25 ms per process, and other tests here share that budget):
        // the worker's LISTEN connection hears it.
        let instance = gateway::instances::find_for_connector(&s.app.conn, &s.instance).await.unwrap().unwrap();
        let txn = gateway::db::begin_write(&s.app.conn).await.unwrap();
        let fields = gateway::fields! {"from" => "+966501234567", "status" => "missed"};
        gateway::events::emit(&txn, source(&instance), gateway::events::EventKind::CallMissed, fields).await.unwrap();
        txn.commit().await.unwrap();
        use sea_orm::ConnectionTrait;
        s.app.conn.execute_unprepared("SELECT pg_notify('wag_webhooks', '')").await.unwrap();
        wait_until("the delivery of an event announced by NOTIFY", Duration::from_secs(3), || {
            receiver.events().iter().any(|e| e["event"] == "call.missed")
        })
        .await;
    }
    s.app.finish().await;
}

async fn a_burst_shared_by_two_servers_is_delivered_once_each(backend: Backend) {
    let env = vec![
        ("WAG_ALLOW_PRIVATE_WEBHOOK_TARGETS", "true".to_string()),
        // Long: no lease may run out mid-test (that would rightly send a delivery again).
        ("WAG_WEBHOOK_LEASE_SECS", "120".to_string()),
    ];
    let Some(s) = setup(backend, env).await else { return };
    // Two servers on one database: each delivery must be claimed by exactly one of them.
    let (_, second) = s.app.second_server().await;
    let (receiver, url) = Receiver::start(&[]).await;
    assert!(s.set_webhook(&url, "message.received").success);
    assert_eq!(s.post("/api/sandbox/link", json!({"instance_id": s.instance})).await, StatusCode::OK);

    const BURST: usize = 300;
    let s = Arc::new(s);
    let permits = Arc::new(tokio::sync::Semaphore::new(16));
    let mut posts = tokio::task::JoinSet::new();
    for i in 0..BURST {
        let s = s.clone();
        let permit = permits.clone().acquire_owned().await.unwrap();
        posts.spawn(async move {
            let body = json!({"instance_id": s.instance, "from": "+966501234567", "message": format!("burst {i}")});
            let status = s.post("/api/sandbox/inbound", body).await;
            drop(permit);
            status
        });
    }
    while let Some(status) = posts.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }
    let distinct = || {
        let got = receiver.got.lock().unwrap();
        got.iter().map(|r| r.headers["webhook-id"].to_str().unwrap().to_string()).collect::<HashSet<_>>().len()
    };
    wait_until("every delivery of the burst", Duration::from_secs(120), || distinct() == BURST).await;
    // Anything sent twice would arrive within this.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.got.lock().unwrap().len(), BURST, "each delivery was sent once");

    use sea_orm::EntityTrait;
    let rows = gateway::entities::webhook_delivery::Entity::find().all(&s.app.conn).await.unwrap();
    assert_eq!(rows.len(), BURST);
    assert!(rows.iter().all(|d| d.status == "succeeded" && d.attempts == 1), "each settled once as succeeded");
    let attempts = gateway::entities::webhook_attempt::Entity::find().all(&s.app.conn).await.unwrap();
    assert_eq!(attempts.len(), BURST, "every attempt recorded, once");

    second.stop().await;
    let Ok(s) = Arc::try_unwrap(s) else { panic!("the posts are done") };
    s.app.finish().await;
}

async fn a_black_hole_receiver_does_not_delay_another_tenant(backend: Backend) {
    let env = vec![
        ("WAG_ALLOW_PRIVATE_WEBHOOK_TARGETS", "true".to_string()),
        // Short, so stopping the app does not wait long for the unanswered requests.
        ("WAG_WEBHOOK_TIMEOUT_SECS", "3".to_string()),
        ("WAG_WEBHOOK_LEASE_SECS", "30".to_string()),
    ];
    let Some(a) = setup(backend, env).await else { return };

    // Tenant A's receiver accepts connections and never answers.
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole_url = format!("http://127.0.0.1:{}/hook", hole.local_addr().unwrap().port());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let hole_task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hole.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    assert!(a.set_webhook(&hole_url, "message.received").success);
    let instance_a = gateway::instances::find_for_connector(&a.app.conn, &a.instance).await.unwrap().unwrap();
    let txn = gateway::db::begin_write(&a.app.conn).await.unwrap();
    for i in 0..1000 {
        let fields = gateway::fields! {"from" => "+966501234567", "text" => format!("a-{i}")};
        gateway::events::emit(&txn, source(&instance_a), gateway::events::EventKind::MessageReceived, fields)
            .await
            .unwrap();
    }
    gateway::db::commit_and_wake(txn).await.unwrap();
    wait_until("tenant A's first attempts", Duration::from_secs(10), || accepted.load(Ordering::SeqCst) > 0).await;

    // Tenant B: another account, its own instance and receiver.
    let browser = a.app.browser();
    browser.signup(&unique_email("tenant-b"), PASSWORD).await;
    let key_b = browser.create_api_key("B").await;
    let instance_b = browser.create_instance("B Line").await;
    let post_b = |path: &'static str, body: Value| {
        let request = a.app.api().post(a.app.url(path)).bearer_auth(&key_b).json(&body);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(post_b("/api/sandbox/link", json!({"instance_id": instance_b})).await, StatusCode::OK);
    let (receiver_b, url_b) = Receiver::start(&[]).await;
    let out = a.app.wag(&[
        "admin",
        "set-webhook",
        "--instance",
        &instance_b,
        "--url",
        &url_b,
        "--events",
        "message.received",
    ]);
    assert!(out.success, "{out:?}");

    const B_EVENTS: usize = 100;
    let mut sent = HashMap::new();
    for i in 0..B_EVENTS {
        let text = format!("b-{i}");
        // Taken before the request, so the lag also counts writing the event: an upper bound.
        sent.insert(text.clone(), Instant::now());
        let body = json!({"instance_id": instance_b, "from": "+966501234567", "message": text});
        assert_eq!(post_b("/api/sandbox/inbound", body).await, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    wait_until("tenant B's deliveries", Duration::from_secs(60), || receiver_b.events().len() >= B_EVENTS).await;
    let mut lags: Vec<Duration> = receiver_b
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_str(&r.body).unwrap();
            r.at - sent[body["text"].as_str().unwrap()]
        })
        .collect();
    lags.sort();
    let p99 = lags[(lags.len() * 99).div_ceil(100) - 1];
    assert!(
        p99 <= Duration::from_secs(1),
        "tenant B's lag: p50 {:?}, p99 {p99:?}, max {:?}",
        lags[lags.len() / 2],
        lags[lags.len() - 1]
    );
    assert!(accepted.load(Ordering::SeqCst) > 0, "tenant A's deliveries were being tried all along");
    a.app.finish().await;
    hole_task.abort();
}
