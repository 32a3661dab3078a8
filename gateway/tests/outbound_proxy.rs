//! A proxy named in the environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY) must not carry the
//! gateway's requests to customers' URLs: it would connect wherever it likes, past the address
//! the gateway checked and pinned. Its own process, because the environment is the process's.
use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use gateway::send::fetch::{fetch, FetchPolicy};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// Answers every connection with `body`, counting them.
async fn serve(listener: TcpListener, body: &'static [u8], seen: Arc<AtomicUsize>) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else { return };
        seen.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(body).await;
        });
    }
}

#[tokio::test]
async fn media_is_fetched_directly_whatever_the_proxy_settings() {
    let origin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin_url = format!("http://{}/photo.png", origin.local_addr().unwrap());
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let (at_origin, at_proxy) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    tokio::spawn(serve(origin, b"the real file", at_origin.clone()));
    tokio::spawn(serve(proxy, b"what the proxy says", at_proxy.clone()));
    for name in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
        std::env::set_var(name, &proxy_url);
    }
    std::env::remove_var("NO_PROXY");
    std::env::remove_var("no_proxy");

    let policy =
        FetchPolicy { max_bytes: 1024, timeout: Duration::from_secs(5), require_https: false, allow_private: true };
    let budget = gateway::send::fetch::FetchBudget::new(Default::default(), Duration::from_secs(5));
    let (bytes, _held) = fetch(&origin_url, policy, &budget).await.expect("fetched");
    assert_eq!(bytes, b"the real file");
    assert_eq!(at_proxy.load(Ordering::SeqCst), 0, "nothing went through the proxy");
    assert_eq!(at_origin.load(Ordering::SeqCst), 1);
}
