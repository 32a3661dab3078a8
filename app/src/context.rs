//! What the server knows about the request before a page renders: who is signed in, the CSRF
//! token for forms, and the one-shot banner left by the last form post. The server's middleware
//! puts a [`PageContext`] into the request; components read it without a database round trip.
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageContext {
    pub user: Option<UserInfo>,
    pub csrf_token: String,
    pub flash: Option<Flash>,
    pub registration_enabled: bool,
    pub public_base_url: String,
    pub sandbox_enabled: bool,
    /// The client's address, for login throttling; never rendered.
    #[serde(skip)]
    pub client_ip: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub account_id: i64,
    pub email: String,
    pub is_admin: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlashKind {
    Success,
    Error,
}

/// A banner shown once, on the page a form post redirects to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    pub kind: FlashKind,
    pub message: String,
    /// A secret to show this one time only (a new API key).
    pub secret: Option<String>,
    /// What the secret is: each kind has its own field id, so a page (or a test) can tell them apart.
    #[serde(default)]
    pub secret_kind: SecretKind,
    /// What a refused form held, so the page it returns to can fill the form in again. Never a
    /// password: those are left out where the form is refused.
    #[serde(default)]
    pub fields: Vec<(String, String)>,
}

impl Flash {
    pub fn success(message: impl Into<String>) -> Flash {
        Flash {
            kind: FlashKind::Success,
            message: message.into(),
            secret: None,
            secret_kind: SecretKind::default(),
            fields: Vec::new(),
        }
    }
    pub fn error(message: impl Into<String>) -> Flash {
        Flash { kind: FlashKind::Error, ..Flash::success(message) }
    }
    /// Shows `secret` this once, as a `kind`.
    pub fn with_secret(mut self, kind: SecretKind, secret: String) -> Flash {
        self.secret = Some(secret);
        self.secret_kind = kind;
        self
    }
    /// Keeps what the refused form held (see [`Flash::fields`]).
    pub fn with_fields(mut self, fields: Vec<(String, String)>) -> Flash {
        self.fields = fields;
        self
    }
}

/// The kinds of one-time secret a banner shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecretKind {
    #[default]
    ApiKey,
    WebhookSecret,
    ThreecxSecret,
    ThreecxHmacSecret,
    ThreecxForwardingSecret,
    ResetLink,
}

impl SecretKind {
    /// The id of the input that shows it.
    pub fn field_id(self) -> &'static str {
        match self {
            SecretKind::ApiKey => "new-api-key",
            SecretKind::WebhookSecret => "new-webhook-secret",
            SecretKind::ThreecxSecret => "new-3cx-secret",
            SecretKind::ThreecxHmacSecret => "new-3cx-hmac-secret",
            SecretKind::ThreecxForwardingSecret => "new-3cx-forwarding-secret",
            SecretKind::ResetLink => "new-reset-link",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            SecretKind::ApiKey => "The new API key",
            SecretKind::WebhookSecret => "The new signing secret",
            SecretKind::ThreecxSecret => "The new 3CX webhook secret",
            SecretKind::ThreecxHmacSecret => "The new HMAC secret",
            SecretKind::ThreecxForwardingSecret => "The new signing secret for the 3CX destination",
            SecretKind::ResetLink => "The password-reset link",
        }
    }
}

/// What the last refused form held for field `name`, if anything (see [`Flash::fields`]).
pub fn kept_field(name: &str) -> Option<String> {
    page_context().flash.and_then(|f| f.fields.into_iter().find(|(k, _)| k == name).map(|(_, v)| v))
}

/// Whether the last refused form held `value` for the repeated field `name` (checkboxes); `None`
/// when no refused form was kept, so the page shows its defaults.
pub fn kept_choice(name: &str, value: &str) -> Option<bool> {
    let flash = page_context().flash.filter(|f| !f.fields.is_empty())?;
    Some(flash.fields.iter().any(|(k, v)| k == name && v == value))
}

/// Session keys, shared by the server's middleware and the server functions.
pub mod session_keys {
    pub const ACCOUNT_ID: &str = "account_id";
    pub const PASSWORD_CHANGED_AT: &str = "password_changed_at";
    pub const CSRF: &str = "csrf_token";
    pub const FLASH: &str = "flash";
}

/// The name of the hidden form field (and of the `X-CSRF-Token` header) that carries the token.
pub const CSRF_FIELD: &str = "csrf_token";

/// The path prefix of every server function.
pub const SERVER_FN_PREFIX: &str = "/_fn";

/// The current request's context. On the server it comes from the request; in the browser
/// (hydration) it is empty, since every page is rendered on the server first.
pub fn page_context() -> PageContext {
    #[cfg(feature = "ssr")]
    {
        use leptos::prelude::use_context;
        use_context::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<PageContext>().cloned())
            .unwrap_or_default()
    }
    #[cfg(not(feature = "ssr"))]
    {
        PageContext::default()
    }
}

/// The API reference page's Markdown, generated by the server from its OpenAPI document and
/// provided to the pages as context.
#[derive(Clone, Debug, Default)]
pub struct ApiReference(pub String);
