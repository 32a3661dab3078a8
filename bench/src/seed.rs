//! Bulk seeding of the message and inbound logs for the log-page benchmark: multi-row
//! INSERTs in large transactions, straight into the tables `wag migrate` created. Resumable:
//! rows already there for the account are counted and only the missing ones are added.
//!
//! The column lists follow the `messages` table (migrations m20261124_000002 and the 3CX
//! columns of m20261124_000005) and `inbound_messages` (m20261124_000003). A column added
//! later that is NOT NULL without a default stops the seed with its name, rather than
//! seeding something the server would not have written.
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, TransactionTrait};

use crate::{scenarios::recipient, DbKind};

pub const MESSAGE_COLUMNS: &[&str] = &[
    "message_id",
    "account_id",
    "instance_id",
    "recipient",
    "purpose",
    "kind",
    "body",
    "media_mime_type",
    "media_file_name",
    "media_bytes",
    "content_fingerprint",
    "risk_score",
    "status",
    "provider_message_id",
    "error",
    "source",
    "conversation_id",
    "agent_extension",
    "created_at",
    "updated_at",
];

pub const INBOUND_COLUMNS: &[&str] = &[
    "account_id",
    "instance_id",
    "provider_message_id",
    "from_phone",
    "from_address",
    "group_id",
    "kind",
    "body",
    "media_mime_type",
    "media_file_name",
    "media_bytes",
    "opt_out",
    "sent_at",
    "received_at",
];

/// The seeded log spans this many days back from the moment seeding began.
pub const SPAN_SECS: i64 = 30 * 86_400;
/// Distinct recipients (and inbound senders) the log cycles through.
pub const RECIPIENTS: u64 = 100_000;
const ROWS_PER_INSERT: u64 = 1_000;
const ROWS_PER_TRANSACTION: u64 = 50_000;

#[derive(Clone, Debug)]
pub struct Target {
    pub account_id: i64,
    pub instance_id: String,
}

#[derive(Clone, Debug, Default)]
pub struct Seeded {
    pub existing: u64,
    pub added: u64,
    pub seconds: f64,
}

/// A stable pseudo-random 64-bit value per input (splitmix64).
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The status of seeded message `k`: 85 % read, 10 % delivered, 3 % sent, 2 % failed.
pub fn status_of(k: u64) -> &'static str {
    match mix(k) % 100 {
        0..=1 => "failed",
        2..=4 => "sent",
        5..=14 => "delivered",
        _ => "read",
    }
}

fn ulid_at(unix_secs: i64, k: u64, salt: u64) -> String {
    let ms = (unix_secs.max(0) as u64) * 1000 + (k % 1000);
    let random = (u128::from(mix(k ^ salt)) << 16) | u128::from(mix(k.wrapping_add(salt)) & 0xFFFF);
    ulid::Ulid::from_parts(ms, random).to_string().to_ascii_lowercase()
}

/// Columns of `table` that the seed does not fill and that need a value (NOT NULL, no default).
async fn unfillable_columns(conn: &DatabaseConnection, kind: DbKind, table: &str, filled: &[&str]) -> anyhow::Result<Vec<String>> {
    let backend = conn.get_database_backend();
    let sql = match kind {
        DbKind::Sqlite => format!("SELECT name, \"notnull\", dflt_value, pk FROM pragma_table_info('{table}')"),
        DbKind::Postgres => format!(
            "SELECT column_name::text, CASE WHEN is_nullable = 'NO' THEN 1 ELSE 0 END, column_default::text, 0 \
             FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '{table}'"
        ),
        DbKind::Mysql => format!(
            "SELECT column_name, CASE WHEN is_nullable = 'NO' THEN 1 ELSE 0 END, column_default, \
             CASE WHEN extra LIKE '%auto_increment%' THEN 1 ELSE 0 END \
             FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '{table}'"
        ),
    };
    let rows = conn.query_all_raw(Statement::from_string(backend, sql)).await?;
    if rows.is_empty() {
        bail!("the table {table} does not exist: was `wag migrate` run?");
    }
    let mut missing = Vec::new();
    for row in rows {
        let name: String = row.try_get_by_index(0)?;
        let not_null: i64 = row.try_get_by_index::<i64>(1).or_else(|_| row.try_get_by_index::<i32>(1).map(i64::from))?;
        let default: Option<String> = row.try_get_by_index(2).unwrap_or(None);
        let pk: i64 = row.try_get_by_index::<i64>(3).or_else(|_| row.try_get_by_index::<i32>(3).map(i64::from))?;
        if name == "id" || pk > 0 || filled.contains(&name.as_str()) {
            continue;
        }
        if not_null == 1 && default.is_none() {
            missing.push(name);
        }
    }
    Ok(missing)
}

async fn count(conn: &DatabaseConnection, sql: String) -> anyhow::Result<i64> {
    let backend = conn.get_database_backend();
    let row = conn.query_one_raw(Statement::from_string(backend, sql)).await?.context("no row")?;
    Ok(row.try_get_by_index::<Option<i64>>(0)?.unwrap_or(0))
}

/// One message row as SQL values, in MESSAGE_COLUMNS order.
fn message_values(t: &Target, k: u64, anchor: i64, total: u64, out: &mut String) {
    use std::fmt::Write;
    let created = anchor + (k as i128 * i128::from(SPAN_SECS) / i128::from(total.max(1))) as i64;
    let status = status_of(k);
    let provider = if status == "failed" { "NULL".to_string() } else { format!("'sbx_{}'", ulid_at(created, k, 1)) };
    let error = if status == "failed" { "'provider_unavailable'" } else { "NULL" };
    let h = mix(k ^ 0x5eed);
    let _ = write!(
        out,
        "('msg_{msg}',{acc},'{inst}','{to}','transactional','text','Your order #{order} has been shipped and will arrive within 2 business days.',\
         NULL,NULL,NULL,'{f1:016x}{f2:016x}{f3:016x}{f4:016x}',{risk},'{status}',{provider},{error},'api',NULL,NULL,{created},{updated})",
        msg = ulid_at(created, k, 0),
        acc = t.account_id,
        inst = t.instance_id,
        to = recipient(k % RECIPIENTS),
        order = 100_000 + k,
        f1 = h,
        f2 = mix(h),
        f3 = mix(h ^ 1),
        f4 = mix(h ^ 2),
        risk = if h % 10 == 0 { 10 } else { 0 },
        updated = created + 5,
    );
}

fn inbound_values(t: &Target, k: u64, anchor: i64, total: u64, out: &mut String) {
    use std::fmt::Write;
    let at = anchor + (k as i128 * i128::from(SPAN_SECS) / i128::from(total.max(1))) as i64;
    let from = recipient(k % RECIPIENTS);
    let _ = write!(
        out,
        "({acc},'{inst}','sbxin_{id}','{from}','{digits}@s.whatsapp.net',NULL,'text','Hello, a question about my order {order}: when will it arrive?',\
         NULL,NULL,NULL,FALSE,{sent},{at})",
        acc = t.account_id,
        inst = t.instance_id,
        id = ulid_at(at, k, 2),
        digits = from.trim_start_matches('+'),
        order = 100_000 + k,
        sent = at - 1,
    );
}

type RowWriter = fn(&Target, u64, i64, u64, &mut String);

/// Adds rows `existing..total` to `table`, printing progress to stderr.
#[allow(clippy::too_many_arguments)]
async fn fill(
    conn: &DatabaseConnection,
    table: &str,
    columns: &[&str],
    target: &Target,
    existing: u64,
    total: u64,
    anchor: i64,
    write_row: RowWriter,
) -> anyhow::Result<()> {
    let head = format!("INSERT INTO {table} ({}) VALUES ", columns.join(","));
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut k = existing;
    let mut sql = String::with_capacity(400 * ROWS_PER_INSERT as usize);
    while k < total {
        let txn = conn.begin().await?;
        let txn_end = (k + ROWS_PER_TRANSACTION).min(total);
        while k < txn_end {
            let end = (k + ROWS_PER_INSERT).min(txn_end);
            sql.clear();
            sql.push_str(&head);
            for i in k..end {
                if i > k {
                    sql.push(',');
                }
                write_row(target, i, anchor, total, &mut sql);
            }
            txn.execute_unprepared(&sql).await.with_context(|| format!("inserting {table} rows {k}..{end}"))?;
            k = end;
        }
        txn.commit().await?;
        if last_report.elapsed() >= Duration::from_secs(10) || k == total {
            let done = k - existing;
            let rate = done as f64 / started.elapsed().as_secs_f64().max(0.001);
            eprintln!("bench: {table}: {k} of {total} rows ({rate:.0} rows/s)");
            last_report = Instant::now();
        }
    }
    Ok(())
}

/// Seeds `messages` up to `rows` and `inbound_messages` up to `inbound_rows` for the account.
pub async fn seed(conn: &DatabaseConnection, kind: DbKind, target: &Target, rows: u64, inbound_rows: u64) -> anyhow::Result<(Seeded, Seeded)> {
    for (table, columns) in [("messages", MESSAGE_COLUMNS), ("inbound_messages", INBOUND_COLUMNS)] {
        let missing = unfillable_columns(conn, kind, table, columns).await?;
        if !missing.is_empty() {
            bail!(
                "the {table} table has columns the seed does not fill ({}): add them to bench/src/seed.rs",
                missing.join(", ")
            );
        }
    }
    if kind == DbKind::Sqlite {
        // One connection (see pages.rs): a 1 GB page cache for the index inserts.
        conn.execute_unprepared("PRAGMA cache_size = -1000000").await?;
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
    let acc = target.account_id;
    let mut results = Vec::new();
    for (table, columns, time_column, total, writer) in [
        ("messages", MESSAGE_COLUMNS, "created_at", rows, message_values as RowWriter),
        ("inbound_messages", INBOUND_COLUMNS, "received_at", inbound_rows, inbound_values as RowWriter),
    ] {
        let existing = count(conn, format!("SELECT COUNT(*) FROM {table} WHERE account_id = {acc}")).await?.max(0) as u64;
        // Resuming keeps the first run's time axis.
        let oldest = count(conn, format!("SELECT MIN({time_column}) FROM {table} WHERE account_id = {acc}")).await?;
        let anchor = if existing > 0 && oldest > 0 { oldest } else { now - SPAN_SECS };
        let started = Instant::now();
        if existing < total {
            fill(conn, table, columns, target, existing, total, anchor, writer).await?;
        }
        results.push(Seeded { existing, added: total.saturating_sub(existing), seconds: started.elapsed().as_secs_f64() });
    }
    if kind != DbKind::Sqlite {
        // What autovacuum / InnoDB's automatic statistics would have done by the time a
        // real log reached this size.
        let analyze = if kind == DbKind::Postgres { "ANALYZE messages, inbound_messages" } else { "ANALYZE TABLE messages, inbound_messages" };
        let _ = conn.execute_unprepared(analyze).await;
    }
    let inbound = results.pop().unwrap_or_default();
    let messages = results.pop().unwrap_or_default();
    Ok((messages, inbound))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_well_formed_and_distinct() {
        let t = Target { account_id: 7, instance_id: "inst_x".into() };
        let mut a = String::new();
        let mut b = String::new();
        message_values(&t, 1, 1_700_000_000, 1000, &mut a);
        message_values(&t, 2, 1_700_000_000, 1000, &mut b);
        assert_ne!(a, b);
        assert_eq!(a.matches('\'').count() % 2, 0);
        assert!(a.starts_with("('msg_") && a.ends_with(')'));
        // One value per column (the message text has no comma).
        let values = a.trim_matches(|c| c == '(' || c == ')').split(',').count();
        assert_eq!(values, MESSAGE_COLUMNS.len(), "{a}");
        let mut inbound = String::new();
        inbound_values(&t, 3, 1_700_000_000, 1000, &mut inbound);
        let values = inbound.trim_matches(|c| c == '(' || c == ')').split(',').count();
        assert_eq!(values, INBOUND_COLUMNS.len() + 1, "one comma is inside the text: {inbound}");
    }

    #[test]
    fn status_mix_is_roughly_as_documented() {
        let failed = (0..100_000).filter(|&k| status_of(k) == "failed").count();
        let read = (0..100_000).filter(|&k| status_of(k) == "read").count();
        assert!((1_500..2_500).contains(&failed), "{failed}");
        assert!((83_000..87_000).contains(&read), "{read}");
    }

    #[test]
    fn message_ids_fit_their_column_and_are_unique() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|k| ulid_at(1_700_000_000, k, 0)).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| id.len() + 4 <= 40));
    }
}
