//! `bench`: the benchmark harness of WA Gateway.
//!
//! Each subcommand starts the real `wag` binary as a child process on a free port with a fresh
//! data directory and a fresh database, provisions a tenant through `wag admin …` and the HTTP
//! API (never by writing rows, except the log-page benchmark's bulk seed), drives load, and
//! prints throughput, latency percentiles, CPU per request and the `/healthz` ceiling of the
//! same server. See BENCHMARKS.md for how to run each one and the figures of record.
mod load;
mod machine;
mod pages;
mod portal;
mod receiver;
mod report;
mod scenarios;
mod seed;
mod server;
mod stats;

use std::{path::PathBuf, sync::Arc};

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "bench", about = "WA Gateway benchmark harness (see BENCHMARKS.md)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Guarded sends: POST /api/send-message, closed loop with N keep-alive connections.
    Send(SendArgs),
    /// Webhook fan-out: inbound messages (POST /api/sandbox/inbound) delivered as
    /// `message.received` to a loopback receiver run by the bench; a burst phase (deliveries/s)
    /// and an open-loop phase at --rate inbound/s (event lag).
    Webhooks(WebhookArgs),
    /// Inbound ingest: POST /api/sandbox/inbound, closed loop with N keep-alive connections.
    Inbound(InboundArgs),
    /// The portal's log pages (/messages, /inbound-logs) over a bulk-seeded log.
    Pages(PagesArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DbKind {
    Sqlite,
    Postgres,
    Mysql,
}

impl DbKind {
    pub fn name(self) -> &'static str {
        match self {
            DbKind::Sqlite => "sqlite",
            DbKind::Postgres => "postgres",
            DbKind::Mysql => "mysql",
        }
    }
}

/// What every subcommand takes.
#[derive(Clone, Debug, Args)]
pub struct Common {
    /// The database `wag` runs on.
    #[arg(long, value_enum, default_value = "sqlite")]
    pub db: DbKind,
    /// A server where the bench may create and drop a `wag_bench_<random>` database
    /// (default postgres://postgres@127.0.0.1:5432/postgres or mysql://root@127.0.0.1:3306/test).
    #[arg(long)]
    pub database_server_url: Option<String>,
    /// The `wag` binary to run. Default: `wag` beside this executable's release directory,
    /// brought up to date with `cargo build --release -p server` first.
    #[arg(long)]
    pub wag: Option<PathBuf>,
    /// Do not run `cargo build --release -p server` before starting (use the binary as it is).
    #[arg(long)]
    pub no_build: bool,
    /// Worker threads of the bench's own runtime (load generator and webhook receiver);
    /// 1 means a current-thread runtime.
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
    /// Extra environment for `wag`, e.g. --env WAG_WEBHOOK_CONCURRENCY=32 (repeatable; wins over
    /// the bench's own settings).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Keep the database, the data directory and the server log instead of removing them.
    #[arg(long)]
    pub keep: bool,
    /// Print one JSON document instead of the tables.
    #[arg(long)]
    pub json: bool,
}

/// Load shape shared by the closed-loop benchmarks.
#[derive(Clone, Debug, Args)]
pub struct LoadArgs {
    /// Concurrent keep-alive HTTP/1.1 connections (closed loop: each sends its next request
    /// when the previous one is answered).
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Length of the measured phase in seconds.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Seconds of load before measuring starts (not counted).
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Skip the /healthz ceiling run.
    #[arg(long)]
    pub no_healthz: bool,
}

#[derive(Clone, Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Sandbox instances to spread the sends over (round robin). One instance is one WhatsApp
    /// number; each is limited by WAG_SEND_RATE_PER_MINUTE (the bench sets the maximum, 100,000).
    #[arg(long, default_value_t = 1)]
    pub instances: usize,
    /// WAG_SANDBOX_RECEIPT_DELAY_MS: the sandbox reports "delivered" and then "read" this long
    /// after each send, so receipts are part of the load as in production. 2000 is the
    /// server's default.
    #[arg(long, default_value_t = 2000)]
    pub receipt_delay_ms: u64,
    /// Send every request with its own Idempotency-Key, as careful clients do (the key is
    /// claimed when the send is admitted and answered when it settles).
    #[arg(long)]
    pub idempotency_keys: bool,
}

#[derive(Clone, Debug, Args)]
pub struct WebhookArgs {
    #[command(flatten)]
    pub common: Common,
    /// Connections used to inject inbound messages.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Length of the open-loop phase in seconds.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Open-loop phase: inbound messages per second for --seconds (0 skips the phase).
    #[arg(long, default_value_t = 500)]
    pub rate: u64,
    /// Burst phase: this many inbound messages as fast as possible, then the time until the
    /// receiver has them all (0 skips the phase).
    #[arg(long, default_value_t = 3000)]
    pub burst: u64,
    /// How long to wait for outstanding deliveries after the last injection; what has not
    /// arrived by then is reported missing.
    #[arg(long, default_value_t = 60)]
    pub drain_seconds: u64,
    /// Skip the /healthz ceiling run.
    #[arg(long)]
    pub no_healthz: bool,
}

#[derive(Clone, Debug, Args)]
pub struct InboundArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Clone, Debug, Args)]
pub struct PagesArgs {
    #[command(flatten)]
    pub common: Common,
    /// Sent-message rows in the log of the bench account.
    #[arg(long, default_value_t = 10_000_000)]
    pub rows: u64,
    /// Inbound-message rows (default: a tenth of --rows).
    #[arg(long)]
    pub inbound_rows: Option<u64>,
    /// Policy-decision rows (default: a tenth of --rows).
    #[arg(long)]
    pub policy_rows: Option<u64>,
    /// Use (and keep) this database instead of a fresh one: rows already seeded there are
    /// kept and only the missing ones are added, so a 10 M seed is done once. For SQLite e.g.
    /// sqlite:///var/tmp/wag-bench-pages.db?mode=rwc; for PostgreSQL/MariaDB a database URL
    /// (created when it does not exist).
    #[arg(long)]
    pub reuse_db: Option<String>,
    /// Requests per page (sequential, one keep-alive connection); a page stops early after
    /// --page-seconds.
    #[arg(long, default_value_t = 50)]
    pub requests: usize,
    /// Time budget per page in seconds.
    #[arg(long, default_value_t = 60)]
    pub page_seconds: u64,
    /// Only seed (and report the seeding time); do not start the server.
    #[arg(long)]
    pub seed_only: bool,
}

fn main() {
    let cli = Cli::parse();
    let common = match &cli.command {
        Command::Send(a) => &a.common,
        Command::Webhooks(a) => &a.common,
        Command::Inbound(a) => &a.common,
        Command::Pages(a) => &a.common,
    };
    let mut builder = if common.client_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(common.client_threads);
        b
    };
    let runtime = builder.enable_all().build().expect("tokio runtime");
    let code = runtime.block_on(async move {
        let cleanup = Arc::new(server::Cleanup::default());
        let work = run(cli.command, cleanup.clone());
        let outcome = tokio::select! {
            outcome = work => outcome,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted (Ctrl-C): cleaning up")),
        };
        // The work future (and with it any `wag` child, killed on drop) is gone here.
        cleanup.run().await;
        match outcome {
            Ok(true) => 0,
            Ok(false) => 2,
            Err(e) => {
                eprintln!("bench: {e:#}");
                1
            }
        }
    });
    std::process::exit(code);
}

/// Runs one benchmark; `Ok(false)` when it completed but saw errors (exit status 2).
async fn run(command: Command, cleanup: Arc<server::Cleanup>) -> anyhow::Result<bool> {
    match command {
        Command::Send(args) => scenarios::send(args, cleanup).await,
        Command::Webhooks(args) => scenarios::webhooks(args, cleanup).await,
        Command::Inbound(args) => scenarios::inbound(args, cleanup).await,
        Command::Pages(args) => pages::run(args, cleanup).await,
    }
}
