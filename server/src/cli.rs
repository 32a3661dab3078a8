//! The command line: `wag serve` (the default), `wag migrate`, `wag admin …`.
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use gateway::config::Config;

#[derive(Debug, Parser)]
#[command(name = "wag", version, about = "WA Gateway: a guarded, multi-tenant WhatsApp gateway")]
pub struct Cli {
    /// A TOML configuration file (also WAG_CONFIG). WAG_* environment variables override it.
    #[arg(long, global = true, env = "WAG_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the portal, the API and the background workers (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Operator commands against the configured database.
    #[command(subcommand)]
    Admin(crate::admin::AdminCommand),
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => crate::serve::serve(config).await,
        Command::Migrate => {
            let db = gateway::db::connect(&config.database_url)
                .await
                .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
            gateway::db::migrate(&db).await.map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
            println!("migrations applied");
            Ok(())
        }
        Command::Admin(command) => crate::admin::run(&config, command).await,
    }
}
