use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "threecx_integrations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: i64,
    pub instance_id: String,
    pub enabled: bool,
    pub outbound_enabled: bool,
    pub call_event_enabled: bool,
    pub strict_window: bool,
    pub window_hours: i32,
    #[sea_orm(column_type = "Text")]
    pub ip_allowlist: String,
    pub hmac_required: bool,
    #[sea_orm(column_type = "Text", nullable)]
    pub hmac_secret: Option<String>,
    pub secret_hash: String,
    pub secret_hint: String,
    pub business_name: String,
    pub destination_id: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub templates: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
