//! Repeated content: the same text going to many different recipients in a day is what a
//! broadcast looks like. Admission counts the earlier recipients of every content in its batch
//! with one statement, inside its transaction, so concurrent sends of one content count each
//! other too.
use std::collections::{HashMap, HashSet};

use sea_orm::{
    sea_query::{Alias, Expr, Query, SelectStatement, UnionType},
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};

use crate::{
    entities::message,
    error::Result,
    policy::{Assessment, Reason},
};

/// How far back earlier recipients count.
pub(crate) const WINDOW_SECS: i64 = 24 * 3600;
/// Distinct recipients, and the points they add; the first step reached applies.
const STEPS: [(usize, u8); 3] = [(50, 60), (20, 40), (10, 20)];
/// Earlier messages of one content read at most (the newest): a popular template costs the
/// same to check as a new one. Ten times the highest step, so only a content sent again and
/// again to the same few people can be counted short.
pub(crate) const ROWS_CAP: u64 = 500;
/// Contents per statement (SQLite allows 500 terms in a compound SELECT).
const PER_STATEMENT: usize = 64;

/// Adds the `repeated_content` reason when `recipients` reach a step.
pub(crate) fn add_reason(assessment: &mut Assessment, recipients: usize) {
    if let Some((threshold, points)) = STEPS.iter().find(|(n, _)| recipients >= *n) {
        assessment.reasons.push(Reason {
            code: "repeated_content".into(),
            detail: format!(
                "The same content went to {recipients} different recipients in the last 24 hours (≥ {threshold})."
            ),
            points: *points,
        });
        assessment.score = assessment.score.saturating_add(*points).min(100);
    }
}

/// The distinct recipients of the newest earlier messages (at most [`ROWS_CAP`]) of each
/// (account, content fingerprint) since `since`: one statement, a UNION ALL of one capped
/// range of the fingerprint index per content.
pub(crate) async fn earlier_recipients<C: ConnectionTrait>(
    conn: &C,
    contents: &[(i64, &str)],
    since: i64,
) -> Result<HashMap<(i64, String), HashSet<String>>> {
    let mut contents: Vec<(i64, &str)> = contents.to_vec();
    contents.sort_unstable();
    contents.dedup();
    let mut found: HashMap<(i64, String), HashSet<String>> = HashMap::new();
    if conn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        for row in conn.query_all_raw(lateral(&contents, since)).await? {
            let place: i64 = row.try_get_by_index(0)?;
            let recipient: String = row.try_get_by_index(1)?;
            let Some((account_id, fingerprint)) = usize::try_from(place - 1).ok().and_then(|i| contents.get(i)) else {
                continue;
            };
            found.entry((*account_id, fingerprint.to_string())).or_default().insert(recipient);
        }
        return Ok(found);
    }
    for chunk in crate::db::shaped_chunks(&contents, PER_STATEMENT) {
        let mut branches = chunk
            .iter()
            .enumerate()
            .map(|(tag, (account_id, fingerprint))| branch(tag, *account_id, fingerprint, since));
        let Some(mut select) = branches.next() else { continue };
        for other in branches {
            select.union(UnionType::All, other);
        }
        for row in conn.query_all(&select).await? {
            let tag: String = row.try_get_by_index(0)?;
            let recipient: String = row.try_get_by_index(1)?;
            let Some((account_id, fingerprint)) = tag.parse::<usize>().ok().and_then(|i| chunk.get(i)) else {
                continue;
            };
            found.entry((*account_id, fingerprint.to_string())).or_default().insert(recipient);
        }
    }
    Ok(found)
}

/// PostgreSQL: the same ranges as one statement whatever the number of contents (arrays of the
/// accounts and fingerprints, each row joined to its capped range). The UNION ALL was planned
/// afresh for every batch, at a third of a millisecond of the database's time each.
fn lateral(contents: &[(i64, &str)], since: i64) -> sea_orm::Statement {
    let accounts: Vec<i64> = contents.iter().map(|(account_id, _)| *account_id).collect();
    let fingerprints: Vec<String> = contents.iter().map(|(_, fingerprint)| fingerprint.to_string()).collect();
    sea_orm::Statement::from_sql_and_values(
        sea_orm::DatabaseBackend::Postgres,
        "SELECT c.place, r.recipient \
         FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS c(account_id, fingerprint, place) \
         CROSS JOIN LATERAL (SELECT m.recipient FROM messages m \
           WHERE m.account_id = c.account_id AND m.content_fingerprint = c.fingerprint AND m.created_at >= $3 \
           ORDER BY m.created_at DESC LIMIT $4) AS r",
        [accounts.into(), fingerprints.into(), since.into(), (ROWS_CAP as i64).into()],
    )
}

/// `SELECT '<tag>', recipient FROM (SELECT recipient … ORDER BY created_at DESC LIMIT cap) AS r`.
/// No DISTINCT inside: with it, PostgreSQL walks the (account, recipient) index to avoid a
/// sort and reads every message of the account when few match. The tag is
/// text because every database reads a text literal back as text (number literals come back
/// as 32 or 64 bits depending on the database).
fn branch(tag: usize, account_id: i64, fingerprint: &str, since: i64) -> SelectStatement {
    let distinct = message::Entity::find()
        .select_only()
        .column(message::Column::Recipient)
        .filter(message::Column::AccountId.eq(account_id))
        .filter(message::Column::ContentFingerprint.eq(fingerprint))
        .filter(message::Column::CreatedAt.gte(since))
        .order_by_desc(message::Column::CreatedAt)
        .limit(ROWS_CAP)
        .into_query();
    Query::select()
        .expr(Expr::cust(format!("'{tag}'")))
        .column((Alias::new("r"), message::Column::Recipient))
        .from_subquery(distinct, Alias::new("r"))
        .to_owned()
}
