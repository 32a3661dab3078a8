//! Media on the send API: the bytes must be what `mime_type` says, base64 may be wrapped, and a
//! file given by URL is downloaded only when the checks that need no file let the send through
//! (a dry run reads its first bytes only).
use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    common::Backend,
    send::{fixture, Fixture, OK_TEXT},
};

on_every_database!(
    file_contents_must_match_the_mime_type,
    media_urls_are_fetched_after_the_checks_and_peeked_by_dry_runs,
);

/// A minimal JPEG header (what `content_fits` looks at) padded to `len` bytes.
fn jpeg(len: usize) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00];
    bytes.resize(len, 0x42);
    bytes
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn with_media(f: &Fixture, media_type: &str, mime: &str, file_name: &str, media: &str) -> Value {
    let mut body = f.body("+966501234567", OK_TEXT);
    body["media_type"] = json!(media_type);
    body["mime_type"] = json!(mime);
    body["file_name"] = json!(file_name);
    body["media"] = json!(media);
    body
}

async fn file_contents_must_match_the_mime_type(backend: Backend) {
    let Some(f) = fixture(backend, vec![]).await else { return };
    // A text file sent as a PDF, an executable as a JPEG: refused before anything is counted.
    let fake_pdf = base64(b"just some text, not a PDF at all");
    let (s, b, _) = f.send(&with_media(&f, "document", "application/pdf", "INV-1.pdf", &fake_pdf)).await;
    assert_eq!((s, b["details"]["fields"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!(["media"])), "{b}");
    assert!(b["details"]["hints"]["media"].as_str().unwrap().contains("application/pdf"), "{b}");
    let exe = base64(b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00");
    let (s, _, _) = f.send(&with_media(&f, "image", "image/jpeg", "photo.jpg", &exe)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, b, _) = f.send(&with_media(&f, "image", "image/jpeg", "photo.jpg", &base64(&jpeg(64)))).await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // Base64 wrapped at 76 columns (as MIME tools write it) is judged by what it carries: a
    // 4.97 MiB JPEG fits the 5 MB image cap wrapped or not.
    let near_cap = jpeg(5_211_000);
    let wrapped: String = base64(&near_cap)
        .as_bytes()
        .chunks(76)
        .map(|line| std::str::from_utf8(line).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n");
    let (s, b, _) = f.send(&with_media(&f, "image", "image/jpeg", "scan.jpg", &wrapped)).await;
    assert_eq!(s, StatusCode::OK, "{}", b["details"]);

    // A right-to-left override would show "invoice\u{202E}fdp.exe" as "invoiceexe.pdf".
    let pdf = base64(b"%PDF-1.4\n%\xc7\xec\x8f\xa2\n");
    for name in ["invoice\u{202E}fdp.exe", "a/b.pdf", "\u{200B}\u{200B}"] {
        let (s, b, _) = f.send(&with_media(&f, "document", "application/pdf", name, &pdf)).await;
        assert_eq!(
            (s, b["details"]["fields"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!(["file_name"])),
            "{name:?}"
        );
    }

    // Text of invisible characters only would arrive as an empty bubble.
    for blank in ["\u{200B}\u{200B}\u{200B}", "\u{2060}\u{FEFF} \u{200D}", "\u{3164}"] {
        let (s, b, _) = f.send(&f.body("+966501234567", blank)).await;
        assert_eq!(
            (s, b["details"]["fields"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!(["message"])),
            "{blank:?}"
        );
    }
    f.app.finish().await;
}

/// A plain HTTP server that answers every request with `len` bytes of a PDF (written in 64 KiB
/// pieces), counting the requests and the bytes it managed to write.
struct FileServer {
    url: String,
    requests: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
}

async fn file_server(len: u64) -> FileServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/INV-2041.pdf", listener.local_addr().unwrap().port());
    let requests = Arc::new(AtomicU64::new(0));
    let written = Arc::new(AtomicU64::new(0));
    let (r, w) = (requests.clone(), written.clone());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            r.fetch_add(1, Ordering::SeqCst);
            let w = w.clone();
            tokio::spawn(async move {
                let mut head = [0u8; 4096];
                let _ = socket.read(&mut head).await;
                let header =
                    format!("HTTP/1.1 200 OK\r\ncontent-type: application/pdf\r\ncontent-length: {len}\r\n\r\n");
                if socket.write_all(header.as_bytes()).await.is_err() {
                    return;
                }
                let mut chunk = vec![b' '; 64 * 1024];
                chunk[..9].copy_from_slice(b"%PDF-1.4\n");
                let mut left = len;
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    if socket.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    w.fetch_add(n as u64, Ordering::SeqCst);
                    left -= n as u64;
                    chunk[..9].copy_from_slice(b"         ");
                }
            });
        }
    });
    FileServer { url, requests, written }
}

async fn media_urls_are_fetched_after_the_checks_and_peeked_by_dry_runs(backend: Backend) {
    let env = vec![("WAG_ALLOW_PRIVATE_MEDIA_URLS", "true".to_string())];
    let Some(f) = fixture(backend, env).await else { return };
    let small = file_server(2048).await;
    let by_url = |url: &str, phone: &str| {
        let mut body = with_media(&f, "document", "application/pdf", "INV-2041.pdf", url);
        body["phone"] = json!(phone);
        body
    };

    // Sent: downloaded once, whole.
    let (s, b, _) = f.send(&by_url(&small.url, "+966501234567")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!((small.requests.load(Ordering::SeqCst), small.written.load(Ordering::SeqCst)), (1, 2048));

    // A send that its recipient's opt-out refuses does not download the file at all.
    f.browser
        .submit(
            "/suppressed-recipients",
            "/_fn/suppressions/add",
            &[("phone", "+966501112233"), ("reason", "complaint")],
        )
        .await;
    let (s, b, _) = f.send(&by_url(&small.url, "+966501112233")).await;
    assert_eq!((s, b["error"].clone()), (StatusCode::FORBIDDEN, json!("recipient_suppressed")));
    assert_eq!(small.requests.load(Ordering::SeqCst), 1, "nothing was fetched for a refused send");

    // A dry run judges a 90 MB file by its announced size and first bytes; it never downloads
    // it (what the server wrote before the gateway hung up is what the sockets buffer).
    let large = file_server(90 * 1024 * 1024).await;
    let mut dry = by_url(&large.url, "+966501234567");
    dry["dry_run"] = json!(true);
    let (s, b, _) = f.send(&dry).await;
    assert_eq!((s, b["status"].clone()), (StatusCode::OK, json!("dry_run")), "{b}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let written = large.written.load(Ordering::SeqCst);
    assert!(written < 30 * 1024 * 1024, "a dry run downloaded {written} bytes");

    // The first bytes are judged like a whole file's: a PDF is not a PNG.
    let mut image = by_url(&small.url, "+966501234567");
    image["media_type"] = json!("image");
    image["mime_type"] = json!("image/png");
    image["file_name"] = json!("x.png");
    for dry_run in [true, false] {
        image["dry_run"] = json!(dry_run);
        let (s, b, _) = f.send(&image).await;
        assert_eq!((s, b["details"]["fields"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!(["media"])), "{b}");
    }
    f.app.finish().await;
}
