//! The 3CX webhook through HTTP: the generic answer for every pre-authentication cause, both
//! signature forms and the documented openssl computation, IPv4/IPv6 allowlists, the 256 KB
//! boundary, the 61st request in a minute across two server processes, every event and error
//! code, the conversation window, cooldowns, the send pipeline's refusals, and forwarding of
//! inbound messages to the 3CX destination, signed.
use std::time::Duration;

use gateway::{
    entities::{conversation, threecx_integration},
    threecx::{allowlist::IpAllowlist, integrations, request_log},
};
use reqwest::{header::HeaderMap, StatusCode};
use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::{
    common::{spawn_app_with, unique_email, Backend, Options, TestApp, PASSWORD},
    webhooks::{fast_webhooks, verify_with_python, Receiver},
};

on_every_database!(
    every_pre_auth_failure_gets_the_same_generic_answer,
    signatures_in_both_forms_and_the_documented_openssl_command,
    allowlists_of_both_families,
    the_256_kb_boundary,
    the_61st_request_in_a_minute_is_refused_across_servers,
    json_module_and_event_type_errors,
    agent_replies_need_an_open_conversation,
    call_events_send_templates_once_per_cooldown,
    the_send_pipeline_refuses_through_3cx,
    inbound_messages_are_forwarded_to_3cx_signed,
    the_3cx_page_manages_an_integration,
);

const CUSTOMER: &str = "+966501234567";
const OTHER_CUSTOMER: &str = "+966501234568";
const REPLY: &str = "Your support ticket 4821 has been updated. An agent is looking at it now.";

struct Tcx {
    app: TestApp,
    email: String,
    key: String,
    instance: String,
    id: String,
    secret: String,
}

async fn setup(backend: Backend, env: Vec<(&'static str, String)>, cli: &[&str]) -> Option<Tcx> {
    let app = spawn_app_with(backend, Options { env, ..Options::default() }).await?;
    let browser = app.browser();
    let email = unique_email("tcx");
    browser.signup(&email, PASSWORD).await;
    let key = browser.create_api_key("3CX tests").await;
    let instance = browser.create_instance("Contact centre").await;
    let linked = app
        .api()
        .post(app.url("/api/sandbox/link"))
        .bearer_auth(&key)
        .json(&json!({"instance_id": instance}))
        .send()
        .await
        .unwrap();
    assert_eq!(linked.status(), StatusCode::OK);
    let module = app.wag(&["admin", "set-module", "--email", &email, "--module", "3cx", "--enabled", "true"]);
    assert!(module.success, "{}", module.stderr);
    let mut args = vec!["admin", "create-3cx-integration", "--email", &email, "--instance", &instance];
    args.extend_from_slice(cli);
    let out = app.wag(&args);
    assert!(out.success, "{}", out.stderr);
    let line = |name: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name}= line in {}", out.stdout))
            .to_string()
    };
    let (id, secret) = (line("integration_id"), line("secret"));
    assert!(id.starts_with("tcx_") && secret.starts_with("tcxs_"));
    assert!(line("webhook_url").ends_with(&format!("/integrations/3cx/webhook/{id}")));
    Some(Tcx { app, email, key, instance, id, secret })
}

impl Tcx {
    fn webhook_url(&self) -> String {
        self.app.url(&format!("/integrations/3cx/webhook/{}", self.id))
    }

    /// Posts `body` with the integration's secret and any extra headers.
    async fn post_raw(
        &self,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, String)],
    ) -> (StatusCode, String, HeaderMap) {
        let mut request = self
            .app
            .api()
            .post(self.webhook_url())
            .header("content-type", "application/json")
            .header("x-whatsapp-gateway-3cx-secret", &self.secret);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.body(body).send().await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        (status, response.text().await.unwrap(), headers)
    }

    async fn event(&self, body: Value) -> (StatusCode, Value) {
        let (status, text, _) = self.post_raw(body.to_string(), &[]).await;
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")))
    }

    async fn customer_writes(&self, phone: &str, text: &str) {
        let response = self
            .app
            .api()
            .post(self.app.url("/api/sandbox/inbound"))
            .bearer_auth(&self.key)
            .json(&json!({"instance_id": self.instance, "from": phone, "message": text}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    fn admin(&self, args: &[&str]) {
        let out = self.app.wag(args);
        assert!(out.success, "{args:?}: {}", out.stderr);
    }

    async fn integration(&self) -> integrations::Integration {
        integrations::find_for_webhook(&self.app.conn, &self.id).await.unwrap().unwrap()
    }

    /// Changes settings as the settings page does.
    async fn settings(&self, change: impl FnOnce(&mut integrations::Settings)) {
        let i = self.integration().await;
        let mut settings = integrations::Settings {
            enabled: i.enabled,
            outbound_enabled: i.outbound_enabled,
            call_event_enabled: i.call_event_enabled,
            strict_window: i.strict_window,
            window_hours: i.window_hours,
            ip_allowlist: i.ip_allowlist.clone(),
            hmac_required: i.hmac_required,
            business_name: i.business_name.clone(),
        };
        change(&mut settings);
        integrations::update_settings(&self.app.conn, &self.master_key(), i.account_id, &self.id, settings)
            .await
            .unwrap();
    }

    fn master_key(&self) -> gateway::config::MasterKey {
        let env = [
            ("WAG_DATA_DIR".to_string(), self.app.db.data_dir.display().to_string()),
            ("WAG_DATABASE_URL".to_string(), self.app.db.url.clone()),
        ];
        gateway::config::Config::load_from(None, &env).unwrap().master_key
    }

    /// The request log, once the writes that follow each answer have landed.
    async fn log(&self) -> Vec<request_log::Row> {
        settle().await;
        request_log::recent(&self.app.conn, self.integration().await.account_id, &self.id, 500, None).await.unwrap()
    }
}

fn assert_code(got: (StatusCode, Value), status: StatusCode, code: &str) -> Value {
    assert_eq!((got.0, got.1["error"].as_str()), (status, Some(code)), "{}", got.1);
    assert_eq!(got.1["success"], false);
    got.1
}

fn assert_sent(got: (StatusCode, Value)) -> Value {
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(got.1["status"], "sent", "{}", got.1);
    assert!(got.1["message_id"].as_str().unwrap().starts_with("msg_"));
    assert!(got.1["log_id"].as_i64().is_some());
    got.1
}

fn assert_skipped(got: (StatusCode, Value), reason: &str) {
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(got.1, json!({"success": true, "status": "skipped", "reason": reason}));
}

async fn every_pre_auth_failure_gets_the_same_generic_answer(backend: Backend) {
    let Some(t) = setup(backend, vec![], &["--ip-allowlist", "127.0.0.1"]).await else { return };
    let body = json!({"event_type": "test"}).to_string();
    let generic = json!({"success": false, "error": "invalid_3cx_webhook", "message": "Invalid 3CX webhook request."});
    let client = t.app.api();
    let post = |url: String, secret: Option<String>| {
        let mut r = client.post(url).header("content-type", "application/json").body(body.clone());
        if let Some(s) = secret {
            r = r.header("x-whatsapp-gateway-3cx-secret", s);
        }
        r
    };
    let base = t.app.url("/integrations/3cx/webhook/");
    let mut answers = Vec::new();
    for (cause, request) in [
        ("unknown integration", post(format!("{base}tcx_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), Some(t.secret.clone()))),
        ("malformed id", post(format!("{base}..%2F..%2Fetc"), Some(t.secret.clone()))),
        ("missing secret", post(t.webhook_url(), None)),
        ("empty secret", post(t.webhook_url(), Some(String::new()))),
        ("wrong secret", post(t.webhook_url(), Some(format!("{}x", t.secret)))),
        ("another secret", post(t.webhook_url(), Some("tcxs_wrongwrongwrongwrongwrongwrongwrongwron".into()))),
    ] {
        let response = request.send().await.unwrap();
        let status = response.status();
        let content_type = response.headers().get("content-type").cloned();
        let text = response.text().await.unwrap();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{cause}");
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), generic, "{cause}");
        answers.push((cause, status, content_type, text));
    }

    // The allowlist refuses our address, then the integration is disabled.
    t.settings(|s| s.ip_allowlist = IpAllowlist::parse("203.0.113.0/24").unwrap()).await;
    let (status, text, headers) = t.post_raw(body.clone(), &[]).await;
    answers.push(("ip not allowed", status, headers.get("content-type").cloned(), text));
    t.settings(|s| {
        s.ip_allowlist = IpAllowlist::default();
        s.enabled = false;
    })
    .await;
    let (status, text, headers) = t.post_raw(body.clone(), &[]).await;
    answers.push(("disabled", status, headers.get("content-type").cloned(), text));

    // HMAC required: missing, stale, future, wrong, tampered.
    let hmac = "a-shared-hmac-secret-for-tests";
    let key = t.master_key();
    let account_id = t.integration().await.account_id;
    integrations::set_hmac_secret(&t.app.conn, &key, account_id, &t.id, hmac).await.unwrap();
    t.settings(|s| {
        s.enabled = true;
        s.hmac_required = true;
    })
    .await;
    let now = gateway::time::now();
    let sig = |ts: i64, body: &str| gateway::threecx::signature::sign(hmac, &ts.to_string(), body.as_bytes());
    for (cause, headers, sent_body) in [
        ("no signature headers", vec![], body.clone()),
        ("no timestamp", vec![("x-whatsapp-gateway-signature", format!("sha256={}", sig(now, &body)))], body.clone()),
        ("no signature", vec![("x-whatsapp-gateway-timestamp", now.to_string())], body.clone()),
        (
            "stale",
            vec![
                ("x-whatsapp-gateway-timestamp", (now - 310).to_string()),
                ("x-whatsapp-gateway-signature", format!("sha256={}", sig(now - 310, &body))),
            ],
            body.clone(),
        ),
        (
            "future",
            vec![
                ("x-whatsapp-gateway-timestamp", (now + 310).to_string()),
                ("x-whatsapp-gateway-signature", format!("sha256={}", sig(now + 310, &body))),
            ],
            body.clone(),
        ),
        (
            "wrong key",
            vec![
                ("x-whatsapp-gateway-timestamp", now.to_string()),
                (
                    "x-whatsapp-gateway-signature",
                    gateway::threecx::signature::sign("another", &now.to_string(), body.as_bytes()),
                ),
            ],
            body.clone(),
        ),
        (
            "tampered body",
            vec![
                ("x-whatsapp-gateway-timestamp", now.to_string()),
                ("x-whatsapp-gateway-signature", format!("sha256={}", sig(now, &body))),
            ],
            json!({"event_type": "test", "x": 1}).to_string(),
        ),
    ] {
        let headers: Vec<(&str, String)> = headers;
        let (status, text, h) = t.post_raw(sent_body, &headers).await;
        answers.push((cause, status, h.get("content-type").cloned(), text));
    }
    let first = answers[0].clone();
    for answer in &answers {
        assert_eq!((answer.1, &answer.2, &answer.3), (first.1, &first.2, &first.3), "{} differs", answer.0);
    }
    // With a good signature the same request passes, once: sent again (a captured request
    // replayed inside the timestamp's window, in any signature form) it gets the generic answer.
    let signed = |ts: i64, signature: String| {
        vec![("x-whatsapp-gateway-timestamp", ts.to_string()), ("x-whatsapp-gateway-signature", signature)]
    };
    let (status, _, _) = t.post_raw(body.clone(), &signed(now, format!("sha256={}", sig(now, &body)))).await;
    assert_eq!(status, StatusCode::OK);
    for replayed in [format!("sha256={}", sig(now, &body)), sig(now, &body).to_uppercase()] {
        let (status, text, h) = t.post_raw(body.clone(), &signed(now, replayed)).await;
        assert_eq!(
            (status, h.get("content-type").cloned(), text),
            (first.1, first.2.clone(), first.3.clone()),
            "replay"
        );
    }
    // Signed again with a new timestamp, the same body passes.
    let (status, _, _) = t.post_raw(body.clone(), &signed(now + 1, sig(now + 1, &body))).await;
    assert_eq!(status, StatusCode::OK);

    // The owner's request log says why, without secrets; unknown ids are nobody's to log.
    let log = t.log().await;
    let details: Vec<String> = log.iter().filter_map(|r| r.detail.clone()).collect();
    for expected in [
        "missing or wrong X-WhatsApp-Gateway-3CX-Secret",
        "client IP not in the allowlist",
        "integration disabled",
        "HMAC: timestamp more than 300 s from the server's clock",
        "HMAC: signature does not match the body",
        "HMAC: the same signed request was received before (replay)",
    ] {
        assert!(details.iter().any(|d| d == expected), "{expected} not in {details:?}");
    }
    assert!(log.iter().all(|r| !format!("{r:?}").contains(&t.secret) && !format!("{r:?}").contains(hmac)));
    t.app.finish().await;
}

/// The signing lines of the documented shell example, run as documented.
fn openssl_signature(doc: &str, hmac_secret: &str, timestamp: i64, body: &str) -> String {
    let block = doc
        .split("```bash")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .find(|b| b.contains("openssl dgst"))
        .expect("the docs have an openssl example");
    let signing: Vec<&str> = block.lines().filter(|l| l.starts_with("SIG=")).collect();
    assert_eq!(signing.len(), 1, "one SIG= line in {block}");
    let script = format!("{}\nprintf '%s' \"$SIG\"", signing[0]);
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new("bash")
            .arg("-c")
            .arg(&script)
            .env("HMAC_SECRET", hmac_secret)
            .env("TS", timestamp.to_string())
            .env("BODY", body)
            .output()
            .expect("bash runs")
    });
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

async fn signatures_in_both_forms_and_the_documented_openssl_command(backend: Backend) {
    let hmac = "tcxh_0123456789abcdefghijklmnopqrstuvwxyzABCD";
    let Some(t) = setup(backend, vec![], &["--hmac-secret", hmac]).await else { return };
    let body = json!({"event_type": "test"}).to_string();
    let now = gateway::time::now();
    let ours = gateway::threecx::signature::sign(hmac, &now.to_string(), body.as_bytes());
    // Each form with a timestamp of its own: a signed request is taken once (replays are refused).
    for (n, form) in
        [|s: &str| format!("sha256={s}"), |s: &str| s.to_string(), |s: &str| s.to_uppercase()].into_iter().enumerate()
    {
        let ts = now - 10 - n as i64;
        let signature = form(&gateway::threecx::signature::sign(hmac, &ts.to_string(), body.as_bytes()));
        let (status, text, _) = t
            .post_raw(
                body.clone(),
                &[("x-whatsapp-gateway-timestamp", ts.to_string()), ("x-whatsapp-gateway-signature", signature)],
            )
            .await;
        assert_eq!((status, text.as_str()), (StatusCode::OK, r#"{"success":true}"#));
    }
    // Within ±300 s is fine, both ways.
    for ts in [now - 290, now + 290] {
        let sig = gateway::threecx::signature::sign(hmac, &ts.to_string(), body.as_bytes());
        let (status, _, _) = t
            .post_raw(
                body.clone(),
                &[("x-whatsapp-gateway-timestamp", ts.to_string()), ("x-whatsapp-gateway-signature", sig)],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }

    // The size is checked before the signature: an oversized body answers 413 whatever it is signed with.
    let big = format!(r#"{{"event_type":"test","padding":"{}"}}"#, "a".repeat(256 * 1024));
    let (status, _, _) = t
        .post_raw(
            big,
            &[("x-whatsapp-gateway-timestamp", now.to_string()), ("x-whatsapp-gateway-signature", "sha256=00".into())],
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // The docs' openssl line computes what the server accepts.
    let doc = include_str!("../../../app/docs/3cx-webhooks.md");
    let shell = openssl_signature(doc, hmac, now, &body);
    assert_eq!(shell, ours);
    let (status, _, _) = t
        .post_raw(
            body.clone(),
            &[
                ("x-whatsapp-gateway-timestamp", now.to_string()),
                ("x-whatsapp-gateway-signature", format!("sha256={shell}")),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    t.app.finish().await;
}

async fn allowlists_of_both_families(backend: Backend) {
    // Behind a trusted proxy (the test client at 127.0.0.1), X-Forwarded-For names the client,
    // so IPv6 clients can be tried over the loopback.
    let env = vec![("WAG_TRUSTED_PROXIES", "127.0.0.1".to_string())];
    let Some(t) = setup(backend, env, &["--ip-allowlist", "198.51.100.0/24,2001:db8::/32,203.0.113.7"]).await else {
        return;
    };
    let body = json!({"event_type": "test"}).to_string();
    for (client, allowed) in [
        ("198.51.100.23", true),
        ("198.51.101.1", false),
        ("203.0.113.7", true),
        ("203.0.113.8", false),
        ("2001:db8:1234::5", true),
        ("2001:db9::5", false),
        ("::ffff:198.51.100.9", true),
    ] {
        let (status, _, _) = t.post_raw(body.clone(), &[("x-forwarded-for", client.to_string())]).await;
        let want = if allowed { StatusCode::OK } else { StatusCode::UNAUTHORIZED };
        assert_eq!(status, want, "{client}");
    }
    // A client cannot slip an allowed address in front of the chain: the right-most entry that
    // is not a trusted proxy counts, and an unreadable entry makes the proxy the client.
    for spoofed in ["198.51.100.23, 192.0.2.1", "198.51.100.23, unknown", "198.51.100.23,garbage"] {
        let (status, _, _) = t.post_raw(body.clone(), &[("x-forwarded-for", spoofed.to_string())]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{spoofed}");
    }
    let (status, _, _) = t.post_raw(body.clone(), &[("x-forwarded-for", "192.0.2.1, 198.51.100.23".to_string())]).await;
    assert_eq!(status, StatusCode::OK);
    // Without a forwarded address the proxy itself (127.0.0.1) is the client: not listed.
    assert_eq!(t.post_raw(body.clone(), &[]).await.0, StatusCode::UNAUTHORIZED);
    t.settings(|s| s.ip_allowlist = IpAllowlist::parse("127.0.0.0/8").unwrap()).await;
    assert_eq!(t.post_raw(body.clone(), &[]).await.0, StatusCode::OK);
    t.app.finish().await;
}

async fn the_256_kb_boundary(backend: Backend) {
    let Some(t) = setup(backend, vec![], &[]).await else { return };
    let limit = 256 * 1024;
    let body_of = |len: usize| {
        let head = r#"{"event_type":"test","padding":""#;
        let tail = r#""}"#;
        format!("{head}{}{tail}", "a".repeat(len - head.len() - tail.len()))
    };
    let (status, text, _) = t.post_raw(body_of(limit), &[]).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, r#"{"success":true}"#));
    let (status, text, _) = t.post_raw(body_of(limit + 1), &[]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["error"], "payload_too_large");
    // A streamed body without Content-Length is cut off at the limit too.
    assert_eq!(post_chunked(&t, limit + 1, false).await, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(post_chunked(&t, limit, true).await, StatusCode::OK);
    // Oversized bodies from strangers still get the generic answer first.
    let response = t
        .app
        .api()
        .post(t.webhook_url())
        .header("x-whatsapp-gateway-3cx-secret", "wrong")
        .body(body_of(limit + 10))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    t.app.finish().await;
}

/// The request log is written just after each answer: give those writes a moment.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// Waits, if need be, so that what follows runs within one clock minute (limits count per minute).
async fn start_of_a_minute() {
    let second = gateway::time::now().rem_euclid(60);
    if second > 40 {
        tokio::time::sleep(Duration::from_secs((61 - second) as u64)).await;
    }
}

/// POSTs a `size`-byte JSON body in chunks, without Content-Length, over a plain socket; the
/// answer is read whatever happens to the rest of the body.
async fn post_chunked(t: &Tcx, size: usize, complete: bool) -> StatusCode {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = t.app.base.trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST /integrations/3cx/webhook/{} HTTP/1.1\r\nHost: {addr}\r\nX-WhatsApp-Gateway-3CX-Secret: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        t.id, t.secret
    );
    let (open, close) = (r#"{"event_type":"test","padding":""#, r#""}"#);
    let mut body = open.as_bytes().to_vec();
    body.extend(std::iter::repeat_n(b'a', size - open.len() - close.len()));
    body.extend_from_slice(close.as_bytes());
    let writing = tokio::spawn(async move {
        if writer.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let mut framed = Vec::new();
        for chunk in body.chunks(16 * 1024) {
            framed.extend([format!("{:x}\r\n", chunk.len()).into_bytes(), chunk.to_vec(), b"\r\n".to_vec()].concat());
        }
        framed.extend_from_slice(b"0\r\n\r\n");
        if !complete {
            // Nothing past the last data byte: bytes the server never reads would make its close
            // a reset, which can discard the answer before it is read.
            framed.truncate(framed.len() - b"\r\n0\r\n\r\n".len());
        }
        let _ = writer.write_all(&framed).await;
        // Keep the socket open for writing until the answer is read.
        std::future::pending::<()>().await;
    });
    // Read up to the end of the answer's head (the writer holds the connection open).
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout_at(deadline, reader.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => response.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    writing.abort();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status: u16 = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

async fn the_61st_request_in_a_minute_is_refused_across_servers(backend: Backend) {
    let Some(t) = setup(backend, vec![], &[]).await else { return };
    start_of_a_minute().await;
    let (other_base, other) = t.app.second_server().await;
    let body = json!({"event_type": "test"}).to_string();
    let client = t.app.api();
    // Refused guesses in the same minute do not use up the integration's allowance.
    for _ in 0..10 {
        let response = client
            .post(t.webhook_url())
            .header("x-whatsapp-gateway-3cx-secret", "tcxs_guess")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    for i in 0..60 {
        let base = if i % 2 == 0 { t.app.base.clone() } else { other_base.clone() };
        let response = client
            .post(format!("{base}/integrations/3cx/webhook/{}", t.id))
            .header("x-whatsapp-gateway-3cx-secret", &t.secret)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "request {}", i + 1);
    }
    let (status, text, headers) = t.post_raw(body.clone(), &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["error"], "webhook_rate_limited");
    let retry: i64 = headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    // A wrong secret still gets the generic 401, not 429: authentication comes first.
    let response = client
        .post(t.webhook_url())
        .header("x-whatsapp-gateway-3cx-secret", "tcxs_guess")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let log = t.log().await;
    assert_eq!(log.iter().filter(|r| r.outcome == "ok").count(), 60);
    assert_eq!(log.iter().filter(|r| r.outcome == "webhook_rate_limited").count(), 1);
    assert_eq!(log.iter().filter(|r| r.outcome == "invalid_3cx_webhook").count(), 11);
    other.stop().await;
    t.app.finish().await;
}

async fn json_module_and_event_type_errors(backend: Backend) {
    let Some(t) = setup(backend, vec![], &[]).await else { return };
    assert_eq!(t.event(json!({"event_type": "test"})).await, (StatusCode::OK, json!({"success": true})));
    for bad in ["{", "not json", "", "[1,2]", "\"test\""] {
        let (status, text, _) = t.post_raw(bad.to_string(), &[]).await;
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_eq!((status, answer["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_json")), "{bad:?}");
    }
    let unsupported = assert_code(
        t.event(json!({"event_type": "sms_received"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unsupported_event_type",
    );
    assert_eq!(unsupported["details"]["supported"].as_array().unwrap().len(), 10);
    assert_code(t.event(json!({"to": CUSTOMER})).await, StatusCode::UNPROCESSABLE_ENTITY, "unsupported_event_type");
    for recorded in ["call_started", "queue_event"] {
        assert_eq!(
            t.event(json!({"event_type": recorded, "caller": CUSTOMER})).await,
            (StatusCode::OK, json!({"success": true, "status": "recorded"}))
        );
    }
    // The module is checked after the body is read and before the event.
    t.admin(&["admin", "set-module", "--email", &t.email, "--module", "3cx", "--enabled", "false"]);
    let (status, text, _) = t.post_raw("{".to_string(), &[]).await;
    assert_eq!((status, text.contains("invalid_json")), (StatusCode::BAD_REQUEST, true));
    let off = assert_code(t.event(json!({"event_type": "test"})).await, StatusCode::FORBIDDEN, "module_not_enabled");
    assert_eq!(off["message"], "3CX Middleware is not enabled for this account.");

    // Housekeeping keeps recent requests and drops those past the retention.
    let logged = t.log().await.len();
    assert!(logged >= 8);
    let now = gateway::time::now();
    assert_eq!(request_log::delete_before(&t.app.conn, now - 60).await.unwrap(), 0);
    assert_eq!(t.log().await.len(), logged);
    assert_eq!(request_log::delete_before(&t.app.conn, now + 60).await.unwrap(), logged as u64);
    t.app.finish().await;
}

async fn agent_replies_need_an_open_conversation(backend: Backend) {
    let Some(t) = setup(backend, vec![], &[]).await else { return };
    let reply = |phone_field: &str, text_field: &str| {
        json!({
            "event_type": "outbound_message",
            phone_field: CUSTOMER,
            text_field: REPLY,
            "message_purpose": "support",
            "conversation_id": "3cx-chat-123",
            "agent_extension": "101",
        })
    };
    // Nobody wrote yet: the window is closed.
    let closed =
        assert_code(t.event(reply("to", "message_text")).await, StatusCode::FORBIDDEN, "conversation_window_closed");
    assert!(closed["message"].as_str().unwrap().contains("conversation window"));

    t.customer_writes(CUSTOMER, "Hello, my order has not arrived yet").await;
    let sent = assert_sent(t.event(reply("to", "message_text")).await);
    // Every alias for the phone and the text.
    for phone_field in ["to", "from", "customer_phone", "caller", "phone"] {
        for text_field in ["message_text", "message"] {
            assert_sent(t.event(reply(phone_field, text_field)).await);
        }
    }
    let inbound_reply = json!({
        "event_type": "inbound_reply", "customer_phone": CUSTOMER, "message": REPLY, "agent_extension": 205,
        "message_purpose": "support",
    });
    assert_sent(t.event(inbound_reply).await);
    // An agent's reply names its purpose (the spec's troubleshooting table): a missing one, the
    // blocked list and `unknown` are refused.
    for missing in [
        json!({"event_type": "outbound_message", "to": CUSTOMER, "message": REPLY}),
        json!({"event_type": "inbound_reply", "to": CUSTOMER, "message": REPLY, "message_purpose": null}),
    ] {
        assert_code(t.event(missing).await, StatusCode::UNPROCESSABLE_ENTITY, "message_purpose_not_allowed");
    }
    for purpose in ["marketing", "promotion", "cold_outreach", "bulk_campaign", "political", "unknown", ""] {
        let body =
            json!({"event_type": "outbound_message", "to": CUSTOMER, "message": REPLY, "message_purpose": purpose});
        assert_code(t.event(body).await, StatusCode::UNPROCESSABLE_ENTITY, "message_purpose_not_allowed");
    }
    assert_code(
        t.event(json!({"event_type": "outbound_message", "message": REPLY})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing_phone",
    );
    assert_code(
        t.event(json!({"event_type": "outbound_message", "to": "ext 101", "message": REPLY})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing_phone",
    );
    assert_code(
        t.event(json!({"event_type": "outbound_message", "to": CUSTOMER})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing_message_text",
    );
    assert_code(
        t.event(json!({"event_type": "outbound_message", "to": CUSTOMER, "message_text": "  "})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing_message_text",
    );

    // The message log says where the message came from.
    let account_id = t.integration().await.account_id;
    let rows = gateway::message_log::log(&t.app.conn, account_id, &Default::default(), 100).await.unwrap();
    let first = rows.iter().find(|r| r.message_id == sent["message_id"].as_str().unwrap()).unwrap();
    assert_eq!((first.source.as_str(), first.purpose.as_str()), ("3cx", "support"));
    assert_eq!(first.conversation_id.as_deref(), Some("3cx-chat-123"));
    assert_eq!(first.agent_extension.as_deref(), Some("101"));
    assert!(rows.iter().any(|r| r.agent_extension.as_deref() == Some("205")));

    // Outside the window (last message 25 h ago) the reply is refused; the window length counts.
    conversation::Entity::update_many()
        .col_expr(conversation::Column::LastInboundAt, Expr::value(gateway::time::now() - 25 * 3600))
        .filter(conversation::Column::Phone.eq(CUSTOMER))
        .exec(&t.app.conn)
        .await
        .unwrap();
    assert_code(t.event(reply("to", "message_text")).await, StatusCode::FORBIDDEN, "conversation_window_closed");
    t.settings(|s| s.window_hours = 48).await;
    assert_sent(t.event(reply("to", "message_text")).await);

    // Non-strict mode replies to someone who never wrote.
    let stranger =
        json!({"event_type": "outbound_message", "to": OTHER_CUSTOMER, "message": REPLY, "message_purpose": "support"});
    assert_code(t.event(stranger.clone()).await, StatusCode::FORBIDDEN, "conversation_window_closed");
    t.settings(|s| s.strict_window = false).await;
    assert_sent(t.event(stranger.clone()).await);

    // Outbound switched off.
    t.settings(|s| s.outbound_enabled = false).await;
    let off = assert_code(t.event(stranger).await, StatusCode::FORBIDDEN, "outbound_disabled");
    assert!(off["message"].as_str().unwrap().contains("disabled"));

    // The request log keeps outcomes and masked phones, no bodies.
    let log = t.log().await;
    assert!(log.iter().any(|r| r.outcome == "sent" && r.phone_masked.as_deref() == Some("+966•••••••67")));
    assert!(log.iter().any(|r| r.outcome == "conversation_window_closed"));
    assert!(log.iter().all(|r| !format!("{r:?}").contains("support ticket") && !format!("{r:?}").contains(CUSTOMER)));
    t.app.finish().await;
}

async fn call_events_send_templates_once_per_cooldown(backend: Backend) {
    let Some(t) = setup(backend, vec![], &["--business-name", "Acme Clinic"]).await else { return };
    let call = |event: &str, phone: &str| json!({"event_type": event, "caller": phone, "queue": "Billing", "agent_extension": "101"});

    // Nobody wrote: skipped, not refused.
    assert_skipped(t.event(call("missed_call", CUSTOMER)).await, "conversation_window_closed");
    t.customer_writes(CUSTOMER, "Hi, I tried to call you about my appointment").await;
    t.customer_writes(OTHER_CUSTOMER, "Hello, please call me back").await;

    let sent = assert_sent(t.event(call("missed_call", CUSTOMER)).await);
    // Same event, same phone, within 15 minutes: skipped.
    assert_skipped(t.event(call("missed_call", CUSTOMER)).await, "cooldown_active");
    // Another event type for the same phone, and the same event for another phone, send.
    assert_sent(t.event(call("queue_callback", CUSTOMER)).await);
    assert_sent(t.event(call("missed_call", OTHER_CUSTOMER)).await);
    for event in ["voicemail", "call_ended", "after_hours"] {
        assert_sent(t.event(call(event, CUSTOMER)).await);
        assert_skipped(t.event(call(event, CUSTOMER)).await, "cooldown_active");
    }

    // Racing events for the same caller send once.
    let (a, b, c) = tokio::join!(
        t.event(call("after_hours", OTHER_CUSTOMER)),
        t.event(call("after_hours", OTHER_CUSTOMER)),
        t.event(call("after_hours", OTHER_CUSTOMER)),
    );
    let statuses: Vec<String> =
        [a, b, c].iter().map(|(_, v)| v["status"].as_str().unwrap_or("?").to_string()).collect();
    assert_eq!(statuses.iter().filter(|s| *s == "sent").count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| *s == "skipped").count(), 2, "{statuses:?}");
    gateway::entities::threecx_cooldown::Entity::update_many()
        .col_expr(gateway::entities::threecx_cooldown::Column::LastSentAt, Expr::value(0i64))
        .filter(gateway::entities::threecx_cooldown::Column::EventType.eq("after_hours"))
        .filter(gateway::entities::threecx_cooldown::Column::Phone.eq(OTHER_CUSTOMER))
        .exec(&t.app.conn)
        .await
        .unwrap();

    // The template text, with its variables filled in.
    let account_id = t.integration().await.account_id;
    let rows = gateway::message_log::log(&t.app.conn, account_id, &Default::default(), 100).await.unwrap();
    let missed = rows.iter().find(|r| r.message_id == sent["message_id"].as_str().unwrap()).unwrap();
    assert!(missed.body.starts_with("Hello, this is Acme Clinic. We missed your call at "), "{}", missed.body);
    assert!(!missed.body.contains("{{"));
    assert_eq!(missed.source, "3cx");
    let callback = rows.iter().find(|r| r.body.contains("callback request")).unwrap();
    assert!(callback.body.contains("for Billing"), "{}", callback.body);

    // A disabled template is skipped; disabled call events are refused.
    let integration = t.integration().await;
    let template = integration.templates.get(gateway::threecx::templates::CallEvent::Voicemail);
    integrations::update_template(
        &t.app.conn,
        account_id,
        &t.id,
        gateway::threecx::templates::CallEvent::Voicemail,
        false,
        &template.text,
    )
    .await
    .unwrap();
    assert_skipped(t.event(call("voicemail", OTHER_CUSTOMER)).await, "template_disabled");
    assert_code(t.event(json!({"event_type": "missed_call"})).await, StatusCode::UNPROCESSABLE_ENTITY, "missing_phone");
    assert_code(
        t.event(json!({"event_type": "missed_call", "caller": OTHER_CUSTOMER, "message_purpose": "marketing"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "message_purpose_not_allowed",
    );
    t.settings(|s| s.call_event_enabled = false).await;
    assert_code(t.event(call("after_hours", OTHER_CUSTOMER)).await, StatusCode::FORBIDDEN, "call_events_disabled");
    t.settings(|s| s.call_event_enabled = true).await;

    // Once the cooldown has passed, the next follow-up goes out.
    gateway::entities::threecx_cooldown::Entity::update_many()
        .col_expr(
            gateway::entities::threecx_cooldown::Column::LastSentAt,
            Expr::value(gateway::time::now() - 15 * 60 - 1),
        )
        .exec(&t.app.conn)
        .await
        .unwrap();
    assert_sent(t.event(call("missed_call", CUSTOMER)).await);

    // A refused follow-up does not start the cooldown: after the opt-out is lifted it sends.
    t.customer_writes(OTHER_CUSTOMER, "STOP").await;
    assert_code(t.event(call("after_hours", OTHER_CUSTOMER)).await, StatusCode::FORBIDDEN, "recipient_suppressed");
    let listed = gateway::suppressions::list(&t.app.conn, account_id, Some(OTHER_CUSTOMER), 1).await.unwrap();
    gateway::suppressions::remove(&t.app.conn, account_id, listed[0].id, "test").await.unwrap();
    assert_sent(t.event(call("after_hours", OTHER_CUSTOMER)).await);
    t.app.finish().await;
}

async fn the_send_pipeline_refuses_through_3cx(backend: Backend) {
    let env = vec![("WAG_SEND_RATE_PER_MINUTE", "4".to_string())];
    let Some(t) = setup(backend, env, &[]).await else { return };
    start_of_a_minute().await;
    let fails = gateway::connectors::sandbox::FAILS_AT_SEND;
    for phone in [CUSTOMER, OTHER_CUSTOMER, fails] {
        t.customer_writes(phone, "Hello, I have a question about my invoice").await;
    }
    let reply = |phone: &str, text: &str| json!({"event_type": "outbound_message", "to": phone, "message": text, "message_purpose": "support"});

    let spam = "MEGA SALE!!! 70% off everything, buy now with promo code SAVE70 at bit.ly/deal 🔥🔥🔥";
    let blocked = assert_code(t.event(reply(CUSTOMER, spam)).await, StatusCode::FORBIDDEN, "policy_violation");
    assert!(blocked["details"]["risk_score"].as_i64().unwrap() >= 70);

    let failed = assert_code(t.event(reply(fails, REPLY)).await, StatusCode::BAD_GATEWAY, "gateway_send_failed");
    assert!(failed["details"]["log_id"].as_i64().is_some());

    // Four per minute per instance; the failed send used one (its quota unit was given back).
    for _ in 0..3 {
        assert_sent(t.event(reply(CUSTOMER, REPLY)).await);
    }
    let (status, text, headers) = t.post_raw(reply(CUSTOMER, REPLY).to_string(), &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["error"], "sending_throttled");
    assert!(headers.get("retry-after").is_some());

    t.admin(&["admin", "set-plan", "--email", &t.email, "--plan", "starter", "--daily-limit", "1"]);
    assert_code(
        t.event(reply(OTHER_CUSTOMER, REPLY)).await,
        StatusCode::TOO_MANY_REQUESTS,
        "daily_message_limit_exceeded",
    );
    t.admin(&[
        "admin",
        "set-plan",
        "--email",
        &t.email,
        "--plan",
        "starter",
        "--daily-limit",
        "0",
        "--monthly-limit",
        "1",
    ]);
    assert_code(
        t.event(reply(OTHER_CUSTOMER, REPLY)).await,
        StatusCode::TOO_MANY_REQUESTS,
        "monthly_message_limit_exceeded",
    );
    t.admin(&["admin", "set-plan", "--email", &t.email, "--plan", "starter", "--monthly-limit", "0"]);

    t.admin(&["admin", "pause-instance", "--instance", &t.instance, "--reason", "Review of 3CX traffic"]);
    assert_code(t.event(reply(OTHER_CUSTOMER, REPLY)).await, StatusCode::LOCKED, "instance_paused_for_review");
    t.admin(&["admin", "resume-instance", "--instance", &t.instance]);

    t.customer_writes(OTHER_CUSTOMER, "STOP").await;
    assert_code(t.event(reply(OTHER_CUSTOMER, REPLY)).await, StatusCode::FORBIDDEN, "recipient_suppressed");

    // Every decision is in the policy log, as for the JSON API.
    let account_id = t.integration().await.account_id;
    let decisions = gateway::policy_log::recent_concerns(&t.app.conn, account_id, None, 100).await.unwrap();
    for code in ["policy_violation", "sending_throttled", "recipient_suppressed", "instance_paused_for_review"] {
        assert!(decisions.iter().any(|d| d.error_code.as_deref() == Some(code)), "{code} not policy-logged");
    }
    t.app.finish().await;
}

async fn inbound_messages_are_forwarded_to_3cx_signed(backend: Backend) {
    let Some(t) = setup(backend, fast_webhooks(), &[]).await else { return };
    let (receiver, url) = Receiver::start(&[]).await;
    let integration = t.integration().await;
    let key = t.master_key();
    let secret = gateway::threecx::forwarding::set_url(&t.app.conn, &key, integration.account_id, &t.id, &url)
        .await
        .unwrap()
        .expect("a new destination has a secret");
    assert!(secret.starts_with("whsec_"));

    t.customer_writes(CUSTOMER, "Hello, I need help with my booking").await;
    let events = receiver.wait_for("message.received", |e| !e.is_empty()).await;
    assert_eq!(events[0]["event"], "message.received");
    assert_eq!(events[0]["from"], CUSTOMER);
    assert_eq!(events[0]["text"], "Hello, I need help with my booking");
    assert_eq!(events[0]["instance_id"], t.instance.as_str());
    let received = receiver.got.lock().unwrap().clone();
    verify_with_python(&secret, &received);

    // Only message.received goes to 3CX; the customer's webhook tab does not list 3CX's destination.
    t.customer_writes(CUSTOMER, "STOP").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.events().iter().all(|e| e["event"] == "message.received"));
    let listed = gateway::webhooks::destinations::list(&t.app.conn, integration.account_id, &t.instance).await.unwrap();
    assert!(listed.is_empty());

    // Nothing is forwarded while the integration or the account's 3CX module is off.
    let before = receiver.events().len();
    t.settings(|s| s.enabled = false).await;
    t.customer_writes(OTHER_CUSTOMER, "Are you open on Friday?").await;
    t.settings(|s| s.enabled = true).await;
    t.admin(&["admin", "set-module", "--email", &t.email, "--module", "3cx", "--enabled", "false"]);
    t.customer_writes(OTHER_CUSTOMER, "Hello again, are you open on Saturday?").await;
    t.admin(&["admin", "set-module", "--email", &t.email, "--module", "3cx", "--enabled", "true"]);
    t.customer_writes(OTHER_CUSTOMER, "Thanks, see you then").await;
    let events = receiver.wait_for("the message after re-enabling", |e| e.len() > before).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let forwarded: Vec<Value> = receiver.events()[before..].iter().map(|e| e["text"].clone()).collect();
    assert_eq!(forwarded, vec![json!("Thanks, see you then")], "{events:?}");

    // Deleting the instance removes the integration and its destination.
    gateway::instances::delete(&t.app.conn, integration.account_id, &t.instance).await.unwrap();
    assert!(threecx_integration::Entity::find_by_id(t.id.clone()).one(&t.app.conn).await.unwrap().is_none());
    assert_eq!(gateway::entities::webhook_destination::Entity::find().all(&t.app.conn).await.unwrap().len(), 0);
    t.app.finish().await;
}

async fn the_3cx_page_manages_an_integration(backend: Backend) {
    let Some(app) = spawn_app_with(backend, Options::default()).await else { return };
    let browser = app.browser();
    let email = unique_email("tcxpage");
    browser.signup(&email, PASSWORD).await;
    let page = browser.visit("/integrations/3cx").await;
    assert!(page.body.contains("3CX Middleware is not enabled for this account."));
    assert!(!page.body.contains("Create integration"));

    assert!(app.wag(&["admin", "set-module", "--email", &email, "--module", "3cx", "--enabled", "true"]).success);
    let instance = browser.create_instance("Front desk").await;
    let page = browser.visit("/integrations/3cx").await;
    assert!(page.body.contains("Create integration") && page.body.contains("Front desk"));
    let posted = browser
        .submit(
            "/integrations/3cx",
            "/_fn/3cx/create",
            &[("instance_id", &instance), ("business_name", "Front Desk Clinic")],
        )
        .await;
    assert_eq!(posted.location.as_deref(), Some("/integrations/3cx"));
    let shown = browser.get("/integrations/3cx").await;
    let secret = shown.secret("new-3cx-secret").expect("the webhook secret is shown once");
    assert!(shown.new_api_key().is_none(), "the 3CX secret does not reuse the API key's field id");
    assert!(secret.starts_with("tcxs_"));
    let start = shown.body.find("/integrations/3cx/webhook/tcx_").expect("the webhook URL is shown");
    let id: String = shown.body[start + "/integrations/3cx/webhook/".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let again = browser.get("/integrations/3cx").await;
    assert!(!again.body.contains(&secret), "the secret is shown only once");

    let post = |secret: String| {
        let client = app.api();
        let url = app.url(&format!("/integrations/3cx/webhook/{id}"));
        async move {
            client
                .post(url)
                .header("x-whatsapp-gateway-3cx-secret", secret)
                .body(r#"{"event_type":"test"}"#)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(post(secret.clone()).await, StatusCode::OK);
    settle().await;
    let page = browser.get("/integrations/3cx?tab=log").await;
    assert!(page.body.contains(">test<") && page.body.contains(">ok<"), "the request log lists the test event");
    // The page is split into tabs: the settings tab does not carry the log or the templates.
    let settings_tab = browser.get("/integrations/3cx").await;
    assert!(settings_tab.body.contains("Save settings") && !settings_tab.body.contains(">test<"));
    assert!(!settings_tab.body.contains("Save template"));
    for tab in ["security", "templates", "forwarding", "log"] {
        assert!(settings_tab.body.contains(&format!("href=\"/integrations/3cx?tab={tab}\"")), "{tab} tab");
    }

    // Settings: a bad allowlist is refused and changes nothing; good settings are saved.
    let settings = |allowlist: &'static str, window: &'static str| {
        vec![
            ("id", id.clone()),
            ("enabled", "on".to_string()),
            ("call_event_enabled", "on".to_string()),
            ("strict_window", "on".to_string()),
            ("window_hours", window.to_string()),
            ("ip_allowlist", allowlist.to_string()),
            ("business_name", "Front Desk Clinic".to_string()),
        ]
    };
    let submit_settings = |fields: Vec<(&'static str, String)>| {
        let browser = &browser;
        async move {
            let form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            browser.submit("/integrations/3cx", "/_fn/3cx/settings", &form).await;
            browser.get("/integrations/3cx").await
        }
    };
    let refused = submit_settings(settings("10.0.0.1/8", "24")).await;
    assert!(refused.body.contains("did you mean 10.0.0.0/8"), "the allowlist error is shown");
    let refused = submit_settings(settings("", "500")).await;
    assert!(refused.body.contains("1 to 168 hours"));
    let saved = submit_settings(settings("127.0.0.1\n2001:db8::/32", "12")).await;
    assert!(saved.body.contains("Settings saved."));
    let stored = integrations::find_for_webhook(&app.conn, &id).await.unwrap().unwrap();
    assert_eq!((stored.window_hours, stored.outbound_enabled, stored.strict_window), (12, false, true));
    assert_eq!(stored.ip_allowlist.entries(), vec!["127.0.0.1/32", "2001:db8::/32"]);
    assert_eq!(post(secret.clone()).await, StatusCode::OK);

    // Templates: unknown variables are refused at save time; the preview renders a sample.
    let template = |text: &'static str, preview: bool| {
        let mut fields = vec![
            ("id", id.clone()),
            ("event", "missed_call".to_string()),
            ("enabled", "on".to_string()),
            ("text", text.to_string()),
        ];
        if preview {
            fields.push(("preview", "1".to_string()));
        }
        fields
    };
    let submit_template = |fields: Vec<(&'static str, String)>| {
        let browser = &browser;
        async move {
            let form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let posted = browser.submit("/integrations/3cx", "/_fn/3cx/template", &form).await;
            assert_eq!(posted.location.as_deref(), Some("/integrations/3cx?tab=templates"));
            browser.get("/integrations/3cx?tab=templates").await
        }
    };
    let bad = submit_template(template("Hi {{first_name}}, we missed you", false)).await;
    assert!(bad.body.contains("Unknown variable {{first_name}}"), "unknown variable refused");
    let preview = submit_template(template("Sorry we missed you, {{customer_phone}}. {{business_name}}", true)).await;
    assert!(preview
        .body
        .contains("Preview (Missed call, not saved): Sorry we missed you, +966500000000. Front Desk Clinic"));
    let stored = integrations::find_for_webhook(&app.conn, &id).await.unwrap().unwrap();
    assert_eq!(
        stored.templates.get(gateway::threecx::templates::CallEvent::MissedCall).text,
        gateway::threecx::templates::CallEvent::MissedCall.default_text()
    );
    let saved = submit_template(template("Sorry we missed your call. {{business_name}}", false)).await;
    assert!(saved.body.contains("Missed call template saved."));
    assert!(saved.body.contains("Sample: <!>Sorry we missed your call. Front Desk Clinic"));

    // HMAC: generated, shown once.
    browser.submit("/integrations/3cx", "/_fn/3cx/hmac", &[("id", &id), ("hmac_secret", "")]).await;
    let hmac_page = browser.get("/integrations/3cx?tab=security").await;
    assert!(hmac_page.secret("new-3cx-hmac-secret").unwrap().starts_with("tcxh_"));
    browser.submit("/integrations/3cx", "/_fn/3cx/hmac", &[("id", &id), ("hmac_secret", "short")]).await;
    assert!(browser.get("/integrations/3cx?tab=security").await.body.contains("16 to 256 visible ASCII characters"));

    // Forwarding to a private address is refused (this server does not allow private targets).
    browser
        .submit("/integrations/3cx", "/_fn/3cx/forwarding", &[("id", &id), ("url", "http://127.0.0.1:9/hook")])
        .await;
    let refused = browser.get("/integrations/3cx?tab=forwarding").await;
    assert!(refused.body.contains("private, loopback or link-local"));
    assert!(refused.body.contains("WAG_ALLOW_PRIVATE_WEBHOOK_TARGETS"), "the message names the setting");

    // Another account cannot touch it.
    let stranger = app.browser();
    stranger.signup(&unique_email("stranger"), PASSWORD).await;
    stranger.submit("/dashboard", "/_fn/3cx/action", &[("id", &id), ("command", "delete")]).await;
    let before = integrations::find_for_webhook(&app.conn, &id).await.unwrap().expect("still there");
    let theirs = [("id", id.as_str()), ("window_hours", "1"), ("ip_allowlist", ""), ("business_name", "Taken Over")];
    stranger.submit("/dashboard", "/_fn/3cx/settings", &theirs).await;
    stranger
        .submit("/dashboard", "/_fn/3cx/template", &[("id", &id), ("event", "missed_call"), ("text", "Hijacked")])
        .await;
    stranger.submit("/dashboard", "/_fn/3cx/hmac", &[("id", &id), ("hmac_secret", "")]).await;
    stranger.submit("/dashboard", "/_fn/3cx/forwarding", &[("id", &id), ("url", "https://example.com/hook")]).await;
    assert!(stranger.get("/dashboard").await.body.contains("Not found."));
    let after = integrations::find_for_webhook(&app.conn, &id).await.unwrap().unwrap();
    assert_eq!(after, before, "another account changed nothing");
    assert!(!stranger.get("/integrations/3cx").await.body.contains(&id));

    // Rotation: the old secret stops working, the new one works.
    browser.submit("/integrations/3cx", "/_fn/3cx/action", &[("id", &id), ("command", "rotate_secret")]).await;
    let rotated = browser.get("/integrations/3cx?tab=security").await.secret("new-3cx-secret").unwrap();
    assert_ne!(rotated, secret);
    assert_eq!(post(secret.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(post(rotated.clone()).await, StatusCode::OK);

    browser.submit("/integrations/3cx", "/_fn/3cx/action", &[("id", &id), ("command", "delete")]).await;
    assert!(browser.get("/integrations/3cx").await.body.contains("Integration deleted."));
    assert_eq!(post(rotated).await, StatusCode::UNAUTHORIZED);
    app.finish().await;
}
