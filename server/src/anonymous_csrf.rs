//! CSRF tokens for visitors who are not signed in (the login and sign-up forms), bound to a
//! cookie instead of a session row: the cookie holds a random nonce, the form carries an HMAC
//! of that nonce under a key derived from the server's master key. A page view by an anonymous
//! visitor (or a bot) therefore writes nothing to the database; a session row is only created
//! when someone signs in or up. A forged post from another site cannot read the cookie to
//! compute the token, and a token minted by this server for another browser's nonce does not
//! match this browser's cookie.
use axum::http::HeaderMap;
use hmac::Mac;

pub const COOKIE: &str = "wag_csrf";
/// The name behind https: a `__Host-` cookie is only taken by browsers when it is Secure, for
/// the whole site and bound to this host, so a sibling subdomain cannot plant one.
pub const SECURE_COOKIE: &str = "__Host-wag_csrf";

pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_COOKIE
    } else {
        COOKIE
    }
}

/// The key tokens are signed with: derived from the master key for this one purpose, so a
/// token never reveals anything about the key that encrypts secrets at rest.
#[derive(Clone)]
pub struct CsrfKey([u8; 32]);

impl CsrfKey {
    pub fn derive(master_key: &gateway::config::MasterKey) -> CsrfKey {
        let mut mac = gateway::secrets::hmac_sha256(&master_key.0);
        mac.update(b"wag anonymous csrf v1");
        CsrfKey(mac.finalize().into_bytes().into())
    }

    /// The form token for a nonce.
    pub fn token(&self, nonce: &str) -> String {
        let mut mac = gateway::secrets::hmac_sha256(&self.0);
        mac.update(nonce.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// A fresh nonce for a visitor without one.
pub fn new_nonce() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// The nonce of the request's cookie, when it has a well-formed one.
pub fn nonce_of(headers: &HeaderMap, secure: bool) -> Option<String> {
    app::server_util::cookie_value(headers, cookie_name(secure))
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `Set-Cookie` value that gives a visitor its nonce (for the browser session only).
pub fn set_cookie(nonce: &str, secure: bool) -> String {
    let name = cookie_name(secure);
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={nonce}; Path=/; HttpOnly; SameSite=Lax{secure}")
}

#[cfg(test)]
mod tests {
    use axum::http::header;

    use super::*;

    #[test]
    fn tokens_depend_on_the_nonce_and_the_key() {
        let key = CsrfKey::derive(&gateway::config::MasterKey([7; 32]));
        let other = CsrfKey::derive(&gateway::config::MasterKey([8; 32]));
        let (a, b) = (new_nonce(), new_nonce());
        assert_eq!(key.token(&a), key.token(&a));
        assert_ne!(key.token(&a), key.token(&b));
        assert_ne!(key.token(&a), other.token(&a));
        assert_eq!(key.token(&a).len(), 64);
    }

    #[test]
    fn the_nonce_is_read_from_among_other_cookies() {
        let nonce = new_nonce();
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, format!("wag_session=abc; {COOKIE}={nonce}; x=y").parse().unwrap());
        assert_eq!(nonce_of(&headers, false), Some(nonce.clone()));
        assert_eq!(nonce_of(&headers, true), None, "behind https only the __Host- cookie counts");
        headers.insert(header::COOKIE, format!("{SECURE_COOKIE}={nonce}").parse().unwrap());
        assert_eq!(nonce_of(&headers, true), Some(nonce));
        assert!(
            set_cookie("ab", true).starts_with("__Host-wag_csrf=ab; Path=/;")
                && set_cookie("ab", true).ends_with("; Secure")
        );
        headers.insert(header::COOKIE, format!("{COOKIE}=short").parse().unwrap());
        assert_eq!(nonce_of(&headers, false), None);
    }
}
