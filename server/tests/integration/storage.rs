//! Storage that stays fast: keyset pages of the logs (every row exactly once, per tenant, per
//! filter), the maintained counts behind failure rates and the policy summary, retention in
//! batches, and signed-out page views that write no session row.
use std::collections::BTreeSet;

use gateway::{
    entities::{event, inbound_message, session, webhook_attempt, webhook_delivery},
    inbound::{self, Cursor},
    log_page::PhoneFilter,
    message_log::{self, LogFilter},
    retention::{self, Kind},
};
use reqwest::StatusCode;
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
};
use serde_json::{json, Value};

use crate::common::{spawn_app, spawn_app_with, unique_email, Backend, Options, TestApp, PASSWORD};

on_every_database!(
    signed_out_pages_write_no_session_row,
    message_log_pages_show_every_row_once,
    inbound_log_pages_show_every_row_once,
    counts_agree_with_the_rows,
    retention_prunes_old_rows_in_batches,
    delivery_and_request_logs_page_back_to_the_first_row,
);

struct Tenant {
    account_id: i64,
    instances: Vec<String>,
    key: String,
    browser: crate::common::Browser,
}

async fn tenant(app: &TestApp, tag: &str, instances: usize) -> Tenant {
    let browser = app.browser();
    browser.signup(&unique_email(tag), PASSWORD).await;
    let key = browser.create_api_key("Integration").await;
    let mut ids = Vec::new();
    for i in 0..instances {
        ids.push(browser.create_instance(&format!("Line {i}")).await);
    }
    let account_id = gateway::instances::find_for_connector(&app.conn, &ids[0]).await.unwrap().unwrap().account_id;
    Tenant { account_id, instances: ids, key, browser }
}

async fn sessions(app: &TestApp) -> u64 {
    session::Entity::find().count(&app.conn).await.unwrap()
}

async fn signed_out_pages_write_no_session_row(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let visitor = app.browser();
    for path in ["/login", "/signup", "/", "/login?next=%2Fmessages", "/docs"] {
        let page = visitor.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
    }
    let login = visitor.get("/login").await;
    assert!(login.csrf_token().is_some(), "the login form still carries a CSRF token");
    assert!(!login.set_cookie.iter().any(|c| c.starts_with("wag_session")), "no session cookie");
    // A private page redirects to the login page without a session either.
    assert_eq!(visitor.get("/messages").await.status, StatusCode::SEE_OTHER);
    assert_eq!(sessions(&app).await, 0, "signed-out page views wrote a session row");

    // The token is bound to this browser's cookie: another browser's token, a token without the
    // cookie, or a made-up one are refused, and still write nothing.
    let other = app.browser();
    let other_token = other.get("/login").await.csrf_token().unwrap();
    let email = unique_email("anon");
    let form = |token: &str| {
        vec![("email", email.clone()), ("password", PASSWORD.to_string()), ("csrf_token", token.to_string())]
    };
    let post = |browser: &crate::common::Browser, token: String| {
        let fields = form(&token);
        let client = browser.client.clone();
        let url = app.url("/_fn/signup");
        async move {
            client.post(url).header(reqwest::header::ACCEPT, "text/html").form(&fields).send().await.unwrap().status()
        }
    };
    assert_eq!(post(&visitor, other_token.clone()).await, StatusCode::FORBIDDEN);
    assert_eq!(post(&visitor, "00".repeat(32)).await, StatusCode::FORBIDDEN);
    let cookieless = app.api();
    let status = cookieless.post(app.url("/_fn/signup")).form(&form(&other_token)).send().await.unwrap().status();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(sessions(&app).await, 0);

    // With its own token the visitor signs up, and only then has a session.
    let token = visitor.get("/signup").await.csrf_token().unwrap();
    let signed_up = post(&visitor, token).await;
    assert!(signed_up.is_redirection(), "{signed_up}");
    assert_eq!(visitor.get("/dashboard").await.status, StatusCode::OK);
    assert_eq!(sessions(&app).await, 1);
    // Signed in, forms use the session's token; the login page's token is not it.
    assert_eq!(visitor.get("/api-keys").await.status, StatusCode::OK);
    let anonymous_token = other.get("/login").await.csrf_token().unwrap();
    let refused =
        visitor.post_raw("/api-keys", "/_fn/api-keys/create", &[("name", "x"), ("csrf_token", &anonymous_token)]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    app.finish().await;
}

/// Writes a message straight into the log (as the send path does after admission).
async fn log_message(app: &TestApp, account_id: i64, instance: &str, to: &str, n: usize) -> i64 {
    let id = format!("msg_t{n:04}_{}", ulid::Ulid::new().to_string().to_ascii_lowercase());
    message_log::insert_accepted(
        &app.conn,
        message_log::NewMessage {
            message_id: &id,
            account_id,
            instance_id: instance,
            recipient: to,
            purpose: "transactional",
            kind: "text",
            body: format!("note {n:04}"),
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
    .unwrap()
}

/// Every page of the message log for `filter`, `limit` rows each; the ids in page order.
async fn walk_messages(app: &TestApp, account_id: i64, mut filter: LogFilter, limit: u64, window: u64) -> Vec<i64> {
    let mut ids = Vec::new();
    for _ in 0..1000 {
        let page = message_log::page_within(&app.conn, account_id, &filter, limit, window).await.unwrap();
        assert!(page.rows.len() as u64 <= limit);
        ids.extend(page.rows.iter().map(|r| r.id));
        match page.older {
            Some(before) => filter.before = Some(before),
            None => return ids,
        }
    }
    panic!("the walk did not end");
}

async fn message_log_pages_show_every_row_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let a = tenant(&app, "pages-a", 2).await;
    let b = tenant(&app, "pages-b", 1).await;
    let phones = ["+966501234567", "+447911123456", "+15550000002"];
    // (id, instance index, phone index, failed)
    let mut rows = Vec::new();
    for n in 0..60 {
        let (inst, phone) = (n % 2, n % 3);
        let id = log_message(&app, a.account_id, &a.instances[inst], phones[phone], n).await;
        let failed = n % 7 == 0;
        if failed {
            let source = gateway::events::Source {
                account_id: a.account_id,
                instance_id: &a.instances[inst],
                instance_name: "Line",
            };
            assert!(message_log::mark_failed(&app.conn, source, id, "provider_unavailable").await.unwrap());
        }
        rows.push((id, inst, phone, failed));
        if n % 10 == 0 {
            log_message(&app, b.account_id, &b.instances[0], phones[0], n).await;
        }
    }
    let expect = |keep: &dyn Fn(&(i64, usize, usize, bool)) -> bool| -> Vec<i64> {
        let mut ids: Vec<i64> = rows.iter().filter(|r| keep(r)).map(|r| r.0).collect();
        ids.sort_unstable_by(|x, y| y.cmp(x));
        ids
    };
    let cases: Vec<(LogFilter, Vec<i64>)> = vec![
        (LogFilter::default(), expect(&|_| true)),
        (LogFilter { instance_id: Some(a.instances[1].clone()), ..Default::default() }, expect(&|r| r.1 == 1)),
        (LogFilter { phone: PhoneFilter::parse(Some("+44 7911 123456")), ..Default::default() }, expect(&|r| r.2 == 1)),
        (LogFilter { phone: PhoneFilter::parse(Some("5550000")), ..Default::default() }, expect(&|r| r.2 == 2)),
        (LogFilter { status: Some("failed".into()), ..Default::default() }, expect(&|r| r.3)),
        (
            LogFilter {
                instance_id: Some(a.instances[0].clone()),
                phone: PhoneFilter::parse(Some("+966501234567")),
                status: Some("accepted".into()),
                ..Default::default()
            },
            expect(&|r| r.1 == 0 && r.2 == 0 && !r.3),
        ),
    ];
    for (filter, expected) in cases {
        for (limit, window) in [(7, 5_000), (7, 5), (50, 3), (100, 1)] {
            let walked = walk_messages(&app, a.account_id, filter.clone(), limit, window).await;
            assert_eq!(walked, expected, "{filter:?} by {limit} rows, window {window}: each row once, newest first");
        }
    }
    // The other tenant sees only its own rows, even naming this tenant's instance.
    let theirs = walk_messages(&app, b.account_id, LogFilter::default(), 4, 5_000).await;
    assert_eq!(theirs.len(), 6);
    let snooping = LogFilter { instance_id: Some(a.instances[0].clone()), ..Default::default() };
    assert!(walk_messages(&app, b.account_id, snooping, 4, 5_000).await.is_empty());

    // A narrow window stops short and says so; its link goes on after the window.
    let failed_only = LogFilter { status: Some("failed".into()), ..Default::default() };
    let first = message_log::page_within(&app.conn, a.account_id, &failed_only, 50, 10).await.unwrap();
    assert!(first.window_ended && first.older.is_some());
    assert!(first.rows.iter().all(|r| r.status == "failed"));

    // The portal's links keep an exact number (its `+` too) from page to page.
    let mut href = "/messages?phone=%2B447911123456".to_string();
    let mut seen = Vec::new();
    for _ in 0..10 {
        let page = a.browser.get(&href).await;
        assert_eq!(page.status, StatusCode::OK);
        seen.push(page.body.matches(">+447911123456<").count());
        match page.body.find("href=\"/messages?before=") {
            Some(start) => {
                let start = start + "href=\"".len();
                href = page.body[start..start + page.body[start..].find('"').unwrap()].replace("&amp;", "&");
                assert!(href.contains("phone=%2B447911123456"), "{href}");
            }
            None => break,
        }
    }
    let listed: usize = seen.iter().sum();
    assert!(listed >= 20, "all 20 messages to the number are listed across the pages ({listed})");
    app.finish().await;
}

async fn receive(app: &TestApp, instance: &str, from: &str, text: &str, n: usize) -> i64 {
    let instance = gateway::instances::find_for_connector(&app.conn, instance).await.unwrap().unwrap();
    let message = gateway::connectors::InboundMessage {
        provider_message_id: format!("wamid-{n}-{}", ulid::Ulid::new()),
        from: gateway::connectors::Sender {
            address: format!("{}@s.whatsapp.net", &from[1..]),
            phone: Some(from.into()),
        },
        group_id: None,
        text: Some(text.to_string()),
        media: None,
        sent_at: gateway::time::now(),
    };
    gateway::inbound::receive(&app.conn, &instance, &message).await.unwrap();
    inbound_message::Entity::find()
        .filter(inbound_message::Column::ProviderMessageId.eq(message.provider_message_id))
        .one(&app.conn)
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn walk_inbound(
    app: &TestApp,
    account_id: i64,
    mut filter: inbound::LogFilter,
    limit: u64,
    window: u64,
) -> Vec<i64> {
    let mut ids = Vec::new();
    for _ in 0..1000 {
        let page = inbound::log_within(&app.conn, account_id, &filter, limit, window).await.unwrap();
        ids.extend(page.rows.iter().map(|r| r.id));
        match page.older {
            Some(cursor) => {
                // The cursor survives its trip through a link.
                let text = cursor.to_string();
                filter.before = Cursor::parse(&app.conn, account_id, &text).await.unwrap();
                assert_eq!(filter.before, Some(cursor));
            }
            None => return ids,
        }
    }
    panic!("the walk did not end");
}

async fn inbound_log_pages_show_every_row_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let a = tenant(&app, "inbound-a", 2).await;
    let b = tenant(&app, "inbound-b", 1).await;
    let now = gateway::time::now();
    let senders = ["+966501234567", "+447911123456"];
    // (id, instance, sender, text has "invoice", received_at)
    let mut rows = Vec::new();
    for n in 0..45 {
        let text = if n % 4 == 0 { format!("about invoice {n}") } else { format!("hello {n}") };
        let sender = usize::from(n % 3 == 1);
        let id = receive(&app, &a.instances[n % 2], senders[sender], &text, n).await;
        // Many rows share a second (ties broken by id) and a few arrived days ago, out of id
        // order, as rows of a restored or merged log would.
        let received_at = match n {
            5 | 17 => now - 3 * 86_400,
            30 => now - 86_400,
            _ => now - (n as i64 / 10),
        };
        inbound_message::Entity::update_many()
            .col_expr(inbound_message::Column::ReceivedAt, Expr::value(received_at))
            .filter(inbound_message::Column::Id.eq(id))
            .exec(&app.conn)
            .await
            .unwrap();
        rows.push((id, n % 2, sender, n % 4 == 0, received_at));
        if n % 9 == 0 {
            receive(&app, &b.instances[0], senders[0], "about invoice elsewhere", 1000 + n).await;
        }
    }
    let expect = |keep: &dyn Fn(&(i64, usize, usize, bool, i64)) -> bool| -> Vec<i64> {
        let mut kept: Vec<_> = rows.iter().filter(|r| keep(r)).map(|r| (r.4, r.0)).collect();
        kept.sort_unstable_by(|x, y| y.cmp(x));
        kept.into_iter().map(|(_, id)| id).collect()
    };
    let cases: Vec<(inbound::LogFilter, Vec<i64>)> = vec![
        (Default::default(), expect(&|_| true)),
        (inbound::LogFilter { instance_id: Some(a.instances[1].clone()), ..Default::default() }, expect(&|r| r.1 == 1)),
        (
            inbound::LogFilter { phone: PhoneFilter::parse(Some(senders[1])), ..Default::default() },
            expect(&|r| r.2 == 1),
        ),
        (inbound::LogFilter { phone: PhoneFilter::parse(Some("4479")), ..Default::default() }, expect(&|r| r.2 == 1)),
        (inbound::LogFilter { text: Some("invoice".into()), ..Default::default() }, expect(&|r| r.3)),
        (
            inbound::LogFilter { from: Some(now - 2 * 86_400), until: Some(now - 3600), ..Default::default() },
            expect(&|r| r.4 >= now - 2 * 86_400 && r.4 < now - 3600),
        ),
        (
            inbound::LogFilter {
                instance_id: Some(a.instances[0].clone()),
                text: Some("invoice".into()),
                until: Some(now - 2),
                ..Default::default()
            },
            expect(&|r| r.1 == 0 && r.3 && r.4 < now - 2),
        ),
    ];
    for (filter, expected) in cases {
        for (limit, window) in [(6, 5_000), (6, 4), (50, 2)] {
            let walked = walk_inbound(&app, a.account_id, filter.clone(), limit, window).await;
            let unique: BTreeSet<i64> = walked.iter().copied().collect();
            assert_eq!(unique.len(), walked.len(), "no row twice");
            assert_eq!(walked, expected, "{filter:?} by {limit}, window {window}");
        }
    }
    let theirs = walk_inbound(&app, b.account_id, Default::default(), 2, 5_000).await;
    assert_eq!(theirs.len(), 5);
    // A bare id (an older link) still finds its place; another tenant's id does not.
    let middle = expect(&|_| true)[10];
    assert!(Cursor::parse(&app.conn, a.account_id, &middle.to_string()).await.unwrap().is_some());
    assert_eq!(Cursor::parse(&app.conn, b.account_id, &middle.to_string()).await.unwrap(), None);
    app.finish().await;
}

async fn send(app: &TestApp, t: &Tenant, phone: &str, text: &str) -> (StatusCode, Value) {
    let body =
        json!({"instance_id": t.instances[0], "phone": phone, "message": text, "message_purpose": "transactional"});
    let r = app.api().post(app.url("/api/send-message")).bearer_auth(&t.key).json(&body).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn count_sql(app: &TestApp, sql: &str) -> u64 {
    let backend = app.conn.get_database_backend();
    let row = app.conn.query_one_raw(sea_orm::Statement::from_string(backend, sql.to_string())).await.unwrap().unwrap();
    row.try_get_by_index::<i64>(0).unwrap() as u64
}

async fn counts_agree_with_the_rows(backend: Backend) {
    let env =
        vec![("WAG_SEND_RATE_PER_MINUTE", "1000".to_string()), ("WAG_NEW_RECIPIENTS_PER_HOUR", "1000".to_string())];
    let Some(app) = crate::common::spawn_app_with(backend, crate::common::Options { env, ..Default::default() }).await
    else {
        return;
    };
    let t = tenant(&app, "counts", 1).await;
    let other = tenant(&app, "counts-other", 1).await;
    let link = |t: &Tenant| {
        let body = json!({"instance_id": t.instances[0]});
        app.api().post(app.url("/api/sandbox/link")).bearer_auth(&t.key).json(&body).send()
    };
    link(&t).await.unwrap();
    link(&other).await.unwrap();
    let mut outcomes = Vec::new();
    for n in 0..12 {
        // The sandbox fails this number at send (the quota unit is given back).
        let phone = if n % 4 == 0 {
            gateway::connectors::sandbox::FAILS_AT_SEND.to_string()
        } else {
            format!("+96650123{n:04}")
        };
        outcomes.push(send(&app, &t, &phone, &format!("Your order #{n} has shipped.")).await.0);
    }
    for _ in 0..2 {
        outcomes.push(
            send(
                &app,
                &t,
                "+966501239999",
                "MEGA SALE!!! 70% off everything, buy now with promo code SAVE70 at bit.ly/deal 🔥🔥🔥",
            )
            .await
            .0,
        );
    }
    send(&app, &other, "+966501230000", "Your order #1 has shipped.").await;
    assert!(outcomes.contains(&StatusCode::BAD_GATEWAY) && outcomes.contains(&StatusCode::FORBIDDEN));
    // This one is sent, then reported failed by a receipt.
    let (status, later) =
        send(&app, &t, gateway::connectors::sandbox::FAILS_LATER, "Your order #99 has shipped.").await;
    assert_eq!(status, StatusCode::OK);
    let log_id = later["log_id"].as_i64().unwrap();
    for _ in 0..100 {
        let row = gateway::entities::message::Entity::find_by_id(log_id).one(&app.conn).await.unwrap().unwrap();
        if row.status == "failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let acc = t.account_id;
    let now = gateway::time::now();
    let rate = message_log::failure_rate(&app.conn, acc, now - 86_400, now + 1).await.unwrap();
    let total = count_sql(&app, &format!("SELECT COUNT(*) FROM messages WHERE account_id = {acc}")).await;
    let failed =
        count_sql(&app, &format!("SELECT COUNT(*) FROM messages WHERE account_id = {acc} AND status = 'failed'")).await;
    assert_eq!((rate.total, rate.failed), (total, failed));
    assert_eq!(failed, 4, "three failed at send, one reported failed later");

    let summary = gateway::policy_log::summary(&app.conn, acc, now - 7 * 86_400).await.unwrap();
    let app_ref = &app;
    let by = |decision: &str| {
        let sql = format!("SELECT COUNT(*) FROM policy_decisions WHERE account_id = {acc} AND decision = '{decision}'");
        async move { count_sql(app_ref, &sql).await }
    };
    assert_eq!(
        (summary.allowed, summary.flagged, summary.blocked),
        (by("allow").await, by("flag").await, by("block").await)
    );
    assert_eq!(summary.blocked, 2);
    let page = t.browser.get("/responsible-messaging").await;
    assert!(page.body.contains("policy_violation"));

    // Blocked and flagged attempts page by keyset, newest first, each once.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let rows = gateway::policy_log::recent_concerns(&app.conn, acc, before, 2).await.unwrap();
        if rows.is_empty() {
            break;
        }
        before = rows.last().map(|r| r.id);
        seen.extend(rows.into_iter().map(|r| r.id));
    }
    let concerns = by("block").await + by("flag").await;
    assert_eq!(seen.len() as u64, concerns);
    assert!(seen.windows(2).all(|w| w[0] > w[1]));
    assert!(gateway::policy_log::recent_concerns(&app.conn, other.account_id, None, 50).await.unwrap().is_empty());
    app.finish().await;
}

/// Moves rows of `table` back in time.
/// A delivery of `event_id` that succeeded at `now`, ready to insert.
fn delivered(destination_id: &str, account_id: i64, event_id: &str, now: i64) -> webhook_delivery::ActiveModel {
    webhook_delivery::ActiveModel {
        destination_id: Set(destination_id.into()),
        account_id: Set(account_id),
        event_id: Set(event_id.into()),
        event_kind: Set("message.received".into()),
        payload: Set("{}".into()),
        status: Set("succeeded".into()),
        attempts: Set(1),
        next_attempt_at: Set(now),
        locked_until: Set(0),
        last_status_code: Set(Some(200)),
        created_at: Set(now),
        completed_at: Set(Some(now)),
        lease_owner: Set(None),
        ..Default::default()
    }
}

async fn age(app: &TestApp, table: &str, column: &str, ids: &[i64], at: i64) {
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    let sql = format!("UPDATE {table} SET {column} = {at} WHERE id IN ({})", list.join(","));
    app.conn.execute_unprepared(&sql).await.unwrap();
}

async fn ids_of(app: &TestApp, table: &str) -> BTreeSet<i64> {
    let backend = app.conn.get_database_backend();
    let rows = app
        .conn
        .query_all_raw(sea_orm::Statement::from_string(backend, format!("SELECT id FROM {table}")))
        .await
        .unwrap();
    rows.iter().map(|r| r.try_get_by_index::<i64>(0).unwrap()).collect()
}

async fn retention_prunes_old_rows_in_batches(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let t = tenant(&app, "retention", 1).await;
    let acc = t.account_id;
    let inst = t.instances[0].clone();
    let now = gateway::time::now();
    let old = now - 100 * 86_400;

    let mut messages = Vec::new();
    for n in 0..11 {
        messages.push(log_message(&app, acc, &inst, "+966501234567", n).await);
    }
    let mut inbound_ids = Vec::new();
    for n in 0..5 {
        inbound_ids.push(receive(&app, &inst, "+966501234567", "hello", n).await);
    }
    let mut deliveries = Vec::new();
    for n in 0..6 {
        let mut row = delivered("whd_test", acc, &format!("evt_{n}"), now);
        if n == 1 {
            // Not due yet, so the running server's webhook worker leaves it alone (it would
            // cancel it: its destination does not exist).
            row.status = Set("pending".into());
            row.next_attempt_at = Set(now + 30 * 86_400);
        }
        let row = row.insert(&app.conn).await.unwrap();
        for _ in 0..2 {
            webhook_attempt::ActiveModel {
                delivery_id: Set(row.id),
                attempted_at: Set(now),
                status_code: Set(Some(200)),
                duration_ms: Set(5),
                response_excerpt: Set(String::new()),
                error: Set(None),
                ..Default::default()
            }
            .insert(&app.conn)
            .await
            .unwrap();
        }
        deliveries.push(row.id);
    }
    // The oldest 8 messages, 3 inbound messages and 4 deliveries (one of them still pending)
    // are past their retention; the rest are recent.
    age(&app, "messages", "created_at", &messages[..8], old).await;
    age(&app, "inbound_messages", "received_at", &inbound_ids[..3], old).await;
    age(&app, "webhook_deliveries", "created_at", &deliveries[..4], old).await;
    let all_events = ids_of(&app, "events").await;
    let events: Vec<i64> = all_events.iter().copied().collect();
    age(&app, "events", "created_at", &events, old).await;
    let policy = gateway::policy_log::record_alone(
        &app.conn,
        gateway::policy_log::NewEntry {
            account_id: acc,
            instance_id: &inst,
            recipient_masked: "+966•••••••67".into(),
            purpose: "transactional",
            decision: "allow",
            error_code: None,
            risk_score: 0,
            reasons: &[],
        },
    )
    .await
    .unwrap();
    age(&app, "policy_decisions", "created_at", &[policy], old).await;

    let cutoff = now - 90 * 86_400;
    let pruned = retention::prune_before(&app.conn, Kind::Messages, cutoff, 3).await.unwrap();
    assert_eq!((pruned.rows, pruned.batches), (8, 3), "8 old messages in batches of at most 3");
    assert_eq!(ids_of(&app, "messages").await, messages[8..].iter().copied().collect());

    let pruned = retention::prune_before(&app.conn, Kind::Deliveries, cutoff, 2).await.unwrap();
    assert_eq!(pruned.rows, 3, "the pending delivery stays");
    let kept: BTreeSet<i64> = [deliveries[1], deliveries[4], deliveries[5]].into_iter().collect();
    assert_eq!(ids_of(&app, "webhook_deliveries").await, kept);
    let attempts = webhook_attempt::Entity::find().all(&app.conn).await.unwrap();
    assert_eq!(attempts.len(), 6, "the attempts of deleted deliveries went with them");
    assert!(attempts.iter().all(|a| kept.contains(&a.delivery_id)));

    // Everything else through the configured retention, as housekeeping runs it.
    let settings = retention::Retention { batch: 2, ..Default::default() };
    let done = retention::prune(&app.conn, &settings, now).await.unwrap();
    let rows_of = |kind: Kind| done.iter().find(|(k, _)| *k == kind).map(|(_, p)| p.rows).unwrap_or(0);
    assert_eq!(rows_of(Kind::Inbound), 3);
    assert_eq!(rows_of(Kind::PolicyDecisions), 1);
    assert_eq!(rows_of(Kind::Events), events.len() as u64);
    assert_eq!(rows_of(Kind::Messages), 0, "already pruned");
    assert_eq!(ids_of(&app, "inbound_messages").await, inbound_ids[3..].iter().copied().collect());
    assert!(event::Entity::find().all(&app.conn).await.unwrap().len() < all_events.len() + 1);
    // Attempts have their own, shorter retention.
    // Rows are pruned oldest first (by id, which follows time): age the two oldest.
    let mut attempt_ids: Vec<i64> = attempts.iter().map(|a| a.id).collect();
    attempt_ids.sort_unstable();
    age(&app, "webhook_attempts", "attempted_at", &attempt_ids[..2], now - 31 * 86_400).await;
    let done = retention::prune(&app.conn, &settings, now).await.unwrap();
    assert_eq!(done.iter().find(|(k, _)| *k == Kind::Attempts).unwrap().1.rows, 2);
    // 0 keeps a kind forever.
    age(&app, "messages", "created_at", &messages[8..], old).await;
    let keep = retention::Retention { messages_days: 0, ..Default::default() };
    retention::prune(&app.conn, &keep, now).await.unwrap();
    assert_eq!(ids_of(&app, "messages").await.len(), 3);
    // The log pages keep working over what is left.
    assert_eq!(walk_messages(&app, acc, LogFilter::default(), 2, 5_000).await.len(), 3);
    let _ = t.browser.get("/messages").await;
    app.finish().await;
}

/// The `href` of the link whose text is `label` (HTML-escaped `&` undone).
fn link_before(body: &str, label: &str) -> Option<String> {
    let end = body.find(label)?;
    let start = body[..end].rfind("href=\"")? + "href=\"".len();
    let href = &body[start..];
    Some(href[..href.find('"')?].replace("&amp;", "&"))
}

/// Follows "Older …" from `first` to the end; every page's `marker`s, in order.
async fn walk_links(
    browser: &crate::common::Browser,
    first: &str,
    older: &str,
    marker: impl Fn(&str) -> Vec<String>,
) -> Vec<String> {
    let (mut seen, mut next, mut pages) = (Vec::new(), Some(first.to_string()), 0);
    while let Some(path) = next {
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        // A row's id shows more than once (its text, its forms, the page's serialized data).
        let mut on_page: Vec<String> = Vec::new();
        for id in marker(&page.body) {
            if !on_page.contains(&id) {
                on_page.push(id);
            }
        }
        seen.extend(on_page);
        next = link_before(&page.body, older);
        pages += 1;
        assert!(pages < 20, "the pages never end");
    }
    seen
}

/// Every `prefix<digits>` in `body`, in order.
fn numbered(body: &str, prefix: &str) -> Vec<String> {
    body.match_indices(prefix)
        .map(|(i, _)| {
            let digits: String = body[i + prefix.len()..].chars().take_while(char::is_ascii_digit).collect();
            format!("{prefix}{digits}")
        })
        .collect()
}

async fn delivery_and_request_logs_page_back_to_the_first_row(backend: Backend) {
    // The destination points at a closed local port; its deliveries are written as done already.
    let env = vec![("WAG_ALLOW_PRIVATE_WEBHOOK_TARGETS", "true".to_string())];
    let Some(app) = spawn_app_with(backend, Options { env, ..Options::default() }).await else { return };
    let email = unique_email("logpages");
    let browser = app.browser();
    browser.signup(&email, PASSWORD).await;
    let instance = browser.create_instance("Paged").await;
    let account_id = gateway::instances::find_for_connector(&app.conn, &instance).await.unwrap().unwrap().account_id;

    // A destination with 45 deliveries (three pages of 20): the tab pages back through them all.
    let added = app.wag(&[
        "admin",
        "set-webhook",
        "--instance",
        &instance,
        "--url",
        "http://127.0.0.1:9/hook",
        "--events",
        "message.received",
    ]);
    assert!(added.success, "{}", added.stderr);
    let destination_id =
        gateway::webhooks::destinations::list(&app.conn, account_id, &instance).await.unwrap()[0].id.clone();
    let now = gateway::time::now();
    for n in 0..45 {
        delivered(&destination_id, account_id, &format!("evt_paged{n}"), now).insert(&app.conn).await.unwrap();
    }
    let tab = format!("/instances/{instance}/manage?tab=webhook");
    let shown = walk_links(&browser, &tab, "Older deliveries →", |body| numbered(body, "evt_paged")).await;
    let expected: Vec<String> = (0..45).rev().map(|n| format!("evt_paged{n}")).collect();
    assert_eq!(shown, expected, "newest first, each delivery once, across three pages");
    let last = browser.get(&format!("{tab}&log={destination_id}&before=1")).await;
    assert!(last.body.contains("No older deliveries.") && last.body.contains("← Newest deliveries"));

    // Another account's page never shows this destination's deliveries, whatever it asks for.
    let stranger = app.browser();
    stranger.signup(&unique_email("logpages-other"), PASSWORD).await;
    let theirs = stranger.create_instance("Theirs").await;
    let probe =
        stranger.get(&format!("/instances/{theirs}/manage?tab=webhook&log={destination_id}&before=999999")).await;
    assert!(numbered(&probe.body, "evt_paged").is_empty());

    // A 3CX integration with 120 logged requests (three pages of 50).
    assert!(app.wag(&["admin", "set-module", "--email", &email, "--module", "3cx", "--enabled", "true"]).success);
    let created = app.wag(&["admin", "create-3cx-integration", "--email", &email, "--instance", &instance]);
    assert!(created.success, "{}", created.stderr);
    let integration_id = created.stdout.lines().find_map(|l| l.strip_prefix("integration_id=")).unwrap().to_string();
    for n in 0..120 {
        let event_type = format!("req_paged{n}");
        gateway::threecx::request_log::record(
            &app.conn,
            gateway::threecx::request_log::Entry {
                integration_id: &integration_id,
                account_id,
                received_at: now,
                event_type: Some(&event_type),
                outcome: "accepted",
                status_code: 200,
                phone_masked: None,
                latency_ms: 5,
                detail: None,
            },
        )
        .await
        .unwrap();
    }
    let shown =
        walk_links(&browser, "/integrations/3cx?tab=log", "Older requests →", |body| numbered(body, "req_paged")).await;
    let expected: Vec<String> = (0..120).rev().map(|n| format!("req_paged{n}")).collect();
    assert_eq!(shown, expected, "newest first, each request once, across three pages");
    app.finish().await;
}
