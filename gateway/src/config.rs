//! Configuration: built-in defaults, then an optional TOML file, then `WAG_*` environment
//! variables; validated once at start so a bad value stops the process with a clear message.
use std::{net::SocketAddr, path::PathBuf};

use serde::Deserialize;

use crate::plans::Plan;

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub data_dir: PathBuf,
    pub public_base_url: String,
    pub master_key: MasterKey,
    pub registration_enabled: bool,
    pub default_plan: Plan,
    pub sandbox_enabled: bool,
    /// The wait before each simulated sandbox receipt (delivered, read).
    pub sandbox_receipt_delay_ms: u64,
    /// The `whatsapp-web` connector (the gateway as a linked device of the customer's phone).
    /// Only offered when the binary was built with the `whatsapp-web` feature.
    pub whatsapp_web_enabled: bool,
    pub allow_private_webhook_targets: bool,
    /// Whether media URLs in send requests may point at private, loopback or link-local hosts.
    pub allow_private_media_urls: bool,
    pub log_format: LogFormat,
    pub session_days: i64,
    pub send: SendSettings,
    pub webhooks: crate::webhooks::worker::WebhookSettings,
    /// Reverse proxies whose `X-Forwarded-For` names the real client (3CX IP allowlists and
    /// login throttling see the client, not the proxy). Empty: the peer address is the client.
    pub trusted_proxies: crate::threecx::allowlist::IpAllowlist,
    /// How long each log keeps its rows (pruned hourly, in small batches).
    pub retention: crate::retention::Retention,
    /// What one client may hold of the HTTP server.
    pub http: HttpLimits,
    /// What one account may create or hold open.
    pub caps: AccountCaps,
    /// Set when several servers share one PostgreSQL database (`WAG_NODE_ADDRESS`).
    pub cluster: Option<ClusterSettings>,
    /// Where `GET /metrics` is served, if anywhere.
    pub metrics: MetricsSettings,
}

/// `GET /metrics` is off unless one of these is set: a bearer token for it on the main listener,
/// or an address of its own (for a network only Prometheus reaches). With both, the token is
/// asked on both.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MetricsSettings {
    pub token: Option<String>,
    pub listen: Option<SocketAddr>,
}

impl std::fmt::Debug for MetricsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsSettings")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("listen", &self.listen)
            .finish()
    }
}

/// One server of several on one PostgreSQL database (see `cluster`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSettings {
    /// Where the other servers reach this one, such as `http://10.0.0.5:8080`.
    pub address: String,
    /// A node whose heartbeat is older than this is dead; its instances move to the others.
    pub lease: std::time::Duration,
}

/// Per-account caps, so that one account (or a stolen session) cannot fill the database or the
/// server's memory. Operators raise them for accounts that need more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountCaps {
    pub instances: u64,
    /// Active (not revoked) API keys.
    pub api_keys: u64,
    pub webhook_destinations: u64,
    /// WhatsApp Web clients waiting for a scan or a pairing code at once.
    pub live_link_attempts: usize,
    /// A link attempt nobody looked at for this long is stopped.
    pub link_idle: std::time::Duration,
}

impl Default for AccountCaps {
    fn default() -> Self {
        AccountCaps {
            instances: 50,
            api_keys: 50,
            webhook_destinations: 20,
            live_link_attempts: 3,
            link_idle: std::time::Duration::from_secs(300),
        }
    }
}

/// Bounds on media fetched from `https://` URLs of send requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaFetchLimits {
    /// Downloads at once, whole or just their first bytes (dry runs).
    pub concurrency: usize,
    /// Bytes of fetched media held in memory at once, from the download until the send ends.
    pub memory_bytes: u64,
}

impl Default for MediaFetchLimits {
    fn default() -> Self {
        MediaFetchLimits { concurrency: 8, memory_bytes: 256 * 1024 * 1024 }
    }
}

/// Bounds on the HTTP server's connections, so an idle or slow client cannot hold one forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Connections open at once; more wait to be accepted.
    pub max_connections: usize,
    /// A request's headers must arrive within this; it is also how long a kept-alive connection
    /// may wait idle for its next request.
    pub header_timeout: std::time::Duration,
    /// A whole request, body included, must be answered within this (408 otherwise).
    pub request_timeout: std::time::Duration,
}

/// Tunables of the send pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendSettings {
    /// Messages per instance per minute.
    pub rate_per_minute: i64,
    /// Recipients an instance has never written to, per hour.
    pub new_recipients_per_hour: i64,
    /// Content scores at or above this are flagged (allowed, but logged as a concern).
    pub policy_flag_threshold: u8,
    /// Content scores at or above this are blocked with `policy_violation`.
    pub policy_block_threshold: u8,
    /// This many policy blocks of one instance within an hour pause it for review.
    pub review_pause_blocks: u64,
    /// Whether the learned content model may block, only flag, or is not consulted.
    pub content_model: crate::policy::ModelMode,
    /// Whether blocks the model alone caused count toward `review_pause_blocks`.
    pub content_model_review_pause: bool,
    pub media: crate::send::media::MediaLimits,
    pub media_fetch: MediaFetchLimits,
    /// How long a connector may take to hand a message to WhatsApp.
    pub timeout_secs: u64,
    /// A message still `accepted` this long after admission was interrupted by a crash and is
    /// settled by the reconciler (above `timeout_secs`, so no live send is taken for one).
    pub reconcile_after_secs: i64,
}

impl Default for SendSettings {
    fn default() -> Self {
        SendSettings {
            rate_per_minute: 20,
            new_recipients_per_hour: 30,
            policy_flag_threshold: crate::policy::FLAG_THRESHOLD_DEFAULT,
            policy_block_threshold: crate::policy::BLOCK_THRESHOLD_DEFAULT,
            review_pause_blocks: 5,
            content_model: crate::policy::ModelMode::Enforce,
            content_model_review_pause: true,
            media: crate::send::media::MediaLimits::default(),
            media_fetch: MediaFetchLimits::default(),
            timeout_secs: 30,
            reconcile_after_secs: 120,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// 32 bytes that encrypt secrets at rest. Never printed: `Debug` shows a placeholder.
#[derive(Clone)]
pub struct MasterKey(pub [u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// The raw layer: every field optional so that file and environment can each set a part.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    database_url: Option<String>,
    data_dir: Option<String>,
    public_base_url: Option<String>,
    master_key: Option<String>,
    registration_enabled: Option<bool>,
    default_plan: Option<String>,
    sandbox_enabled: Option<bool>,
    sandbox_receipt_delay_ms: Option<i64>,
    whatsapp_web_enabled: Option<bool>,
    allow_private_webhook_targets: Option<bool>,
    allow_private_media_urls: Option<bool>,
    log_format: Option<String>,
    session_days: Option<i64>,
    send_rate_per_minute: Option<i64>,
    new_recipients_per_hour: Option<i64>,
    policy_flag_threshold: Option<i64>,
    policy_block_threshold: Option<i64>,
    review_pause_blocks: Option<i64>,
    content_model: Option<String>,
    content_model_review_pause: Option<bool>,
    send_timeout_secs: Option<i64>,
    send_reconcile_after_secs: Option<i64>,
    media_max_image_mb: Option<i64>,
    media_max_audio_mb: Option<i64>,
    media_max_video_mb: Option<i64>,
    media_max_document_mb: Option<i64>,
    media_fetch_concurrency: Option<i64>,
    media_fetch_memory_mb: Option<i64>,
    max_instances_per_account: Option<i64>,
    max_api_keys_per_account: Option<i64>,
    max_webhooks_per_account: Option<i64>,
    max_link_attempts_per_account: Option<i64>,
    link_idle_secs: Option<i64>,
    node_address: Option<String>,
    node_lease_secs: Option<i64>,
    webhook_concurrency: Option<i64>,
    webhook_destination_concurrency: Option<i64>,
    webhook_retry_schedule: Option<String>,
    webhook_poll_ms: Option<i64>,
    webhook_lease_secs: Option<i64>,
    webhook_timeout_secs: Option<i64>,
    trusted_proxies: Option<String>,
    retention_messages_days: Option<i64>,
    retention_inbound_days: Option<i64>,
    retention_events_days: Option<i64>,
    retention_deliveries_days: Option<i64>,
    retention_attempts_days: Option<i64>,
    retention_policy_days: Option<i64>,
    retention_3cx_requests_days: Option<i64>,
    retention_batch: Option<i64>,
    max_connections: Option<i64>,
    header_timeout_secs: Option<i64>,
    request_timeout_secs: Option<i64>,
    metrics_token: Option<String>,
    metrics_listen: Option<String>,
}

/// Environment variables read, in the order the README lists them.
pub const ENV_VARS: &[&str] = &[
    "WAG_LISTEN",
    "WAG_DATABASE_URL",
    "WAG_DATA_DIR",
    "WAG_PUBLIC_BASE_URL",
    "WAG_MASTER_KEY",
    "WAG_REGISTRATION_ENABLED",
    "WAG_DEFAULT_PLAN",
    "WAG_SANDBOX_ENABLED",
    "WAG_SANDBOX_RECEIPT_DELAY_MS",
    "WAG_WHATSAPP_WEB_ENABLED",
    "WAG_ALLOW_PRIVATE_WEBHOOK_TARGETS",
    "WAG_ALLOW_PRIVATE_MEDIA_URLS",
    "WAG_LOG_FORMAT",
    "WAG_SESSION_DAYS",
    "WAG_SEND_RATE_PER_MINUTE",
    "WAG_NEW_RECIPIENTS_PER_HOUR",
    "WAG_POLICY_FLAG_THRESHOLD",
    "WAG_POLICY_BLOCK_THRESHOLD",
    "WAG_REVIEW_PAUSE_BLOCKS",
    "WAG_CONTENT_MODEL",
    "WAG_CONTENT_MODEL_REVIEW_PAUSE",
    "WAG_SEND_TIMEOUT_SECS",
    "WAG_SEND_RECONCILE_AFTER_SECS",
    "WAG_MEDIA_MAX_IMAGE_MB",
    "WAG_MEDIA_MAX_AUDIO_MB",
    "WAG_MEDIA_MAX_VIDEO_MB",
    "WAG_MEDIA_MAX_DOCUMENT_MB",
    "WAG_MEDIA_FETCH_CONCURRENCY",
    "WAG_MEDIA_FETCH_MEMORY_MB",
    "WAG_MAX_INSTANCES_PER_ACCOUNT",
    "WAG_MAX_API_KEYS_PER_ACCOUNT",
    "WAG_MAX_WEBHOOKS_PER_ACCOUNT",
    "WAG_MAX_LINK_ATTEMPTS_PER_ACCOUNT",
    "WAG_LINK_IDLE_SECS",
    "WAG_NODE_ADDRESS",
    "WAG_NODE_LEASE_SECS",
    "WAG_WEBHOOK_CONCURRENCY",
    "WAG_WEBHOOK_DESTINATION_CONCURRENCY",
    "WAG_WEBHOOK_RETRY_SCHEDULE",
    "WAG_WEBHOOK_TIMEOUT_SECS",
    "WAG_WEBHOOK_LEASE_SECS",
    "WAG_WEBHOOK_POLL_MS",
    "WAG_TRUSTED_PROXIES",
    "WAG_MAX_CONNECTIONS",
    "WAG_HEADER_TIMEOUT_SECS",
    "WAG_REQUEST_TIMEOUT_SECS",
    "WAG_METRICS_TOKEN",
    "WAG_METRICS_LISTEN",
    "WAG_RETENTION_MESSAGES_DAYS",
    "WAG_RETENTION_INBOUND_DAYS",
    "WAG_RETENTION_EVENTS_DAYS",
    "WAG_RETENTION_DELIVERIES_DAYS",
    "WAG_RETENTION_ATTEMPTS_DAYS",
    "WAG_RETENTION_POLICY_DAYS",
    "WAG_RETENTION_3CX_REQUESTS_DAYS",
    "WAG_RETENTION_BATCH",
];

impl Config {
    /// Loads from `file` (if given) and the process environment.
    pub fn load(file: Option<&std::path::Path>) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k.starts_with("WAG_")).collect();
        Self::load_from(file, &env)
    }

    /// Same as [`Config::load`] with an explicit environment, so tests need not touch the process's.
    pub fn load_from(file: Option<&std::path::Path>, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let mut raw = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
                toml::from_str::<RawConfig>(&text)
                    .map_err(|e| ConfigError(format!("config file {}: {e}", path.display())))?
            }
            None => RawConfig::default(),
        };
        for (key, value) in env {
            let v = value.clone();
            match key.as_str() {
                "WAG_LISTEN" => raw.listen = Some(v),
                "WAG_DATABASE_URL" => raw.database_url = Some(v),
                "WAG_DATA_DIR" => raw.data_dir = Some(v),
                "WAG_PUBLIC_BASE_URL" => raw.public_base_url = Some(v),
                "WAG_MASTER_KEY" => raw.master_key = Some(v),
                "WAG_REGISTRATION_ENABLED" => raw.registration_enabled = Some(parse_bool(key, &v)?),
                "WAG_DEFAULT_PLAN" => raw.default_plan = Some(v),
                "WAG_SANDBOX_ENABLED" => raw.sandbox_enabled = Some(parse_bool(key, &v)?),
                "WAG_ALLOW_PRIVATE_WEBHOOK_TARGETS" => raw.allow_private_webhook_targets = Some(parse_bool(key, &v)?),
                "WAG_LOG_FORMAT" => raw.log_format = Some(v),
                "WAG_ALLOW_PRIVATE_MEDIA_URLS" => raw.allow_private_media_urls = Some(parse_bool(key, &v)?),
                "WAG_SANDBOX_RECEIPT_DELAY_MS" => raw.sandbox_receipt_delay_ms = Some(parse_int(key, &v)?),
                "WAG_WHATSAPP_WEB_ENABLED" => raw.whatsapp_web_enabled = Some(parse_bool(key, &v)?),
                "WAG_SESSION_DAYS" => raw.session_days = Some(parse_int(key, &v)?),
                "WAG_SEND_RATE_PER_MINUTE" => raw.send_rate_per_minute = Some(parse_int(key, &v)?),
                "WAG_NEW_RECIPIENTS_PER_HOUR" => raw.new_recipients_per_hour = Some(parse_int(key, &v)?),
                "WAG_POLICY_FLAG_THRESHOLD" => raw.policy_flag_threshold = Some(parse_int(key, &v)?),
                "WAG_POLICY_BLOCK_THRESHOLD" => raw.policy_block_threshold = Some(parse_int(key, &v)?),
                "WAG_REVIEW_PAUSE_BLOCKS" => raw.review_pause_blocks = Some(parse_int(key, &v)?),
                "WAG_CONTENT_MODEL" => raw.content_model = Some(v),
                "WAG_CONTENT_MODEL_REVIEW_PAUSE" => raw.content_model_review_pause = Some(parse_bool(key, &v)?),
                "WAG_SEND_TIMEOUT_SECS" => raw.send_timeout_secs = Some(parse_int(key, &v)?),
                "WAG_MAX_CONNECTIONS" => raw.max_connections = Some(parse_int(key, &v)?),
                "WAG_HEADER_TIMEOUT_SECS" => raw.header_timeout_secs = Some(parse_int(key, &v)?),
                "WAG_REQUEST_TIMEOUT_SECS" => raw.request_timeout_secs = Some(parse_int(key, &v)?),
                "WAG_METRICS_TOKEN" => raw.metrics_token = Some(v),
                "WAG_METRICS_LISTEN" => raw.metrics_listen = Some(v),
                "WAG_SEND_RECONCILE_AFTER_SECS" => raw.send_reconcile_after_secs = Some(parse_int(key, &v)?),
                "WAG_MEDIA_MAX_IMAGE_MB" => raw.media_max_image_mb = Some(parse_int(key, &v)?),
                "WAG_MEDIA_MAX_AUDIO_MB" => raw.media_max_audio_mb = Some(parse_int(key, &v)?),
                "WAG_MEDIA_MAX_VIDEO_MB" => raw.media_max_video_mb = Some(parse_int(key, &v)?),
                "WAG_MEDIA_MAX_DOCUMENT_MB" => raw.media_max_document_mb = Some(parse_int(key, &v)?),
                "WAG_MEDIA_FETCH_CONCURRENCY" => raw.media_fetch_concurrency = Some(parse_int(key, &v)?),
                "WAG_MEDIA_FETCH_MEMORY_MB" => raw.media_fetch_memory_mb = Some(parse_int(key, &v)?),
                "WAG_MAX_INSTANCES_PER_ACCOUNT" => raw.max_instances_per_account = Some(parse_int(key, &v)?),
                "WAG_MAX_API_KEYS_PER_ACCOUNT" => raw.max_api_keys_per_account = Some(parse_int(key, &v)?),
                "WAG_MAX_WEBHOOKS_PER_ACCOUNT" => raw.max_webhooks_per_account = Some(parse_int(key, &v)?),
                "WAG_MAX_LINK_ATTEMPTS_PER_ACCOUNT" => raw.max_link_attempts_per_account = Some(parse_int(key, &v)?),
                "WAG_LINK_IDLE_SECS" => raw.link_idle_secs = Some(parse_int(key, &v)?),
                "WAG_NODE_ADDRESS" => raw.node_address = Some(v),
                "WAG_NODE_LEASE_SECS" => raw.node_lease_secs = Some(parse_int(key, &v)?),
                "WAG_WEBHOOK_CONCURRENCY" => raw.webhook_concurrency = Some(parse_int(key, &v)?),
                "WAG_WEBHOOK_RETRY_SCHEDULE" => raw.webhook_retry_schedule = Some(v),
                "WAG_WEBHOOK_POLL_MS" => raw.webhook_poll_ms = Some(parse_int(key, &v)?),
                "WAG_WEBHOOK_LEASE_SECS" => raw.webhook_lease_secs = Some(parse_int(key, &v)?),
                "WAG_WEBHOOK_DESTINATION_CONCURRENCY" => {
                    raw.webhook_destination_concurrency = Some(parse_int(key, &v)?)
                }
                "WAG_WEBHOOK_TIMEOUT_SECS" => raw.webhook_timeout_secs = Some(parse_int(key, &v)?),
                "WAG_TRUSTED_PROXIES" => raw.trusted_proxies = Some(v),
                "WAG_RETENTION_MESSAGES_DAYS" => raw.retention_messages_days = Some(parse_int(key, &v)?),
                "WAG_RETENTION_INBOUND_DAYS" => raw.retention_inbound_days = Some(parse_int(key, &v)?),
                "WAG_RETENTION_EVENTS_DAYS" => raw.retention_events_days = Some(parse_int(key, &v)?),
                "WAG_RETENTION_DELIVERIES_DAYS" => raw.retention_deliveries_days = Some(parse_int(key, &v)?),
                "WAG_RETENTION_ATTEMPTS_DAYS" => raw.retention_attempts_days = Some(parse_int(key, &v)?),
                "WAG_RETENTION_POLICY_DAYS" => raw.retention_policy_days = Some(parse_int(key, &v)?),
                "WAG_RETENTION_3CX_REQUESTS_DAYS" => raw.retention_3cx_requests_days = Some(parse_int(key, &v)?),
                "WAG_RETENTION_BATCH" => raw.retention_batch = Some(parse_int(key, &v)?),
                _ => {}
            }
        }
        raw.validate()
    }
}

fn parse_int(key: &str, value: &str) -> Result<i64, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError(format!("{key} must be a whole number, not {value:?}")))
}

/// A whole number within `range`, or the default when unset.
fn bounded(
    key: &str,
    value: Option<i64>,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, ConfigError> {
    let v = value.unwrap_or(default);
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(ConfigError(format!("{key} must be between {} and {}, not {v}", range.start(), range.end())))
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError(format!("{key} must be true or false, not {value:?}"))),
    }
}

impl RawConfig {
    fn validate(self) -> Result<Config, ConfigError> {
        let listen_text = self.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            ConfigError(format!("WAG_LISTEN must be an address like 127.0.0.1:8080, not {listen_text:?}"))
        })?;
        let data_dir = PathBuf::from(self.data_dir.unwrap_or_else(|| "./data".into()));
        let database_url = match self.database_url {
            Some(url) => {
                if !(url.starts_with("sqlite:")
                    || url.starts_with("postgres://")
                    || url.starts_with("postgresql://")
                    || url.starts_with("mysql://")
                    || url.starts_with("mariadb://"))
                {
                    return Err(ConfigError(
                        "WAG_DATABASE_URL must start with sqlite:, postgres://, postgresql:// or mysql://".into(),
                    ));
                }
                url.replacen("mariadb://", "mysql://", 1)
            }
            None => format!("sqlite://{}?mode=rwc", data_dir.join("wag.db").display()),
        };
        let public_base_url =
            self.public_base_url.unwrap_or_else(|| format!("http://{listen}")).trim_end_matches('/').to_string();
        if !(public_base_url.starts_with("http://") || public_base_url.starts_with("https://")) {
            return Err(ConfigError("WAG_PUBLIC_BASE_URL must start with http:// or https://".into()));
        }
        let master_key = match self.master_key {
            Some(text) => Some(parse_master_key(&text)?),
            None => None,
        };
        let default_plan_text = self.default_plan.unwrap_or_else(|| "starter".into());
        let default_plan = Plan::parse(&default_plan_text).ok_or_else(|| {
            ConfigError(format!("WAG_DEFAULT_PLAN must be starter, growth, scale or none, not {default_plan_text:?}"))
        })?;
        let log_format = match self.log_format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(ConfigError(format!("WAG_LOG_FORMAT must be text or json, not {other:?}"))),
        };
        let session_days = self.session_days.unwrap_or(7);
        if !(1..=365).contains(&session_days) {
            return Err(ConfigError("WAG_SESSION_DAYS must be between 1 and 365".into()));
        }
        let defaults = SendSettings::default();
        const MB: u64 = 1024 * 1024;
        let mb = |key: &str, value: Option<i64>, default: u64| -> Result<u64, ConfigError> {
            Ok(bounded(key, value, (default / MB) as i64, 1..=100)? as u64 * MB)
        };
        let flag = bounded(
            "WAG_POLICY_FLAG_THRESHOLD",
            self.policy_flag_threshold,
            defaults.policy_flag_threshold.into(),
            1..=100,
        )?;
        let block = bounded(
            "WAG_POLICY_BLOCK_THRESHOLD",
            self.policy_block_threshold,
            defaults.policy_block_threshold.into(),
            1..=100,
        )?;
        if flag > block {
            return Err(ConfigError("WAG_POLICY_FLAG_THRESHOLD must not be above WAG_POLICY_BLOCK_THRESHOLD".into()));
        }
        let content_model = match self.content_model.as_deref() {
            None => defaults.content_model,
            Some(text) => crate::policy::ModelMode::parse(text).ok_or_else(|| {
                ConfigError(format!("WAG_CONTENT_MODEL must be enforce, flag_only or off, not {text:?}"))
            })?,
        };
        let timeout_secs =
            bounded("WAG_SEND_TIMEOUT_SECS", self.send_timeout_secs, defaults.timeout_secs as i64, 1..=300)?;
        let reconcile_after_secs = bounded(
            "WAG_SEND_RECONCILE_AFTER_SECS",
            self.send_reconcile_after_secs,
            defaults.reconcile_after_secs,
            2..=86_400,
        )?;
        if reconcile_after_secs <= timeout_secs {
            return Err(ConfigError("WAG_SEND_RECONCILE_AFTER_SECS must be above WAG_SEND_TIMEOUT_SECS".into()));
        }
        let mut send = SendSettings {
            media_fetch: defaults.media_fetch,
            timeout_secs: timeout_secs as u64,
            reconcile_after_secs,
            rate_per_minute: bounded(
                "WAG_SEND_RATE_PER_MINUTE",
                self.send_rate_per_minute,
                defaults.rate_per_minute,
                1..=10_000_000,
            )?,
            new_recipients_per_hour: bounded(
                "WAG_NEW_RECIPIENTS_PER_HOUR",
                self.new_recipients_per_hour,
                defaults.new_recipients_per_hour,
                1..=10_000_000,
            )?,
            policy_flag_threshold: flag as u8,
            policy_block_threshold: block as u8,
            review_pause_blocks: bounded(
                "WAG_REVIEW_PAUSE_BLOCKS",
                self.review_pause_blocks,
                defaults.review_pause_blocks as i64,
                1..=10_000,
            )? as u64,
            content_model,
            content_model_review_pause: self.content_model_review_pause.unwrap_or(defaults.content_model_review_pause),
            media: crate::send::media::MediaLimits {
                image_bytes: mb("WAG_MEDIA_MAX_IMAGE_MB", self.media_max_image_mb, defaults.media.image_bytes)?,
                audio_bytes: mb("WAG_MEDIA_MAX_AUDIO_MB", self.media_max_audio_mb, defaults.media.audio_bytes)?,
                video_bytes: mb("WAG_MEDIA_MAX_VIDEO_MB", self.media_max_video_mb, defaults.media.video_bytes)?,
                document_bytes: mb(
                    "WAG_MEDIA_MAX_DOCUMENT_MB",
                    self.media_max_document_mb,
                    defaults.media.document_bytes,
                )?,
            },
        };
        let largest_media = [send.media.image_bytes, send.media.audio_bytes, send.media.video_bytes]
            .into_iter()
            .fold(send.media.document_bytes, u64::max);
        send.media_fetch = MediaFetchLimits {
            concurrency: bounded(
                "WAG_MEDIA_FETCH_CONCURRENCY",
                self.media_fetch_concurrency,
                defaults.media_fetch.concurrency as i64,
                1..=1024,
            )? as usize,
            memory_bytes: bounded(
                "WAG_MEDIA_FETCH_MEMORY_MB",
                self.media_fetch_memory_mb,
                (defaults.media_fetch.memory_bytes / MB) as i64,
                1..=65_536,
            )? as u64
                * MB,
        };
        if send.media_fetch.memory_bytes < largest_media {
            return Err(ConfigError(
                "WAG_MEDIA_FETCH_MEMORY_MB must be at least the largest media limit (WAG_MEDIA_MAX_*_MB)".into(),
            ));
        }
        let cap_defaults = AccountCaps::default();
        let caps = AccountCaps {
            instances: bounded(
                "WAG_MAX_INSTANCES_PER_ACCOUNT",
                self.max_instances_per_account,
                cap_defaults.instances as i64,
                1..=100_000,
            )? as u64,
            api_keys: bounded(
                "WAG_MAX_API_KEYS_PER_ACCOUNT",
                self.max_api_keys_per_account,
                cap_defaults.api_keys as i64,
                1..=100_000,
            )? as u64,
            webhook_destinations: bounded(
                "WAG_MAX_WEBHOOKS_PER_ACCOUNT",
                self.max_webhooks_per_account,
                cap_defaults.webhook_destinations as i64,
                1..=10_000,
            )? as u64,
            live_link_attempts: bounded(
                "WAG_MAX_LINK_ATTEMPTS_PER_ACCOUNT",
                self.max_link_attempts_per_account,
                cap_defaults.live_link_attempts as i64,
                1..=1_000,
            )? as usize,
            link_idle: std::time::Duration::from_secs(bounded(
                "WAG_LINK_IDLE_SECS",
                self.link_idle_secs,
                cap_defaults.link_idle.as_secs() as i64,
                30..=86_400,
            )? as u64),
        };
        let webhook_defaults = crate::webhooks::worker::WebhookSettings::default();
        let retry_schedule_secs = match &self.webhook_retry_schedule {
            None => webhook_defaults.retry_schedule_secs.clone(),
            Some(text) => {
                let parsed: Result<Vec<i64>, _> = text.split(',').map(|p| p.trim().parse::<i64>()).collect();
                match parsed {
                    Ok(list)
                        if !list.is_empty() && list.len() <= 20 && list.iter().all(|s| (0..=86_400).contains(s)) =>
                    {
                        list
                    }
                    _ => {
                        return Err(ConfigError(
                            "WAG_WEBHOOK_RETRY_SCHEDULE must be up to 20 comma-separated waits in seconds (0 to 86400)"
                                .into(),
                        ));
                    }
                }
            }
        };
        let webhooks = crate::webhooks::worker::WebhookSettings {
            concurrency: bounded(
                "WAG_WEBHOOK_CONCURRENCY",
                self.webhook_concurrency,
                webhook_defaults.concurrency as i64,
                1..=1024,
            )? as usize,
            per_destination: bounded(
                "WAG_WEBHOOK_DESTINATION_CONCURRENCY",
                self.webhook_destination_concurrency,
                webhook_defaults.per_destination as i64,
                1..=256,
            )? as usize,
            retry_schedule_secs,
            poll_ms: bounded("WAG_WEBHOOK_POLL_MS", self.webhook_poll_ms, webhook_defaults.poll_ms as i64, 10..=60_000)?
                as u64,
            lease_secs: bounded(
                "WAG_WEBHOOK_LEASE_SECS",
                self.webhook_lease_secs,
                webhook_defaults.lease_secs,
                1..=3600,
            )?,
            timeout_secs: bounded(
                "WAG_WEBHOOK_TIMEOUT_SECS",
                self.webhook_timeout_secs,
                webhook_defaults.timeout_secs as i64,
                1..=60,
            )? as u64,
            allow_private: self.allow_private_webhook_targets.unwrap_or(false),
        };
        let trusted_proxies =
            crate::threecx::allowlist::IpAllowlist::parse(self.trusted_proxies.as_deref().unwrap_or(""))
                .map_err(|e| ConfigError(format!("WAG_TRUSTED_PROXIES: {}", e.user_message())))?;
        let keep = crate::retention::Retention::default();
        let days = |key: &str, value: Option<i64>, default: i64| bounded(key, value, default, 0..=36_500);
        let retention = crate::retention::Retention {
            messages_days: days("WAG_RETENTION_MESSAGES_DAYS", self.retention_messages_days, keep.messages_days)?,
            inbound_days: days("WAG_RETENTION_INBOUND_DAYS", self.retention_inbound_days, keep.inbound_days)?,
            events_days: days("WAG_RETENTION_EVENTS_DAYS", self.retention_events_days, keep.events_days)?,
            deliveries_days: days(
                "WAG_RETENTION_DELIVERIES_DAYS",
                self.retention_deliveries_days,
                keep.deliveries_days,
            )?,
            attempts_days: days("WAG_RETENTION_ATTEMPTS_DAYS", self.retention_attempts_days, keep.attempts_days)?,
            policy_days: days("WAG_RETENTION_POLICY_DAYS", self.retention_policy_days, keep.policy_days)?,
            threecx_requests_days: days(
                "WAG_RETENTION_3CX_REQUESTS_DAYS",
                self.retention_3cx_requests_days,
                keep.threecx_requests_days,
            )?,
            batch: bounded("WAG_RETENTION_BATCH", self.retention_batch, keep.batch as i64, 1..=100_000)? as u64,
        };
        let cluster = match self.node_address.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            None => None,
            Some(address) => {
                let parsed = reqwest::Url::parse(address).ok().filter(|u| matches!(u.scheme(), "http" | "https"));
                if parsed.as_ref().and_then(|u| u.host_str()).is_none() {
                    return Err(ConfigError(format!(
                        "WAG_NODE_ADDRESS must be the URL other servers reach this one on, such as http://10.0.0.5:8080, not {address:?}"
                    )));
                }
                if !database_url.starts_with("postgres") {
                    return Err(ConfigError(
                        "several servers (WAG_NODE_ADDRESS) need one shared PostgreSQL database: set WAG_DATABASE_URL to postgres://…".into(),
                    ));
                }
                if master_key.is_none() {
                    return Err(ConfigError(
                        "several servers (WAG_NODE_ADDRESS) need one shared master key: set WAG_MASTER_KEY to the same value on every server".into(),
                    ));
                }
                Some(ClusterSettings {
                    address: address.trim_end_matches('/').to_string(),
                    lease: std::time::Duration::from_secs(bounded(
                        "WAG_NODE_LEASE_SECS",
                        self.node_lease_secs,
                        15,
                        3..=600,
                    )? as u64),
                })
            }
        };
        let master_key = match master_key {
            Some(key) => key,
            None => load_or_create_master_key(&data_dir)?,
        };
        let request_timeout_secs = bounded("WAG_REQUEST_TIMEOUT_SECS", self.request_timeout_secs, 60, 5..=3600)?;
        if request_timeout_secs <= send.timeout_secs as i64 {
            return Err(ConfigError("WAG_REQUEST_TIMEOUT_SECS must be above WAG_SEND_TIMEOUT_SECS".into()));
        }
        let http = HttpLimits {
            max_connections: bounded("WAG_MAX_CONNECTIONS", self.max_connections, 10_000, 1..=1_000_000)? as usize,
            header_timeout: std::time::Duration::from_secs(bounded(
                "WAG_HEADER_TIMEOUT_SECS",
                self.header_timeout_secs,
                10,
                1..=300,
            )? as u64),
            request_timeout: std::time::Duration::from_secs(request_timeout_secs as u64),
        };
        let metrics = MetricsSettings {
            token: match self.metrics_token.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()) {
                Some(token) if token.len() < 16 => {
                    return Err(ConfigError("WAG_METRICS_TOKEN must be at least 16 characters".into()))
                }
                token => token,
            },
            listen: match self.metrics_listen.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
                None => None,
                Some(text) => Some(text.parse().map_err(|_| {
                    ConfigError(format!("WAG_METRICS_LISTEN must be an address like 127.0.0.1:9090, not {text:?}"))
                })?),
            },
        };
        if metrics.listen == Some(listen) {
            return Err(ConfigError("WAG_METRICS_LISTEN must differ from WAG_LISTEN".into()));
        }
        Ok(Config {
            listen,
            database_url,
            data_dir,
            public_base_url,
            master_key,
            registration_enabled: self.registration_enabled.unwrap_or(true),
            default_plan,
            sandbox_enabled: self.sandbox_enabled.unwrap_or(true),
            sandbox_receipt_delay_ms: bounded(
                "WAG_SANDBOX_RECEIPT_DELAY_MS",
                self.sandbox_receipt_delay_ms,
                2000,
                0..=600_000,
            )? as u64,
            whatsapp_web_enabled: self.whatsapp_web_enabled.unwrap_or(true),
            allow_private_webhook_targets: self.allow_private_webhook_targets.unwrap_or(false),
            allow_private_media_urls: self.allow_private_media_urls.unwrap_or(false),
            log_format,
            session_days,
            send,
            webhooks,
            trusted_proxies,
            retention,
            http,
            caps,
            cluster,
            metrics,
        })
    }
}

fn parse_master_key(text: &str) -> Result<MasterKey, ConfigError> {
    let bytes = hex::decode(text.trim())
        .map_err(|_| ConfigError("WAG_MASTER_KEY must be 64 hexadecimal characters (32 bytes)".into()))?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| ConfigError("WAG_MASTER_KEY must be 64 hexadecimal characters (32 bytes)".into()))?;
    Ok(MasterKey(key))
}

/// Keeps a generated key in `<data dir>/master.key` so that restarts can still decrypt.
fn load_or_create_master_key(data_dir: &std::path::Path) -> Result<MasterKey, ConfigError> {
    let path = data_dir.join("master.key");
    if path.exists() {
        let text =
            std::fs::read_to_string(&path).map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        return parse_master_key(&text)
            .map_err(|_| ConfigError(format!("{} is not a valid master key", path.display())));
    }
    std::fs::create_dir_all(data_dir)
        .map_err(|e| ConfigError(format!("cannot create data directory {}: {e}", data_dir.display())))?;
    let key: [u8; 32] = rand::random();
    write_private_file(&path, &hex::encode(key))
        .map_err(|e| ConfigError(format!("cannot write {}: {e}", path.display())))?;
    Ok(MasterKey(key))
}

fn write_private_file(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_then_env_override_file() {
        let dir = std::env::temp_dir().join(format!("wag-config-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("wag.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\nregistration_enabled = false\n").unwrap();
        let data = dir.join("data");
        let cfg = Config::load_from(
            Some(&file),
            &env(&[("WAG_DATA_DIR", data.to_str().unwrap()), ("WAG_LISTEN", "0.0.0.0:7000")]),
        )
        .unwrap();
        assert_eq!(cfg.listen.port(), 7000);
        assert!(!cfg.registration_enabled);
        assert!(cfg.sandbox_enabled);
        assert_eq!(cfg.default_plan, Plan::Starter);
        assert!(cfg.database_url.starts_with("sqlite://"));
        // The generated master key is kept and read back the same.
        let again = Config::load_from(None, &env(&[("WAG_DATA_DIR", data.to_str().unwrap())])).unwrap();
        assert_eq!(cfg.master_key.0, again.master_key.0);
        assert_eq!(format!("{:?}", cfg.master_key), "MasterKey(***)");
        assert_eq!(cfg.retention, crate::retention::Retention::default());
        let kept = Config::load_from(
            None,
            &env(&[("WAG_DATA_DIR", data.to_str().unwrap()), ("WAG_RETENTION_ATTEMPTS_DAYS", "0")]),
        )
        .unwrap();
        assert_eq!(kept.retention.attempts_days, 0, "0 keeps attempts forever");
    }

    #[test]
    fn metrics_settings_are_checked_and_the_token_never_printed() {
        let dir = std::env::temp_dir().join(format!("wag-config-{}", ulid::Ulid::new()));
        let data = dir.join("data");
        let data = data.to_str().unwrap();
        let cfg = Config::load_from(None, &env(&[("WAG_DATA_DIR", data)])).unwrap();
        assert_eq!(cfg.metrics, MetricsSettings::default(), "off unless configured");
        let token = "a-long-metrics-token-1234";
        let cfg = Config::load_from(
            None,
            &env(&[("WAG_DATA_DIR", data), ("WAG_METRICS_TOKEN", token), ("WAG_METRICS_LISTEN", "127.0.0.1:9464")]),
        )
        .unwrap();
        assert_eq!(cfg.metrics.token.as_deref(), Some(token));
        assert_eq!(cfg.metrics.listen, Some("127.0.0.1:9464".parse().unwrap()));
        assert!(!format!("{cfg:?}").contains(token));
        for (key, value) in [
            ("WAG_METRICS_TOKEN", "short"),
            ("WAG_METRICS_LISTEN", "nowhere"),
            ("WAG_METRICS_LISTEN", "127.0.0.1:8080"),
        ] {
            let err = Config::load_from(None, &env(&[("WAG_DATA_DIR", data), (key, value)])).unwrap_err();
            assert!(err.0.contains(key), "{key}={value}: {}", err.0);
        }
    }

    #[test]
    fn bad_values_are_refused_with_the_variable_name() {
        let cases = [
            ("WAG_LISTEN", "nowhere"),
            ("WAG_DEFAULT_PLAN", "gold"),
            ("WAG_LOG_FORMAT", "xml"),
            ("WAG_SANDBOX_ENABLED", "maybe"),
            ("WAG_MASTER_KEY", "abc"),
            ("WAG_DATABASE_URL", "oracle://x"),
            ("WAG_RETENTION_MESSAGES_DAYS", "-1"),
            ("WAG_RETENTION_BATCH", "0"),
        ];
        for (key, value) in cases {
            let good_key = "00".repeat(32);
            // Later pairs override earlier ones, as the environment overrides the file.
            let err = Config::load_from(None, &env(&[("WAG_MASTER_KEY", good_key.as_str()), (key, value)]));
            let message = err.expect_err(key).to_string();
            assert!(message.contains(key), "{message}");
        }
    }

    #[test]
    fn several_servers_need_postgres_and_a_shared_master_key() {
        let key = "00".repeat(32);
        let pg = "postgres://postgres@127.0.0.1:5432/wag";
        let node = ("WAG_NODE_ADDRESS", "http://10.0.0.5:8080/");
        let ok = Config::load_from(None, &env(&[("WAG_DATABASE_URL", pg), ("WAG_MASTER_KEY", &key), node])).unwrap();
        let cluster = ok.cluster.expect("cluster settings");
        assert_eq!((cluster.address.as_str(), cluster.lease.as_secs()), ("http://10.0.0.5:8080", 15));
        let sqlite = Config::load_from(None, &env(&[("WAG_MASTER_KEY", &key), node])).unwrap_err().to_string();
        assert!(sqlite.contains("PostgreSQL"), "{sqlite}");
        let dir = std::env::temp_dir().join(format!("wag-config-{}", ulid::Ulid::new()));
        let data = dir.display().to_string();
        let no_key =
            Config::load_from(None, &env(&[("WAG_DATABASE_URL", pg), ("WAG_DATA_DIR", &data), node])).unwrap_err();
        assert!(no_key.to_string().contains("WAG_MASTER_KEY"), "{no_key}");
        assert!(!dir.join("master.key").exists(), "no key of its own was generated");
        let bad = Config::load_from(
            None,
            &env(&[("WAG_DATABASE_URL", pg), ("WAG_MASTER_KEY", &key), ("WAG_NODE_ADDRESS", "10.0.0.5")]),
        );
        assert!(bad.unwrap_err().to_string().contains("WAG_NODE_ADDRESS"));
        assert!(Config::load_from(None, &env(&[("WAG_MASTER_KEY", &key)])).unwrap().cluster.is_none());
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("wag-config-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("wag.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        let err = Config::load_from(Some(&file), &[]).unwrap_err().to_string();
        assert!(err.contains("lisen"), "{err}");
    }
}
