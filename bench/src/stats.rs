//! Latency percentiles and error tallies.
use std::collections::BTreeMap;

use serde_json::{json, Value};

/// Latencies in microseconds, sorted once for percentiles.
#[derive(Clone, Debug, Default)]
pub struct Latencies {
    sorted: Vec<u32>,
}

impl Latencies {
    pub fn new(mut micros: Vec<u32>) -> Latencies {
        micros.sort_unstable();
        Latencies { sorted: micros }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// The nearest-rank percentile (`p` in 0..=100) in milliseconds; 0 when empty.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.sorted.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.sorted.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.sorted.len()) - 1;
        f64::from(self.sorted[index]) / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.sorted.last().map(|&v| f64::from(v) / 1000.0).unwrap_or(0.0)
    }

    pub fn mean_ms(&self) -> f64 {
        if self.sorted.is_empty() {
            return 0.0;
        }
        self.sorted.iter().map(|&v| u64::from(v)).sum::<u64>() as f64 / self.sorted.len() as f64 / 1000.0
    }

    pub fn json(&self) -> Value {
        json!({
            "p50_ms": round2(self.percentile_ms(50.0)),
            "p90_ms": round2(self.percentile_ms(90.0)),
            "p99_ms": round2(self.percentile_ms(99.0)),
            "max_ms": round2(self.max_ms()),
            "mean_ms": round2(self.mean_ms()),
        })
    }
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Non-2xx answers and transport errors by kind (`429 sending_throttled`, `io: …`), each with
/// the first response body seen.
#[derive(Clone, Debug, Default)]
pub struct Errors {
    pub by_kind: BTreeMap<String, (u64, String)>,
}

impl Errors {
    pub fn add(&mut self, kind: String, example: impl FnOnce() -> String) {
        let entry = self.by_kind.entry(kind).or_insert_with(|| (0, example()));
        entry.0 += 1;
    }

    pub fn merge(&mut self, other: Errors) {
        for (kind, (n, example)) in other.by_kind {
            let entry = self.by_kind.entry(kind).or_insert((0, example));
            entry.0 += n;
        }
    }

    pub fn total(&self) -> u64 {
        self.by_kind.values().map(|(n, _)| n).sum()
    }

    pub fn json(&self) -> Value {
        Value::Array(
            self.by_kind
                .iter()
                .map(|(kind, (n, example))| json!({ "kind": kind, "count": n, "example": example }))
                .collect(),
        )
    }
}

/// The error code of a JSON error answer (`{"success":false,"error":"code",…}`), if any.
pub fn error_code(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value.get("error").and_then(Value::as_str).map(str::to_string)
}

/// A count with thousands separators: 1234567 → "1,234,567", 7 → "7".
pub fn count(n: u64) -> String {
    if n < 100 {
        n.to_string()
    } else {
        thousands(n as f64)
    }
}

/// 12,345.6 → "12,346"; small values keep a decimal.
pub fn thousands(x: f64) -> String {
    if x.abs() < 100.0 {
        return format!("{x:.1}");
    }
    let n = x.round() as i64;
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let l = Latencies::new((1..=100).rev().map(|ms| ms * 1000).collect());
        assert_eq!(l.percentile_ms(50.0), 50.0);
        assert_eq!(l.percentile_ms(99.0), 99.0);
        assert_eq!(l.percentile_ms(100.0), 100.0);
        assert_eq!(l.percentile_ms(0.0), 1.0);
        assert_eq!(l.max_ms(), 100.0);
        assert_eq!(Latencies::new(vec![]).percentile_ms(99.0), 0.0);
        let one = Latencies::new(vec![1500]);
        assert_eq!(one.percentile_ms(50.0), 1.5);
        assert_eq!(one.percentile_ms(99.0), 1.5);
    }

    #[test]
    fn errors_tally_and_codes() {
        let mut e = Errors::default();
        e.add("429 sending_throttled".into(), || "first".into());
        e.add("429 sending_throttled".into(), || "second".into());
        let mut other = Errors::default();
        other.add("io".into(), || "reset".into());
        other.add("429 sending_throttled".into(), || "third".into());
        e.merge(other);
        assert_eq!(e.total(), 4);
        assert_eq!(e.by_kind["429 sending_throttled"], (3, "first".to_string()));
        assert_eq!(
            error_code(br#"{"success":false,"error":"policy_violation","message":"x"}"#).as_deref(),
            Some("policy_violation")
        );
        assert_eq!(error_code(b"<html>"), None);
    }

    #[test]
    fn number_formatting() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.5), "1,000");
        assert_eq!(thousands(42.24), "42.2");
        assert_eq!(thousands(-1234.0), "-1,234");
        assert_eq!(count(7), "7");
        assert_eq!(count(1_234_567), "1,234,567");
    }
}
