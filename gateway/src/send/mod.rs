//! The guarded send pipeline (the spec's `ResponsibleMessageSender`). The JSON handler checks
//! steps 1–3 (content type, key, well-formed body); this runs steps 4–12 in DESIGN.md's order
//! and the first refusal answers. Every decision past the instance check is policy-logged.
mod admission;
mod delivery;
pub mod fetch;
pub mod idempotency;
pub mod inflight;
pub mod media;
pub mod phone;
pub mod purpose;
pub mod reconcile;
mod repeats;
mod settle;
pub mod throttle;

use sea_orm::DatabaseConnection;
use serde::Serialize;

use crate::{
    accounts::Account,
    config::SendSettings,
    connectors::{OutgoingContent, OutgoingMessage},
    error::{Error, Result},
    instances, message_log,
    policy::{self, Assessment, Decision, Reason},
    policy_log,
    state::AppState,
    suppressions, time, usage,
};
use media::Media;
use phone::Phone;
use purpose::{Purpose, PurposeError};

/// A request that passed step 3: every field present and well-formed.
#[derive(Clone, Debug)]
pub struct SendRequest {
    pub instance_id: String,
    pub phone: Phone,
    /// The text, or the caption when media is sent.
    pub message: Option<String>,
    /// Checked at step 6, after the account and the instance.
    pub purpose: Option<serde_json::Value>,
    pub media: Option<Media>,
    pub dry_run: bool,
    pub channel: Channel,
}

/// Where a send came from. Each has its own module switch on the account, and the message log
/// says which it was.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Channel {
    #[default]
    Api,
    /// A 3CX agent reply or call-event template.
    ThreeCx { conversation_id: Option<String>, agent_extension: Option<String> },
}

impl Channel {
    pub fn source_label(&self) -> &'static str {
        match self {
            Channel::Api => "api",
            Channel::ThreeCx { .. } => "3cx",
        }
    }
}

/// Why a send was refused, in the spec's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    ModuleNotEnabled,
    ActivePlanRequired,
    InvalidInstance,
    PurposeRequired,
    PurposeNotAllowed,
    InstancePaused,
    RecipientSuppressed,
    PolicyViolation(Assessment),
    DailyLimit { limit: i64, used: i64 },
    MonthlyLimit { limit: i64, used: i64 },
    Throttled { retry_after_secs: i64 },
    GatewaySendFailed { log_id: i64 },
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::ModuleNotEnabled => "module_not_enabled",
            Refusal::ActivePlanRequired => "active_plan_required",
            Refusal::InvalidInstance => "invalid_instance",
            Refusal::PurposeRequired => "message_purpose_required",
            Refusal::PurposeNotAllowed => "message_purpose_not_allowed",
            Refusal::InstancePaused => "instance_paused_for_review",
            Refusal::RecipientSuppressed => "recipient_suppressed",
            Refusal::PolicyViolation(_) => "policy_violation",
            Refusal::DailyLimit { .. } => "daily_message_limit_exceeded",
            Refusal::MonthlyLimit { .. } => "monthly_message_limit_exceeded",
            Refusal::Throttled { .. } => "sending_throttled",
            Refusal::GatewaySendFailed { .. } => "gateway_send_failed",
        }
    }

    /// The risk the refusal guards against, 0–100, as `details.risk_score`.
    pub fn risk_score(&self) -> u8 {
        match self {
            Refusal::PolicyViolation(a) => a.score,
            Refusal::RecipientSuppressed => 100,
            Refusal::PurposeNotAllowed | Refusal::PurposeRequired => 90,
            Refusal::DailyLimit { .. } | Refusal::MonthlyLimit { .. } => 90,
            Refusal::InstancePaused => 80,
            Refusal::Throttled { .. } => 75,
            Refusal::ModuleNotEnabled | Refusal::ActivePlanRequired | Refusal::InvalidInstance => 0,
            Refusal::GatewaySendFailed { .. } => 0,
        }
    }

    pub fn reasons(&self) -> Vec<Reason> {
        match self {
            Refusal::PolicyViolation(a) => a.reasons.clone(),
            _ => Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sent {
    pub message_id: String,
    pub log_id: i64,
    pub daily_limit: i64,
    pub remaining_today: i64,
    pub assessment: Assessment,
    pub decision: Decision,
}

/// What a dry run found: the decision a real send would meet, and the refusal if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DryRun {
    pub decision: Decision,
    pub assessment: Assessment,
    pub refusal: Option<Refusal>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Sent(Sent),
    DryRun(DryRun),
    /// The Idempotency-Key was used before: its first answer, or why there is none.
    Earlier(idempotency::Claim),
}

/// What the API answers and a retry with the same Idempotency-Key gets back. The JSON shapes
/// belong to the HTTP layer, which provides them; the engine stores them when it settles.
pub trait StoredAnswers: Send + Sync {
    /// The 200 body of a sent message.
    fn sent(&self, message_id: &str, log_id: i64) -> String;
    /// The `gateway_send_failed` body of a message whose outcome the gateway cannot know.
    fn send_failed(&self, log_id: i64) -> String;
}

/// The group-commit queues of the send path: many sends' admissions in one transaction, and
/// many settlements in another (see `db::group_commit`).
pub struct Queues {
    admit: crate::db::group_commit::GroupCommit<admission::Job>,
    settle: crate::db::group_commit::GroupCommit<settle::Job>,
}

impl Queues {
    pub fn new(db: DatabaseConnection) -> Queues {
        Queues {
            admit: crate::db::group_commit::GroupCommit::new(db.clone()),
            settle: crate::db::group_commit::GroupCommit::new(db),
        }
    }
}

pub struct Sender<'a> {
    pub state: &'a AppState,
}

/// Distinct recipients of the same content in a day that make it look like a broadcast.
const REVIEW_WINDOW_SECS: i64 = 3600;

impl Sender<'_> {
    pub fn db(&self) -> &DatabaseConnection {
        &self.state.db
    }

    fn settings(&self) -> &SendSettings {
        &self.state.config.send
    }

    /// Runs the pipeline. `keyed` is the request's Idempotency-Key (ignored for dry runs).
    pub async fn send(
        &self,
        account: &Account,
        request: SendRequest,
        keyed: Option<idempotency::KeyedRequest>,
    ) -> Result<Result<Outcome, Refusal>> {
        let keyed = keyed.filter(|_| !request.dry_run);
        // A retry gets its first answer, whatever changed since.
        if let Some(keyed) = &keyed {
            if let Some(earlier) = idempotency::earlier_use(self.db(), account.id, keyed).await? {
                return Ok(Ok(Outcome::Earlier(earlier)));
            }
        }
        // 4. the account may send at all, through this channel
        let module_enabled = match request.channel {
            Channel::Api => account.api_enabled,
            Channel::ThreeCx { .. } => account.threecx_enabled,
        };
        if !module_enabled {
            return Ok(Err(Refusal::ModuleNotEnabled));
        }
        let Some(limits) = account.limits() else {
            return Ok(Err(Refusal::ActivePlanRequired));
        };
        // 5. the instance is the account's
        let instance = match self.state.cache.instance(account.id, &request.instance_id).await {
            Ok(i) => i,
            Err(Error::NotFound) => return Ok(Err(Refusal::InvalidInstance)),
            Err(e) => return Err(e),
        };
        let dry_run = request.dry_run;
        let text = request.message.clone().unwrap_or_default();
        let purpose_text = purpose_label(request.purpose.as_ref());
        let logger = DecisionLog {
            db: self.db(),
            account_id: account.id,
            instance_id: &instance.id,
            phone: &request.phone,
            purpose: &purpose_text,
            dry_run,
        };

        // 6. purpose
        let purpose = match Purpose::parse(request.purpose.as_ref()) {
            Ok(p) => p,
            Err(PurposeError::Missing) => return logger.refuse(Refusal::PurposeRequired).await,
            Err(PurposeError::NotAllowed) => return logger.refuse(Refusal::PurposeNotAllowed).await,
        };
        // 7. paused by the customer or for review
        if instance.paused || instance.review_paused {
            return logger.refuse(Refusal::InstancePaused).await;
        }
        // 9's content checks need no lock: they run before the admission transaction, which
        // adds repeated content (counted in its transaction) and answers in the spec's order
        // (suppression before content).
        let fingerprint = fingerprint_of(&text, request.media.as_ref());
        let assessment = assess_content(&text, request.media.as_ref(), purpose);
        let settings = self.settings();
        let thresholds = (settings.policy_flag_threshold, settings.policy_block_threshold);
        let throttle_limits = throttle::ThrottleLimits {
            per_minute: settings.rate_per_minute,
            new_recipients_per_hour: settings.new_recipients_per_hour,
        };

        if dry_run {
            let mut assessment = assessment;
            let since = time::now() - repeats::WINDOW_SECS;
            let recipients =
                message_log::distinct_recipients_with_fingerprint(self.db(), account.id, &fingerprint, since).await?;
            repeats::add_reason(&mut assessment, usize::try_from(recipients).unwrap_or(usize::MAX));
            let decision = policy::decide(assessment.score, thresholds.0, thresholds.1);
            return self
                .dry_run(account.id, limits, &instance.id, &request.phone, decision, assessment, throttle_limits)
                .await;
        }

        let media = request.media.as_ref();
        let job = admission::Job {
            account_id: account.id,
            instance_id: instance.id.clone(),
            phone: request.phone.clone(),
            purpose,
            purpose_label: purpose_text,
            draft: admission::Draft {
                kind: media.map(|m| media_kind_name(m.kind)).unwrap_or("text"),
                body: stored_body(&text, purpose),
                media_mime_type: media.map(|m| m.mime_type.clone()),
                media_file_name: media.and_then(|m| m.file_name.clone()),
                media_bytes: media.map(|m| m.data.len() as i64),
                channel: request.channel.clone(),
            },
            fingerprint,
            assessment,
            thresholds,
            limits,
            throttle: throttle_limits,
            keyed,
        };
        let outgoing = OutgoingMessage {
            to: request.phone.as_str().to_string(),
            content: match request.media {
                Some(m) => OutgoingContent::Media {
                    kind: m.kind,
                    mime_type: m.mime_type,
                    file_name: m.file_name,
                    data: m.data,
                    caption: request.message.clone(),
                },
                None => OutgoingContent::Text(text),
            },
        };
        // From here the send runs to its end in a task of its own, whatever happens to this
        // request (a client that hangs up, a timeout, shutdown): admitted or not, and if
        // admitted, handed over and settled.
        let state = self.state.clone();
        let task = self.state.sends.spawn(admit_and_deliver(state, job, instance, outgoing));
        let step = match task.await {
            Ok(step) => step?,
            Err(e) => return Err(Error::Internal(format!("a send task stopped: {e}"))),
        };
        Ok(match step {
            Step::Earlier(claim) => Ok(Outcome::Earlier(claim)),
            Step::Refused(refusal) => Err(refusal),
            Step::Finished(delivery::Finished::Sent { message_id, log_id, remaining_today, assessment, decision }) => {
                Ok(Outcome::Sent(Sent {
                    message_id,
                    log_id,
                    daily_limit: limits.daily,
                    remaining_today,
                    assessment,
                    decision,
                }))
            }
            Step::Finished(delivery::Finished::Failed { log_id }) => Err(Refusal::GatewaySendFailed { log_id }),
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn dry_run(
        &self,
        account_id: i64,
        limits: crate::plans::Limits,
        instance_id: &str,
        phone: &Phone,
        decision: Decision,
        assessment: Assessment,
        throttle_limits: throttle::ThrottleLimits,
    ) -> Result<Result<Outcome, Refusal>> {
        // 8–11 without taking anything.
        if suppressions::is_suppressed(self.db(), account_id, phone).await? {
            return Ok(Err(Refusal::RecipientSuppressed));
        }
        if decision == Decision::Block {
            return Ok(Err(Refusal::PolicyViolation(assessment)));
        }
        if let Err(exceeded) = usage::check(self.db(), account_id, limits, chrono::Utc::now()).await? {
            return Ok(Err(limit_refusal(exceeded)));
        }
        if let Err(t) = throttle::check(self.db(), instance_id, phone, throttle_limits, time::now()).await? {
            return Ok(Err(Refusal::Throttled { retry_after_secs: t.retry_after_secs }));
        }
        Ok(Ok(Outcome::DryRun(DryRun { decision, assessment, refusal: None })))
    }
}

/// The content policy's view of the text (and a media file's name), repeated content aside.
fn assess_content(text: &str, media: Option<&Media>, purpose: Purpose) -> Assessment {
    let mut subject = text.to_string();
    if let Some(name) = media.and_then(|m| m.file_name.as_deref()) {
        subject.push('\n');
        subject.push_str(&name.replace(['_', '-', '.'], " "));
    }
    policy::assess(&subject, purpose.as_str())
}

/// Where a send past the pure checks ended.
enum Step {
    Earlier(idempotency::Claim),
    Refused(Refusal),
    Finished(delivery::Finished),
}

/// Lost races for an Idempotency-Key that was let go meanwhile are tried again this often.
const KEY_RACES: usize = 4;

/// Admission (steps 8–11, group-committed with other sends), then the connector and settling.
async fn admit_and_deliver(
    state: AppState,
    job: admission::Job,
    instance: instances::Instance,
    outgoing: OutgoingMessage,
) -> Result<Step> {
    let mut races = 0;
    let ticket = loop {
        let answer = state.queues.admit.submit(job.clone()).await?;
        match answer {
            admission::Admission::Admitted(ticket) => break ticket,
            admission::Admission::Refused(refusal) => {
                if matches!(refusal, Refusal::PolicyViolation(_)) {
                    maybe_pause_for_review(&state, &instance.id).await?;
                }
                return Ok(Step::Refused(refusal));
            }
            admission::Admission::KeyTaken => {
                let Some(keyed) = &job.keyed else {
                    return Err(Error::Internal("admission reported a key for a send without one".into()));
                };
                if let Some(earlier) = idempotency::earlier_use(&state.db, job.account_id, keyed).await? {
                    return Ok(Step::Earlier(earlier));
                }
                races += 1;
                if races >= KEY_RACES {
                    return Ok(Step::Earlier(idempotency::Claim::InProgress));
                }
            }
        }
    };
    let delivery = delivery::Delivery {
        state,
        instance,
        ticket,
        outgoing: Some(outgoing),
        phone: job.phone,
        key: job.keyed.map(|k| k.key),
    };
    Ok(Step::Finished(delivery.run().await?))
}

/// Many policy blocks within an hour pause the instance for review.
async fn maybe_pause_for_review(state: &AppState, instance_id: &str) -> Result<()> {
    let since = time::now() - REVIEW_WINDOW_SECS;
    let blocks = policy_log::policy_blocks_since(&state.db, instance_id, since).await?;
    if blocks >= state.config.send.review_pause_blocks {
        let reason = format!("Automatic: {blocks} policy blocks within an hour.");
        if instances::pause_for_review(&state.db, instance_id, &reason).await? {
            tracing::warn!(instance_id, blocks, "instance paused for responsible-messaging review");
        }
    }
    Ok(())
}

/// Writes the decision to the policy log (not for dry runs) and answers the refusal.
struct DecisionLog<'a> {
    db: &'a DatabaseConnection,
    account_id: i64,
    instance_id: &'a str,
    phone: &'a Phone,
    purpose: &'a str,
    dry_run: bool,
}

impl DecisionLog<'_> {
    async fn refuse(&self, refusal: Refusal) -> Result<Result<Outcome, Refusal>> {
        let assessment = Assessment { score: refusal.risk_score(), reasons: refusal.reasons() };
        // A provider failure passed every check: it is an allowed decision that did not deliver.
        let decision = if matches!(refusal, Refusal::GatewaySendFailed { .. }) { "allow" } else { "block" };
        self.record(decision, Some(refusal.code()), &assessment).await?;
        Ok(Err(refusal))
    }

    async fn record(&self, decision: &str, error_code: Option<&str>, assessment: &Assessment) -> Result<()> {
        if self.dry_run {
            return Ok(());
        }
        policy_log::record_alone(
            self.db,
            policy_log::NewEntry {
                account_id: self.account_id,
                instance_id: self.instance_id,
                recipient_masked: self.phone.masked(),
                purpose: self.purpose,
                decision,
                error_code,
                risk_score: assessment.score,
                reasons: &assessment.reasons,
            },
        )
        .await?;
        Ok(())
    }
}

fn limit_refusal(exceeded: usage::LimitExceeded) -> Refusal {
    match exceeded {
        usage::LimitExceeded::Daily { limit, used } => Refusal::DailyLimit { limit, used },
        usage::LimitExceeded::Monthly { limit, used } => Refusal::MonthlyLimit { limit, used },
    }
}

fn decision_label(decision: Decision) -> &'static str {
    match decision {
        Decision::Allow => "allow",
        Decision::Flag => "flag",
        Decision::Block => "block",
    }
}

/// The purpose as given, for the policy log (an unknown value is worth seeing there).
fn purpose_label(value: Option<&serde_json::Value>) -> String {
    match value {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.chars().take(40).collect(),
        Some(serde_json::Value::String(_)) | Some(serde_json::Value::Null) | None => "(missing)".into(),
        Some(other) => other.to_string().chars().take(40).collect(),
    }
}

fn media_kind_name(kind: crate::connectors::MediaKind) -> &'static str {
    match kind {
        crate::connectors::MediaKind::Image => "image",
        crate::connectors::MediaKind::Document => "document",
        crate::connectors::MediaKind::Audio => "audio",
        crate::connectors::MediaKind::Video => "video",
    }
}

fn fingerprint_of(text: &str, media: Option<&Media>) -> String {
    match media {
        Some(m) if text.trim().is_empty() => idempotency::request_hash(&m.data),
        _ => policy::content_fingerprint(text),
    }
}

/// One-time codes are not kept in the log: digits of authentication messages are masked.
fn stored_body(text: &str, purpose: Purpose) -> String {
    if purpose == Purpose::Authentication {
        text.chars().map(|c| if c.is_ascii_digit() { '•' } else { c }).collect()
    } else {
        text.to_string()
    }
}
