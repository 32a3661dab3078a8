//! POST /api/send-message: every error code through HTTP, the check order, exact limits under
//! concurrency, refunds, idempotency, dry runs, suppression, throttling and the review pause.
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{spawn_app_with, unique_email, Backend, Options, TestApp, PASSWORD};

on_every_database!(
    every_refusal_answers_the_spec,
    checks_run_in_the_documented_order,
    limits_are_exact_under_concurrency,
    concurrent_sends_share_a_transaction_and_keep_their_own_answers,
    failed_sends_give_their_unit_back_and_receipts_move_forward,
    idempotent_retries_send_once,
    dry_runs_count_nothing,
    repeated_content_counts_every_earlier_recipient,
    suppression_through_the_portal,
    throttling_and_the_review_pause,
    media_documents,
    oversized_bodies_and_internal_errors,
    slow_clients_are_cut_off,
    connections_beyond_the_cap_wait_their_turn,
);

/// An account with a key and a linked sandbox instance.
pub(crate) struct Fixture {
    pub(crate) app: TestApp,
    email: String,
    key: String,
    pub(crate) instance: String,
    pub(crate) browser: crate::common::Browser,
}

pub(crate) async fn fixture(backend: Backend, env: Vec<(&'static str, String)>) -> Option<Fixture> {
    let app = spawn_app_with(backend, Options { env, ..Options::default() }).await?;
    let browser = app.browser();
    let email = unique_email("sender");
    browser.signup(&email, PASSWORD).await;
    let key = browser.create_api_key("ERP").await;
    let instance = browser.create_instance("Billing line").await;
    let linked = app
        .api()
        .post(app.url("/api/sandbox/link"))
        .bearer_auth(&key)
        .json(&json!({ "instance_id": instance }))
        .send()
        .await
        .unwrap();
    assert_eq!(linked.status(), StatusCode::OK);
    Some(Fixture { app, email, key, instance, browser })
}

impl Fixture {
    pub(crate) fn body(&self, phone: &str, message: &str) -> Value {
        json!({"instance_id": self.instance, "phone": phone, "message": message, "message_purpose": "transactional"})
    }

    pub(crate) async fn send(&self, body: &Value) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let response = self
            .app
            .api()
            .post(self.app.url("/api/send-message"))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        (status, response.json().await.unwrap_or(Value::Null), headers)
    }

    fn admin(&self, args: &[&str]) {
        let out = self.app.wag(args);
        assert!(out.success, "{args:?}: {out:?}");
    }

    async fn usage_today(&self) -> i64 {
        let account = gateway::accounts::find_by_email(&self.app.conn, &self.email).await.unwrap().unwrap();
        gateway::usage::current(&self.app.conn, account.id, chrono::Utc::now()).await.unwrap().today
    }
}

pub(crate) const OK_TEXT: &str = "Your invoice INV-2041 is ready. Please check your customer portal.";
const SPAM_TEXT: &str = "MEGA SALE!!! 70% off everything, buy now with promo code SAVE70 at bit.ly/deal 🔥🔥🔥";

async fn account_of(f: &Fixture) -> i64 {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    gateway::entities::instance::Entity::find()
        .filter(gateway::entities::instance::Column::Id.eq(f.instance.clone()))
        .one(&f.app.conn)
        .await
        .unwrap()
        .expect("the fixture's instance")
        .account_id
}

async fn policy_summary(f: &Fixture) -> gateway::policy_log::Summary {
    let since = gateway::time::now() - 3600;
    gateway::policy_log::summary(&f.app.conn, account_of(f).await, since).await.unwrap()
}

fn assert_error(status: StatusCode, body: &Value, want_status: StatusCode, code: &str, message: &str) {
    assert_eq!(status, want_status, "{code}: {body}");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert_eq!(body["message"], message, "{body}");
    assert!(body["details"].is_object(), "{body}");
}

async fn every_refusal_answers_the_spec(backend: Backend) {
    let Some(f) = fixture(backend, vec![]).await else { return };
    let url = f.app.url("/api/send-message");
    let api = f.app.api();

    // Success, with the rate-limit headers for the daily quota.
    let (status, body, headers) = f.send(&f.body("+966501234567", OK_TEXT)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["status"], "sent");
    assert!(body["message_id"].as_str().unwrap().starts_with("msg_"));
    assert!(body["log_id"].as_i64().unwrap() > 0);
    assert_eq!(headers["x-ratelimit-limit"], "100");
    assert_eq!(headers["x-ratelimit-remaining"], "99");

    let r = api.post(&url).bearer_auth(&f.key).body(f.body("+966501234567", OK_TEXT).to_string()).send().await.unwrap();
    let s = r.status();
    assert_error(
        s,
        &r.json().await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "This endpoint requires application/json.",
    );
    let r = api.post(&url).json(&f.body("+966501234567", OK_TEXT)).send().await.unwrap();
    let s = r.status();
    assert_error(
        s,
        &r.json().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
        "A valid API key is required.",
    );
    let r = api
        .post(&url)
        .bearer_auth(&f.key)
        .header("content-type", "application/json")
        .body("{\"instance_id\": ")
        .send()
        .await
        .unwrap();
    let s = r.status();
    assert_error(
        s,
        &r.json().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_json",
        "Request body must be valid JSON.",
    );

    let (s, b, _) =
        f.send(&json!({"instance_id": f.instance, "phone": "+9665XXXXXXX", "message_purpose": "transactional"})).await;
    assert_error(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
        "The request payload is missing required fields.",
    );
    assert_eq!(b["details"]["fields"], json!(["phone", "message"]));
    assert!(b["details"]["hints"]["phone"].as_str().unwrap().contains("E.164"));

    let (s, b, _) = f.send(&json!({"instance_id": "inst_nope", "phone": "+966501234567", "message": OK_TEXT, "message_purpose": "transactional"})).await;
    assert_error(
        s,
        &b,
        StatusCode::NOT_FOUND,
        "invalid_instance",
        "The requested instance was not found for this API key.",
    );

    let (s, b, _) = f.send(&json!({"instance_id": f.instance, "phone": "+966501234567", "message": OK_TEXT})).await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "message_purpose_required", "message_purpose is required. Allowed values are transactional, operational, support, internal_team, and authentication.");
    assert_eq!(b["details"]["action"], "block");

    for purpose in ["marketing", "promotion", "cold_outreach", "bulk_campaign", "political", "unknown", "newsletter"] {
        let mut body = f.body("+966501234567", OK_TEXT);
        body["message_purpose"] = json!(purpose);
        let (s, b, _) = f.send(&body).await;
        assert_error(
            s,
            &b,
            StatusCode::UNPROCESSABLE_ENTITY,
            "message_purpose_not_allowed",
            "WA Gateway does not support marketing, cold outreach, political, or bulk campaign messaging.",
        );
        let score = b["details"]["risk_score"].as_i64().unwrap();
        assert!((0..=100).contains(&score));
    }

    let (s, b, _) = f.send(&f.body("+966501234567", SPAM_TEXT)).await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "policy_violation", "This message appears to violate WA Gateway responsible messaging rules. Bulk marketing, spam, and cold outreach are not allowed.");
    assert!(b["details"]["risk_score"].as_i64().unwrap() >= 70);
    assert!(!b["details"]["reasons"].as_array().unwrap().is_empty());

    let token = f.browser.get("/suppressed-recipients").await.csrf_token().unwrap();
    let _ = token;
    f.browser
        .submit(
            "/suppressed-recipients",
            "/_fn/suppressions/add",
            &[("phone", "+966501112233"), ("reason", "recipient_requested_stop")],
        )
        .await;
    let (s, b, _) = f.send(&f.body("+966501112233", OK_TEXT)).await;
    assert_error(
        s,
        &b,
        StatusCode::FORBIDDEN,
        "recipient_suppressed",
        "This recipient has opted out or has been blocked from non-essential messages.",
    );

    let (s, b, _) = f.send(&f.body("+15550000001", OK_TEXT)).await;
    assert_error(s, &b, StatusCode::BAD_GATEWAY, "gateway_send_failed", "The message passed responsible messaging checks, but delivery could not be completed. Please try again or contact support.");
    assert!(b["details"]["log_id"].as_i64().is_some());

    // The customer's own pause has its own code, and is not a policy block: neither logged
    // among the blocked attempts nor counted in the week's "blocked".
    let settings = format!("/instances/{}/manage?tab=settings", f.instance);
    let blocked_before = policy_summary(&f).await.blocked;
    f.browser.submit(&settings, "/_fn/instances/pause", &[("id", f.instance.as_str()), ("paused", "true")]).await;
    let (s, b, _) = f.send(&f.body("+966501234567", OK_TEXT)).await;
    assert_error(s, &b, StatusCode::LOCKED, "instance_paused", "This instance is paused by its owner.");
    assert!(b["details"].get("action").is_none() && b["details"].get("risk_score").is_none(), "{b}");
    assert_eq!(policy_summary(&f).await.blocked, blocked_before, "an own pause is not counted as blocked");
    let account_id = account_of(&f).await;
    let concerns = gateway::policy_log::recent_concerns(&f.app.conn, account_id, None, 100).await.unwrap();
    assert!(concerns.iter().all(|c| c.error_code.as_deref() != Some("instance_paused")), "not policy-logged");
    f.browser.submit(&settings, "/_fn/instances/pause", &[("id", f.instance.as_str()), ("paused", "false")]).await;

    f.admin(&["admin", "set-plan", "--email", &f.email, "--plan", "starter", "--daily-limit", "2"]);
    let (s, _, _) = f.send(&f.body("+966501234568", OK_TEXT)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b, _) = f.send(&f.body("+966501234569", OK_TEXT)).await;
    assert_error(s, &b, StatusCode::TOO_MANY_REQUESTS, "daily_message_limit_exceeded", "Your daily transactional message limit has been reached. Please try again tomorrow or request a higher reviewed limit.");
    assert_eq!(b["details"], json!({"action": "block", "risk_score": 90, "limit": 2, "used": 2}));

    f.admin(&[
        "admin",
        "set-plan",
        "--email",
        &f.email,
        "--plan",
        "starter",
        "--daily-limit",
        "0",
        "--monthly-limit",
        "2",
    ]);
    let (s, b, _) = f.send(&f.body("+966501234569", OK_TEXT)).await;
    assert_error(
        s,
        &b,
        StatusCode::TOO_MANY_REQUESTS,
        "monthly_message_limit_exceeded",
        "Your monthly fair-use message limit has been reached. Please contact support for a reviewed higher limit.",
    );
    assert_eq!(b["details"]["limit"], 2);

    f.admin(&["admin", "set-plan", "--email", &f.email, "--plan", "none"]);
    let (s, b, _) = f.send(&f.body("+966501234569", OK_TEXT)).await;
    assert_error(
        s,
        &b,
        StatusCode::FORBIDDEN,
        "active_plan_required",
        "An active plan is required before sending messages.",
    );

    f.admin(&["admin", "set-module", "--email", &f.email, "--module", "api", "--enabled", "false"]);
    let (s, b, _) = f.send(&f.body("+966501234569", OK_TEXT)).await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "module_not_enabled", "API access is not enabled for this account.");

    f.admin(&["admin", "revoke-api-key", "--key", &f.key]);
    let (s, b, _) = f.send(&f.body("+966501234569", OK_TEXT)).await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "revoked_api_key", "This API key has been revoked.");
    f.app.finish().await;
}

async fn checks_run_in_the_documented_order(backend: Backend) {
    let Some(f) = fixture(backend, vec![]).await else { return };
    // Invalid instance (5) before purpose (6).
    let (_, b, _) = f.send(&json!({"instance_id": "inst_zzz", "phone": "+966501234567", "message": SPAM_TEXT, "message_purpose": "marketing"})).await;
    assert_eq!(b["error"], "invalid_instance");
    // Purpose (6) before suppression (8) and content (9).
    f.browser
        .submit(
            "/suppressed-recipients",
            "/_fn/suppressions/add",
            &[("phone", "+966501112233"), ("reason", "complaint")],
        )
        .await;
    let mut body = f.body("+966501112233", SPAM_TEXT);
    body["message_purpose"] = json!("promotion");
    assert_eq!(f.send(&body).await.1["error"], "message_purpose_not_allowed");
    // Suppression (8) before content (9).
    assert_eq!(f.send(&f.body("+966501112233", SPAM_TEXT)).await.1["error"], "recipient_suppressed");
    // Content (9) before limits (10).
    f.admin(&["admin", "set-plan", "--email", &f.email, "--plan", "starter", "--daily-limit", "1"]);
    assert_eq!(f.send(&f.body("+966501234567", OK_TEXT)).await.0, StatusCode::OK);
    assert_eq!(f.send(&f.body("+966501234567", SPAM_TEXT)).await.1["error"], "policy_violation");
    assert_eq!(f.send(&f.body("+966501234567", OK_TEXT)).await.1["error"], "daily_message_limit_exceeded");
    // Validation (3) before the account checks (4).
    f.admin(&["admin", "set-module", "--email", &f.email, "--module", "api", "--enabled", "false"]);
    assert_eq!(f.send(&json!({"instance_id": f.instance})).await.1["error"], "validation_error");
    assert_eq!(f.send(&f.body("+966501234567", OK_TEXT)).await.1["error"], "module_not_enabled");
    // Content type (1) before the key (2).
    let r = f.app.api().post(f.app.url("/api/send-message")).body("x").send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "unsupported_media_type");
    f.app.finish().await;
}

async fn limits_are_exact_under_concurrency(backend: Backend) {
    let env =
        vec![("WAG_SEND_RATE_PER_MINUTE", "100000".to_string()), ("WAG_NEW_RECIPIENTS_PER_HOUR", "100000".to_string())];
    let Some(f) = fixture(backend, env).await else { return };
    f.admin(&["admin", "set-plan", "--email", &f.email, "--plan", "growth", "--daily-limit", "25"]);
    let mut tasks = Vec::new();
    for i in 0..100 {
        let client = f.app.api();
        let url = f.app.url("/api/send-message");
        let key = f.key.clone();
        let body = f.body("+966501234567", &format!("Your order #{} has shipped.", 5000 + i));
        tasks.push(tokio::spawn(async move {
            client.post(url).bearer_auth(key).json(&body).send().await.unwrap().status()
        }));
    }
    let mut admitted = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::OK => admitted += 1,
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((admitted, refused), (25, 75));
    assert_eq!(f.usage_today().await, 25);
    f.app.finish().await;
}

/// Concurrent sends are admitted in one transaction (group commit): each still gets its own
/// answer, a key used by many at once sends once, and every count matches the rows.
async fn concurrent_sends_share_a_transaction_and_keep_their_own_answers(backend: Backend) {
    let env =
        vec![("WAG_SEND_RATE_PER_MINUTE", "100000".to_string()), ("WAG_NEW_RECIPIENTS_PER_HOUR", "100000".to_string())];
    let Some(f) = fixture(backend, env).await else { return };
    f.browser
        .submit(
            "/suppressed-recipients",
            "/_fn/suppressions/add",
            &[("phone", "+966501112233"), ("reason", "complaint")],
        )
        .await;
    assert_eq!(f.send(&f.body("+966501112233", OK_TEXT)).await.1["error"], "recipient_suppressed");

    let keyed_body = f.body("+966507654321", OK_TEXT);
    let mut tasks = Vec::new();
    for i in 0..60 {
        let client = f.app.api();
        let url = f.app.url("/api/send-message");
        let api_key = f.key.clone();
        let (body, key) = match i % 3 {
            0 => (f.body("+966501112233", &format!("Your order #{} has shipped.", 7000 + i)), None),
            1 => (keyed_body.clone(), Some("same-key-for-all")),
            _ => (f.body(&format!("+9665020{:05}", i), &format!("Your order #{} has shipped.", 7000 + i)), None),
        };
        tasks.push(tokio::spawn(async move {
            let mut request = client.post(url).bearer_auth(api_key).json(&body);
            if let Some(key) = key {
                request = request.header("idempotency-key", key);
            }
            let r = request.send().await.unwrap();
            let replayed = r.headers().get("idempotent-replayed").is_some();
            (i % 3, r.status(), replayed, r.json::<Value>().await.unwrap())
        }));
    }
    let (mut suppressed, mut sent, mut keyed_first, mut keyed_later) = (0, 0, 0, 0);
    for task in tasks {
        let (kind, status, replayed, body) = task.await.unwrap();
        match (kind, status) {
            (0, StatusCode::FORBIDDEN) => {
                assert_eq!(body["error"], "recipient_suppressed");
                suppressed += 1;
            }
            (1, StatusCode::OK) if !replayed => keyed_first += 1,
            (1, StatusCode::OK) => keyed_later += 1,
            (1, StatusCode::CONFLICT) => {
                assert_eq!(body["error"], "idempotency_key_in_progress");
                keyed_later += 1;
            }
            (2, StatusCode::OK) => sent += 1,
            other => panic!("unexpected answer {other:?}: {body}"),
        }
    }
    assert_eq!((suppressed, sent, keyed_first, keyed_later), (20, 20, 1, 19));
    assert_eq!(f.usage_today().await, 21, "one unit per message sent");

    let account = gateway::accounts::find_by_email(&f.app.conn, &f.email).await.unwrap().unwrap();
    let count = |sql: String| {
        let conn = f.app.conn.clone();
        async move {
            use sea_orm::{ConnectionTrait, Statement};
            let row =
                conn.query_one_raw(Statement::from_string(conn.get_database_backend(), sql)).await.unwrap().unwrap();
            row.try_get_by_index::<i64>(0).unwrap()
        }
    };
    let id = account.id;
    assert_eq!(count(format!("SELECT COUNT(*) FROM messages WHERE account_id = {id}")).await, 21);
    assert_eq!(
        count(format!("SELECT COUNT(*) FROM policy_decisions WHERE account_id = {id} AND decision = 'block'")).await,
        21,
        "the refusal before the batch and the 20 in it"
    );
    assert_eq!(
        count(format!(
            "SELECT COUNT(*) FROM policy_decisions WHERE account_id = {id} AND decision = 'allow' AND message_log_id IS NOT NULL"
        ))
        .await,
        21
    );
    let stats = gateway::policy_log::summary(&f.app.conn, id, gateway::time::now() - 3600).await.unwrap();
    assert_eq!((stats.allowed, stats.blocked), (21, 21), "the hourly counts match the decisions");
    // Every message settles with exactly one message.sent.
    let mut waited = 0;
    while count(format!("SELECT COUNT(*) FROM messages WHERE account_id = {id} AND status = 'accepted'")).await > 0 {
        waited += 1;
        assert!(waited < 200, "messages stayed accepted");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        count(format!("SELECT COUNT(*) FROM events WHERE account_id = {id} AND kind = 'message.sent'")).await,
        21
    );

    // Many keys settled together: each keeps its own message's answer.
    let send_keyed = |i: usize| {
        let (client, url, api_key) = (f.app.api(), f.app.url("/api/send-message"), f.key.clone());
        let body = f.body(&format!("+9665030{i:05}"), &format!("Your order #{} has shipped.", 8000 + i));
        tokio::spawn(async move {
            let r = client.post(url).bearer_auth(api_key).header("idempotency-key", format!("own-key-{i}")).json(&body);
            let r = r.send().await.unwrap();
            let replayed = r.headers().get("idempotent-replayed").is_some();
            (r.status(), replayed, r.json::<Value>().await.unwrap())
        })
    };
    let mut first = Vec::new();
    for task in (0..30).map(send_keyed).collect::<Vec<_>>() {
        let (status, replayed, body) = task.await.unwrap();
        assert_eq!((status, replayed), (StatusCode::OK, false), "{body}");
        first.push(body["message_id"].as_str().unwrap().to_string());
    }
    for (i, task) in (0..30).map(send_keyed).collect::<Vec<_>>().into_iter().enumerate() {
        let (status, replayed, body) = task.await.unwrap();
        assert_eq!((status, replayed), (StatusCode::OK, true), "{body}");
        assert_eq!(body["message_id"], first[i].as_str(), "key own-key-{i} answers its own message");
    }
    assert_eq!(f.usage_today().await, 51, "the replays took nothing");
    f.app.finish().await;
}

async fn failed_sends_give_their_unit_back_and_receipts_move_forward(backend: Backend) {
    let Some(f) = fixture(backend, vec![]).await else { return };
    let (s, b, _) = f.send(&f.body("+15550000001", OK_TEXT)).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY);
    assert_eq!(f.usage_today().await, 0, "the unit is given back");
    let failed_log = b["details"]["log_id"].as_i64().unwrap();

    let (_, read, _) = f.send(&f.body("+966501234567", OK_TEXT)).await;
    let (_, later, _) = f.send(&f.body("+15550000002", OK_TEXT)).await;
    let (_, unread, _) = f.send(&f.body("+15550000003", OK_TEXT)).await;
    assert_eq!(f.usage_today().await, 3);

    let status_of = |log_id: i64| {
        let conn = f.app.conn.clone();
        async move {
            use sea_orm::EntityTrait;
            gateway::entities::message::Entity::find_by_id(log_id).one(&conn).await.unwrap().unwrap().status
        }
    };
    let mut waited = 0;
    loop {
        let done = status_of(read["log_id"].as_i64().unwrap()).await == "read"
            && status_of(later["log_id"].as_i64().unwrap()).await == "failed"
            && status_of(unread["log_id"].as_i64().unwrap()).await == "delivered";
        if done {
            break;
        }
        waited += 1;
        assert!(waited < 200, "receipts did not arrive");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(status_of(failed_log).await, "failed");
    // A late delivery receipt does not move "read" back.
    use sea_orm::EntityTrait;
    let row = gateway::entities::message::Entity::find_by_id(read["log_id"].as_i64().unwrap())
        .one(&f.app.conn)
        .await
        .unwrap()
        .unwrap();
    let changed = gateway::message_log::apply_receipt(
        &f.app.conn,
        &f.instance,
        row.provider_message_id.as_deref().unwrap(),
        gateway::connectors::DeliveryStatus::Delivered,
    )
    .await
    .unwrap();
    assert_eq!(changed, None);
    f.app.finish().await;
}

async fn idempotent_retries_send_once(backend: Backend) {
    let Some(f) = fixture(backend, vec![]).await else { return };
    let send = |key: &'static str, body: Value| {
        let client = f.app.api();
        let url = f.app.url("/api/send-message");
        let api_key = f.key.clone();
        async move {
            let r =
                client.post(url).bearer_auth(api_key).header("idempotency-key", key).json(&body).send().await.unwrap();
            let replayed = r.headers().get("idempotent-replayed").is_some();
            (r.status(), replayed, r.json::<Value>().await.unwrap())
        }
    };
    let (s1, replayed1, first) = send("order-2041-shipped", f.body("+966501234567", OK_TEXT)).await;
    let (s2, replayed2, second) = send("order-2041-shipped", f.body("+966501234567", OK_TEXT)).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert!(!replayed1 && replayed2);
    assert_eq!(first, second, "the retry answers the first response");

    // The same JSON written differently (keys in reverse order, other whitespace) is the same
    // request: it is answered from the key too.
    let body = f.body("+966501234567", OK_TEXT);
    let reordered: Vec<String> = body
        .as_object()
        .unwrap()
        .iter()
        .rev()
        .map(|(k, v)| {
            format!("\n  {} :  {}", serde_json::to_string(k).unwrap(), serde_json::to_string_pretty(v).unwrap())
        })
        .collect();
    let text = format!("{{{}\n}}", reordered.join(" ,"));
    assert_ne!(text, serde_json::to_string(&body).unwrap());
    let r = f
        .app
        .api()
        .post(f.app.url("/api/send-message"))
        .bearer_auth(&f.key)
        .header("idempotency-key", "order-2041-shipped")
        .header("content-type", "application/json")
        .body(text)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), first, "answered from the key, not refused as another request");
    assert_eq!(f.usage_today().await, 1, "counted once");
    use sea_orm::{EntityTrait, PaginatorTrait};
    assert_eq!(gateway::entities::message::Entity::find().count(&f.app.conn).await.unwrap(), 1, "sent once");

    let (s, _, other) = send("order-2041-shipped", f.body("+966509999999", OK_TEXT)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other["error"], "idempotency_key_reused");

    // While the first request with a key is still running, a second one waits its turn.
    let account = gateway::accounts::find_by_email(&f.app.conn, &f.email).await.unwrap().unwrap();
    let in_flight = f.body("+966507777777", OK_TEXT);
    let keyed = gateway::send::idempotency::KeyedRequest::new(
        "still-running".into(),
        serde_json::to_string(&in_flight).unwrap().as_bytes(),
    );
    assert!(gateway::send::idempotency::claim(&f.app.conn, account.id, &keyed).await.unwrap());
    let (s, _, busy) = send("still-running", in_flight).await;
    assert_eq!((s, busy["error"].as_str()), (StatusCode::CONFLICT, Some("idempotency_key_in_progress")));
    assert_eq!(busy["message"], "A request with this Idempotency-Key is still being processed. Retry in a moment.");

    // A refused request does not hold its key: after the fix the same key sends.
    let (s, _, refused) = send("retry-after-fix", f.body("+966501234567", SPAM_TEXT)).await;
    assert_eq!((s, refused["error"].as_str()), (StatusCode::FORBIDDEN, Some("policy_violation")));
    let (s, _, _) = send("retry-after-fix", f.body("+966501234567", SPAM_TEXT)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    f.app.finish().await;
}

/// The same text to many recipients is what a broadcast looks like: from the 11th distinct
/// recipient in a day, a send carries `repeated_content`. Admissions count what committed
/// before them and, sent concurrently, each other within their batch.
async fn repeated_content_counts_every_earlier_recipient(backend: Backend) {
    let Some(f) = fixture(backend, vec![]).await else { return };
    // Six one by one (each admission reads what committed before it), then six at once.
    for i in 0..6 {
        assert_eq!(f.send(&f.body(&format!("+96650123{i:04}"), OK_TEXT)).await.0, StatusCode::OK);
    }
    let fixture = &f;
    let sends = (6..12).map(|i| {
        let body = fixture.body(&format!("+96650123{i:04}"), OK_TEXT);
        async move { fixture.send(&body).await.0 }
    });
    for status in futures::future::join_all(sends).await {
        assert_eq!(status, StatusCode::OK);
    }
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let decisions = gateway::entities::policy_decision::Entity::find()
        .filter(gateway::entities::policy_decision::Column::Decision.ne("block"))
        .all(&f.app.conn)
        .await
        .unwrap();
    assert_eq!(decisions.len(), 12);
    let repeated = decisions.iter().filter(|d| d.reasons.contains("repeated_content")).count();
    assert_eq!(repeated, 2, "the 11th and 12th recipients, whatever the batches: {decisions:?}");

    let (s, b, _) = f.send(&f.body("+966509999999", "Your appointment is confirmed for Tuesday at 10:00.")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let mut again = f.body("+966508888888", OK_TEXT);
    again["dry_run"] = json!(true);
    let (s, b, _) = f.send(&again).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let reasons = b["reasons"].as_array().unwrap();
    let repeated = reasons.iter().find(|r| r["code"] == "repeated_content").expect("a dry run counts them too");
    assert!(repeated["detail"].as_str().unwrap().contains("12 different recipients"), "{repeated}");
    f.app.finish().await;
}

async fn dry_runs_count_nothing(backend: Backend) {
    let Some(f) = fixture(backend, vec![]).await else { return };
    let mut body = f.body("+966501234567", OK_TEXT);
    body["dry_run"] = json!(true);
    let (s, b, _) = f.send(&body).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "dry_run");
    assert_eq!(b["decision"], "allow");
    assert!(b["error"].is_null());
    let mut spam = f.body("+966501234567", SPAM_TEXT);
    spam["dry_run"] = json!(true);
    let (s, b, _) = f.send(&spam).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["decision"], "block");
    assert_eq!(b["error"], "policy_violation");
    assert!(b["risk_score"].as_i64().unwrap() >= 70);
    assert!(!b["reasons"].as_array().unwrap().is_empty());
    assert_eq!(f.usage_today().await, 0);
    use sea_orm::{EntityTrait, PaginatorTrait};
    assert_eq!(gateway::entities::message::Entity::find().count(&f.app.conn).await.unwrap(), 0);
    assert_eq!(gateway::entities::policy_decision::Entity::find().count(&f.app.conn).await.unwrap(), 0);
    let mut elsewhere = body.clone();
    elsewhere["instance_id"] = json!("inst_nope");
    let (s, b, _) = f.send(&elsewhere).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("invalid_instance")),
        "caller problems stay errors"
    );
    let mut bad = body.clone();
    bad["dry_run"] = json!("yes");
    assert_eq!(f.send(&bad).await.1["details"]["fields"], json!(["dry_run"]));
    f.app.finish().await;
}

async fn suppression_through_the_portal(backend: Backend) {
    let Some(f) = fixture(backend, vec![]).await else { return };
    let page = f.browser.get("/suppressed-recipients").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("No suppressed recipients."));
    let bad = f
        .browser
        .submit("/suppressed-recipients", "/_fn/suppressions/add", &[("phone", "0501234567"), ("reason", "complaint")])
        .await;
    assert_eq!(bad.location.as_deref(), Some("/suppressed-recipients"));
    assert!(f.browser.get("/suppressed-recipients").await.body.contains("international format"));

    f.browser
        .submit(
            "/suppressed-recipients",
            "/_fn/suppressions/add",
            &[("phone", "+966 50 111 2233"), ("reason", "complaint")],
        )
        .await;
    let listed = f.browser.get("/suppressed-recipients").await;
    assert!(listed.body.contains("+966501112233"));
    assert!(f.browser.get("/suppressed-recipients?q=1112").await.body.contains("+966501112233"));
    let none = f.browser.get("/suppressed-recipients?q=9999").await.body;
    assert!(none.contains("No suppressed recipients."), "a search without matches lists nothing");
    assert_eq!(f.send(&f.body("+966501112233", OK_TEXT)).await.1["error"], "recipient_suppressed");

    let marker = "name=\"id\" value=\"";
    let start = listed.body.find(marker).unwrap() + marker.len();
    let id = listed.body[start..start + listed.body[start..].find('"').unwrap()].to_string();
    f.browser.submit("/suppressed-recipients", "/_fn/suppressions/remove", &[("id", id.as_str())]).await;
    let after = f.browser.get("/suppressed-recipients").await;
    assert!(after.body.contains("removed"), "the change log lists the removal");
    assert_eq!(f.send(&f.body("+966501112233", OK_TEXT)).await.0, StatusCode::OK);

    // Another account cannot remove this account's entries.
    f.browser
        .submit(
            "/suppressed-recipients",
            "/_fn/suppressions/add",
            &[("phone", "+966501112233"), ("reason", "complaint")],
        )
        .await;
    let listed = f.browser.get("/suppressed-recipients").await;
    let start = listed.body.find(marker).unwrap() + marker.len();
    let id = listed.body[start..start + listed.body[start..].find('"').unwrap()].to_string();
    let other = f.app.browser();
    other.signup(&unique_email("other"), PASSWORD).await;
    let posted = other.submit("/suppressed-recipients", "/_fn/suppressions/remove", &[("id", id.as_str())]).await;
    assert!(other.get(posted.location.as_deref().unwrap()).await.body.contains("Not found."));
    assert_eq!(f.send(&f.body("+966501112233", OK_TEXT)).await.1["error"], "recipient_suppressed");
    f.app.finish().await;
}

async fn throttling_and_the_review_pause(backend: Backend) {
    let env = vec![
        ("WAG_SEND_RATE_PER_MINUTE", "3".to_string()),
        ("WAG_NEW_RECIPIENTS_PER_HOUR", "2".to_string()),
        ("WAG_REVIEW_PAUSE_BLOCKS", "2".to_string()),
    ];
    let Some(f) = fixture(backend, env).await else { return };
    // New recipients per hour: the third new number waits; a known one still goes.
    assert_eq!(f.send(&f.body("+966501234561", OK_TEXT)).await.0, StatusCode::OK);
    assert_eq!(f.send(&f.body("+966501234562", OK_TEXT)).await.0, StatusCode::OK);
    let (s, b, headers) = f.send(&f.body("+966501234563", OK_TEXT)).await;
    let minute_rolled = s == StatusCode::OK; // the minute window may roll between sends; then skip the rest of this part
    if !minute_rolled {
        assert_error(
            s,
            &b,
            StatusCode::TOO_MANY_REQUESTS,
            "sending_throttled",
            "Sending speed has been temporarily limited to protect gateway reliability and prevent bulk messaging.",
        );
        let retry: i64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=3600).contains(&retry));
        assert_eq!(f.usage_today().await, 2, "the refused send gave its unit back");
    }
    // Messages per minute: 3 admitted in a minute at most. Eight quick sends cross at most one
    // minute boundary, so at most six can pass.
    let mut throttled = false;
    for _ in 0..8 {
        let (s, b, h) = f.send(&f.body("+966501234561", OK_TEXT)).await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(b["error"], "sending_throttled");
            assert!(h.get("retry-after").is_some());
            throttled = true;
        }
    }
    assert!(throttled, "the per-minute speed limit holds");

    // Review pause: two policy blocks pause the instance; only an operator lifts it.
    for _ in 0..2 {
        assert_eq!(f.send(&f.body("+966501234561", SPAM_TEXT)).await.1["error"], "policy_violation");
    }
    let (s, b, _) = f.send(&f.body("+966501234561", OK_TEXT)).await;
    assert_error(
        s,
        &b,
        StatusCode::LOCKED,
        "instance_paused_for_review",
        "This instance has been paused for responsible messaging review",
    );
    let settings = f.browser.get(&format!("/instances/{}/manage?tab=settings", f.instance)).await;
    assert!(settings.body.contains("review"), "the customer sees why");
    let queue = f.app.wag(&["admin", "review-queue"]);
    assert!(queue.success && queue.stdout.contains(&f.instance) && queue.stdout.contains("policy blocks"), "{queue:?}");
    let resume = f.app.wag(&["admin", "resume-instance", "--instance", &f.instance]);
    assert!(resume.success && resume.stdout.contains("resumed"), "{resume:?}");
    assert_ne!(f.send(&f.body("+966501234561", OK_TEXT)).await.1["error"], "instance_paused_for_review");
    f.admin(&["admin", "pause-instance", "--instance", &f.instance, "--reason", "Complaint under review"]);
    assert_eq!(f.send(&f.body("+966501234561", OK_TEXT)).await.1["error"], "instance_paused_for_review");
    // Paused both ways, the review pause answers.
    let settings = format!("/instances/{}/manage?tab=settings", f.instance);
    f.browser.submit(&settings, "/_fn/instances/pause", &[("id", f.instance.as_str()), ("paused", "true")]).await;
    assert_eq!(f.send(&f.body("+966501234561", OK_TEXT)).await.1["error"], "instance_paused_for_review");
    let unknown = f.app.wag(&["admin", "pause-instance", "--instance", "inst_nope", "--reason", "x"]);
    assert!(!unknown.success && unknown.stderr.contains("No instance"));

    let page = f.browser.get("/responsible-messaging").await;
    assert!(page.body.contains("policy_violation") && page.body.contains("sending_throttled"));
    assert!(!page.body.contains("+966501234561"), "recipients are masked");
    f.app.finish().await;
}

async fn media_documents(backend: Backend) {
    let Some(f) = fixture(backend, vec![]).await else { return };
    let pdf = "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoKdHJhaWxlcjw8L1Jvb3QgMSAwIFI+Pgo=";
    let mut body = f.body("+966501234567", "Your invoice INV-2041 is attached.");
    body["media_type"] = json!("document");
    body["mime_type"] = json!("application/pdf");
    body["file_name"] = json!("INV-2041.pdf");
    body["media"] = json!(pdf);
    let (s, b, _) = f.send(&body).await;
    assert_eq!(s, StatusCode::OK, "{b}");

    let mut wrong = body.clone();
    wrong["mime_type"] = json!("image/png");
    wrong["file_name"] = json!("../x.pdf");
    wrong["media"] = json!("%%%");
    let (s, b, _) = f.send(&wrong).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(b["details"]["fields"], json!(["mime_type", "file_name", "media"]));

    // Media URLs: https only, and never the gateway's own network.
    let mut by_url = body.clone();
    by_url["media"] = json!("http://example.com/INV-2041.pdf");
    let (s, b, _) = f.send(&by_url).await;
    assert_eq!((s, b["details"]["fields"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!(["media"])));
    assert!(b["details"]["hints"]["media"].as_str().unwrap().contains("https://"), "{b}");
    by_url["media"] = json!("https://localhost:9/INV-2041.pdf");
    let (_, b, _) = f.send(&by_url).await;
    assert!(b["details"]["hints"]["media"].as_str().unwrap().contains("private"), "{b}");

    let mut no_caption = body.clone();
    no_caption.as_object_mut().unwrap().remove("message");
    assert_eq!(f.send(&no_caption).await.0, StatusCode::OK, "the caption is optional with media");
    let mut kind = body.clone();
    kind["media_type"] = json!("sticker");
    assert_eq!(f.send(&kind).await.1["details"]["fields"], json!(["media_type"]));
    f.app.finish().await;
}

async fn oversized_bodies_and_internal_errors(backend: Backend) {
    let Some(f) = fixture(backend, vec![]).await else { return };
    // The server may answer before the client has written all 26 MB and close the connection,
    // so the request is written raw and the answer read whatever happens to the rest.
    let (status, body) = post_raw_oversized(&f.app.base, &f.key, 26 * 1024 * 1024).await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "The request body is too large.");
    assert_eq!(f.send(&f.body("+966501234567", OK_TEXT)).await.0, StatusCode::OK, "the server keeps answering");

    // The content type and the key are judged from the headers alone: a request that declares a
    // 20 MB body and sends 1 KB of it is answered at once, its body never waited for.
    let json = "Content-Type: application/json\r\n";
    let bearer = format!("Authorization: Bearer {}\r\n", f.key);
    for (path, headers, declared, status, code) in [
        ("/api/send-message", json.to_string(), 20 << 20, StatusCode::UNAUTHORIZED, "invalid_api_key"),
        (
            "/api/send-message",
            format!("{json}Authorization: Bearer wag_live_nope\r\n"),
            20 << 20,
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
        ),
        (
            "/api/send-message",
            format!("Content-Type: text/plain\r\n{bearer}"),
            20 << 20,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        ("/api/send-message", format!("{json}{bearer}"), 30 << 20, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        ("/api/sandbox/inbound", json.to_string(), 20 << 20, StatusCode::UNAUTHORIZED, "invalid_api_key"),
        (
            "/api/sandbox/inbound",
            format!("{json}{bearer}"),
            3 << 20,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ] {
        let (answered, body) = post_partial(&f.app.base, path, &headers, declared).await;
        assert_eq!((answered, body["error"].as_str()), (status, Some(code)), "{path} {headers}");
    }

    // A broken database answers the spec's internal_error, without SQL or table names.
    use sea_orm::ConnectionTrait;
    f.app.conn.execute_unprepared("DROP TABLE suppressions").await.unwrap();
    let (s, b, _) = f.send(&f.body("+966501234567", OK_TEXT)).await;
    assert_error(
        s,
        &b,
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "The request could not be processed. Please try again or contact support.",
    );
    let text = b.to_string().to_lowercase();
    assert!(!text.contains("suppressions") && !text.contains("sql") && !text.contains("table"), "{text}");
    f.app.finish().await;
}

/// POSTs `headers` declaring a body of `declared` bytes but writes only its first kilobyte, then
/// waits (at most 10 s) for a whole answer: one only comes if the server answers without the body.
async fn post_partial(base: &str, path: &str, headers: &str, declared: usize) -> (StatusCode, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {declared}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[b'{'; 1024]).await.unwrap();
    let mut response = Vec::new();
    let complete = |r: &[u8]| {
        let text = String::from_utf8_lossy(r);
        let Some((head, body)) = text.split_once("\r\n\r\n") else { return false };
        let length = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
            .and_then(|v| v.parse::<usize>().ok());
        length.is_some_and(|n| body.len() >= n)
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut chunk = [0u8; 4096];
        while !complete(&response) {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => response.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status: u16 = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").and_then(|(_, b)| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
    (StatusCode::from_u16(status).unwrap_or(StatusCode::REQUEST_TIMEOUT), body)
}

/// POSTs a JSON body of `size` bytes over a plain socket: the body is written in the background
/// (write errors ignored, as the server may stop reading), and the answer is read meanwhile.
async fn post_raw_oversized(base: &str, key: &str, size: usize) -> (StatusCode, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST /api/send-message HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    let writing = tokio::spawn(async move {
        if writer.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = vec![b'a'; 64 * 1024];
        let mut sent = 0;
        while sent < size {
            let n = chunk.len().min(size - sent);
            if writer.write_all(&chunk[..n]).await.is_err() {
                return;
            }
            sent += n;
        }
    });
    let mut response = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(60), reader.read_to_end(&mut response)).await;
    writing.abort();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status: u16 = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let json_start = text.find('{').unwrap_or(text.len());
    let json_end = text.rfind('}').map(|i| i + 1).unwrap_or(text.len());
    let body = serde_json::from_str(&text[json_start..json_end.max(json_start)]).unwrap_or(Value::Null);
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body)
}

/// Headers trickled or never finished, and a body trickled a byte at a time, do not hold a
/// connection past the documented timeouts (here 1 s for headers, 5 s for a whole request).
async fn slow_clients_are_cut_off(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = vec![
        ("WAG_HEADER_TIMEOUT_SECS", "1".to_string()),
        ("WAG_SEND_TIMEOUT_SECS", "2".to_string()),
        ("WAG_REQUEST_TIMEOUT_SECS", "5".to_string()),
    ];
    let Some(f) = fixture(backend, env).await else { return };
    let addr = f.app.base.trim_start_matches("http://").to_string();

    // Headers that never end, a connection that never sends a request, and a kept-alive one
    // idle after its first answer: the server hangs up on each.
    let partial = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n");
    let whole = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    for (case, sent) in [("unfinished headers", partial.as_str()), ("nothing", ""), ("one request", whole.as_str())] {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        stream.write_all(sent.as_bytes()).await.unwrap();
        let mut buffer = [0u8; 1024];
        let closed = tokio::time::timeout(Duration::from_secs(8), async {
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the connection that sent {case} is closed");
    }

    // A body trickled one byte every half second: answered 408 once the request timeout passes.
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/send-message HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
        f.key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            if writer.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        let mut chunk = [0u8; 1024];
        loop {
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    response.extend_from_slice(&chunk[..n]);
                    if String::from_utf8_lossy(&response).contains("request_timeout") {
                        return;
                    }
                }
            }
        }
    })
    .await;
    trickle.abort();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408"), "a trickled body is cut off with 408: {text:?}");
    assert!(text.contains(r#""error":"request_timeout""#), "in the API's error shape: {text:?}");

    // The server keeps answering everyone else.
    assert_eq!(f.send(&f.body("+966501234567", OK_TEXT)).await.0, StatusCode::OK);
    f.app.finish().await;
}

/// With WAG_MAX_CONNECTIONS open, the next connection is not served until one of them closes.
async fn connections_beyond_the_cap_wait_their_turn(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = vec![("WAG_MAX_CONNECTIONS", "2".to_string()), ("WAG_HEADER_TIMEOUT_SECS", "30".to_string())];
    let Some(app) = spawn_app_with(backend, Options { env, ..Options::default() }).await else { return };
    let addr = app.base.trim_start_matches("http://").to_string();
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    async fn answered(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
        let mut buffer = [0u8; 1024];
        matches!(tokio::time::timeout(within, stream.read(&mut buffer)).await, Ok(Ok(n)) if n > 0)
    }
    // Two kept-alive connections hold both slots (the harness's own client holds none now).
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        assert!(answered(&mut stream, Duration::from_secs(5)).await);
        held.push(stream);
    }
    let mut third = tokio::net::TcpStream::connect(&addr).await.unwrap();
    third.write_all(request.as_bytes()).await.unwrap();
    assert!(!answered(&mut third, Duration::from_secs(1)).await, "a third connection was served");
    drop(held.pop());
    assert!(answered(&mut third, Duration::from_secs(5)).await, "served once a slot was free");
    drop(held);
    app.finish().await;
}
