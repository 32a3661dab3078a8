//! One pooled HTTP client for every destination, with keep-alive, that still dials only
//! addresses the SSRF guard accepted: host names are resolved by a resolver that applies the
//! guard to every address it returns (the connector dials only those), and IP literals, which
//! skip resolution, are checked here before the request. Connections made to a checked address
//! are reused; a DNS answer that changes later only matters for the next new connection, which
//! is checked again. No proxy is used, so the address checked is the address dialled.
use std::{net::IpAddr, sync::Arc, time::Duration};

use reqwest::{
    dns::{Addrs, Name, Resolve, Resolving},
    Url,
};

use crate::net_guard::{self, GuardError};

/// Only this much of an answer is read and kept.
pub(super) const EXCERPT_BYTES: usize = 4096;

/// What one request came to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Outcome {
    pub status: Option<u16>,
    pub excerpt: String,
    pub error: Option<String>,
    pub retry_after: Option<i64>,
}

impl Outcome {
    fn failed(error: impl Into<String>) -> Outcome {
        Outcome { error: Some(error.into()), ..Outcome::default() }
    }
}

struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        let allow_private = self.allow_private;
        Box::pin(async move {
            // Port 0: the connector puts the URL's port on every address.
            let addrs = net_guard::resolve_all(&host, 0, allow_private).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

pub(super) struct Client {
    http: reqwest::Client,
    allow_private: bool,
}

pub(super) struct Request<'a> {
    pub url: &'a Url,
    pub webhook_id: &'a str,
    pub timestamp: i64,
    pub signature: String,
    pub body: String,
}

impl Client {
    pub fn new(timeout: Duration, per_host: usize, allow_private: bool) -> Result<Client, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(per_host)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .user_agent("WA-Gateway-Webhooks/1")
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .build()?;
        Ok(Client { http, allow_private })
    }

    pub async fn post(&self, request: Request<'_>) -> Outcome {
        if !matches!(request.url.scheme(), "http" | "https") {
            return Outcome::failed("invalid URL");
        }
        let Some(host) = request.url.host_str() else { return Outcome::failed("invalid URL") };
        let literal = net_guard::bare_host(host).parse::<IpAddr>().ok();
        if literal.is_some_and(|ip| !self.allow_private && !net_guard::is_public(ip)) {
            return Outcome::failed(GuardError::PrivateAddress.to_string());
        }
        let result = self
            .http
            .post(request.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", request.webhook_id)
            .header("webhook-timestamp", request.timestamp.to_string())
            .header("webhook-signature", request.signature)
            .body(request.body)
            .send()
            .await;
        let mut response = match result {
            Ok(response) => response,
            Err(e) => return Outcome::failed(describe(&e)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok());
        // Only the first 4 KB are read: a receiver that streams without end cannot fill our
        // memory. (A longer answer costs its connection, which is not reused.)
        let mut body = Vec::new();
        while body.len() < EXCERPT_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(EXCERPT_BYTES - body.len())]),
                _ => break,
            }
        }
        Outcome { status: Some(status), excerpt: String::from_utf8_lossy(&body).into_owned(), error: None, retry_after }
    }
}

/// The attempt's recorded error: what the customer can act on, nothing internal.
fn describe(e: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(guard) = err.downcast_ref::<GuardError>() {
            return guard.to_string();
        }
        source = err.source();
    }
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        "the request failed".into()
    }
}
