//! How a 3CX request proves itself: the webhook secret in `X-WhatsApp-Gateway-3CX-Secret`
//! (stored only as a SHA-256 hash, compared in constant time) and, when required, an HMAC-SHA256
//! of `timestamp + "." + raw body` in `X-WhatsApp-Gateway-Signature`, as `sha256=<hex>` or bare
//! `<hex>`, with the Unix-seconds timestamp within five minutes of ours.
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const TIMESTAMP_TOLERANCE_SECS: i64 = 300;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn random_text(chars: usize) -> String {
    let mut rng = rand::rng();
    (0..chars).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// The integration id in the webhook URL: unguessable (190 bits), so the URL alone reveals
/// nothing about other integrations.
pub fn new_integration_id() -> String {
    format!("tcx_{}", random_text(32))
}

pub fn new_webhook_secret() -> String {
    format!("tcxs_{}", random_text(40))
}

pub fn new_hmac_secret() -> String {
    format!("tcxh_{}", random_text(40))
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The first characters of a secret, enough to tell two apart on the settings page.
pub fn hint(secret: &str) -> String {
    format!("{}…", secret.chars().take(9).collect::<String>())
}

/// Compares the presented secret with the stored hash without leaking where they differ.
pub fn secret_matches(presented: &str, stored_hash: &str) -> bool {
    let presented = Sha256::digest(presented.as_bytes());
    match hex::decode(stored_hash) {
        Ok(stored) => presented.as_slice().ct_eq(&stored).into(),
        Err(_) => false,
    }
}

/// HMAC-SHA256 keyed with the secret, over `timestamp + "." + body`.
fn mac(secret: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = crate::secrets::hmac_sha256(secret.as_bytes());
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The hex signature of one request, as a sender computes it.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
}

/// Why a signed request was refused (for the integration's own request log only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureProblem {
    MissingTimestamp,
    StaleTimestamp,
    MissingSignature,
    Mismatch,
}

impl SignatureProblem {
    pub fn describe(self) -> &'static str {
        match self {
            SignatureProblem::MissingTimestamp => "HMAC: missing or malformed X-WhatsApp-Gateway-Timestamp",
            SignatureProblem::StaleTimestamp => "HMAC: timestamp more than 300 s from the server's clock",
            SignatureProblem::MissingSignature => "HMAC: missing X-WhatsApp-Gateway-Signature",
            SignatureProblem::Mismatch => "HMAC: signature does not match the body",
        }
    }
}

pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureProblem> {
    let timestamp = timestamp.map(str::trim).filter(|t| !t.is_empty()).ok_or(SignatureProblem::MissingTimestamp)?;
    let seconds: i64 = timestamp.parse().map_err(|_| SignatureProblem::MissingTimestamp)?;
    // Checked: a timestamp near i64::MIN or MAX must not wrap around into "fresh".
    if now.checked_sub(seconds).and_then(i64::checked_abs).is_none_or(|skew| skew > TIMESTAMP_TOLERANCE_SECS) {
        return Err(SignatureProblem::StaleTimestamp);
    }
    let signature = signature.map(str::trim).filter(|s| !s.is_empty()).ok_or(SignatureProblem::MissingSignature)?;
    let hex_part = signature.strip_prefix("sha256=").unwrap_or(signature);
    let presented = hex::decode(hex_part.to_ascii_lowercase()).map_err(|_| SignatureProblem::Mismatch)?;
    mac(secret, timestamp, body).verify_slice(&presented).map_err(|_| SignatureProblem::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"event_type":"test"}"#;

    #[test]
    fn both_signature_forms_are_accepted() {
        let sig = sign("s3cret", "1700000000", BODY);
        assert_eq!(verify("s3cret", Some("1700000000"), Some(&format!("sha256={sig}")), BODY, 1700000000), Ok(()));
        assert_eq!(verify("s3cret", Some("1700000000"), Some(&sig), BODY, 1700000100), Ok(()));
        assert_eq!(verify("s3cret", Some("1700000000"), Some(&sig.to_uppercase()), BODY, 1700000000), Ok(()));
    }

    #[test]
    fn timestamps_at_the_ends_of_the_range_are_stale_not_fresh() {
        let now = 1_700_000_000_i64;
        for seconds in [i64::MIN, i64::MIN + now, i64::MIN + 1, i64::MAX, i64::MAX - 1, now - i64::MAX] {
            let timestamp = seconds.to_string();
            let sig = sign("s3cret", &timestamp, BODY);
            assert_eq!(
                verify("s3cret", Some(&timestamp), Some(&sig), BODY, now),
                Err(SignatureProblem::StaleTimestamp),
                "{seconds}"
            );
        }
    }

    #[test]
    fn a_known_vector_matches_openssl() {
        // printf '%s' '1700000000.{"event_type":"test"}' | openssl dgst -sha256 -hmac s3cret
        assert_eq!(
            sign("s3cret", "1700000000", BODY),
            "73b6605354c49ed6c2d3d280fe155f9397e13039325cd9dd95e9e9a10b9f5d6b"
        );
    }

    #[test]
    fn stale_future_missing_and_tampered_are_refused() {
        let sig = sign("s3cret", "1700000000", BODY);
        assert_eq!(
            verify("s3cret", Some("1700000000"), Some(&sig), BODY, 1700000301),
            Err(SignatureProblem::StaleTimestamp)
        );
        assert_eq!(
            verify("s3cret", Some("1700000000"), Some(&sig), BODY, 1699999699),
            Err(SignatureProblem::StaleTimestamp)
        );
        assert_eq!(verify("s3cret", None, Some(&sig), BODY, 1700000000), Err(SignatureProblem::MissingTimestamp));
        assert_eq!(
            verify("s3cret", Some("soon"), Some(&sig), BODY, 1700000000),
            Err(SignatureProblem::MissingTimestamp)
        );
        assert_eq!(
            verify("s3cret", Some("1700000000"), None, BODY, 1700000000),
            Err(SignatureProblem::MissingSignature)
        );
        assert_eq!(
            verify("s3cret", Some("1700000000"), Some(&sig), br#"{"event_type":"tesT"}"#, 1700000000),
            Err(SignatureProblem::Mismatch)
        );
        assert_eq!(verify("other", Some("1700000000"), Some(&sig), BODY, 1700000000), Err(SignatureProblem::Mismatch));
        assert_eq!(
            verify("s3cret", Some("1700000000"), Some("sha256=zz"), BODY, 1700000000),
            Err(SignatureProblem::Mismatch)
        );
    }

    #[test]
    fn secrets_compare_by_hash() {
        let secret = new_webhook_secret();
        let stored = hash_secret(&secret);
        assert!(secret_matches(&secret, &stored));
        assert!(!secret_matches(&format!("{secret}x"), &stored));
        assert!(!secret_matches("", &stored));
        assert!(new_integration_id().starts_with("tcx_") && new_integration_id().len() == 36);
        assert_ne!(new_integration_id(), new_integration_id());
    }
}
