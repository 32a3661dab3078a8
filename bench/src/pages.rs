//! `bench pages`: the portal's log pages over a large, bulk-seeded log.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::json;

use crate::{
    load::Outcome,
    machine::{CpuSample, CpuUse},
    portal::Browser,
    report::Report,
    scenarios::recipient,
    seed,
    server::{self, Cleanup, Server, Workspace, BENCH_PASSWORD},
    stats::{count, round2, thousands, Errors, Latencies},
    PagesArgs,
};

/// The account that owns the seeded log (fixed, so a reused database finds it again).
pub const PAGES_EMAIL: &str = "bench-pages@example.com";
/// The operator who reads the operator console's pages over the same log.
const OPERATOR_EMAIL: &str = "bench-operator@example.com";

async fn single_connection(url: &str) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_string());
    options.max_connections(1).min_connections(1).sqlx_logging(false);
    Ok(Database::connect(options).await?)
}

async fn scalar_i64(conn: &DatabaseConnection, sql: String) -> anyhow::Result<Option<i64>> {
    let backend = conn.get_database_backend();
    let row = conn.query_one_raw(Statement::from_string(backend, sql)).await?;
    Ok(match row {
        Some(r) => r.try_get_by_index::<Option<i64>>(0)?,
        None => None,
    })
}

async fn scalar_string(conn: &DatabaseConnection, sql: String) -> anyhow::Result<Option<String>> {
    let backend = conn.get_database_backend();
    let row = conn.query_one_raw(Statement::from_string(backend, sql)).await?;
    Ok(match row {
        Some(r) => r.try_get_by_index::<Option<String>>(0)?,
        None => None,
    })
}

/// The bench account and its instance, created through `wag admin` when missing.
async fn account(
    conn: &DatabaseConnection,
    wag: &std::path::Path,
    env: &[(String, String)],
) -> anyhow::Result<seed::Target> {
    let find = format!("SELECT id FROM accounts WHERE email = '{PAGES_EMAIL}'");
    if scalar_i64(conn, find.clone()).await?.is_none() {
        server::wag_cli(
            wag,
            env,
            &["admin", "create-user", "--email", PAGES_EMAIL, "--password", BENCH_PASSWORD, "--plan", "scale"],
        )
        .await?;
    }
    let account_id = scalar_i64(conn, find).await?.context("the bench account was not created")?;
    let operator = format!("SELECT id FROM accounts WHERE email = '{OPERATOR_EMAIL}'");
    if scalar_i64(conn, operator).await?.is_none() {
        let args = ["admin", "create-user", "--email", OPERATOR_EMAIL, "--password", BENCH_PASSWORD, "--admin"];
        server::wag_cli(wag, env, &args).await?;
    }
    let instance_sql = format!("SELECT id FROM instances WHERE account_id = {account_id} ORDER BY id LIMIT 1");
    let instance_id = match scalar_string(conn, instance_sql.clone()).await? {
        Some(id) => id,
        None => {
            let out =
                server::wag_cli(wag, env, &["admin", "create-instance", "--email", PAGES_EMAIL, "--name", "bench-log"])
                    .await?;
            server::last_line(&out)
        }
    };
    Ok(seed::Target { account_id, instance_id })
}

/// The database's size on disk, for the report.
async fn database_bytes(conn: &DatabaseConnection, ws: &Workspace) -> Option<i64> {
    match ws.kind {
        crate::DbKind::Sqlite => {
            let path = ws.url.trim_start_matches("sqlite://").trim_start_matches("sqlite:").split('?').next()?.to_string();
            let main = std::fs::metadata(&path).ok()?.len() as i64;
            let wal = std::fs::metadata(format!("{path}-wal")).map(|m| m.len() as i64).unwrap_or(0);
            Some(main + wal)
        }
        crate::DbKind::Postgres => scalar_i64(conn, "SELECT pg_database_size(current_database())::bigint".into()).await.ok().flatten(),
        crate::DbKind::Mysql => scalar_i64(
            conn,
            "SELECT CAST(SUM(data_length + index_length) AS SIGNED) FROM information_schema.tables WHERE table_schema = DATABASE()".into(),
        )
        .await
        .ok()
        .flatten(),
    }
}

struct PageCase {
    label: String,
    path: String,
    /// Text the page must contain (proves it shows the seeded log, not an empty state).
    expect: Option<String>,
    /// Read by the operator (the operator console) rather than the account's owner.
    operator: bool,
}

pub async fn run(args: PagesArgs, cleanup: Arc<Cleanup>) -> anyhow::Result<bool> {
    let common = &args.common;
    let wag = server::locate_wag(common)?;
    let ws = match &args.reuse_db {
        Some(url) => Workspace::reuse(common, &cleanup, url).await?,
        None => Workspace::fresh(common, &cleanup, "pages").await?,
    };
    let rows = args.rows;
    let inbound_rows = args.inbound_rows.unwrap_or(rows / 10);
    let policy_rows = args.policy_rows.unwrap_or(rows / 10);
    let cli_env = server::server_env(&ws, "127.0.0.1:0".parse()?, 2000, &common.env)?;
    server::wag_cli(&wag, &cli_env, &["migrate"]).await?;
    let conn = single_connection(&ws.url).await.context("connecting to the database to seed it")?;
    let target = account(&conn, &wag, &cli_env).await?;
    eprintln!(
        "bench: seeding {rows} message rows, {inbound_rows} inbound rows and {policy_rows} policy decisions (account {})",
        target.account_id
    );
    let seeded = seed::seed(&conn, ws.kind, &target, rows, inbound_rows, policy_rows).await?;
    let (messages, inbound, policy) = (seeded[0].clone(), seeded[1].clone(), seeded[2].clone());
    let size = database_bytes(&conn, &ws).await;
    let acc = target.account_id;
    let (min_id, max_id) = (
        scalar_i64(&conn, format!("SELECT MIN(id) FROM messages WHERE account_id = {acc}")).await?.unwrap_or(0),
        scalar_i64(&conn, format!("SELECT MAX(id) FROM messages WHERE account_id = {acc}")).await?.unwrap_or(0),
    );
    let (min_in, max_in) = (
        scalar_i64(&conn, format!("SELECT MIN(id) FROM inbound_messages WHERE account_id = {acc}")).await?.unwrap_or(0),
        scalar_i64(&conn, format!("SELECT MAX(id) FROM inbound_messages WHERE account_id = {acc}")).await?.unwrap_or(0),
    );
    let (min_policy, max_policy) = (
        scalar_i64(&conn, format!("SELECT MIN(id) FROM policy_decisions WHERE account_id = {acc}")).await?.unwrap_or(0),
        scalar_i64(&conn, format!("SELECT MAX(id) FROM policy_decisions WHERE account_id = {acc}")).await?.unwrap_or(0),
    );
    conn.close().await.ok();

    let settings = json!({
        "rows": rows, "inbound_rows": inbound_rows, "policy_rows": policy_rows, "requests": args.requests, "page_seconds": args.page_seconds,
        "reuse_db": args.reuse_db.is_some(),
    });
    let mut report = Report::new("pages", ws.kind, settings);
    let seed_facts = |s: &seed::Seeded, total: u64| {
        let rate = if s.seconds > 0.0 { s.added as f64 / s.seconds } else { 0.0 };
        format!(
            "{} rows ({} already there, {} added in {:.1} s, {} rows/s)",
            count(total),
            count(s.existing),
            count(s.added),
            s.seconds,
            thousands(rate)
        )
    };
    report.section(
        "seed (bulk multi-row INSERTs, 50,000 rows per transaction)",
        "seed",
        vec![
            ("messages", seed_facts(&messages, rows)),
            ("inbound_messages", seed_facts(&inbound, inbound_rows)),
            ("policy_decisions", seed_facts(&policy, policy_rows)),
            ("database size", size.map(|b| format!("{:.2} GiB", b as f64 / 1024f64.powi(3))).unwrap_or_else(|| "?".into())),
        ],
        json!({
            "messages": { "rows": rows, "existing": messages.existing, "added": messages.added, "seconds": round2(messages.seconds) },
            "inbound_messages": { "rows": inbound_rows, "existing": inbound.existing, "added": inbound.added, "seconds": round2(inbound.seconds) },
            "policy_decisions": { "rows": policy_rows, "existing": policy.existing, "added": policy.added, "seconds": round2(policy.seconds) },
            "database_bytes": size,
        }),
    );
    if args.seed_only {
        report.print(common.json);
        return Ok(true);
    }

    let server = Server::start(&wag, &ws, 2000, &common.env).await?;
    report.header(format!(
        "sequential GETs on one keep-alive connection, logged in as {PAGES_EMAIL}; up to {} requests or {} s per page",
        args.requests, args.page_seconds
    ));
    report.header(format!("wag: {}", server.wag.display()));
    let browser = Browser::new(&server.base)?;
    browser.login(PAGES_EMAIL, BENCH_PASSWORD).await?;
    let operator = Browser::new(&server.base)?;
    operator.login(OPERATOR_EMAIL, BENCH_PASSWORD).await?;

    let phone = recipient(12_345);
    let encoded_phone = phone.replace('+', "%2B");
    let mut cases = vec![
        PageCase {
            label: "/messages (first page)".into(),
            path: "/messages".into(),
            expect: (rows > 0).then(|| format!("#{}", 100_000 + rows - 1)),
            operator: false,
        },
        PageCase {
            label: "/messages?status=failed".into(),
            path: "/messages?status=failed".into(),
            expect: None,
            operator: false,
        },
        PageCase {
            label: "/messages?phone=… (one recipient)".into(),
            path: format!("/messages?phone={encoded_phone}"),
            expect: None,
            operator: false,
        },
        PageCase {
            label: "/messages?before=… (deep page, mid-log)".into(),
            path: format!("/messages?before={}", min_id + (max_id - min_id) / 2),
            expect: None,
            operator: false,
        },
        PageCase {
            label: "/messages?phone=…&status=failed (one recipient's failures)".into(),
            path: format!("/messages?phone={encoded_phone}&status=failed"),
            expect: None,
            operator: false,
        },
        PageCase {
            label: "/messages?phone=12345 (part of a number)".into(),
            path: "/messages?phone=12345".into(),
            expect: None,
            operator: false,
        },
        PageCase {
            label: "/dashboard (7-day policy summary)".into(),
            path: "/dashboard".into(),
            expect: None,
            operator: false,
        },
    ];
    if policy_rows > 0 {
        cases.extend([
            PageCase {
                label: "/responsible-messaging (summary, first page)".into(),
                path: "/responsible-messaging".into(),
                expect: Some("policy_violation".into()),
                operator: false,
            },
            PageCase {
                label: "/responsible-messaging?before=… (deep page)".into(),
                path: format!("/responsible-messaging?before={}", min_policy + (max_policy - min_policy) / 2),
                expect: None,
                operator: false,
            },
        ]);
    }
    if inbound_rows > 0 {
        cases.extend([
            PageCase {
                label: "/inbound-logs (first page)".into(),
                path: "/inbound-logs".into(),
                expect: Some(format!("order {}", 100_000 + inbound_rows - 1)),
                operator: false,
            },
            PageCase {
                label: "/inbound-logs?phone=… (one sender)".into(),
                path: format!("/inbound-logs?phone={encoded_phone}"),
                expect: None,
                operator: false,
            },
            PageCase {
                label: "/inbound-logs?before=… (deep page)".into(),
                path: format!("/inbound-logs?before={}", min_in + (max_in - min_in) / 2),
                expect: None,
                operator: false,
            },
            PageCase {
                label: "/inbound-logs?text=… (words, scan window)".into(),
                path: "/inbound-logs?text=order%20123".into(),
                expect: None,
                operator: false,
            },
            PageCase {
                label: "/inbound-logs?from=…&to=… (one day, a week back)".into(),
                path: {
                    let day = chrono::Utc::now() - chrono::Duration::days(7);
                    let day = day.format("%Y-%m-%d");
                    format!("/inbound-logs?from={day}&to={day}")
                },
                expect: None,
                operator: false,
            },
        ]);
    }
    // The operator console over the same log: roll-ups and short index ranges, never a count.
    let operator_case =
        |label: &str, path: String| PageCase { label: label.into(), path, expect: None, operator: true };
    cases.extend([
        operator_case("/admin (overview, 24 h and 7 days)", "/admin".into()),
        operator_case("/admin/instances (each one's last 100 messages)", "/admin/instances".into()),
        operator_case("/admin/accounts/… (the seeded account)", format!("/admin/accounts/{acc}")),
        operator_case("/admin/accounts?q=… (email search)", "/admin/accounts?q=bench".into()),
        operator_case("/admin/reviews (review queue)", "/admin/reviews".into()),
    ]);
    let budget = Duration::from_secs(args.page_seconds);
    let mut first_requests = serde_json::Map::new();
    for case in &cases {
        let mut latencies = Vec::new();
        let mut errors = Errors::default();
        let mut ok = 0;
        let started = Instant::now();
        let before = CpuSample::take(server.pid(), ws.kind);
        let mut first_ms = 0.0;
        for i in 0..args.requests.max(1) {
            if i > 0 && started.elapsed() >= budget {
                break;
            }
            let t = Instant::now();
            let reader = if case.operator { &operator } else { &browser };
            let page = reader.get(&case.path).await?;
            let elapsed = t.elapsed();
            if i == 0 {
                first_ms = elapsed.as_secs_f64() * 1000.0;
            }
            latencies.push(elapsed.as_micros().min(u128::from(u32::MAX)) as u32);
            if page.status != 200 {
                errors.add(format!("{} {}", page.status, page.location.clone().unwrap_or_default()), || {
                    page.body.chars().take(300).collect()
                });
            } else if let Some(text) = case.expect.as_deref().filter(|t| !page.body.contains(*t)) {
                errors
                    .add("200 without the newest seeded row".into(), || format!("expected {text:?} on {}", case.path));
            } else {
                ok += 1;
            }
        }
        let after = CpuSample::take(server.pid(), ws.kind);
        let cpu = CpuUse::between(before, after, started.elapsed().as_secs_f64());
        let latencies = Latencies::new(latencies);
        let outcome = Outcome { requests: latencies.len() as u64, ok, errors, latencies, cpu };
        report.load_row(&case.label, &outcome);
        first_requests.insert(case.label.clone(), json!(round2(first_ms)));
    }
    if server.log_summary().errors > 0 {
        report.warn("the server logged errors while serving the pages");
    }
    report.server_log(&server.log_summary());
    server.stop().await;
    if args.reuse_db.is_some() {
        report.header("database reused (kept): the seed is not repeated on the next run with the same --reuse-db");
    }
    report.set("first_request_ms", serde_json::Value::Object(first_requests));
    let clean = !report.has_warnings();
    report.print(common.json);
    Ok(clean)
}
