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
pub mod text;
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
use media::{Media, Source};
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
    /// Paused for responsible-messaging review (by an operator or automatically).
    InstancePaused,
    /// Paused by its owner on the Settings tab: a choice, not a policy block.
    InstancePausedByOwner,
    RecipientSuppressed,
    PolicyViolation(Assessment),
    DailyLimit {
        limit: i64,
        used: i64,
    },
    MonthlyLimit {
        limit: i64,
        used: i64,
    },
    Throttled {
        retry_after_secs: i64,
    },
    GatewaySendFailed {
        log_id: i64,
    },
    /// Media given as a URL could not be used (`validation_error`, with this hint on `media`).
    MediaUnusable {
        hint: String,
    },
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
            Refusal::InstancePausedByOwner => "instance_paused",
            Refusal::RecipientSuppressed => "recipient_suppressed",
            Refusal::PolicyViolation(_) => "policy_violation",
            Refusal::DailyLimit { .. } => "daily_message_limit_exceeded",
            Refusal::MonthlyLimit { .. } => "monthly_message_limit_exceeded",
            Refusal::Throttled { .. } => "sending_throttled",
            Refusal::GatewaySendFailed { .. } => "gateway_send_failed",
            Refusal::MediaUnusable { .. } => "validation_error",
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
            Refusal::ModuleNotEnabled
            | Refusal::ActivePlanRequired
            | Refusal::InvalidInstance
            | Refusal::InstancePausedByOwner => 0,
            Refusal::GatewaySendFailed { .. } | Refusal::MediaUnusable { .. } => 0,
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

/// How long a media URL may take to download.
pub const MEDIA_FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A busy fetch budget asks the caller to come back after this many seconds.
const MEDIA_BUSY_RETRY_SECS: i64 = 5;

fn fetch_refusal(e: fetch::FetchError) -> Refusal {
    match e {
        fetch::FetchError::Busy => Refusal::Throttled { retry_after_secs: MEDIA_BUSY_RETRY_SECS },
        other => Refusal::MediaUnusable { hint: format!("The media URL could not be used: {other}.") },
    }
}

fn mismatch(mime_type: &str) -> Refusal {
    Refusal::MediaUnusable { hint: format!("The file's contents are not {mime_type}: check mime_type and the file.") }
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
        mut request: SendRequest,
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
        // 7. paused for review (a policy block, logged as one) or by the customer (their own
        // switch: answered, but neither logged nor counted as a blocked attempt)
        if instance.review_paused {
            return logger.refuse(Refusal::InstancePaused).await;
        }
        if instance.paused {
            return Ok(Err(Refusal::InstancePausedByOwner));
        }
        // 9's content checks need no lock: they run before the admission transaction, which
        // adds repeated content (counted in its transaction) and answers in the spec's order
        // (suppression before content).
        let settings = self.settings();
        let thresholds = (settings.policy_flag_threshold, settings.policy_block_threshold);
        let model_use = policy::ModelUse {
            mode: settings.content_model,
            flag_threshold: thresholds.0,
            block_threshold: thresholds.1,
        };
        let assessment = assess_content(&text, request.media.as_ref(), purpose, model_use);
        let throttle_limits = throttle::ThrottleLimits {
            per_minute: settings.rate_per_minute,
            new_recipients_per_hour: settings.new_recipients_per_hour,
        };

        if dry_run {
            // A file given by URL is judged by its announced size and first bytes only.
            if let Some(Media { source: Source::Url(url), mime_type, kind, .. }) = &request.media {
                if let Err(refusal) = self.peek_media(url, *kind, mime_type).await {
                    return Ok(Err(refusal));
                }
            }
            let mut assessment = assessment;
            // Without the file, a media-only message has no content to count repeats of.
            if let Some(fingerprint) = fingerprint_of(&text, request.media.as_ref()) {
                let since = time::now() - repeats::WINDOW_SECS;
                let recipients =
                    message_log::distinct_recipients_with_fingerprint(self.db(), account.id, &fingerprint, since)
                        .await?;
                repeats::add_reason(&mut assessment, usize::try_from(recipients).unwrap_or(usize::MAX));
            }
            let decision = policy::decide(assessment.score, thresholds.0, thresholds.1);
            return self
                .dry_run(account.id, limits, &instance.id, &request.phone, decision, assessment, throttle_limits)
                .await;
        }

        // A file given by URL is downloaded only for a send that the checks without it let
        // through so far (they are read, not taken: admission decides again, under its locks).
        let mut held = fetch::Held::none();
        if let Some(media) = request.media.as_mut() {
            if let Source::Url(url) = &media.source {
                let decision = policy::decide(assessment.score, thresholds.0, thresholds.1);
                // A message its content alone blocks goes on to admission, which answers
                // `policy_violation` in the spec's order.
                let phone = &request.phone;
                let refusal = self
                    .read_checks(account.id, limits, &instance.id, phone, decision, throttle_limits, || None)
                    .await?;
                if let Some(refusal) = refusal {
                    return logger.refuse(refusal).await;
                }
                match self.fetch_media(url, media.kind, &media.mime_type).await {
                    Ok((bytes, share)) => {
                        media.source = Source::Bytes(bytes);
                        held = share;
                    }
                    Err(refusal) => return Ok(Err(refusal)),
                }
            }
        }
        let Some(fingerprint) = fingerprint_of(&text, request.media.as_ref()) else {
            return Err(Error::Internal("media without bytes after the fetch".into()));
        };

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
                media_bytes: media.map(|m| m.source.size() as i64),
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
                Some(Media { kind, mime_type, file_name, source: Source::Bytes(data) }) => {
                    OutgoingContent::Media { kind, mime_type, file_name, data, caption: request.message.clone() }
                }
                Some(Media { source: Source::Url(_), .. }) => {
                    return Err(Error::Internal("media without bytes after the fetch".into()));
                }
                None => OutgoingContent::Text(text),
            },
        };
        // From here the send runs to its end in a task of its own, whatever happens to this
        // request (a client that hangs up, a timeout, shutdown): admitted or not, and if
        // admitted, handed over and settled.
        let state = self.state.clone();
        let task = self.state.sends.spawn(async move {
            // The fetched file's share of the media budget is given back when the send ends.
            let _held = held;
            admit_and_deliver(state, job, instance, outgoing).await
        });
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

    /// Steps 8–11 read without taking anything: suppression, content, fair use, speed. A
    /// blocking content decision answers `on_block()` and ends the checks there.
    #[allow(clippy::too_many_arguments)]
    async fn read_checks(
        &self,
        account_id: i64,
        limits: crate::plans::Limits,
        instance_id: &str,
        phone: &Phone,
        decision: Decision,
        throttle_limits: throttle::ThrottleLimits,
        on_block: impl FnOnce() -> Option<Refusal>,
    ) -> Result<Option<Refusal>> {
        if suppressions::is_suppressed(self.db(), account_id, phone).await? {
            return Ok(Some(Refusal::RecipientSuppressed));
        }
        if decision == Decision::Block {
            return Ok(on_block());
        }
        if let Err(exceeded) = usage::check(self.db(), account_id, limits, chrono::Utc::now()).await? {
            return Ok(Some(limit_refusal(exceeded)));
        }
        if let Err(t) = throttle::check(self.db(), instance_id, phone, throttle_limits, time::now()).await? {
            return Ok(Some(Refusal::Throttled { retry_after_secs: t.retry_after_secs }));
        }
        Ok(None)
    }

    fn fetch_policy(&self, kind: crate::connectors::MediaKind) -> fetch::FetchPolicy {
        fetch::FetchPolicy {
            max_bytes: self.settings().media.for_kind(kind),
            timeout: MEDIA_FETCH_TIMEOUT,
            // Development servers (private targets allowed) may serve files over plain http.
            require_https: !self.state.config.allow_private_media_urls,
            allow_private: self.state.config.allow_private_media_urls,
        }
    }

    async fn fetch_media(
        &self,
        url: &str,
        kind: crate::connectors::MediaKind,
        mime_type: &str,
    ) -> std::result::Result<(Vec<u8>, fetch::Held), Refusal> {
        let (bytes, held) =
            fetch::fetch(url, self.fetch_policy(kind), &self.state.media_fetches).await.map_err(fetch_refusal)?;
        if !media::content_fits(mime_type, &bytes[..bytes.len().min(media::HEAD_BYTES)]) {
            return Err(mismatch(mime_type));
        }
        Ok((bytes, held))
    }

    async fn peek_media(
        &self,
        url: &str,
        kind: crate::connectors::MediaKind,
        mime_type: &str,
    ) -> std::result::Result<(), Refusal> {
        let head = fetch::peek(url, self.fetch_policy(kind), &self.state.media_fetches, media::HEAD_BYTES)
            .await
            .map_err(fetch_refusal)?;
        if !media::content_fits(mime_type, &head) {
            return Err(mismatch(mime_type));
        }
        Ok(())
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
        let blocked = || Some(Refusal::PolicyViolation(assessment.clone()));
        let refusal =
            self.read_checks(account_id, limits, instance_id, phone, decision, throttle_limits, blocked).await?;
        if let Some(refusal) = refusal {
            return Ok(Err(refusal));
        }
        Ok(Ok(Outcome::DryRun(DryRun { decision, assessment, refusal: None })))
    }
}

/// The content policy's view of the text (and a media file's name), repeated content aside.
fn assess_content(text: &str, media: Option<&Media>, purpose: Purpose, model_use: policy::ModelUse) -> Assessment {
    let mut subject = text.to_string();
    if let Some(name) = media.and_then(|m| m.file_name.as_deref()) {
        subject.push('\n');
        subject.push_str(&name.replace(['_', '-', '.'], " "));
    }
    policy::assess_with(&subject, purpose.as_str(), model_use)
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
                if let Refusal::PolicyViolation(assessment) = &refusal {
                    if counts_for_review(&state.config.send, &assessment.reasons) {
                        maybe_pause_for_review(&state, &instance.id).await?;
                    }
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

/// Whether a policy block counts toward the review pause: a block the content model caused alone counts only with
/// `WAG_CONTENT_MODEL_REVIEW_PAUSE` on, so a model being rolled out cannot pause customers by itself.
fn counts_for_review(settings: &SendSettings, reasons: &[Reason]) -> bool {
    settings.content_model_review_pause || policy::rules_score(reasons) >= settings.policy_block_threshold
}

/// Many policy blocks within an hour pause the instance for review.
async fn maybe_pause_for_review(state: &AppState, instance_id: &str) -> Result<()> {
    let since = time::now() - REVIEW_WINDOW_SECS;
    let settings = &state.config.send;
    let blocks = if settings.content_model_review_pause {
        policy_log::policy_blocks_since(&state.db, instance_id, since).await?
    } else {
        policy_log::policy_blocks_since_where(&state.db, instance_id, since, |reasons| {
            counts_for_review(settings, reasons)
        })
        .await?
    };
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

/// What "the same content" means for repeats: the text, or the file of a media-only message
/// (`None` while that file is still at its URL).
fn fingerprint_of(text: &str, media: Option<&Media>) -> Option<String> {
    match media {
        Some(m) if text.trim().is_empty() => match &m.source {
            Source::Bytes(data) => Some(idempotency::request_hash(data)),
            Source::Url(_) => None,
        },
        _ => Some(policy::content_fingerprint(text)),
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

#[cfg(test)]
mod review_tests {
    use super::*;

    fn reason(code: &str, points: u8) -> Reason {
        Reason { code: code.into(), detail: String::new(), points }
    }

    #[test]
    fn model_only_blocks_count_for_review_only_when_set() {
        let mut settings = SendSettings::default();
        let model_only = [reason(policy::model::REASON_CODE, 92), reason("marketing_language", 30)];
        let rules_too =
            [reason(policy::model::REASON_CODE, 92), reason("promotional_offer", 45), reason("call_to_buy", 40)];
        assert!(counts_for_review(&settings, &model_only), "counted by default");
        settings.content_model_review_pause = false;
        assert!(!counts_for_review(&settings, &model_only));
        assert!(counts_for_review(&settings, &rules_too), "the rules alone would have blocked it");
    }
}
