//! Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
//! keyed with the base64 part of the `whsec_…` secret; one signature per valid secret.
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SECRET_PREFIX: &str = "whsec_";

/// A new signing secret: `whsec_` and 24 random bytes as base64.
pub fn new_secret() -> String {
    let bytes: [u8; 24] = rand::random();
    format!("{SECRET_PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn key_bytes(secret: &str) -> Vec<u8> {
    let body = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    base64::engine::general_purpose::STANDARD.decode(body).unwrap_or_else(|_| body.as_bytes().to_vec())
}

pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = crate::secrets::hmac_sha256(&key_bytes(secret));
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// The header value: the signatures of every valid secret, space-separated.
pub fn signature_header(secrets: &[String], id: &str, timestamp: i64, body: &str) -> String {
    secrets.iter().map(|s| sign(s, id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// A secret with its key decoded once, for a worker that signs with it many times.
#[derive(Clone)]
pub struct Signer(Hmac<Sha256>);

impl Signer {
    pub fn new(secret: &str) -> Signer {
        Signer(crate::secrets::hmac_sha256(&key_bytes(secret)))
    }

    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> String {
        let mut mac = self.0.clone();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // The example in the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_signer_signs_like_sign() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            Signer::new(secret).sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
        );
    }

    #[test]
    fn one_signature_per_secret() {
        let header = signature_header(&[new_secret(), new_secret()], "evt_1", 1, "{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(header.split(' ').all(|s| s.starts_with("v1,")));
    }
}
