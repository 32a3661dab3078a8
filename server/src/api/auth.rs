//! The bearer-key extractor. Resolves `Authorization: Bearer <key>` to the key's account from
//! the hot cache (keys are stored as SHA-256; no argon2 on this path, and no query once a key
//! has been seen until something changes).
use axum::{extract::FromRequestParts, http::request::Parts};
use gateway::{accounts::Account, api_keys::KeyCheck, state::AppState};

use super::error::ApiError;

/// An authenticated API caller.
pub struct ApiCaller {
    pub key_id: String,
    pub account: Account,
}

pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts).ok_or_else(ApiError::invalid_api_key)?;
        match state.cache.authenticate(token).await {
            Ok(KeyCheck::Valid { key_id, account_id }) => {
                let account = state
                    .cache
                    .account(account_id)
                    .await
                    .map_err(|e| ApiError::internal("load key account", &e))?
                    .ok_or_else(ApiError::invalid_api_key)?;
                if account.disabled {
                    return Err(ApiError::account_disabled());
                }
                Ok(ApiCaller { key_id, account })
            }
            Ok(KeyCheck::Revoked) => Err(ApiError::revoked_api_key()),
            Ok(KeyCheck::Invalid) => Err(ApiError::invalid_api_key()),
            Err(e) => Err(ApiError::internal("authenticate api key", &e)),
        }
    }
}
