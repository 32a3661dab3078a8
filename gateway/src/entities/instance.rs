use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "instances")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: i64,
    pub name: String,
    pub connector: String,
    pub status: String,
    pub linked_phone: Option<String>,
    pub paused: bool,
    pub created_at: i64,
    pub status_changed_at: i64,
    pub review_paused: bool,
    pub review_reason: Option<String>,
    pub review_paused_at: Option<i64>,
    pub connection_alert: Option<String>,
    pub connection_alert_at: Option<i64>,
    /// An operator's note from the last review, shown to the customer on the instance.
    pub review_note: Option<String>,
    pub review_note_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
