//! `GET /metrics` (Prometheus text format): off by default; behind a bearer token on the main
//! listener, or on a listener of its own. The output is parsed, and each counted thing is
//! checked against what the test did; no label carries an id, key, phone or email.
use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    common::{spawn_app, spawn_app_with, unique_email, Backend, Options, TestApp, PASSWORD},
    webhooks::{fast_webhooks, Receiver},
};

on_every_database!(
    metrics_are_off_by_default,
    metrics_count_what_happened_behind_a_token,
    metrics_on_their_own_listener
);

const TOKEN: &str = "metrics-token-for-tests-0123";

/// `name{labels}` → value, for every sample line.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample line: {line:?}"));
        samples.insert(series.to_string(), value.parse::<f64>().unwrap_or_else(|_| panic!("not a value: {line:?}")));
    }
    samples
}

fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

async fn scrape(url: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn metrics_are_off_by_default(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (status, _) = scrape(&app.url("/metrics"), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.finish().await;
}

struct Tenant {
    email: String,
    key: String,
    instance: String,
}

async fn tenant(app: &TestApp) -> Tenant {
    let browser = app.browser();
    let email = unique_email("metrics");
    browser.signup(&email, PASSWORD).await;
    let key = browser.create_api_key("Metrics").await;
    let instance = browser.create_instance("Metrics Line").await;
    Tenant { email, key, instance }
}

async fn post(app: &TestApp, key: &str, path: &str, body: serde_json::Value) -> StatusCode {
    app.api().post(app.url(path)).bearer_auth(key).json(&body).send().await.unwrap().status()
}

async fn metrics_count_what_happened_behind_a_token(backend: Backend) {
    let mut env = fast_webhooks();
    env.push(("WAG_METRICS_TOKEN", TOKEN.to_string()));
    let Some(app) = spawn_app_with(backend, Options { env, ..Options::default() }).await else { return };
    let t = tenant(&app).await;
    let (receiver, hook) = Receiver::start(&[]).await;
    let account = gateway::accounts::find_by_email(&app.conn, &t.email).await.unwrap().unwrap();
    let master = app.running.as_ref().unwrap().state.config.master_key.clone();
    gateway::webhooks::destinations::create_or_replace(
        &app.conn,
        &master,
        account.id,
        &t.instance,
        &hook,
        &gateway::events::EventKind::ALL,
        None,
    )
    .await
    .unwrap();

    // Without the token, or with another, nothing.
    assert_eq!(scrape(&app.url("/metrics"), None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(scrape(&app.url("/metrics"), Some("metrics-token-for-tests-9999")).await.0, StatusCode::UNAUTHORIZED);

    assert_eq!(post(&app, &t.key, "/api/sandbox/link", json!({"instance_id": t.instance})).await, StatusCode::OK);
    let send = json!({
        "instance_id": t.instance,
        "phone": "+966501234567",
        "message": "Your order #2041 has been shipped.",
        "message_purpose": "transactional",
    });
    assert_eq!(post(&app, &t.key, "/api/send-message", send.clone()).await, StatusCode::OK);
    let mut dry = send.clone();
    dry["dry_run"] = json!(true);
    assert_eq!(post(&app, &t.key, "/api/send-message", dry).await, StatusCode::OK);
    assert_eq!(post(&app, "wag_not_a_key", "/api/send-message", send.clone()).await, StatusCode::UNAUTHORIZED);
    let inbound = json!({"instance_id": t.instance, "from": "+966507654321", "message": "Where is my parcel?"});
    assert_eq!(post(&app, &t.key, "/api/sandbox/inbound", inbound.clone()).await, StatusCode::OK);
    receiver.wait_for("a message.sent event", |events| events.iter().any(|e| e["event"] == "message.sent")).await;

    let mut samples = HashMap::new();
    for _ in 0..200 {
        let (status, text) = scrape(&app.url("/metrics"), Some(TOKEN)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(text.ends_with("# EOF\n"), "OpenMetrics text ends with # EOF");
        for secret in [t.key.as_str(), t.instance.as_str(), "966501234567", "966507654321", "@example"] {
            assert!(!text.contains(secret), "a label carries {secret}");
        }
        samples = parse(&text);
        if value(&samples, r#"wag_webhook_deliveries_total{result="delivered"}"#) >= 1.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(value(&samples, r#"wag_send_requests_total{outcome="sent"}"#), 1.0, "{samples:?}");
    assert_eq!(value(&samples, r#"wag_send_requests_total{outcome="dry_run"}"#), 1.0);
    assert_eq!(value(&samples, r#"wag_send_requests_total{outcome="invalid_api_key"}"#), 1.0);
    assert_eq!(value(&samples, "wag_send_duration_seconds_count"), 3.0);
    assert_eq!(value(&samples, "wag_inbound_messages_total"), 1.0);
    assert!(value(&samples, r#"wag_webhook_deliveries_total{result="delivered"}"#) >= 1.0);
    assert!(samples.contains_key("wag_webhook_backlog"));
    assert!(samples.contains_key("wag_webhook_oldest_pending_seconds"));
    assert_eq!(value(&samples, r#"wag_instances{connector="sandbox",state="connected"}"#), 1.0);
    assert_eq!(value(&samples, r#"wag_http_requests_total{route="/api/send-message",status="200"}"#), 2.0);
    assert_eq!(value(&samples, r#"wag_http_requests_total{route="/api/send-message",status="401"}"#), 1.0);

    // A redelivered inbound message is not counted again; a 3CX request to an unknown
    // integration is.
    let unknown =
        app.api().post(app.url("/integrations/3cx/webhook/tcx_unknown")).json(&json!({})).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let samples = parse(&scrape(&app.url("/metrics"), Some(TOKEN)).await.1);
    assert_eq!(value(&samples, r#"wag_threecx_requests_total{outcome="invalid_3cx_webhook"}"#), 1.0);
    assert!(
        samples.keys().any(|k| k.starts_with("wag_http_requests_total{route=\"/integrations/3cx/webhook/{")),
        "the 3CX route is counted under its template: {:?}",
        samples.keys().filter(|k| k.contains("3cx")).collect::<Vec<_>>()
    );
    app.finish().await;
}

async fn metrics_on_their_own_listener(backend: Backend) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let env = vec![("WAG_METRICS_LISTEN", format!("127.0.0.1:{port}"))];
    let Some(app) = spawn_app_with(backend, Options { env, ..Options::default() }).await else { return };
    let (status, text) = scrape(&format!("http://127.0.0.1:{port}/metrics"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(parse(&text).contains_key("wag_webhook_backlog"));
    assert_eq!(scrape(&app.url("/metrics"), None).await.0, StatusCode::NOT_FOUND, "not on the main listener");
    app.finish().await;
}
