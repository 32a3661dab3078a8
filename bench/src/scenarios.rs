//! The API benchmarks: guarded sends, inbound ingest, webhook fan-out.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::{
    load::{self, ClosedLoop, MakeRequest, OnAnswer, OpenLoop, Outcome, Target},
    machine::{CpuSample, CpuUse},
    receiver::{self, Receiver, TOKEN_PREFIX},
    report::Report,
    server::{self, Cleanup, Server, Tenant, Workspace},
    stats::{count, round2, thousands, Latencies},
    Common, InboundArgs, LoadArgs, SendArgs, WebhookArgs,
};

/// A fictional recipient (+1 555 01xx-xxxx … 99xx-xxxx), distinct for each of 9 million
/// sequence numbers. The sandbox's magic failing numbers (+15550000001–3) are below the range.
pub fn recipient(seq: u64) -> String {
    format!("+1555{:07}", 1_000_000 + seq % 9_000_000)
}

/// Transactional wording the content policy allows; the order number differs per request, so
/// no two recipients get the same text (the repeated-content rule stays quiet, as for real
/// order notifications).
pub fn send_body(instance_id: &str, seq: u64) -> String {
    json!({
        "instance_id": instance_id,
        "phone": recipient(seq),
        "message": format!("Your order #{} has been shipped and will arrive within 2 business days.", 100_000 + seq),
        "message_purpose": "transactional",
    })
    .to_string()
}

/// A customer writing in; carries the bench token so its webhook can be matched.
pub fn inbound_body(instance_id: &str, seq: u64) -> String {
    json!({
        "instance_id": instance_id,
        "from": recipient(seq),
        "message": format!("Hello, a question about my order {}: when will it arrive? {TOKEN_PREFIX}{seq}", 100_000 + seq),
    })
    .to_string()
}

fn send_factory(target: &Target, tenant: &Tenant, offset: u64, keyed: bool) -> MakeRequest {
    let (target, key, instances) = (target.clone(), tenant.api_key.clone(), tenant.instances.clone());
    Arc::new(move |n| {
        let seq = n + offset;
        let instance = &instances[(seq % instances.len() as u64) as usize];
        let mut request = target.post_json("/api/send-message", &key, send_body(instance, seq));
        if keyed {
            request.headers_mut().insert("idempotency-key", hyper::header::HeaderValue::from(seq));
        }
        request
    })
}

fn inbound_factory(target: &Target, tenant: &Tenant, offset: u64) -> MakeRequest {
    let (target, key, instances) = (target.clone(), tenant.api_key.clone(), tenant.instances.clone());
    Arc::new(move |n| {
        let seq = n + offset;
        let instance = &instances[(seq % instances.len() as u64) as usize];
        target.post_json("/api/sandbox/inbound", &key, inbound_body(instance, seq))
    })
}

fn healthz_factory(target: &Target) -> MakeRequest {
    let target = target.clone();
    Arc::new(move |_| target.get("/healthz"))
}

/// One request that must answer 2xx before load starts: a run of errors measures nothing.
async fn preflight(target: &Target, what: &str, request: hyper::Request<load::Body>) -> anyhow::Result<()> {
    let (status, body) = load::one(target, request).await.with_context(|| format!("pre-flight {what}"))?;
    if !(200..300).contains(&status) {
        bail!("pre-flight {what} answered {status}: {body}");
    }
    Ok(())
}

fn header_lines(report: &mut Report, common: &Common, server: &Server, load: Option<&LoadArgs>) {
    if let Some(l) = load {
        report.header(format!(
            "{} connections, {} s measured after {} s warm-up (closed loop, HTTP/1.1 keep-alive)",
            l.connections, l.seconds, l.warmup
        ));
    }
    let runtime = if common.client_threads <= 1 {
        "current-thread".to_string()
    } else {
        format!("{} worker threads", common.client_threads)
    };
    report.header(format!("client: hyper, {runtime} runtime, in the same machine as the server"));
    let git = crate::machine::git_describe();
    report.header(format!(
        "wag: {} (commit {}{})",
        server.wag.display(),
        git["commit"].as_str().unwrap_or("?"),
        if git["dirty"].as_bool().unwrap_or(false) { ", tree has changes" } else { "" }
    ));
    let m = crate::machine::describe();
    report.header(format!(
        "machine: {}, {} cores, {} GiB RAM, Linux {}, {}",
        m["cpu"].as_str().unwrap_or("?"),
        m["cores"],
        m["ram_gib"],
        m["kernel"].as_str().unwrap_or("?"),
        m["rustc"].as_str().unwrap_or("?")
    ));
    let env: Vec<String> = server
        .env
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "WAG_LISTEN" | "WAG_DATABASE_URL" | "WAG_DATA_DIR"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    report.header(format!("server env: {}", env.join(" ")));
    report.set("server_env", json!(server.env.iter().cloned().collect::<HashMap<_, _>>()));
}

async fn healthz_ceiling(
    report: &mut Report,
    target: &Target,
    server: &Server,
    common: &Common,
    connections: usize,
    seconds: u64,
) {
    let plan = ClosedLoop {
        connections,
        warmup: Duration::from_secs(1),
        measure: Duration::from_secs(seconds),
        budget: None,
        server_pid: server.pid(),
        db: common.db,
    };
    let outcome = load::closed_loop(target, &plan, healthz_factory(target), None).await;
    report.load_row("GET /healthz (ceiling)", &outcome);
}

async fn finish(report: &mut Report, server: Server) {
    report.server_log(&server.log_summary());
    if let Some((status, took)) = server.stop().await {
        report.header(format!("wag stopped on SIGTERM in {:.1} s ({status})", took.as_secs_f64()));
        report.set("stop_seconds", json!(round2(took.as_secs_f64())));
        if !status.success() {
            report.warn(format!(
                "wag did not stop cleanly within {} s of SIGTERM: {status}",
                server::STOP_GRACE.as_secs()
            ));
        }
    }
}

/// `bench send`
pub async fn send(args: SendArgs, cleanup: Arc<Cleanup>) -> anyhow::Result<bool> {
    let common = &args.common;
    let wag = server::locate_wag(common)?;
    let ws = Workspace::fresh(common, &cleanup, "send").await?;
    let server = Server::start(&wag, &ws, args.receipt_delay_ms, &common.env).await?;
    let tenant = server::provision(&server, args.instances).await?;
    let target = Target::new(server.addr);
    preflight(&target, "POST /api/send-message", send_factory(&target, &tenant, 0, args.idempotency_keys)(0)).await?;

    let settings = json!({
        "connections": args.load.connections, "seconds": args.load.seconds, "warmup": args.load.warmup,
        "instances": args.instances, "receipt_delay_ms": args.receipt_delay_ms, "client_threads": common.client_threads,
        "idempotency_keys": args.idempotency_keys,
    });
    let mut report = Report::new("send", common.db, settings);
    header_lines(&mut report, common, &server, Some(&args.load));
    report.header(format!(
        "{} sandbox instance(s); distinct +1 555 recipients; purpose transactional; receipts after {} ms{}",
        tenant.instances.len(),
        args.receipt_delay_ms,
        if args.idempotency_keys { "; an Idempotency-Key on every send" } else { "" }
    ));
    if !args.load.no_healthz {
        healthz_ceiling(&mut report, &target, &server, common, args.load.connections, args.load.seconds).await;
    }
    let plan = ClosedLoop {
        connections: args.load.connections,
        warmup: Duration::from_secs(args.load.warmup),
        measure: Duration::from_secs(args.load.seconds),
        budget: None,
        server_pid: server.pid(),
        db: common.db,
    };
    let outcome =
        load::closed_loop(&target, &plan, send_factory(&target, &tenant, 1, args.idempotency_keys), None).await;
    report.load_row("POST /api/send-message", &outcome);
    let sends_per_instance_minute = outcome.per_second() * 60.0 / tenant.instances.len() as f64;
    if sends_per_instance_minute > 90_000.0 {
        report.warn(format!(
            "≈{} sends per instance per minute is near WAG_SEND_RATE_PER_MINUTE's maximum (100,000): use --instances",
            thousands(sends_per_instance_minute)
        ));
    }
    finish(&mut report, server).await;
    let clean = !report.has_warnings();
    report.print(common.json);
    Ok(clean)
}

/// `bench inbound`
pub async fn inbound(args: InboundArgs, cleanup: Arc<Cleanup>) -> anyhow::Result<bool> {
    let common = &args.common;
    let wag = server::locate_wag(common)?;
    let ws = Workspace::fresh(common, &cleanup, "inbound").await?;
    let server = Server::start(&wag, &ws, 2000, &common.env).await?;
    let tenant = server::provision(&server, 1).await?;
    let target = Target::new(server.addr);
    preflight(&target, "POST /api/sandbox/inbound", inbound_factory(&target, &tenant, 0)(0)).await?;
    let settings = json!({
        "connections": args.load.connections, "seconds": args.load.seconds, "warmup": args.load.warmup,
        "client_threads": common.client_threads,
    });
    let mut report = Report::new("inbound", common.db, settings);
    header_lines(&mut report, common, &server, Some(&args.load));
    report.header("one sandbox instance; each message from a distinct +1 555 sender; no webhook destination");
    if !args.load.no_healthz {
        healthz_ceiling(&mut report, &target, &server, common, args.load.connections, args.load.seconds).await;
    }
    let plan = ClosedLoop {
        connections: args.load.connections,
        warmup: Duration::from_secs(args.load.warmup),
        measure: Duration::from_secs(args.load.seconds),
        budget: None,
        server_pid: server.pid(),
        db: common.db,
    };
    let outcome = load::closed_loop(&target, &plan, inbound_factory(&target, &tenant, 1), None).await;
    report.load_row("POST /api/sandbox/inbound", &outcome);
    finish(&mut report, server).await;
    let clean = !report.has_warnings();
    report.print(common.json);
    Ok(clean)
}

/// A server with a tenant whose instance sends `message.received` to the bench's receiver.
struct Stack {
    server: Server,
    tenant: Tenant,
    target: Target,
}

async fn webhook_stack(common: &Common, cleanup: &Cleanup, receiver: &Receiver, tag: &str) -> anyhow::Result<Stack> {
    let wag = server::locate_wag(common)?;
    let ws = Workspace::fresh(common, cleanup, tag).await?;
    let server = Server::start(&wag, &ws, 2000, &common.env).await?;
    let tenant = server::provision(&server, 1).await?;
    let secret = server::wag_cli(
        &server.wag,
        &server.env,
        &[
            "admin",
            "set-webhook",
            "--instance",
            &tenant.instances[0],
            "--url",
            &receiver.url(),
            "--events",
            "message.received",
        ],
    )
    .await?;
    if server::last_line(&secret).is_empty() {
        bail!("set-webhook printed no secret");
    }
    let target = Target::new(server.addr);
    Ok(Stack { server, tenant, target })
}

/// Waits until every answered token arrived or `drain` passed since `since`.
async fn drain(receiver: &Receiver, expected: usize, since: Instant, drain: Duration) -> bool {
    loop {
        if receiver.distinct_tokens() >= expected {
            return true;
        }
        if since.elapsed() >= drain {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

type Answered = Arc<Mutex<HashMap<u64, Instant>>>;

/// Notes when each injection was answered, by its token (`offset` + the loop's request number,
/// as `inbound_factory` numbers them).
fn note_answers(answered: &Answered, offset: u64) -> OnAnswer {
    let answered = answered.clone();
    Arc::new(move |n, status, at| {
        if (200..300).contains(&status) {
            answered.lock().unwrap().insert(n + offset, at);
        }
    })
}

/// Lag percentiles with undelivered events counted as infinitely late.
fn lag_facts(m: &receiver::Matched, drain_s: u64) -> (Vec<(&'static str, String)>, Value) {
    let mut lags = m.lags_us.clone();
    lags.extend(std::iter::repeat_n(u32::MAX, m.missing as usize));
    let lat = Latencies::new(lags);
    let show = |ms: f64| {
        if ms >= f64::from(u32::MAX) / 1000.0 {
            format!("not delivered within {drain_s} s")
        } else {
            format!("{ms:.1} ms")
        }
    };
    let num = |ms: f64| if ms >= f64::from(u32::MAX) / 1000.0 { Value::Null } else { json!(round2(ms)) };
    let facts = vec![
        ("event lag p50", show(lat.percentile_ms(50.0))),
        ("event lag p99", show(lat.percentile_ms(99.0))),
        ("event lag max", show(lat.max_ms())),
    ];
    let value = json!({
        "p50_ms": num(lat.percentile_ms(50.0)),
        "p99_ms": num(lat.percentile_ms(99.0)),
        "max_ms": num(lat.max_ms()),
    });
    (facts, value)
}

/// `bench webhooks`
pub async fn webhooks(args: WebhookArgs, cleanup: Arc<Cleanup>) -> anyhow::Result<bool> {
    let common = &args.common;
    let receiver = Receiver::start().await?;
    let mut stack = webhook_stack(common, &cleanup, &receiver, "webhooks").await?;
    let settings = json!({
        "connections": args.connections, "seconds": args.seconds, "rate": args.rate, "burst": args.burst,
        "drain_seconds": args.drain_seconds, "client_threads": common.client_threads,
    });
    let mut report = Report::new("webhooks", common.db, settings);
    header_lines(&mut report, common, &stack.server, None);
    report.header(format!(
        "receiver: {} (in the bench process, answers 200 at once); events: message.received",
        receiver.url()
    ));
    let drain_limit = Duration::from_secs(args.drain_seconds);

    // Pre-flight: one inbound message must come out at the receiver (also the idle lag).
    let answered: Answered = Arc::default();
    let seq = 0;
    let request = inbound_factory(&stack.target, &stack.tenant, 0)(seq);
    let sent = Instant::now();
    preflight(&stack.target, "POST /api/sandbox/inbound", request).await?;
    answered.lock().unwrap().insert(seq, Instant::now());
    if !drain(&receiver, 1, sent, drain_limit).await {
        bail!("the pre-flight inbound message did not reach the receiver within {} s", args.drain_seconds);
    }
    let m = receiver::match_arrivals(&answered.lock().unwrap(), &receiver.log.lock().unwrap().arrivals);
    let idle_lag_ms = m.lags_us.first().map(|&us| f64::from(us) / 1000.0).unwrap_or(0.0);
    report.header(format!("pre-flight: one inbound message reached the receiver {idle_lag_ms:.0} ms after its answer"));
    report.set("idle_lag_ms", json!(round2(idle_lag_ms)));
    receiver.log.lock().unwrap().arrivals.clear();

    if !args.no_healthz {
        healthz_ceiling(&mut report, &stack.target, &stack.server, common, args.connections, args.seconds).await;
    }

    let mut next_seq: u64 = 1;
    let mut backlog = false;
    if args.burst > 0 {
        let answered: Answered = Arc::default();
        let plan = ClosedLoop {
            connections: args.connections,
            warmup: Duration::ZERO,
            measure: Duration::from_secs(3600),
            budget: Some(args.burst),
            server_pid: stack.server.pid(),
            db: common.db,
        };
        let before = CpuSample::take(stack.server.pid(), common.db);
        let start = Instant::now();
        let injected = load::closed_loop(
            &stack.target,
            &plan,
            inbound_factory(&stack.target, &stack.tenant, next_seq),
            Some(note_answers(&answered, next_seq)),
        )
        .await;
        let injected_at = Instant::now();
        next_seq += args.burst;
        let expected = answered.lock().unwrap().len();
        let complete = drain(&receiver, expected, injected_at, drain_limit).await;
        let after = CpuSample::take(stack.server.pid(), common.db);
        let cpu = CpuUse::between(before, after, start.elapsed().as_secs_f64());
        let arrivals = std::mem::take(&mut receiver.log.lock().unwrap().arrivals);
        let m = receiver::match_arrivals(&answered.lock().unwrap(), &arrivals);
        backlog = !complete;
        report.load_row("burst: POST /api/sandbox/inbound", &injected);
        webhook_section(
            &mut report,
            "burst",
            &format!("burst of {} inbound messages", args.burst),
            &m,
            start,
            &cpu,
            &injected,
            args.drain_seconds,
        );
    }
    if args.rate > 0 {
        if backlog {
            // Leftover deliveries would distort the lag: a fresh server for the open loop.
            finish(&mut report, stack.server).await;
            stack = webhook_stack(common, &cleanup, &receiver, "webhooks-rate").await?;
            receiver.log.lock().unwrap().arrivals.clear();
            report.header("the open-loop phase ran on a fresh server and database (the burst left a backlog)");
        }
        let answered: Answered = Arc::default();
        let plan = OpenLoop {
            connections: args.connections,
            rate: args.rate,
            duration: Duration::from_secs(args.seconds),
            server_pid: stack.server.pid(),
            db: common.db,
        };
        let before = CpuSample::take(stack.server.pid(), common.db);
        let start = Instant::now();
        let injected = load::open_loop(
            &stack.target,
            &plan,
            inbound_factory(&stack.target, &stack.tenant, next_seq),
            Some(note_answers(&answered, next_seq)),
        )
        .await;
        let injected_at = Instant::now();
        let expected = answered.lock().unwrap().len();
        drain(&receiver, expected, injected_at, drain_limit).await;
        let after = CpuSample::take(stack.server.pid(), common.db);
        let cpu = CpuUse::between(before, after, start.elapsed().as_secs_f64());
        let arrivals = std::mem::take(&mut receiver.log.lock().unwrap().arrivals);
        let m = receiver::match_arrivals(&answered.lock().unwrap(), &arrivals);
        let label = format!("open loop: {} inbound/s for {} s", args.rate, args.seconds);
        report.load_row(&format!("{label} (latency from schedule)"), &injected);
        let achieved = injected.requests as f64 / args.seconds.max(1) as f64;
        if achieved < args.rate as f64 * 0.95 {
            report.warn(format!(
                "the injector reached {} of the {} inbound/s asked: the server did not keep up with the inbound rate",
                thousands(achieved),
                args.rate
            ));
        }
        webhook_section(&mut report, "rate", &label, &m, start, &cpu, &injected, args.drain_seconds);
    }
    finish(&mut report, stack.server).await;
    let clean = !report.has_warnings();
    report.print(common.json);
    Ok(clean)
}

#[allow(clippy::too_many_arguments)]
fn webhook_section(
    report: &mut Report,
    key: &str,
    title: &str,
    m: &receiver::Matched,
    start: Instant,
    cpu: &CpuUse,
    injected: &Outcome,
    drain_s: u64,
) {
    let span = m.last_arrival.map(|l| l.saturating_duration_since(start).as_secs_f64()).unwrap_or(0.0);
    let per_s = if span > 0.0 { m.delivered as f64 / span } else { 0.0 };
    let cpu_per = if m.delivered > 0 { cpu.server_s * 1000.0 / m.delivered as f64 } else { 0.0 };
    let db_per = if m.delivered > 0 { cpu.db_s * 1000.0 / m.delivered as f64 } else { 0.0 };
    let (lag_facts, lag_json) = lag_facts(m, drain_s);
    let mut facts = vec![
        ("inbound answered 2xx", count(injected.ok)),
        ("delivered (distinct events)", count(m.delivered)),
        ("deliveries/s", format!("{} (first injection → last arrival, {:.1} s)", thousands(per_s), span)),
        ("missing", count(m.missing)),
        ("duplicates (same webhook-id)", count(m.duplicates)),
        ("unsigned / unknown", format!("{} / {}", m.unsigned, m.unknown)),
    ];
    facts.extend(lag_facts);
    facts.push((
        "wag CPU per event",
        format!(
            "{cpu_per:.3} ms (ingest + delivery){}",
            if cpu.db_s > 0.0 { format!(", db {db_per:.3} ms") } else { String::new() }
        ),
    ));
    report.section(
        &format!("webhooks, {title}"),
        key,
        facts,
        json!({
            "title": title,
            "inbound_ok": injected.ok,
            "delivered": m.delivered,
            "deliveries_per_second": round2(per_s),
            "span_s": round2(span),
            "missing": m.missing,
            "duplicates": m.duplicates,
            "unsigned": m.unsigned,
            "unknown": m.unknown,
            "lag": lag_json,
            "cpu_ms_per_event_wag": round2(cpu_per * 1000.0) / 1000.0,
            "cpu_ms_per_event_db": round2(db_per * 1000.0) / 1000.0,
            "cpu": cpu.json(),
        }),
    );
    if m.missing > 0 {
        report.warn(format!(
            "webhooks ({key}): {} events were not delivered within {drain_s} s of the last injection",
            m.missing
        ));
    }
    if m.duplicates > 0 {
        report.warn(format!("webhooks ({key}): {} deliveries repeated a webhook-id", m.duplicates));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_distinct_fictional_and_never_magic() {
        assert_eq!(recipient(0), "+15551000000");
        assert_eq!(recipient(8_999_999), "+15559999999");
        assert_eq!(recipient(9_000_000), "+15551000000");
        for seq in [0, 1, 2, 3, 12345, 8_999_999] {
            let r = recipient(seq);
            assert_eq!(r.len(), 12);
            assert!(r.starts_with("+1555"));
            assert!(!["+15550000001", "+15550000002", "+15550000003"].contains(&r.as_str()));
        }
    }

    #[test]
    fn bodies_vary_per_request_and_carry_the_token() {
        let a = send_body("inst_a", 1);
        let b = send_body("inst_a", 2);
        assert_ne!(a, b);
        assert!(a.contains("transactional") && a.contains("#100001"));
        let inbound = inbound_body("inst_a", 77);
        assert_eq!(receiver::find_token(inbound.as_bytes()), Some(77));
    }
}
