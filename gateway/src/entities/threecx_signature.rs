use sea_orm::entity::prelude::*;

/// A signed 3CX request already taken: its digest, for as long as its timestamp would pass.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "threecx_signatures")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub integration_id: String,
    /// SHA-256 (hex) of `timestamp + "." + body`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub digest: String,
    pub seen_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
