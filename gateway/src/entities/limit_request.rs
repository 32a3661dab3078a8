use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "limit_requests")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    pub requested_daily: i64,
    pub requested_monthly: i64,
    #[sea_orm(column_type = "Text")]
    pub use_case: String,
    pub expected_volume: String,
    /// pending, approved or declined
    pub status: String,
    /// 1 while pending, NULL once decided (one waiting request per account).
    pub pending_slot: Option<i16>,
    pub decided_by: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub decision_note: Option<String>,
    pub granted_daily: Option<i64>,
    pub granted_monthly: Option<i64>,
    pub created_at: i64,
    pub decided_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
