//! Logging: text or JSON lines, a request id on every request. Only the method and path are
//! logged (never query strings, headers or bodies, which may carry keys or phone numbers).
use axum::http::{HeaderName, Request};
use gateway::config::LogFormat;
use tower_http::request_id::{MakeRequestId, RequestId};
use tracing_subscriber::EnvFilter;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,tower_sessions=warn"));
    // The log goes to standard output: coloured only when a person watches it there.
    let colour = use_colour(std::io::IsTerminal::is_terminal(&std::io::stdout()), std::env::var_os("NO_COLOR"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(colour);
    let result = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A second init (tests start several servers in one process) keeps the first subscriber.
    let _ = result;
}

/// Colour codes only for a terminal: in a file, a pipe or a log collector they are noise. A
/// non-empty `NO_COLOR` turns them off even there (https://no-color.org).
pub fn use_colour(is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[derive(Clone, Copy, Default)]
pub struct MakeId;

impl MakeRequestId for MakeId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let id = gateway::ids::new_id("req");
        axum::http::HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

pub fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let request_id = request.headers().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("-");
    tracing::info_span!("request", request_id, method = %request.method(), path = %request.uri().path())
}

#[cfg(test)]
mod tests {
    use super::use_colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(!use_colour(false, None), "a file or a pipe");
        assert!(!use_colour(true, Some("1".into())), "NO_COLOR");
        assert!(use_colour(true, Some("".into())), "an empty NO_COLOR is unset");
    }
}
