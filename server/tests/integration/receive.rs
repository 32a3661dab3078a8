//! The inbound path through the sandbox: inbound logs, opt-outs, conversations, calls, groups,
//! and every normalized event, read back through GET /api/events.
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{spawn_app, unique_email, Backend, Browser, TestApp, PASSWORD};

on_every_database!(
    every_event_kind_is_produced_where_it_happens,
    simulated_inbound_fields_of_the_wrong_type_are_refused,
    opt_out_requests_suppress_the_sender,
    events_page_in_order_per_account,
    inbound_logs_filter_and_page_by_keyset,
    the_message_log_shows_statuses_and_failure_rates,
);

/// Only where transactions write events side by side (SQLite commits one writer at a time, in
/// id order, so nothing can commit late there).
mod an_event_that_commits_late_is_not_passed_over {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        crate::common::within_limit(super::an_event_that_commits_late_is_not_passed_over(
            crate::common::Backend::Postgres,
        ))
        .await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mysql() {
        crate::common::within_limit(super::an_event_that_commits_late_is_not_passed_over(crate::common::Backend::Mysql))
            .await
    }
}

struct Account {
    browser: Browser,
    key: String,
    instance: String,
}

async fn account(app: &TestApp, tag: &str) -> Account {
    let browser = app.browser();
    browser.signup(&unique_email(tag), PASSWORD).await;
    let key = browser.create_api_key("Integration").await;
    let instance = browser.create_instance("Support line").await;
    Account { browser, key, instance }
}

async fn post(app: &TestApp, key: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let r = app.api().post(app.url(path)).bearer_auth(key).json(&body).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// One page of `GET /api/events`.
async fn events_page(app: &TestApp, key: &str, after: &str, limit: u32) -> Value {
    let r = app
        .api()
        .get(app.url(&format!("/api/events?after={after}&limit={limit}")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn events(app: &TestApp, key: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let page = events_page(app, key, &cursor, 500).await;
        all.extend(page["events"].as_array().unwrap().iter().cloned());
        cursor = page["next_cursor"].as_str().unwrap().to_string();
        if !page["has_more"].as_bool().unwrap() {
            return all;
        }
    }
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

/// The document says which type each field of POST /api/sandbox/inbound has; a field of
/// another type is a validation_error naming it, not silently ignored (schemathesis's
/// negative-data check, end2end/openapi-conformance.sh).
async fn simulated_inbound_fields_of_the_wrong_type_are_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let a = account(&app, "inbound-types").await;
    assert_eq!(post(&app, &a.key, "/api/sandbox/link", json!({"instance_id": a.instance})).await.0, StatusCode::OK);
    let base = json!({"instance_id": a.instance, "from": "+966501234567", "message": "hi"});
    for (field, value) in [
        ("mime_type", json!(5)),
        ("file_name", json!(["a.pdf"])),
        ("group_id", json!({})),
        ("media_size", json!("48213")),
        ("media_size", json!(-1)),
        ("media_size", json!(1.5)),
        ("media_type", json!("")),
        ("media_type", json!("sticker")),
        ("message", json!(5)),
    ] {
        let mut body = base.clone();
        body[field] = value.clone();
        let (s, answer) = post(&app, &a.key, "/api/sandbox/inbound", body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {value}: {answer}");
        assert_eq!(answer["details"]["fields"], json!([field]), "{field}: {value}");
    }
    // Null is absent; blank optional strings are absent too.
    let mut body = base.clone();
    for field in ["mime_type", "file_name", "group_id", "media_size", "media_type"] {
        body[field] = Value::Null;
    }
    body["group_id"] = json!("  ");
    body["media_size"] = json!(1024.0);
    let (s, answer) = post(&app, &a.key, "/api/sandbox/inbound", body).await;
    assert_eq!(s, StatusCode::OK, "{answer}");
    let (s, answer) = post(
        &app,
        &a.key,
        "/api/sandbox/inbound",
        json!({"instance_id": a.instance, "from": "+966501234567", "media_type": "image", "message": null}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "media without a caption: {answer}");
}

async fn every_event_kind_is_produced_where_it_happens(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let a = account(&app, "events").await;
    // QR codes are reported once the instance's connect tab opens its session.
    a.browser.get(&format!("/instances/{}/manage?tab=connect", a.instance)).await;
    let (s, _) = post(
        &app,
        &a.key,
        "/api/sandbox/inbound",
        json!({"instance_id": a.instance, "from": "+966501234567", "message": "hi"}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "an unlinked instance receives nothing");
    assert_eq!(post(&app, &a.key, "/api/sandbox/link", json!({"instance_id": a.instance})).await.0, StatusCode::OK);

    let (s, body) = post(
        &app,
        &a.key,
        "/api/sandbox/inbound",
        json!({"instance_id": a.instance, "from": "+966501234567", "message": "Where is my order #2041?"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    post(
        &app,
        &a.key,
        "/api/sandbox/inbound",
        json!({
            "instance_id": a.instance, "from": "+966501234568", "message": "Receipt attached",
            "media_type": "document", "mime_type": "application/pdf", "file_name": "receipt.pdf", "media_size": 48213
        }),
    )
    .await;
    post(&app, &a.key, "/api/sandbox/inbound", json!({"instance_id": a.instance, "from": "+966501234569", "message": "Team lunch at 1", "group_id": "120363@g.us"})).await;
    post(
        &app,
        &a.key,
        "/api/sandbox/inbound",
        json!({"instance_id": a.instance, "from": "+966501239999", "message": "STOP"}),
    )
    .await;
    assert_eq!(
        post(
            &app,
            &a.key,
            "/api/sandbox/call",
            json!({"instance_id": a.instance, "from": "+966501234567", "status": "received"})
        )
        .await
        .0,
        StatusCode::OK
    );
    post(
        &app,
        &a.key,
        "/api/sandbox/call",
        json!({"instance_id": a.instance, "from": "+966501234567", "status": "missed"}),
    )
    .await;
    let (s, b) = post(
        &app,
        &a.key,
        "/api/sandbox/call",
        json!({"instance_id": a.instance, "from": "+966501234567", "status": "busy"}),
    )
    .await;
    assert_eq!((s, b["details"]["fields"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!(["status"])));

    let send = |to: &str| {
        post(
            &app,
            &a.key,
            "/api/send-message",
            json!({"instance_id": a.instance, "phone": to, "message": "Your order #2041 has shipped.", "message_purpose": "transactional"}),
        )
    };
    assert_eq!(send("+966501234567").await.0, StatusCode::OK);
    assert_eq!(send("+15550000002").await.0, StatusCode::OK);
    assert_eq!(send("+15550000001").await.0, StatusCode::BAD_GATEWAY);

    assert_eq!(
        post(&app, &a.key, "/api/sandbox/disconnect", json!({"instance_id": a.instance})).await.1["status"],
        "disconnected"
    );
    assert_eq!(
        post(&app, &a.key, "/api/sandbox/reconnect", json!({"instance_id": a.instance})).await.1["status"],
        "connected"
    );
    // Group changes come from a connector; the sandbox reports one through the registry.
    let instance = gateway::instances::find_for_connector(&app.conn, &a.instance).await.unwrap().unwrap();
    gateway::inbound::group_updated(&app.conn, &instance, "120363@g.us", "subject changed").await.unwrap();

    // Receipts arrive by themselves after the sandbox's delay.
    let mut all = Vec::new();
    for _ in 0..200 {
        all = events(&app, &a.key).await;
        if of_kind(&all, "message.read").len() == 1
            && !of_kind(&all, "message.delivered").is_empty()
            && of_kind(&all, "message.failed").len() == 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    for kind in gateway::events::EventKind::ALL {
        assert!(
            !of_kind(&all, kind.as_str()).is_empty(),
            "no {} event among {:?}",
            kind.as_str(),
            all.iter().map(|e| e["event"].clone()).collect::<Vec<_>>()
        );
    }
    for event in &all {
        assert!(event["event_id"].as_str().unwrap().starts_with("evt_"));
        assert_eq!(event["instance_id"], a.instance.as_str());
        assert_eq!(event["instance_name"], "Support line");
        assert!(event["timestamp"].as_str().unwrap().ends_with('Z'));
    }
    let received = of_kind(&all, "message.received");
    assert_eq!(received.len(), 3);
    assert_eq!(received[0]["from"], "+966501234567");
    assert_eq!(received[0]["text"], "Where is my order #2041?");
    assert_eq!(received[1]["type"], "document");
    assert_eq!(received[1]["mime_type"], "application/pdf");
    assert_eq!(of_kind(&all, "group.message_received")[0]["group_id"], "120363@g.us");
    assert_eq!(of_kind(&all, "conversation.updated").len(), 3, "group messages open no conversation");
    assert_eq!(of_kind(&all, "call.missed")[0]["from"], "+966501234567");
    assert_eq!(of_kind(&all, "instance.connected")[0]["phone"].as_str().unwrap().len(), 12);
    assert!(of_kind(&all, "instance.qr_updated")[0]["qr_code"].as_str().unwrap().starts_with("wag-sandbox:"));
    let sent = of_kind(&all, "message.sent");
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0]["to"], "+966501234567");
    let failed = of_kind(&all, "message.failed");
    assert!(failed.iter().any(|e| e["to"] == "+15550000001"), "a send the provider refused");
    assert!(failed.iter().any(|e| e["to"] == "+15550000002"), "a send reported failed later");
    let statuses: Vec<_> = of_kind(&all, "message.status_updated")
        .iter()
        .filter(|e| e["to"] == "+966501234567")
        .map(|e| e["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("sent"), json!("delivered"), json!("read")]);

    let log = a.browser.get("/inbound-logs").await;
    assert!(
        log.body.contains("Where is my order #2041?")
            && log.body.contains("receipt.pdf")
            && log.body.contains("group 120363@g.us")
    );
    app.finish().await;
}

async fn opt_out_requests_suppress_the_sender(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let a = account(&app, "optout").await;
    post(&app, &a.key, "/api/sandbox/link", json!({"instance_id": a.instance})).await;
    let inbound = |from: &'static str, text: &'static str| {
        post(&app, &a.key, "/api/sandbox/inbound", json!({"instance_id": a.instance, "from": from, "message": text}))
    };
    inbound("+966501110001", "Please stop by the branch tomorrow").await;
    inbound("+966501110002", "  Stop!! ").await;
    inbound("+966501110003", "إلغاء الاشتراك").await;

    let all = events(&app, &a.key).await;
    let opted: Vec<_> = of_kind(&all, "recipient.opted_out");
    assert_eq!(opted.len(), 2, "an ordinary sentence with 'stop' is not an opt-out");
    let first = opted[0].as_object().unwrap();
    let mut keys: Vec<_> = first.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["event", "event_id", "from", "instance_id", "instance_name", "message_text", "reason", "timestamp"]
    );
    assert_eq!(first["from"], "+966501110002");
    assert_eq!(first["reason"], "recipient_requested_stop");
    assert_eq!(first["message_text"], "  Stop!! ");

    let send = |to: &'static str| {
        post(
            &app,
            &a.key,
            "/api/send-message",
            json!({"instance_id": a.instance, "phone": to, "message": "Your order has shipped.", "message_purpose": "transactional"}),
        )
    };
    assert_eq!(send("+966501110002").await.1["error"], "recipient_suppressed");
    assert_eq!(send("+966501110003").await.1["error"], "recipient_suppressed");
    assert_eq!(send("+966501110001").await.0, StatusCode::OK);
    let list = a.browser.get("/suppressed-recipients").await;
    assert!(
        list.body.contains("+966501110002")
            && list.body.contains("recipient_requested_stop")
            && list.body.contains("opt_out")
    );
    assert!(a.browser.get("/inbound-logs").await.body.contains("Opt-out"));
    app.finish().await;
}

async fn events_page_in_order_per_account(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let a = account(&app, "pager").await;
    let b = account(&app, "other").await;
    post(&app, &a.key, "/api/sandbox/link", json!({"instance_id": a.instance})).await;
    for i in 0..7 {
        post(
            &app,
            &a.key,
            "/api/sandbox/inbound",
            json!({"instance_id": a.instance, "from": "+966501234567", "message": format!("message {i}")}),
        )
        .await;
    }
    let everything = events(&app, &a.key).await;
    let mut paged = Vec::new();
    let mut cursor = String::from("0");
    let mut pages = 0;
    loop {
        let r = events_page(&app, &a.key, &cursor, 3).await;
        pages += 1;
        let batch = r["events"].as_array().unwrap();
        assert!(batch.len() <= 3);
        paged.extend(batch.iter().cloned());
        cursor = r["next_cursor"].as_str().unwrap().to_string();
        if !r["has_more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(paged, everything, "pages join up to the whole stream, in order");
    assert!(pages >= everything.len() / 3);
    let texts: Vec<_> =
        of_kind(&paged, "message.received").iter().map(|e| e["text"].as_str().unwrap().to_string()).collect();
    assert_eq!(texts, (0..7).map(|i| format!("message {i}")).collect::<Vec<_>>());
    // Caught up: the cursor stays, nothing more.
    let r: Value = app
        .api()
        .get(app.url(&format!("/api/events?after={cursor}")))
        .bearer_auth(&a.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((r["events"].as_array().unwrap().len(), r["next_cursor"].as_str().unwrap()), (0, cursor.as_str()));
    // Another account sees none of them.
    assert!(events(&app, &b.key).await.iter().all(|e| e["instance_id"] == b.instance.as_str()));
    for bad in ["limit=0", "limit=501", "after=-1", "after=abc"] {
        let r = app.api().get(app.url(&format!("/api/events?{bad}"))).bearer_auth(&a.key).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    assert_eq!(app.api().get(app.url("/api/events")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    app.finish().await;
}

async fn inbound_logs_filter_and_page_by_keyset(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let a = account(&app, "logs").await;
    post(&app, &a.key, "/api/sandbox/link", json!({"instance_id": a.instance})).await;
    let instance = gateway::instances::find_for_connector(&app.conn, &a.instance).await.unwrap().unwrap();
    for i in 0..60 {
        let message = gateway::connectors::InboundMessage {
            provider_message_id: format!("wamid-{i}"),
            from: gateway::connectors::Sender {
                address: "x".into(),
                phone: Some(if i % 2 == 0 { "+966501234567".into() } else { "+447911123456".into() }),
            },
            group_id: None,
            text: Some(format!("note number {i:03}")),
            media: None,
            sent_at: gateway::time::now(),
        };
        gateway::inbound::receive(&app.conn, &instance, &message).await.unwrap();
    }
    // The same provider message delivered again is stored once.
    let again = gateway::connectors::InboundMessage {
        provider_message_id: "wamid-0".into(),
        from: gateway::connectors::Sender { address: "x".into(), phone: Some("+966501234567".into()) },
        group_id: None,
        text: Some("note number 000".into()),
        media: None,
        sent_at: gateway::time::now(),
    };
    assert!(!gateway::inbound::receive(&app.conn, &instance, &again).await.unwrap().new);

    let first = a.browser.get("/inbound-logs").await;
    assert!(first.body.contains("note number 059") && first.body.contains("note number 010"));
    assert!(!first.body.contains("note number 009"), "50 per page, newest first");
    let marker = "href=\"/inbound-logs?before=";
    let start = first.body.find(marker).expect("an Older link") + "href=\"".len();
    let href = first.body[start..start + first.body[start..].find('"').unwrap()].replace("&amp;", "&");
    let second = a.browser.get(&href).await;
    assert!(second.body.contains("note number 009") && second.body.contains("note number 000"));
    assert!(!second.body.contains("note number 010") && !second.body.contains(marker));

    let filtered = a.browser.get("/inbound-logs?phone=4479&text=number%2005").await;
    let shown = |n: &str| filtered.body.contains(&format!(">note number {n}<"));
    assert!(
        shown("051") && !shown("050") && !shown("041"),
        "{}",
        &filtered.body[filtered.body.find("<table").unwrap_or(0)..]
    );
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(a.browser.get(&format!("/inbound-logs?from={today}&to={today}")).await.body.contains("note number 059"));
    assert!(a.browser.get("/inbound-logs?from=2020-01-01&to=2020-01-02").await.body.contains("No messages."));
    assert!(a.browser.get("/inbound-logs?from=yesterday").await.body.contains("YYYY-MM-DD"));

    let other = app.browser();
    other.signup(&unique_email("nosy"), PASSWORD).await;
    assert!(!other.get(&format!("/inbound-logs?instance={}", a.instance)).await.body.contains("note number"));
    app.finish().await;
}

async fn the_message_log_shows_statuses_and_failure_rates(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let a = account(&app, "outbox").await;
    post(&app, &a.key, "/api/sandbox/link", json!({"instance_id": a.instance})).await;
    let send = |to: &'static str, text: &'static str| {
        post(
            &app,
            &a.key,
            "/api/send-message",
            json!({"instance_id": a.instance, "phone": to, "message": text, "message_purpose": "transactional"}),
        )
    };
    assert_eq!(send("+966501234567", "Your order #1 shipped.").await.0, StatusCode::OK);
    assert_eq!(send("+15550000001", "Your order #2 shipped.").await.0, StatusCode::BAD_GATEWAY);
    let page = a.browser.get("/messages").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Your order #1 shipped.") && page.body.contains("+15550000001"));
    assert!(page.body.contains("provider_unavailable"), "the failure reason, not the provider's own words");
    assert!(page.body.contains("50.0 %"), "1 of 2 failed in the last 24 hours");
    assert!(page.body.contains("class=\"chart\"") && page.body.contains("<rect"), "the daily chart");
    let failed_only = a.browser.get("/messages?status=failed").await;
    assert!(failed_only.body.contains("+15550000001") && !failed_only.body.contains("Your order #1 shipped."));

    // Keyset pages of 50.
    let account_id = gateway::instances::find_for_connector(&app.conn, &a.instance).await.unwrap().unwrap().account_id;
    for i in 0..55 {
        let id = format!("msg_bulk{i:03}");
        gateway::message_log::insert_accepted(
            &app.conn,
            gateway::message_log::NewMessage {
                message_id: &id,
                account_id,
                instance_id: &a.instance,
                recipient: "+966501234567",
                purpose: "transactional",
                kind: "text",
                body: format!("bulk note {i:03}"),
                media_mime_type: None,
                media_file_name: None,
                media_bytes: None,
                content_fingerprint: id.clone(),
                risk_score: 0,
                channel: &gateway::send::Channel::Api,
                idempotency_key: None,
            },
        )
        .await
        .unwrap();
    }
    let first = a.browser.get("/messages").await;
    assert!(first.body.contains("bulk note 054") && !first.body.contains("bulk note 004"));
    let marker = "href=\"/messages?before=";
    let start = first.body.find(marker).expect("an Older link") + "href=\"".len();
    let href = first.body[start..start + first.body[start..].find('"').unwrap()].replace("&amp;", "&");
    let second = a.browser.get(&href).await;
    assert!(second.body.contains("bulk note 004") && second.body.contains("Your order #1 shipped."));
    let other = app.browser();
    other.signup(&unique_email("nosy2"), PASSWORD).await;
    assert!(!other.get("/messages").await.body.contains("bulk note"));
    app.finish().await;
}

/// Two transactions of one account write events at once; the one with the smaller id commits
/// last. A reader that paged past the other one's event must still get it.
async fn an_event_that_commits_late_is_not_passed_over(backend: Backend) {
    use gateway::events::{emit, EventKind, Source};
    use sea_orm::TransactionTrait;
    let Some(app) = spawn_app(backend).await else { return };
    let browser = app.browser();
    let email = unique_email("late");
    browser.signup(&email, PASSWORD).await;
    let key = browser.create_api_key("Integration").await;
    let instance = browser.create_instance("Support line").await;
    let account_id = gateway::accounts::find_by_email(&app.conn, &email).await.unwrap().unwrap().id;
    let source = Source { account_id, instance_id: &instance, instance_name: "Support line" };
    let fields = |n: i32| gateway::fields! {"group_id" => format!("late-{n}"), "change" => "subject"};

    let early = app.conn.begin().await.unwrap();
    emit(&early, source, EventKind::GroupUpdated, fields(1)).await.unwrap();
    let later = app.conn.begin().await.unwrap();
    emit(&later, source, EventKind::GroupUpdated, fields(2)).await.unwrap();
    later.commit().await.unwrap();
    gateway::webhooks::wake();

    let seen = events(&app, &key).await;
    let groups = |events: &[Value]| -> Vec<String> {
        of_kind(events, "group.updated").iter().map(|e| e["group_id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(groups(&seen), ["late-2"], "the uncommitted event is not shown yet");
    let r = events_page(&app, &key, "0", 500).await;
    let cursor = r["next_cursor"].as_str().unwrap().to_string();

    early.commit().await.unwrap();
    gateway::webhooks::wake();
    let r = events_page(&app, &key, &cursor, 500).await;
    let after: Vec<Value> = r["events"].as_array().unwrap().clone();
    assert_eq!(groups(&after), ["late-1"], "the event that committed late comes after the cursor: {r}");
    assert_eq!(groups(&events(&app, &key).await), ["late-2", "late-1"], "the stream is in commit order");
    app.finish().await;
}
