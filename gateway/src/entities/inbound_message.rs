use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "inbound_messages")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    pub instance_id: String,
    pub provider_message_id: String,
    pub from_phone: Option<String>,
    pub from_address: String,
    pub group_id: Option<String>,
    pub kind: String,
    #[sea_orm(column_type = "Text")]
    pub body: String,
    pub media_mime_type: Option<String>,
    pub media_file_name: Option<String>,
    pub media_bytes: Option<i64>,
    pub opt_out: bool,
    pub sent_at: i64,
    pub received_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
