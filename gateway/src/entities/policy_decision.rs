use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "policy_decisions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    pub instance_id: Option<String>,
    pub recipient_masked: String,
    pub purpose: String,
    pub decision: String,
    pub error_code: Option<String>,
    pub risk_score: i32,
    #[sea_orm(column_type = "Text")]
    pub reasons: String,
    pub created_at: i64,
    /// The message this decision admitted (none for refusals).
    pub message_log_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
