//! Fetching media that a send request gives as an `https://` URL: public addresses only (see
//! `net_guard`), a size cap read as the bytes arrive, a timeout, and at most three redirects,
//! each checked again. Downloads share one [`FetchBudget`] of concurrent fetches and bytes held.
use std::{sync::Arc, time::Duration};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::net_guard;

#[derive(Clone, Copy, Debug)]
pub struct FetchPolicy {
    pub max_bytes: u64,
    pub timeout: Duration,
    /// Production always requires https; tests fetch from a plain local server.
    pub require_https: bool,
    pub allow_private: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("the URL must start with https://")]
    NotHttps,
    #[error("the URL is not valid")]
    BadUrl,
    #[error("{0}")]
    Address(#[from] net_guard::GuardError),
    #[error("the file is larger than {max_mb} MB")]
    TooLarge { max_mb: u64 },
    #[error("the server answered HTTP {0}")]
    Status(u16),
    #[error("too many redirects")]
    TooManyRedirects,
    #[error("the file could not be downloaded in time")]
    Timeout,
    #[error("the file could not be downloaded")]
    Failed,
    #[error("the file is empty")]
    Empty,
    /// Too many other media downloads are under way; the send may be tried again shortly.
    #[error("the gateway is fetching other media; try again shortly")]
    Busy,
}

const MAX_REDIRECTS: usize = 3;
const KIB: u64 = 1024;

/// How many media fetches run at once and how many bytes of fetched media are held, shared by
/// every send of the server. A fetch waits its turn for at most `wait`, then the send is asked
/// to come back later: four concurrent 95 MB downloads must not take the server's memory.
pub struct FetchBudget {
    slots: Arc<Semaphore>,
    /// One permit per KiB.
    memory: Arc<Semaphore>,
    memory_kib: u64,
    wait: Duration,
}

/// Fetched bytes' share of the memory budget, held until the send that carries them ends.
#[derive(Debug)]
pub struct Held(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl Held {
    pub fn none() -> Held {
        Held(None)
    }
}

impl FetchBudget {
    pub fn new(limits: crate::config::MediaFetchLimits, wait: Duration) -> FetchBudget {
        let memory_kib = (limits.memory_bytes / KIB).max(1);
        FetchBudget {
            slots: Arc::new(Semaphore::new(limits.concurrency.max(1))),
            memory: Arc::new(Semaphore::new(memory_kib as usize)),
            memory_kib,
            wait,
        }
    }

    async fn slot(&self) -> Result<OwnedSemaphorePermit, FetchError> {
        match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(FetchError::Busy),
        }
    }

    async fn reserve(&self, bytes: u64) -> Result<OwnedSemaphorePermit, FetchError> {
        let kib = bytes.div_ceil(KIB).clamp(1, self.memory_kib) as u32;
        match tokio::time::timeout(self.wait, self.memory.clone().acquire_many_owned(kib)).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(FetchError::Busy),
        }
    }
}

/// Downloads the whole file, holding at most `policy.max_bytes`. Its bytes count against the
/// budget (what the server announced, or the cap when it announced nothing) until the returned
/// [`Held`] is dropped.
pub async fn fetch(url: &str, policy: FetchPolicy, budget: &FetchBudget) -> Result<(Vec<u8>, Held), FetchError> {
    let _slot = budget.slot().await?;
    let mut response = open(url, policy).await?;
    let max_mb = policy.max_bytes / (1024 * 1024);
    let announced = response.content_length();
    if announced.is_some_and(|len| len > policy.max_bytes) {
        return Err(FetchError::TooLarge { max_mb });
    }
    let mut held = budget.reserve(announced.unwrap_or(policy.max_bytes)).await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        if (bytes.len() + chunk.len()) as u64 > policy.max_bytes
            || announced.is_some_and(|len| (bytes.len() + chunk.len()) as u64 > len)
        {
            return Err(FetchError::TooLarge { max_mb });
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.is_empty() {
        return Err(FetchError::Empty);
    }
    // Hold what arrived, not what was feared.
    let used = (bytes.len() as u64).div_ceil(KIB).max(1) as usize;
    if held.num_permits() > used {
        drop(held.split(held.num_permits() - used));
    }
    Ok((bytes, Held(Some(held))))
}

/// The file's first `head` bytes (fewer if it is shorter) and its announced size, for a dry run
/// that judges the file without downloading it.
pub async fn peek(url: &str, policy: FetchPolicy, budget: &FetchBudget, head: usize) -> Result<Vec<u8>, FetchError> {
    let _slot = budget.slot().await?;
    let mut response = open(url, policy).await?;
    let max_mb = policy.max_bytes / (1024 * 1024);
    if response.content_length().is_some_and(|len| len > policy.max_bytes) {
        return Err(FetchError::TooLarge { max_mb });
    }
    let mut bytes = Vec::new();
    while bytes.len() < head {
        match response.chunk().await.map_err(classify)? {
            Some(chunk) => bytes.extend_from_slice(&chunk[..chunk.len().min(head - bytes.len())]),
            None => break,
        }
    }
    // The rest is never read: dropping the response closes the connection.
    if bytes.is_empty() {
        return Err(FetchError::Empty);
    }
    Ok(bytes)
}

/// Follows up to three redirects, each to a checked public address, to a successful response.
async fn open(url: &str, policy: FetchPolicy) -> Result<reqwest::Response, FetchError> {
    let mut current = reqwest::Url::parse(url.trim()).map_err(|_| FetchError::BadUrl)?;
    for _ in 0..=MAX_REDIRECTS {
        match current.scheme() {
            "https" => {}
            "http" if !policy.require_https => {}
            _ => return Err(FetchError::NotHttps),
        }
        let host = current.host_str().ok_or(FetchError::BadUrl)?.to_string();
        let port = current.port_or_known_default().ok_or(FetchError::BadUrl)?;
        let address = net_guard::resolve(net_guard::bare_host(&host), port, policy.allow_private).await?;
        // No proxy, whatever HTTP_PROXY / HTTPS_PROXY / ALL_PROXY say: a proxy would connect
        // wherever it likes, past the address checked and pinned here.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(policy.timeout)
            .resolve(&host, address)
            .build()
            .map_err(|_| FetchError::Failed)?;
        let response = client.get(current.clone()).send().await.map_err(classify)?;
        if response.status().is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or(FetchError::Failed)?;
            current = current.join(location).map_err(|_| FetchError::BadUrl)?;
            continue;
        }
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        return Ok(response);
    }
    Err(FetchError::TooManyRedirects)
}

fn classify(e: reqwest::Error) -> FetchError {
    if e.is_timeout() {
        FetchError::Timeout
    } else {
        FetchError::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A tiny HTTP server answering each connection with `response`.
    async fn serve(response: Vec<u8>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let response = response.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = socket.read(&mut buf).await;
                    let _ = socket.write_all(&response).await;
                });
            }
        });
        format!("http://localhost:{}/file.pdf", addr.port())
    }

    fn ok(body: &[u8]) -> Vec<u8> {
        let mut r =
            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len()).into_bytes();
        r.extend_from_slice(body);
        r
    }

    fn local(max_bytes: u64) -> FetchPolicy {
        FetchPolicy { max_bytes, timeout: Duration::from_secs(5), require_https: false, allow_private: true }
    }

    fn budget(concurrency: usize, memory_bytes: u64) -> FetchBudget {
        FetchBudget::new(crate::config::MediaFetchLimits { concurrency, memory_bytes }, Duration::from_millis(300))
    }

    async fn get(url: &str, policy: FetchPolicy) -> Result<Vec<u8>, FetchError> {
        fetch(url, policy, &budget(4, 1 << 20)).await.map(|(bytes, _)| bytes)
    }

    #[tokio::test]
    async fn fetches_within_the_cap() {
        let url = serve(ok(b"%PDF-1.4 hello")).await;
        assert_eq!(get(&url, local(1024)).await.unwrap(), b"%PDF-1.4 hello");
        assert_eq!(get(&url, local(4)).await, Err(FetchError::TooLarge { max_mb: 0 }));
    }

    #[tokio::test]
    async fn refuses_plain_http_private_hosts_and_errors() {
        let url = serve(ok(b"x")).await;
        let strict = FetchPolicy { require_https: true, allow_private: false, ..local(1024) };
        assert_eq!(get(&url, strict).await, Err(FetchError::NotHttps));
        let https_local = url.replace("http://", "https://");
        assert_eq!(get(&https_local, strict).await, Err(FetchError::Address(net_guard::GuardError::PrivateAddress)));
        let missing = serve(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec()).await;
        assert_eq!(get(&missing, local(1024)).await, Err(FetchError::Status(404)));
        let looping =
            serve(b"HTTP/1.1 302 Found\r\nlocation: /again\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec())
                .await;
        assert_eq!(get(&looping, local(1024)).await, Err(FetchError::TooManyRedirects));
        assert_eq!(get("ftp://example.com/x", local(1024)).await, Err(FetchError::NotHttps));
    }

    #[tokio::test]
    async fn fetched_bytes_hold_their_share_of_the_memory_budget() {
        let url = serve(ok(&[7u8; 600 * 1024])).await;
        let budget = budget(4, 1 << 20);
        let (first, held) = fetch(&url, local(1 << 20), &budget).await.unwrap();
        assert_eq!(first.len(), 600 * 1024);
        // 600 KiB held of 1 MiB: a second file of that size waits, then is turned away.
        assert_eq!(fetch(&url, local(1 << 20), &budget).await.unwrap_err(), FetchError::Busy);
        drop(held);
        assert!(fetch(&url, local(1 << 20), &budget).await.is_ok());
    }

    #[tokio::test]
    async fn fetches_beyond_the_concurrency_wait_their_turn() {
        // A server that answers headers and then sends nothing more: the fetch holds its slot.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stalled = format!("http://localhost:{}/slow.pdf", listener.local_addr().unwrap().port());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc").await;
            tokio::time::sleep(Duration::from_secs(10)).await;
        });
        let quick = serve(ok(b"hello")).await;
        let budget = std::sync::Arc::new(budget(1, 1 << 20));
        let slow_policy = FetchPolicy { timeout: Duration::from_secs(2), ..local(1024) };
        let holder = {
            let budget = budget.clone();
            tokio::spawn(async move { fetch(&stalled, slow_policy, &budget).await.map(|(b, _)| b) })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(fetch(&quick, local(1024), &budget).await.unwrap_err(), FetchError::Busy);
        assert_eq!(holder.await.unwrap(), Err(FetchError::Timeout));
        assert_eq!(fetch(&quick, local(1024), &budget).await.unwrap().0, b"hello");
    }

    #[tokio::test]
    async fn a_peek_reads_the_head_and_judges_the_announced_size() {
        let big = serve(ok(&[1u8; 256 * 1024])).await;
        let budget = budget(4, 1 << 20);
        assert_eq!(peek(&big, local(1 << 20), &budget, 16).await.unwrap(), vec![1u8; 16]);
        assert_eq!(peek(&big, local(1024), &budget, 16).await, Err(FetchError::TooLarge { max_mb: 0 }));
        let short = serve(ok(b"%PDF")).await;
        assert_eq!(peek(&short, local(1024), &budget, 16).await.unwrap(), b"%PDF");
    }
}
