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
}

impl Flash {
    pub fn success(message: impl Into<String>) -> Flash {
        Flash { kind: FlashKind::Success, message: message.into(), secret: None }
    }
    pub fn error(message: impl Into<String>) -> Flash {
        Flash { kind: FlashKind::Error, message: message.into(), secret: None }
    }
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
