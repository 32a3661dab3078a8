//! One integration-test binary for the server: each test starts the whole app on port 0 with a
//! fresh database, on SQLite, and on PostgreSQL and MariaDB when their URLs are set.
#[macro_use]
mod common;

mod accounts;
mod admin_cli;
mod api;
mod cluster;
mod cluster_load;
mod failures;
mod instances;
mod media;
mod metrics;
mod operator;
mod operator_console;
mod portal;
mod receive;
mod rendering;
mod send;
mod session_store;
mod storage;
mod tenancy;
mod threecx;
mod webhooks;
mod whatsapp_web;
