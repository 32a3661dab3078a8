//! Secrets kept at rest (webhook signing secrets) are encrypted with the server's master key:
//! ChaCha20-Poly1305 with a random nonce, stored as `v1:<base64(nonce ‖ ciphertext)>`.
use base64::Engine;
use chacha20poly1305::{
    aead::{Aead, AeadCore, KeyInit, OsRng},
    ChaCha20Poly1305, Nonce,
};

use crate::{config::MasterKey, error::Error};

const PREFIX: &str = "v1:";

/// An HMAC-SHA256 keyed with `key`. HMAC takes keys of any length (longer ones are hashed,
/// shorter ones padded), so the one error `new_from_slice` can report never happens.
pub fn hmac_sha256(key: &[u8]) -> hmac::Hmac<sha2::Sha256> {
    <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(key).expect("HMAC takes keys of any length")
}

pub fn encrypt(key: &MasterKey, plaintext: &str) -> Result<String, Error> {
    let cipher = ChaCha20Poly1305::new((&key.0).into());
    let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
    let sealed = cipher
        .encrypt(&nonce, plaintext.as_bytes())
        .map_err(|_| Error::Internal("encrypting a secret failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(format!("{PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(out)))
}

pub fn decrypt(key: &MasterKey, stored: &str) -> Result<String, Error> {
    let broken = || Error::Internal("a stored secret cannot be decrypted (wrong master key?)".into());
    let body = stored.strip_prefix(PREFIX).ok_or_else(broken)?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(body).map_err(|_| broken())?;
    if bytes.len() < 12 {
        return Err(broken());
    }
    let (nonce, sealed) = bytes.split_at(12);
    let cipher = ChaCha20Poly1305::new((&key.0).into());
    let plain = cipher.decrypt(Nonce::from_slice(nonce), sealed).map_err(|_| broken())?;
    String::from_utf8(plain).map_err(|_| broken())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_key() {
        let key = MasterKey([7; 32]);
        let sealed = encrypt(&key, "whsec_abc").unwrap();
        assert!(sealed.starts_with("v1:") && !sealed.contains("whsec_abc"));
        assert_eq!(decrypt(&key, &sealed).unwrap(), "whsec_abc");
        assert_ne!(encrypt(&key, "whsec_abc").unwrap(), sealed, "a fresh nonce each time");
        assert!(decrypt(&MasterKey([8; 32]), &sealed).is_err());
    }
}
