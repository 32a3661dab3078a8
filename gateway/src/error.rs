//! The domain's one error type. Messages of `Invalid` and `Refused` are written for the person
//! who caused them and may be shown; `Db` and `Internal` are logged by the caller's layer and
//! shown only as the spec's generic `internal_error` text.
use sea_orm::DbErr;

pub const INTERNAL_MESSAGE: &str = "The request could not be processed. Please try again or contact support.";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found")]
    NotFound,
    /// Bad input; the text says what to fix.
    #[error("{0}")]
    Invalid(String),
    /// A valid request that policy refuses right now (locked login, registration closed…).
    #[error("{0}")]
    Refused(String),
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(text: impl Into<String>) -> Self {
        Error::Invalid(text.into())
    }

    /// What a user may see. Internal details never leave through here.
    pub fn user_message(&self) -> String {
        match self {
            Error::NotFound => "Not found.".into(),
            Error::Invalid(text) | Error::Refused(text) => text.clone(),
            Error::Db(_) | Error::Internal(_) => INTERNAL_MESSAGE.into(),
        }
    }

    pub fn is_internal(&self) -> bool {
        matches!(self, Error::Db(_) | Error::Internal(_))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
