//! The load generator: N keep-alive HTTP/1.1 connections on raw hyper client connections.
//!
//! Closed loop: each connection sends its next request as soon as the previous one is
//! answered, for a warm-up and then a measured phase (or until a request budget is spent).
//! Open loop: requests are scheduled at a fixed rate and handed to whichever connection is
//! free; latency counts from the scheduled moment, so a server that falls behind shows it
//! (no coordinated omission).
use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use http_body_util::{BodyExt, Full};
use hyper::{body::Bytes, client::conn::http1::SendRequest, header, Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::{
    machine::{CpuSample, CpuUse},
    stats::{error_code, Errors, Latencies},
    DbKind,
};

pub type Body = Full<Bytes>;

/// Builds request number `seq`.
pub type MakeRequest = Arc<dyn Fn(u64) -> Request<Body> + Send + Sync>;
/// Told of every answer: (seq, HTTP status, when the answer was complete).
pub type OnAnswer = Arc<dyn Fn(u64, u16, Instant) + Send + Sync>;

/// Where requests go.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    host: String,
}

impl Target {
    pub fn new(addr: SocketAddr) -> Target {
        Target { addr, host: addr.to_string() }
    }

    /// A JSON POST with a bearer key.
    pub fn post_json(&self, path: &str, key: &str, body: String) -> Request<Body> {
        Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::HOST, &self.host)
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("request")
    }

    pub fn get(&self, path: &str) -> Request<Body> {
        Request::builder()
            .method(Method::GET)
            .uri(path)
            .header(header::HOST, &self.host)
            .body(Full::new(Bytes::new()))
            .expect("request")
    }
}

async fn connect(target: &Target) -> anyhow::Result<SendRequest<Body>> {
    let stream = TcpStream::connect(target.addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// A hung request fails instead of stalling the run.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// One keep-alive connection that reconnects when the server closes it.
struct Conn {
    target: Target,
    sender: Option<SendRequest<Body>>,
}

enum Answer {
    Status(u16, Bytes),
    Failed(String),
}

impl Conn {
    fn new(target: Target) -> Conn {
        Conn { target, sender: None }
    }

    async fn send(&mut self, request: Request<Body>) -> Answer {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            match connect(&self.target).await {
                Ok(s) => self.sender = Some(s),
                Err(e) => {
                    self.sender = None;
                    // Do not spin on a refused connection.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    return Answer::Failed(format!("connect: {e}"));
                }
            }
        }
        let sender = self.sender.as_mut().expect("connected");
        let exchange = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(Ok((status, body))) => Answer::Status(status, body),
            Ok(Err(e)) => {
                self.sender = None;
                Answer::Failed(format!("http: {e}"))
            }
            Err(_) => {
                self.sender = None;
                Answer::Failed(format!("timeout: no answer within {} s", REQUEST_TIMEOUT.as_secs()))
            }
        }
    }
}

/// What one connection saw in the measured window.
#[derive(Default)]
struct ConnStats {
    latencies: Vec<u32>,
    ok: u64,
    errors: Errors,
}

impl ConnStats {
    fn record(&mut self, answer: &Answer, latency: Duration) {
        self.latencies.push(latency.as_micros().min(u128::from(u32::MAX)) as u32);
        match answer {
            Answer::Status(status, _) if (200..300).contains(status) => self.ok += 1,
            Answer::Status(status, body) => {
                let code = error_code(body).unwrap_or_default();
                self.errors.add(format!("{status} {code}").trim().to_string(), || {
                    String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()
                });
            }
            Answer::Failed(e) => {
                let kind = e.split(':').next().unwrap_or("io").to_string();
                self.errors.add(kind, || e.clone());
            }
        }
    }
}

/// The result of one measured phase.
pub struct Outcome {
    /// Answers (any status) completed in the measured window.
    pub requests: u64,
    pub ok: u64,
    pub errors: Errors,
    pub latencies: Latencies,
    pub cpu: CpuUse,
}

impl Outcome {
    pub fn per_second(&self) -> f64 {
        if self.cpu.wall_s > 0.0 {
            self.requests as f64 / self.cpu.wall_s
        } else {
            0.0
        }
    }

    /// Server CPU milliseconds per answered request (and the database server's, separately).
    pub fn cpu_ms_per_request(&self) -> (f64, f64) {
        if self.requests == 0 {
            return (0.0, 0.0);
        }
        let n = self.requests as f64;
        (self.cpu.server_s * 1000.0 / n, self.cpu.db_s * 1000.0 / n)
    }
}

fn merge(stats: Vec<ConnStats>, cpu: CpuUse) -> Outcome {
    let mut latencies = Vec::new();
    let mut ok = 0;
    let mut errors = Errors::default();
    for s in stats {
        latencies.extend(s.latencies);
        ok += s.ok;
        errors.merge(s.errors);
    }
    let latencies = Latencies::new(latencies);
    Outcome { requests: latencies.len() as u64, ok, errors, latencies, cpu }
}

/// Closed-loop settings.
pub struct ClosedLoop {
    pub connections: usize,
    pub warmup: Duration,
    pub measure: Duration,
    /// Stop after this many requests in all (a burst); the window then starts at once.
    pub budget: Option<u64>,
    pub server_pid: u32,
    pub db: DbKind,
}

/// Runs a closed loop and measures the window after the warm-up.
pub async fn closed_loop(
    target: &Target,
    plan: &ClosedLoop,
    make: MakeRequest,
    on_answer: Option<OnAnswer>,
) -> Outcome {
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let end = measure_from + plan.measure;
    let seq = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..plan.connections.max(1) {
        let (target, make, on_answer, seq) = (target.clone(), make.clone(), on_answer.clone(), seq.clone());
        let budget = plan.budget;
        workers.push(tokio::spawn(async move {
            let mut conn = Conn::new(target);
            let mut stats = ConnStats::default();
            loop {
                if Instant::now() >= end {
                    break;
                }
                let n = seq.fetch_add(1, Ordering::Relaxed);
                if budget.is_some_and(|b| n >= b) {
                    break;
                }
                let request = make(n);
                let sent = Instant::now();
                let answer = conn.send(request).await;
                let done = Instant::now();
                if let (Some(hook), Answer::Status(status, _)) = (&on_answer, &answer) {
                    hook(n, *status, done);
                }
                if done >= measure_from && done <= end {
                    stats.record(&answer, done - sent);
                }
            }
            stats
        }));
    }
    let mut wall_start = Instant::now();
    if !plan.warmup.is_zero() {
        tokio::time::sleep_until(measure_from.into()).await;
        wall_start = Instant::now();
    }
    let before = CpuSample::take(plan.server_pid, plan.db);
    let mut stats = Vec::new();
    if plan.budget.is_some() {
        for w in workers {
            stats.push(w.await.unwrap_or_default());
        }
        let after = CpuSample::take(plan.server_pid, plan.db);
        return merge(stats, CpuUse::between(before, after, wall_start.elapsed().as_secs_f64()));
    }
    tokio::time::sleep_until(end.into()).await;
    let after = CpuSample::take(plan.server_pid, plan.db);
    let wall = wall_start.elapsed().as_secs_f64();
    for w in workers {
        stats.push(w.await.unwrap_or_default());
    }
    merge(stats, CpuUse::between(before, after, wall))
}

/// Open-loop settings: `rate` requests per second for `duration`.
pub struct OpenLoop {
    pub connections: usize,
    pub rate: u64,
    pub duration: Duration,
    pub server_pid: u32,
    pub db: DbKind,
}

/// Sends `rate × duration` requests at their scheduled times over a pool of connections.
pub async fn open_loop(target: &Target, plan: &OpenLoop, make: MakeRequest, on_answer: Option<OnAnswer>) -> Outcome {
    let total = (plan.rate as f64 * plan.duration.as_secs_f64()).round() as u64;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let mut workers = Vec::new();
    for _ in 0..plan.connections.max(1) {
        let (target, make, on_answer, rx) = (target.clone(), make.clone(), on_answer.clone(), rx.clone());
        workers.push(tokio::spawn(async move {
            let mut conn = Conn::new(target);
            let mut stats = ConnStats::default();
            loop {
                let job = rx.lock().await.recv().await;
                let Some((n, scheduled)) = job else { break };
                let answer = conn.send(make(n)).await;
                let done = Instant::now();
                if let (Some(hook), Answer::Status(status, _)) = (&on_answer, &answer) {
                    hook(n, *status, done);
                }
                stats.record(&answer, done.saturating_duration_since(scheduled));
            }
            stats
        }));
    }
    let before = CpuSample::take(plan.server_pid, plan.db);
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / plan.rate.max(1) as f64);
    for n in 0..total {
        let at = start + interval.mul_f64(n as f64);
        tokio::time::sleep_until(at.into()).await;
        if tx.send((n, at)).is_err() {
            break;
        }
    }
    drop(tx);
    let mut stats = Vec::new();
    for w in workers {
        stats.push(w.await.unwrap_or_default());
    }
    let after = CpuSample::take(plan.server_pid, plan.db);
    merge(stats, CpuUse::between(before, after, start.elapsed().as_secs_f64()))
}

/// One request on a fresh connection, answered with its status and body (the pre-flight check).
pub async fn one(target: &Target, request: Request<Body>) -> anyhow::Result<(u16, String)> {
    let mut conn = Conn::new(target.clone());
    match conn.send(request).await {
        Answer::Status(status, body) => Ok((status, String::from_utf8_lossy(&body).into_owned())),
        Answer::Failed(e) => Err(anyhow::anyhow!(e)),
    }
}
