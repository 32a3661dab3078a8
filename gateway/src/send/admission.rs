//! The admission transaction: one write transaction claims the Idempotency-Key, checks the
//! suppression list, takes the fair-use and speed units, and writes the message row and its
//! policy decision. A refusal rolls all of it back (nothing taken needs giving back) and logs
//! the decision on its own.
use sea_orm::{ConnectionTrait, DatabaseConnection};

use super::{
    decision_label, idempotency, limit_refusal, media_kind_name, phone::Phone, purpose::Purpose, stored_body,
    throttle, Refusal, SendRequest,
};
use crate::{
    error::Result,
    ids, message_log,
    policy::{Assessment, Decision},
    policy_log, suppressions, usage,
};

/// Everything admission needs, worked out before any lock is taken.
pub(crate) struct Plan<'a> {
    pub account_id: i64,
    pub instance_id: &'a str,
    pub phone: &'a Phone,
    pub purpose: Purpose,
    pub purpose_label: &'a str,
    pub request: &'a SendRequest,
    pub text: &'a str,
    pub fingerprint: String,
    pub assessment: &'a Assessment,
    pub decision: Decision,
    pub limits: crate::plans::Limits,
    pub throttle: throttle::ThrottleLimits,
    pub keyed: Option<&'a idempotency::KeyedRequest>,
}

/// An admitted message: what settling it needs.
#[derive(Clone, Debug)]
pub(crate) struct Ticket {
    pub account_id: i64,
    pub message_id: String,
    pub log_id: i64,
    pub policy_id: i64,
    pub reservation: usage::Reservation,
    pub throttle: throttle::Admission,
}

pub(crate) enum Admission {
    Admitted(Ticket),
    Refused(Refusal),
    Earlier(idempotency::Claim),
}

enum Stop {
    Refused(Refusal),
    /// Another request holds the Idempotency-Key.
    KeyTaken,
}

/// Deadlocks (PostgreSQL, MySQL) and lost key races are tried again a few times.
const ATTEMPTS: usize = 4;

pub(crate) async fn admit(db: &DatabaseConnection, plan: &Plan<'_>) -> Result<Admission> {
    let mut last_error = None;
    for _ in 0..ATTEMPTS {
        let txn = crate::db::begin_write(db).await?;
        match admit_in(&txn, plan).await {
            Ok(Ok(ticket)) => {
                txn.commit().await?;
                return Ok(Admission::Admitted(ticket));
            }
            Ok(Err(Stop::Refused(refusal))) => {
                txn.rollback().await?;
                record_refusal(db, plan, &refusal).await?;
                return Ok(Admission::Refused(refusal));
            }
            Ok(Err(Stop::KeyTaken)) => {
                txn.rollback().await?;
                if let Some(keyed) = plan.keyed {
                    if let Some(earlier) = idempotency::earlier_use(db, plan.account_id, keyed).await? {
                        return Ok(Admission::Earlier(earlier));
                    }
                }
                // The other request let the key go meanwhile: try again.
            }
            Err(e) => {
                let _ = txn.rollback().await;
                if !crate::db::is_transient(&e) {
                    return Err(e);
                }
                last_error = Some(e);
            }
        }
    }
    match last_error {
        Some(e) => Err(e),
        None => Ok(Admission::Earlier(idempotency::Claim::InProgress)),
    }
}

async fn admit_in<C: ConnectionTrait>(txn: &C, plan: &Plan<'_>) -> Result<std::result::Result<Ticket, Stop>> {
    let refused = |r: Refusal| Ok(Err(Stop::Refused(r)));
    if let Some(keyed) = plan.keyed {
        if !idempotency::claim(txn, plan.account_id, keyed).await? {
            return Ok(Err(Stop::KeyTaken));
        }
    }
    // 8. suppression
    if suppressions::is_suppressed(txn, plan.account_id, plan.phone).await? {
        return refused(Refusal::RecipientSuppressed);
    }
    // 9. content policy (assessed before the transaction)
    if plan.decision == Decision::Block {
        return refused(Refusal::PolicyViolation(plan.assessment.clone()));
    }
    // 10. fair-use limits
    let now = chrono::Utc::now();
    let reservation = match usage::reserve(txn, plan.account_id, plan.limits, now).await? {
        Ok(r) => r,
        Err(exceeded) => return refused(limit_refusal(exceeded)),
    };
    // 11. sending speed
    let admission = match throttle::admit(txn, plan.instance_id, plan.phone, plan.throttle, now.timestamp()).await? {
        Ok(a) => a,
        Err(t) => return refused(Refusal::Throttled { retry_after_secs: t.retry_after_secs }),
    };
    let message_id = ids::new_id("msg");
    let media = plan.request.media.as_ref();
    let log_id = message_log::insert_accepted(
        txn,
        message_log::NewMessage {
            message_id: &message_id,
            account_id: plan.account_id,
            instance_id: plan.instance_id,
            recipient: plan.phone.as_str(),
            purpose: plan.purpose.as_str(),
            kind: media.map(|m| media_kind_name(m.kind)).unwrap_or("text"),
            body: stored_body(plan.text, plan.purpose),
            media_mime_type: media.map(|m| m.mime_type.clone()),
            media_file_name: media.and_then(|m| m.file_name.clone()),
            media_bytes: media.map(|m| m.data.len() as i64),
            content_fingerprint: plan.fingerprint.clone(),
            risk_score: i32::from(plan.assessment.score),
            channel: &plan.request.channel,
            idempotency_key: plan.keyed.map(|k| k.key.as_str()),
        },
    )
    .await?;
    let policy_id = policy_log::record(txn, entry(plan, decision_label(plan.decision), None, plan.assessment)).await?;
    Ok(Ok(Ticket { account_id: plan.account_id, message_id, log_id, policy_id, reservation, throttle: admission }))
}

fn entry<'a>(
    plan: &'a Plan<'_>,
    decision: &'a str,
    error_code: Option<&'a str>,
    assessment: &'a Assessment,
) -> policy_log::NewEntry<'a> {
    policy_log::NewEntry {
        account_id: plan.account_id,
        instance_id: plan.instance_id,
        recipient_masked: plan.phone.masked(),
        purpose: plan.purpose_label,
        decision,
        error_code,
        risk_score: assessment.score,
        reasons: &assessment.reasons,
    }
}

async fn record_refusal(db: &DatabaseConnection, plan: &Plan<'_>, refusal: &Refusal) -> Result<()> {
    let assessment = Assessment { score: refusal.risk_score(), reasons: refusal.reasons() };
    policy_log::record(db, entry(plan, "block", Some(refusal.code()), &assessment)).await?;
    Ok(())
}
