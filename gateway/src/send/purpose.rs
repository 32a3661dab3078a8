//! `message_purpose`: what the spec allows, and everything else refused.
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Transactional,
    Operational,
    Support,
    InternalTeam,
    Authentication,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PurposeError {
    Missing,
    NotAllowed,
}

pub const ALLOWED: [&str; 5] = ["transactional", "operational", "support", "internal_team", "authentication"];

impl Purpose {
    /// Exact, lower-case values only: "Marketing", "promo" or "transactional " are not guesses
    /// we make for the sender.
    pub fn parse(value: Option<&serde_json::Value>) -> Result<Purpose, PurposeError> {
        let text = match value {
            None | Some(serde_json::Value::Null) => return Err(PurposeError::Missing),
            Some(serde_json::Value::String(s)) if s.trim().is_empty() => return Err(PurposeError::Missing),
            Some(serde_json::Value::String(s)) => s.as_str(),
            Some(_) => return Err(PurposeError::NotAllowed),
        };
        match text {
            "transactional" => Ok(Purpose::Transactional),
            "operational" => Ok(Purpose::Operational),
            "support" => Ok(Purpose::Support),
            "internal_team" => Ok(Purpose::InternalTeam),
            "authentication" => Ok(Purpose::Authentication),
            _ => Err(PurposeError::NotAllowed),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Transactional => "transactional",
            Purpose::Operational => "operational",
            Purpose::Support => "support",
            Purpose::InternalTeam => "internal_team",
            Purpose::Authentication => "authentication",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_five_purposes_pass() {
        for ok in ALLOWED {
            assert_eq!(Purpose::parse(Some(&json!(ok))).unwrap().as_str(), ok);
        }
        for bad in
            ["marketing", "promotion", "cold_outreach", "bulk_campaign", "political", "unknown", "Transactional", "otp"]
        {
            assert_eq!(Purpose::parse(Some(&json!(bad))), Err(PurposeError::NotAllowed), "{bad}");
        }
        assert_eq!(Purpose::parse(None), Err(PurposeError::Missing));
        assert_eq!(Purpose::parse(Some(&json!(""))), Err(PurposeError::Missing));
        assert_eq!(Purpose::parse(Some(&json!(null))), Err(PurposeError::Missing));
        assert_eq!(Purpose::parse(Some(&json!(5))), Err(PurposeError::NotAllowed));
    }
}
