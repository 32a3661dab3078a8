//! The operator console (admin role only; anyone else gets the same 404 as for an unknown
//! page, and the server functions answer "Not found." and change nothing).
pub mod accounts;
pub mod audit;
pub mod fleet;
pub mod limits;
mod overview;
pub mod reviews;
mod shared;

pub use overview::{AdminOverview, AdminPage};
