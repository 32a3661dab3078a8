use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub message_id: String,
    pub account_id: i64,
    pub instance_id: String,
    pub recipient: String,
    pub purpose: String,
    pub kind: String,
    #[sea_orm(column_type = "Text")]
    pub body: String,
    pub media_mime_type: Option<String>,
    pub media_file_name: Option<String>,
    pub media_bytes: Option<i64>,
    pub content_fingerprint: String,
    pub risk_score: i32,
    pub status: String,
    pub provider_message_id: Option<String>,
    pub error: Option<String>,
    /// `api` or `3cx`.
    pub source: String,
    pub conversation_id: Option<String>,
    pub agent_extension: Option<String>,
    /// The Idempotency-Key the message was sent under, so a send interrupted by a crash can
    /// still answer its key.
    pub idempotency_key: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
