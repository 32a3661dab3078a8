//! Plans and their fair-use limits (the spec's "Plan Limits" table).
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Starter,
    Growth,
    Scale,
    /// No active plan: the account can log in but not send.
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub daily: i64,
    pub monthly: i64,
}

impl Plan {
    pub fn parse(text: &str) -> Option<Plan> {
        match text.trim().to_ascii_lowercase().as_str() {
            "starter" => Some(Plan::Starter),
            "growth" => Some(Plan::Growth),
            "scale" => Some(Plan::Scale),
            "none" => Some(Plan::None),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Starter => "starter",
            Plan::Growth => "growth",
            Plan::Scale => "scale",
            Plan::None => "none",
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            Plan::Starter => "Starter",
            Plan::Growth => "Growth",
            Plan::Scale => "Scale",
            Plan::None => "No active plan",
        }
    }

    /// The plan's own limits; `None` for an account without an active plan.
    pub fn limits(self) -> Option<Limits> {
        match self {
            Plan::Starter => Some(Limits { daily: 100, monthly: 2_000 }),
            Plan::Growth => Some(Limits { daily: 500, monthly: 10_000 }),
            Plan::Scale => Some(Limits { daily: 1_500, monthly: 30_000 }),
            Plan::None => None,
        }
    }
}

/// The limits that apply to an account: a reviewed per-account override wins over the plan's.
pub fn effective_limits(plan: Plan, daily_override: Option<i64>, monthly_override: Option<i64>) -> Option<Limits> {
    let base = plan.limits()?;
    Some(Limits { daily: daily_override.unwrap_or(base.daily), monthly: monthly_override.unwrap_or(base.monthly) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_table_matches_the_spec() {
        assert_eq!(Plan::Starter.limits(), Some(Limits { daily: 100, monthly: 2_000 }));
        assert_eq!(Plan::Growth.limits(), Some(Limits { daily: 500, monthly: 10_000 }));
        assert_eq!(Plan::Scale.limits(), Some(Limits { daily: 1_500, monthly: 30_000 }));
        assert_eq!(Plan::None.limits(), None);
        assert_eq!(Plan::parse(" Growth "), Some(Plan::Growth));
        assert_eq!(Plan::parse("gold"), None);
    }

    #[test]
    fn overrides_win_over_the_plan() {
        let l = effective_limits(Plan::Starter, Some(250), None).unwrap();
        assert_eq!(l, Limits { daily: 250, monthly: 2_000 });
        assert_eq!(effective_limits(Plan::None, Some(5), Some(5)), None);
    }
}
