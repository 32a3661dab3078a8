//! The admission of sends, many at a time: one write transaction claims the Idempotency-Keys,
//! checks the suppression list, takes the fair-use and speed units, and writes the message rows
//! and their policy decisions for every send waiting in the queue (group commit, see `db::group_commit`).
//!
//! Each counter is read once per batch under its lock, the sends are decided in memory in the
//! order they came, and the differences are written back: a handful of statements for the whole
//! batch instead of a dozen per send, and still exact across processes, because every read that
//! a decision rests on is locked until the commit. A refused send takes nothing.
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set};

use super::{
    decision_label, idempotency, limit_refusal, phone::Phone, purpose::Purpose, repeats, throttle, Channel, Refusal,
};
use crate::{
    entities::{contacted_recipient, idempotency_key, message, policy_decision, suppression},
    error::Result,
    ids,
    policy::{self, Assessment, Decision},
    usage,
};

/// What the message row will hold, worked out before admission.
#[derive(Clone, Debug)]
pub(crate) struct Draft {
    pub kind: &'static str,
    pub body: String,
    pub media_mime_type: Option<String>,
    pub media_file_name: Option<String>,
    pub media_bytes: Option<i64>,
    pub channel: Channel,
}

/// One send waiting for admission: everything its checks need, decided before any lock.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub account_id: i64,
    pub instance_id: String,
    pub phone: Phone,
    pub purpose: Purpose,
    pub purpose_label: String,
    pub draft: Draft,
    pub fingerprint: String,
    /// The content assessment before repeated content is counted (admission adds that).
    pub assessment: Assessment,
    /// The policy's flag and block thresholds.
    pub thresholds: (u8, u8),
    pub limits: crate::plans::Limits,
    pub throttle: throttle::ThrottleLimits,
    pub keyed: Option<idempotency::KeyedRequest>,
}

/// An admitted message: what settling it needs.
#[derive(Clone, Debug)]
pub(crate) struct Ticket {
    pub account_id: i64,
    pub message_id: String,
    pub log_id: i64,
    pub reservation: usage::Reservation,
    pub throttle: throttle::Admission,
    /// The final assessment, repeated content included, and the decision it led to.
    pub assessment: Assessment,
    pub decision: Decision,
}

#[derive(Clone, Debug)]
pub(crate) enum Admission {
    Admitted(Ticket),
    Refused(Refusal),
    /// Another request holds the Idempotency-Key (or came first with it in this batch).
    KeyTaken,
}

/// Admits `jobs` inside `txn`, answering each in order.
pub(crate) async fn admit_all<C: ConnectionTrait>(
    txn: &C,
    jobs: &[&Job],
    now: DateTime<Utc>,
) -> Result<Vec<Admission>> {
    let at = now.timestamp();
    let taken_keys = claimed_keys(txn, jobs, at).await?;
    let suppressed = suppressed(txn, jobs).await?;
    let mut counts = Counts::lock(txn, jobs, now).await?;
    let known = known_recipients(txn, jobs).await?;
    let contents: Vec<(i64, &str)> = jobs.iter().map(|j| (j.account_id, j.fingerprint.as_str())).collect();
    let mut repeats = repeats::earlier_recipients(txn, &contents, at - repeats::WINDOW_SECS).await?;

    let mut answers = Vec::with_capacity(jobs.len());
    let mut keys_in_batch: HashSet<(i64, &str)> = HashSet::new();
    for job in jobs {
        if let Some(keyed) = &job.keyed {
            let key = (job.account_id, keyed.key.as_str());
            if taken_keys.contains(&(job.account_id, keyed.key.clone())) || !keys_in_batch.insert(key) {
                answers.push(Decided::KeyTaken);
                continue;
            }
        }
        let earlier = repeats.entry((job.account_id, job.fingerprint.clone())).or_default();
        let mut assessment = job.assessment.clone();
        repeats::add_reason(&mut assessment, earlier.len());
        let decision = policy::decide(assessment.score, job.thresholds.0, job.thresholds.1);
        let decided = decide(job, assessment, decision, &suppressed, &known, &mut counts, now);
        match (&decided, &job.keyed) {
            // A refused send leaves its key free, so a retry meets the checks again.
            (Decided::Refused(_), Some(keyed)) => {
                keys_in_batch.remove(&(job.account_id, keyed.key.as_str()));
            }
            (Decided::Admitted { .. }, _) => {
                earlier.insert(job.phone.as_str().to_string());
            }
            _ => {}
        }
        answers.push(decided);
    }

    counts.write(txn).await?;
    let admitted: Vec<(usize, &Job)> = jobs
        .iter()
        .enumerate()
        .filter(|(i, _)| matches!(answers[*i], Decided::Admitted { .. }))
        .map(|(i, j)| (i, *j))
        .collect();
    let message_ids: Vec<String> = admitted.iter().map(|_| ids::new_id("msg")).collect();
    let log_ids = insert_messages(txn, &admitted, &answers, &message_ids, at).await?;
    let mut stats: BTreeMap<i64, i64> = BTreeMap::new();
    for (_, job) in &admitted {
        *stats.entry(job.account_id).or_default() += 1;
    }
    for (account_id, n) in stats {
        crate::message_stats::count_created_n(txn, account_id, at, n).await?;
    }
    insert_decisions(txn, jobs, &answers, &admitted, &log_ids, at).await?;
    insert_claims(txn, &admitted, at).await?;

    let mut tickets = admitted.iter().zip(message_ids).zip(log_ids);
    let mut admissions = Vec::with_capacity(answers.len());
    for decided in answers {
        admissions.push(match decided {
            Decided::KeyTaken => Admission::KeyTaken,
            Decided::Refused(refusal) => Admission::Refused(refusal),
            Decided::Admitted { reservation, throttle, assessment, decision } => {
                let Some((((_, job), message_id), log_id)) = tickets.next() else {
                    return Err(crate::Error::Internal("an admitted send has no message row".into()));
                };
                Admission::Admitted(Ticket {
                    account_id: job.account_id,
                    message_id,
                    log_id,
                    reservation,
                    throttle,
                    assessment,
                    decision,
                })
            }
        });
    }
    Ok(admissions)
}

enum Decided {
    KeyTaken,
    Refused(Refusal),
    Admitted {
        reservation: usage::Reservation,
        throttle: throttle::Admission,
        assessment: Assessment,
        decision: Decision,
    },
}

/// Steps 8–11 for one send, against the batch's counts (taken from them when admitted).
fn decide(
    job: &Job,
    assessment: Assessment,
    decision: Decision,
    suppressed: &HashSet<(i64, String)>,
    known: &HashSet<(String, String)>,
    counts: &mut Counts,
    now: DateTime<Utc>,
) -> Decided {
    let at = now.timestamp();
    // 8. suppression
    if suppressed.contains(&(job.account_id, job.phone.as_str().to_string())) {
        return Decided::Refused(Refusal::RecipientSuppressed);
    }
    // 9. content policy
    if decision == Decision::Block {
        return Decided::Refused(Refusal::PolicyViolation(assessment));
    }
    // 10. fair-use limits
    let (day, month) = (usage::day_of(job.account_id, now), usage::month_of(job.account_id, now));
    let used_today = counts.usage(&day);
    if used_today >= job.limits.daily {
        return Decided::Refused(limit_refusal(usage::LimitExceeded::Daily {
            limit: job.limits.daily,
            used: used_today,
        }));
    }
    let used_month = counts.usage(&month);
    if used_month >= job.limits.monthly {
        let exceeded = usage::LimitExceeded::Monthly { limit: job.limits.monthly, used: used_month };
        return Decided::Refused(limit_refusal(exceeded));
    }
    // 11. sending speed, and new recipients per hour
    let speed = throttle::speed_window(&job.instance_id, at);
    if counts.window(&speed) >= job.throttle.per_minute {
        return Decided::Refused(Refusal::Throttled { retry_after_secs: (speed.1 + 60 - at).max(1) });
    }
    let is_new = !known.contains(&(job.instance_id.clone(), job.phone.as_str().to_string()));
    let fresh = throttle::new_window(&job.instance_id, at);
    if is_new && counts.window(&fresh) >= job.throttle.new_recipients_per_hour {
        return Decided::Refused(Refusal::Throttled { retry_after_secs: (fresh.1 + 3600 - at).max(1) });
    }
    if is_new {
        counts.take_window(&fresh);
    }
    counts.take_window(&speed);
    counts.take_usage(&day);
    counts.take_usage(&month);
    Decided::Admitted {
        reservation: usage::Reservation {
            account_id: job.account_id,
            day: day.2,
            month: month.2,
            remaining_today: (job.limits.daily - used_today - 1).max(0),
        },
        throttle: throttle::Admission::new(is_new.then_some(fresh)),
        assessment,
        decision,
    }
}

/// The counters a batch decides against, read once under their locks, and what it took.
#[derive(Default)]
struct Counts {
    usage: HashMap<(i64, String, String), i64>,
    windows: HashMap<(String, i64), i64>,
    usage_taken: HashMap<(i64, String, String), i64>,
    windows_taken: HashMap<(String, i64), i64>,
}

impl Counts {
    async fn lock<C: ConnectionTrait>(txn: &C, jobs: &[&Job], now: DateTime<Utc>) -> Result<Counts> {
        let at = now.timestamp();
        // Sorted, so two batches of two processes lock in the same order.
        let accounts: BTreeSet<i64> = jobs.iter().map(|j| j.account_id).collect();
        let instances: BTreeSet<&str> = jobs.iter().map(|j| j.instance_id.as_str()).collect();
        let usage_keys: Vec<_> =
            accounts.iter().flat_map(|a| [usage::day_of(*a, now), usage::month_of(*a, now)]).collect();
        let window_keys: Vec<_> =
            instances.iter().flat_map(|i| [throttle::speed_window(i, at), throttle::new_window(i, at)]).collect();
        Ok(Counts {
            usage: usage::COUNTERS.lock(txn, &usage_keys).await?,
            windows: throttle::WINDOWS.lock(txn, &window_keys).await?,
            ..Counts::default()
        })
    }

    fn usage(&self, key: &(i64, String, String)) -> i64 {
        self.usage.get(key).copied().unwrap_or_default()
    }

    fn window(&self, key: &(String, i64)) -> i64 {
        self.windows.get(key).copied().unwrap_or_default()
    }

    fn take_usage(&mut self, key: &(i64, String, String)) {
        *self.usage.entry(key.clone()).or_default() += 1;
        *self.usage_taken.entry(key.clone()).or_default() += 1;
    }

    fn take_window(&mut self, key: &(String, i64)) {
        *self.windows.entry(key.clone()).or_default() += 1;
        *self.windows_taken.entry(key.clone()).or_default() += 1;
    }

    async fn write<C: ConnectionTrait>(&self, txn: &C) -> Result<()> {
        let usage: Vec<_> = self.usage_taken.iter().map(|(k, n)| (k.clone(), *n)).collect();
        let windows: Vec<_> = self.windows_taken.iter().map(|(k, n)| (k.clone(), *n)).collect();
        usage::COUNTERS.add(txn, &usage).await?;
        throttle::WINDOWS.add(txn, &windows).await?;
        Ok(())
    }
}

/// The batch's keys that an earlier request holds (an expired one is removed and so is free).
async fn claimed_keys<C: ConnectionTrait>(txn: &C, jobs: &[&Job], at: i64) -> Result<HashSet<(i64, String)>> {
    let mut by_account: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for job in jobs {
        if let Some(keyed) = &job.keyed {
            by_account.entry(job.account_id).or_default().push(keyed.key.as_str());
        }
    }
    let mut taken = HashSet::new();
    for (account_id, keys) in by_account {
        let keys: Vec<String> = keys.into_iter().map(str::to_string).collect();
        for condition in crate::db::bulk::one_of(txn.get_database_backend(), idempotency_key::Column::Key, &keys) {
            let rows: Vec<(String, i64)> = idempotency_key::Entity::find()
                .select_only()
                .column(idempotency_key::Column::Key)
                .column(idempotency_key::Column::CreatedAt)
                .filter(idempotency_key::Column::AccountId.eq(account_id))
                .filter(condition)
                .into_tuple()
                .all(txn)
                .await?;
            for (key, created_at) in rows {
                if created_at < at - idempotency::KEEP_SECS {
                    idempotency::remove_expired(txn, account_id, &key, created_at).await?;
                } else {
                    taken.insert((account_id, key));
                }
            }
        }
    }
    Ok(taken)
}

async fn suppressed<C: ConnectionTrait>(txn: &C, jobs: &[&Job]) -> Result<HashSet<(i64, String)>> {
    let mut by_account: BTreeMap<i64, BTreeSet<&str>> = BTreeMap::new();
    for job in jobs {
        by_account.entry(job.account_id).or_default().insert(job.phone.as_str());
    }
    let mut found = HashSet::new();
    for (account_id, phones) in by_account {
        let phones: Vec<String> = phones.into_iter().map(str::to_string).collect();
        for condition in crate::db::bulk::one_of(txn.get_database_backend(), suppression::Column::Phone, &phones) {
            let rows: Vec<String> = suppression::Entity::find()
                .select_only()
                .column(suppression::Column::Phone)
                .filter(suppression::Column::AccountId.eq(account_id))
                .filter(condition)
                .into_tuple()
                .all(txn)
                .await?;
            found.extend(rows.into_iter().map(|phone| (account_id, phone)));
        }
    }
    Ok(found)
}

/// The (instance, recipient) pairs of the batch the instance has written to before: one
/// statement for every instance of the batch (their phones × their instances, the pairs the
/// batch did not ask about dropped here).
async fn known_recipients<C: ConnectionTrait>(txn: &C, jobs: &[&Job]) -> Result<HashSet<(String, String)>> {
    let asked: HashSet<(&str, &str)> = jobs.iter().map(|j| (j.instance_id.as_str(), j.phone.as_str())).collect();
    if txn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        // Exactly the pairs asked about, as two arrays: one statement whatever the batch.
        let (instances, phones): (Vec<String>, Vec<String>) =
            asked.iter().map(|(i, p)| (i.to_string(), p.to_string())).unzip();
        let sql = "SELECT c.instance_id, c.phone FROM unnest($1::text[], $2::text[]) AS a(instance_id, phone) \
                   JOIN contacted_recipients c ON c.instance_id = a.instance_id AND c.phone = a.phone";
        let statement = sea_orm::Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            sql,
            [instances.into(), phones.into()],
        );
        let mut found = HashSet::new();
        for row in txn.query_all_raw(statement).await? {
            found.insert((row.try_get_by_index::<String>(0)?, row.try_get_by_index::<String>(1)?));
        }
        return Ok(found);
    }
    let instances: Vec<&str> =
        jobs.iter().map(|j| j.instance_id.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
    let phones: Vec<&str> = jobs.iter().map(|j| j.phone.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
    let mut found = HashSet::new();
    for instance_chunk in crate::db::shaped_chunks(&instances, crate::db::INSERT_CHUNK) {
        for chunk in crate::db::shaped_chunks(&phones, crate::db::INSERT_CHUNK) {
            let rows: Vec<(String, String)> = contacted_recipient::Entity::find()
                .select_only()
                .column(contacted_recipient::Column::InstanceId)
                .column(contacted_recipient::Column::Phone)
                .filter(contacted_recipient::Column::InstanceId.is_in(instance_chunk.iter().copied()))
                .filter(contacted_recipient::Column::Phone.is_in(chunk.iter().copied()))
                .into_tuple()
                .all(txn)
                .await?;
            found.extend(rows.into_iter().filter(|(i, p)| asked.contains(&(i.as_str(), p.as_str()))));
        }
    }
    Ok(found)
}

/// Inserts the admitted messages as `accepted`; their log ids, in the order given.
async fn insert_messages<C: ConnectionTrait>(
    txn: &C,
    admitted: &[(usize, &Job)],
    answers: &[Decided],
    message_ids: &[String],
    at: i64,
) -> Result<Vec<i64>> {
    if admitted.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<message::ActiveModel> = admitted
        .iter()
        .zip(message_ids)
        .map(|((index, job), message_id)| {
            let score = match &answers[*index] {
                Decided::Admitted { assessment, .. } => assessment.score,
                _ => job.assessment.score,
            };
            let new = crate::message_log::NewMessage {
                message_id,
                account_id: job.account_id,
                instance_id: &job.instance_id,
                recipient: job.phone.as_str(),
                purpose: job.purpose.as_str(),
                kind: job.draft.kind,
                body: job.draft.body.clone(),
                media_mime_type: job.draft.media_mime_type.clone(),
                media_file_name: job.draft.media_file_name.clone(),
                media_bytes: job.draft.media_bytes,
                content_fingerprint: job.fingerprint.clone(),
                risk_score: i32::from(score),
                channel: &job.draft.channel,
                idempotency_key: job.keyed.as_ref().map(|k| k.key.as_str()),
            };
            crate::message_log::accepted_row(new, at)
        })
        .collect();
    // The ids by message id (unique): RETURNING's row order is not promised anywhere.
    let mut ids: HashMap<String, i64> = HashMap::with_capacity(message_ids.len());
    if txn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        for row in crate::db::bulk::insert_returning::<message::Entity, _>(txn, &rows, "message_id, id").await? {
            ids.insert(row.try_get_by_index(0)?, row.try_get_by_index(1)?);
        }
    } else {
        // Media can make rows large: a smaller chunk keeps one statement's size in bounds.
        crate::db::bulk::insert::<message::Entity, _>(txn, &rows, 64).await?;
        for chunk in crate::db::shaped_chunks(&message_ids, crate::db::INSERT_CHUNK) {
            let rows: Vec<(String, i64)> = message::Entity::find()
                .select_only()
                .column(message::Column::MessageId)
                .column(message::Column::Id)
                .filter(message::Column::MessageId.is_in(chunk.iter().map(String::as_str)))
                .into_tuple()
                .all(txn)
                .await?;
            ids.extend(rows);
        }
    }
    message_ids
        .iter()
        .map(|m| {
            ids.get(m).copied().ok_or_else(|| crate::Error::Internal(format!("message {m} not found after insert")))
        })
        .collect()
}

/// One policy decision per answered send (a send whose key was taken is not decided here).
async fn insert_decisions<C: ConnectionTrait>(
    txn: &C,
    jobs: &[&Job],
    answers: &[Decided],
    admitted: &[(usize, &Job)],
    log_ids: &[i64],
    at: i64,
) -> Result<()> {
    let log_id_of: HashMap<usize, i64> = admitted.iter().map(|(i, _)| *i).zip(log_ids.iter().copied()).collect();
    let mut rows = Vec::with_capacity(jobs.len());
    let mut stats: BTreeMap<(i64, &'static str), i64> = BTreeMap::new();
    let mut refusals: BTreeMap<(i64, &'static str), i64> = BTreeMap::new();
    for (index, (job, answer)) in jobs.iter().zip(answers).enumerate() {
        let (decision, error_code, assessment) = match answer {
            Decided::KeyTaken => continue,
            Decided::Admitted { assessment, decision, .. } => (decision_label(*decision), None, assessment.clone()),
            Decided::Refused(refusal) => {
                *refusals.entry((job.account_id, refusal.code())).or_default() += 1;
                (
                    "block",
                    Some(refusal.code().to_string()),
                    Assessment { score: refusal.risk_score(), reasons: refusal.reasons() },
                )
            }
        };
        *stats.entry((job.account_id, decision)).or_default() += 1;
        rows.push(policy_decision::ActiveModel {
            account_id: Set(job.account_id),
            instance_id: Set(Some(job.instance_id.clone())),
            recipient_masked: Set(job.phone.masked()),
            purpose: Set(job.purpose_label.chars().take(40).collect()),
            decision: Set(decision.into()),
            error_code: Set(error_code),
            risk_score: Set(i32::from(assessment.score)),
            reasons: Set(serde_json::to_string(&assessment.reasons).unwrap_or_else(|_| "[]".into())),
            created_at: Set(at),
            message_log_id: Set(log_id_of.get(&index).copied()),
            ..Default::default()
        });
    }
    crate::db::bulk::insert::<policy_decision::Entity, _>(txn, &rows, crate::db::INSERT_CHUNK).await?;
    for ((account_id, decision), n) in stats {
        crate::policy_log::count_n(txn, account_id, decision, at, n).await?;
    }
    for ((account_id, code), n) in refusals {
        crate::policy_log::count_refusals(txn, account_id, code, at, n).await?;
    }
    Ok(())
}

async fn insert_claims<C: ConnectionTrait>(txn: &C, admitted: &[(usize, &Job)], at: i64) -> Result<()> {
    let rows: Vec<idempotency_key::ActiveModel> = admitted
        .iter()
        .filter_map(|(_, job)| job.keyed.as_ref().map(|keyed| idempotency::claim_row(job.account_id, keyed, at)))
        .collect();
    crate::db::bulk::insert::<idempotency_key::Entity, _>(txn, &rows, crate::db::INSERT_CHUNK).await?;
    Ok(())
}

#[async_trait::async_trait]
impl crate::db::group_commit::Work for Job {
    type Answer = Admission;
    const WAKES_WEBHOOKS: bool = false;

    async fn run(txn: &crate::db::WriteTxn, jobs: &[&Job]) -> Result<Vec<Admission>> {
        admit_all(txn, jobs, Utc::now()).await
    }
}
