//! The loopback webhook receiver: answers 200 at once and notes, for every delivery, its
//! `webhook-id`, the bench token in the payload and when it arrived.
use std::{
    collections::{HashMap, HashSet},
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Instant,
};

use http_body_util::{BodyExt, Full};
use hyper::{body::Bytes, service::service_fn, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The marker the bench puts in every injected message: `bench-ref-<seq>`.
pub const TOKEN_PREFIX: &str = "bench-ref-";

/// The token number in a payload, if any.
pub fn find_token(body: &[u8]) -> Option<u64> {
    let prefix = TOKEN_PREFIX.as_bytes();
    let at = body.windows(prefix.len()).position(|w| w == prefix)? + prefix.len();
    let digits: Vec<u8> = body[at..].iter().take_while(|b| b.is_ascii_digit()).copied().collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

#[derive(Clone, Debug)]
pub struct Arrival {
    pub token: Option<u64>,
    pub webhook_id: String,
    pub signed: bool,
    pub at: Instant,
}

#[derive(Default)]
pub struct Log {
    pub arrivals: Vec<Arrival>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Log>>,
}

impl Receiver {
    pub async fn start() -> anyhow::Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = log.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let _ = stream.set_nodelay(true);
                let log = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let log = log.clone();
                        async move {
                            let webhook_id = header(&request, "webhook-id");
                            let signed = !header(&request, "webhook-signature").is_empty();
                            let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let at = Instant::now();
                            log.lock().unwrap().arrivals.push(Arrival {
                                token: find_token(&body),
                                webhook_id,
                                signed,
                                at,
                            });
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Receiver { addr, log })
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Distinct tokens received so far.
    pub fn distinct_tokens(&self) -> usize {
        let log = self.log.lock().unwrap();
        log.arrivals.iter().filter_map(|a| a.token).collect::<HashSet<_>>().len()
    }
}

fn header<B>(request: &Request<B>, name: &str) -> String {
    request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

/// Deliveries matched to injections.
#[derive(Debug, Default)]
pub struct Matched {
    /// Lag (answered → first arrival) in microseconds, per delivered token.
    pub lags_us: Vec<u32>,
    pub delivered: u64,
    pub missing: u64,
    /// Arrivals whose `webhook-id` had been seen before (at-least-once redeliveries).
    pub duplicates: u64,
    /// Arrivals carrying no bench token (other events) or an unknown one.
    pub unknown: u64,
    pub unsigned: u64,
    pub first_arrival: Option<Instant>,
    pub last_arrival: Option<Instant>,
}

/// Matches arrivals to the injected tokens and when each injection was answered.
pub fn match_arrivals(answered: &HashMap<u64, Instant>, arrivals: &[Arrival]) -> Matched {
    let mut m = Matched::default();
    let mut seen_ids = HashSet::new();
    let mut first_by_token: HashMap<u64, Instant> = HashMap::new();
    for a in arrivals {
        if !seen_ids.insert(a.webhook_id.clone()) {
            m.duplicates += 1;
        }
        if !a.signed {
            m.unsigned += 1;
        }
        match a.token.filter(|t| answered.contains_key(t)) {
            Some(t) => {
                let first = first_by_token.entry(t).or_insert(a.at);
                if a.at < *first {
                    *first = a.at;
                }
            }
            None => m.unknown += 1,
        }
        m.first_arrival = Some(m.first_arrival.map_or(a.at, |f| f.min(a.at)));
        m.last_arrival = Some(m.last_arrival.map_or(a.at, |l| l.max(a.at)));
    }
    for (token, answered_at) in answered {
        match first_by_token.get(token) {
            Some(arrived) => {
                m.delivered += 1;
                let lag = arrived.saturating_duration_since(*answered_at);
                m.lags_us.push(lag.as_micros().min(u128::from(u32::MAX)) as u32);
            }
            None => m.missing += 1,
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn tokens_are_found_in_payloads() {
        assert_eq!(find_token(br#"{"text":"order 5 bench-ref-12345 thanks"}"#), Some(12345));
        assert_eq!(find_token(br#"{"text":"bench-ref-"}"#), None);
        assert_eq!(find_token(b"nothing"), None);
    }

    #[test]
    fn arrivals_are_matched_with_duplicates_and_missing() {
        let t0 = Instant::now();
        let answered: HashMap<u64, Instant> = [(1, t0), (2, t0), (3, t0)].into_iter().collect();
        let at = |ms| t0 + Duration::from_millis(ms);
        let arrivals = vec![
            Arrival { token: Some(1), webhook_id: "evt_1".into(), signed: true, at: at(100) },
            Arrival { token: Some(1), webhook_id: "evt_1".into(), signed: true, at: at(300) },
            Arrival { token: Some(2), webhook_id: "evt_2".into(), signed: false, at: at(50) },
            Arrival { token: None, webhook_id: "evt_x".into(), signed: true, at: at(10) },
        ];
        let m = match_arrivals(&answered, &arrivals);
        assert_eq!((m.delivered, m.missing, m.duplicates, m.unknown, m.unsigned), (2, 1, 1, 1, 1));
        let mut lags = m.lags_us.clone();
        lags.sort();
        assert_eq!(lags, vec![50_000, 100_000]);
    }
}
