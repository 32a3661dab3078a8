//! Fetching media that a send request gives as an `https://` URL: public addresses only (see
//! `net_guard`), a size cap read as the bytes arrive, a timeout, and at most three redirects,
//! each checked again.
use std::time::Duration;

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
}

const MAX_REDIRECTS: usize = 3;

pub async fn fetch(url: &str, policy: FetchPolicy) -> Result<Vec<u8>, FetchError> {
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
        let mut response = client.get(current.clone()).send().await.map_err(classify)?;
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
        let max_mb = policy.max_bytes / (1024 * 1024);
        if response.content_length().is_some_and(|len| len > policy.max_bytes) {
            return Err(FetchError::TooLarge { max_mb });
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if (bytes.len() + chunk.len()) as u64 > policy.max_bytes {
                return Err(FetchError::TooLarge { max_mb });
            }
            bytes.extend_from_slice(&chunk);
        }
        if bytes.is_empty() {
            return Err(FetchError::Empty);
        }
        return Ok(bytes);
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

    #[tokio::test]
    async fn fetches_within_the_cap() {
        let url = serve(ok(b"%PDF-1.4 hello")).await;
        assert_eq!(fetch(&url, local(1024)).await.unwrap(), b"%PDF-1.4 hello");
        assert_eq!(fetch(&url, local(4)).await, Err(FetchError::TooLarge { max_mb: 0 }));
    }

    #[tokio::test]
    async fn refuses_plain_http_private_hosts_and_errors() {
        let url = serve(ok(b"x")).await;
        let strict = FetchPolicy { require_https: true, allow_private: false, ..local(1024) };
        assert_eq!(fetch(&url, strict).await, Err(FetchError::NotHttps));
        let https_local = url.replace("http://", "https://");
        assert_eq!(fetch(&https_local, strict).await, Err(FetchError::Address(net_guard::GuardError::PrivateAddress)));
        let missing = serve(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec()).await;
        assert_eq!(fetch(&missing, local(1024)).await, Err(FetchError::Status(404)));
        let looping =
            serve(b"HTTP/1.1 302 Found\r\nlocation: /again\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec())
                .await;
        assert_eq!(fetch(&looping, local(1024)).await, Err(FetchError::TooManyRedirects));
        assert_eq!(fetch("ftp://example.com/x", local(1024)).await, Err(FetchError::NotHttps));
    }
}
