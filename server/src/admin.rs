//! `wag admin …`: operator commands. They work on the database directly; a running server sees
//! what they change within a second (the changes that its hot cache holds move the shared change
//! counter it follows, see `gateway::cache`).
use clap::Subcommand;
use gateway::{
    accounts::{self, Email, Module, NewAccount, NewPassword, Role},
    api_keys,
    audit::CLI,
    config::Config,
    instances,
    operator::actions::{self, AccountChange, Reviewed},
    plans::Plan,
    DatabaseConnection,
};

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an account.
    CreateUser {
        #[arg(long)]
        email: String,
        /// The password. Without it, the first line of standard input is read, which keeps the
        /// password out of `ps` and the shell's history; the flag is for scripts.
        #[arg(long)]
        password: Option<String>,
        /// Make the account an operator (admin role).
        #[arg(long)]
        admin: bool,
        /// starter, growth, scale or none (default: the server's default plan).
        #[arg(long)]
        plan: Option<String>,
    },
    /// Change an account's plan and, optionally, its reviewed limits (0 removes an override).
    SetPlan {
        #[arg(long)]
        email: String,
        #[arg(long)]
        plan: String,
        #[arg(long)]
        daily_limit: Option<i64>,
        #[arg(long)]
        monthly_limit: Option<i64>,
    },
    /// Switch a module (api or 3cx) on or off for an account.
    SetModule {
        #[arg(long)]
        email: String,
        #[arg(long)]
        module: String,
        #[arg(long)]
        enabled: String,
    },
    /// Create an API key; the key is printed alone on the last line.
    CreateApiKey {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
    },
    /// Revoke an API key given in full.
    RevokeApiKey {
        /// The key. Without it, the first line of standard input is read (out of `ps` and the
        /// shell's history).
        #[arg(long)]
        key: Option<String>,
    },
    /// Pause an instance for responsible-messaging review; its sends answer 423 until resumed.
    PauseInstance {
        #[arg(long)]
        instance: String,
        #[arg(long)]
        reason: String,
    },
    /// List the instances paused for review (the operator's review queue), oldest first.
    ReviewQueue,
    /// Create or replace an instance's webhook destination for a URL; prints the signing secret
    /// of a new destination.
    SetWebhook {
        #[arg(long)]
        instance: String,
        #[arg(long)]
        url: String,
        /// Comma-separated event names, e.g. message.received,recipient.opted_out
        #[arg(long)]
        events: String,
    },
    /// Lift a review pause.
    ResumeInstance {
        #[arg(long)]
        instance: String,
        /// A note the customer reads on the instance (what to watch from now on).
        #[arg(long)]
        note: Option<String>,
    },
    /// Create an instance (`--connector sandbox` or `whatsapp-web`); its id is printed alone on
    /// the last line.
    CreateInstance {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "sandbox")]
        connector: String,
    },
    /// Create a 3CX integration for an instance (outbound and call events on, strict window,
    /// every template enabled); prints `integration_id=…` and `secret=…` lines.
    #[command(name = "create-3cx-integration")]
    CreateThreecxIntegration {
        #[arg(long)]
        email: String,
        #[arg(long)]
        instance: String,
        /// Require HMAC signatures with this secret (empty: generate one and print it).
        #[arg(long)]
        hmac_secret: Option<String>,
        /// Comma-separated IPs and CIDR ranges allowed to call the webhook.
        #[arg(long)]
        ip_allowlist: Option<String>,
        /// The name call-event templates use for {{business_name}}.
        #[arg(long, default_value = "Support team")]
        business_name: String,
    },
    /// List every account: id, email, role, plan, limits, modules.
    ListUsers {
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The operators' audit log, newest first: every operator action (these commands write it
    /// as "cli"), of one account or of all.
    AuditLog {
        #[arg(long)]
        email: Option<String>,
        /// How many rows, newest first.
        #[arg(long, default_value_t = 50)]
        limit: u64,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Disable an account: its API keys and portal sign-in are refused (account_disabled) and its
    /// open portal sessions end; nothing is deleted.
    DisableUser {
        #[arg(long)]
        email: String,
    },
    /// Print a one-time password-reset link for the account (good for an hour, once; using it
    /// ends the account's sessions). Hand it over yourself: no email is sent.
    ResetPassword {
        #[arg(long)]
        email: String,
    },
    /// Enable a disabled account again.
    EnableUser {
        #[arg(long)]
        email: String,
    },
    /// Make an account an operator (admin) or a customer.
    SetRole {
        #[arg(long)]
        email: String,
        /// admin or customer.
        #[arg(long)]
        role: String,
    },
    /// The servers sharing this PostgreSQL database (id, address, alive, heartbeat age,
    /// instances owned) and each instance's owner and epoch.
    Cluster {
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(config: &Config, command: AdminCommand) -> anyhow::Result<()> {
    let db = gateway::db::connect(&config.database_url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
    gateway::db::migrate(&db).await.map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
    execute(&db, config, command).await.map_err(|e| match e {
        gateway::Error::Db(db_err) => anyhow::anyhow!("database error: {db_err}"),
        other => anyhow::anyhow!("{}", other.user_message()),
    })
}

/// A secret given on the command line, or else the first line of standard input (prompted for
/// on a terminal, where it is typed visibly: pipe it in to keep it off the screen).
fn secret_or_stdin(given: Option<String>, flag: &str) -> gateway::Result<String> {
    use std::io::{BufRead, IsTerminal, Write};
    if let Some(secret) = given {
        return Ok(secret);
    }
    if std::io::stdin().is_terminal() {
        eprint!("{}: ", flag.trim_start_matches('-'));
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| gateway::Error::Internal(format!("reading standard input: {e}")))?;
    let secret = line.trim_end_matches(['\r', '\n']).to_string();
    if secret.is_empty() {
        return Err(gateway::Error::invalid(format!("Give {flag}, or write it on the first line of standard input.")));
    }
    Ok(secret)
}

async fn execute(db: &DatabaseConnection, config: &Config, command: AdminCommand) -> gateway::Result<()> {
    match command {
        AdminCommand::CreateUser { email, password, admin, plan } => {
            let plan = match plan {
                Some(p) => parse_plan(&p)?,
                None => config.default_plan,
            };
            let account = accounts::create(
                db,
                NewAccount {
                    email: Email::parse(&email)?,
                    password: NewPassword::parse(&secret_or_stdin(password, "--password")?)?,
                    role: if admin { Role::Admin } else { Role::Customer },
                    plan,
                    api_enabled: true,
                    threecx_enabled: false,
                },
            )
            .await?;
            let after = format!("{} {} plan {}", account.email, account.role.as_str(), account.plan.as_str());
            audit(db, "create_user", Some(account.id), None, None, Some(after)).await?;
            println!(
                "created {} account {} (id {}) on plan {}",
                account.role.as_str(),
                account.email,
                account.id,
                account.plan.as_str()
            );
        }
        AdminCommand::SetPlan { email, plan, daily_limit, monthly_limit } => {
            let plan = parse_plan(&plan)?;
            let id = require_account(db, &email).await?.id;
            let change = AccountChange::Plan { plan, daily: daily_limit, monthly: monthly_limit };
            let account = actions::change_account(db, CLI, id, change).await?;
            let limits = account
                .limits()
                .map(|l| format!("{}/day, {}/month", l.daily, l.monthly))
                .unwrap_or_else(|| "no sending".into());
            println!("{} is on plan {} ({limits})", account.email, account.plan.as_str());
        }
        AdminCommand::SetModule { email, module, enabled } => {
            let module_parsed = Module::parse(&module)
                .ok_or_else(|| gateway::Error::invalid(format!("Unknown module {module:?}: use api or 3cx.")))?;
            let enabled = match enabled.trim().to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(gateway::Error::invalid("--enabled must be true or false.")),
            };
            let id = require_account(db, &email).await?.id;
            let change = AccountChange::Module { module: module_parsed, enabled };
            let account = actions::change_account(db, CLI, id, change).await?;
            println!(
                "{}: module {} {}",
                account.email,
                module.to_ascii_lowercase(),
                if enabled { "enabled" } else { "disabled" }
            );
        }
        AdminCommand::CreateApiKey { email, name } => {
            let account = require_account(db, &email).await?;
            let created = api_keys::create(db, account.id, &name).await?;
            let after = format!("API key {} ({})", created.info.id, created.info.name);
            audit(db, "create_api_key", Some(account.id), None, None, Some(after)).await?;
            println!(
                "created API key {} ({}) for {}; it is shown once:",
                created.info.id, created.info.name, account.email
            );
            println!("{}", created.secret);
        }
        AdminCommand::RevokeApiKey { key } => {
            let info = api_keys::revoke_by_secret(db, &secret_or_stdin(key, "--key")?).await?;
            let before = format!("API key {} ({}, {}…) active", info.id, info.name, info.prefix);
            audit(db, "revoke_api_key", None, None, Some(before), Some("revoked".into())).await?;
            println!("revoked API key {} ({})", info.id, info.name);
        }
        AdminCommand::PauseInstance { instance, reason } => {
            let found = require_instance(db, &instance).await?;
            let reason = reason.trim();
            if reason.is_empty() {
                return Err(gateway::Error::invalid("Give a --reason: the customer's team will ask why."));
            }
            match actions::pause_instance(db, CLI, &found.id, reason).await? {
                Reviewed::Done => println!("instance {} paused for review: {reason}", found.id),
                Reviewed::Unchanged => println!("instance {} was already paused for review", found.id),
            }
        }
        AdminCommand::SetWebhook { instance, url, events } => {
            use gateway::webhooks::destinations;
            let found = require_instance(db, &instance).await?;
            let kinds = destinations::parse_event_list(&[events])?;
            let url = destinations::check_url(&url, config.webhooks.allow_private).await?;
            let (destination, secret) = destinations::create_or_replace(
                db,
                &config.master_key,
                found.account_id,
                &found.id,
                &url,
                &kinds,
                None,
            )
            .await?;
            let names: Vec<_> = destination.events.iter().map(|k| k.as_str()).collect();
            let after = format!("webhook {} to {} for {}", destination.id, url, names.join(","));
            audit(db, "set_webhook", Some(found.account_id), Some(&found.id), None, Some(after)).await?;
            match secret {
                Some(secret) => {
                    println!("created webhook destination {} for {} ({})", destination.id, found.id, names.join(","));
                    println!("{secret}");
                }
                None => println!("replaced the events of webhook destination {} ({})", destination.id, names.join(",")),
            }
        }
        AdminCommand::ListUsers { json } => {
            let all = accounts::list_all(db).await?;
            let rows: Vec<serde_json::Value> = all
                .iter()
                .map(|a| {
                    let limits = a.limits();
                    serde_json::json!({
                        "id": a.id,
                        "email": a.email,
                        "role": a.role.as_str(),
                        "plan": a.plan.as_str(),
                        "daily_limit": limits.map(|l| l.daily),
                        "monthly_limit": limits.map(|l| l.monthly),
                        "api_enabled": a.api_enabled,
                        "threecx_enabled": a.threecx_enabled,
                        "created_at": gateway::time::rfc3339(a.created_at),
                    })
                })
                .collect();
            if json {
                println!("{}", serde_json::Value::Array(rows));
            } else {
                for a in &all {
                    let limits = a
                        .limits()
                        .map(|l| format!("{}/day {}/month", l.daily, l.monthly))
                        .unwrap_or_else(|| "no sending".into());
                    let modules = match (a.api_enabled, a.threecx_enabled) {
                        (true, true) => "api,3cx",
                        (true, false) => "api",
                        (false, true) => "3cx",
                        (false, false) => "none",
                    };
                    println!("{}\t{}\t{}\t{}\t{limits}\t{modules}", a.id, a.email, a.role.as_str(), a.plan.as_str());
                }
            }
        }
        AdminCommand::AuditLog { email, limit, json } => {
            let account_id = match email {
                Some(email) => Some(require_account(db, &email).await?.id),
                None => None,
            };
            let rows = gateway::audit::latest(db, account_id, limit.clamp(1, 10_000)).await?;
            if json {
                println!("{}", serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into()));
            } else {
                for r in rows {
                    println!(
                        "{}\t{}\t{}\taccount {}\t{}\t{} -> {}",
                        gateway::time::rfc3339(r.at),
                        r.actor,
                        r.action,
                        r.account_id.map_or("-".into(), |id| id.to_string()),
                        r.instance_id.as_deref().unwrap_or("-"),
                        r.before.as_deref().unwrap_or("-"),
                        r.after.as_deref().unwrap_or("-"),
                    );
                }
            }
        }
        AdminCommand::ResetPassword { email } => {
            let account = require_account(db, &email).await?;
            let token = actions::reset_link(db, CLI, account.id).await?;
            println!("a password-reset link for {} (good for an hour, once); hand it over:", account.email);
            println!("{}/reset-password?token={token}", config.public_base_url);
        }
        AdminCommand::DisableUser { email } => set_disabled(db, &email, true).await?,
        AdminCommand::EnableUser { email } => set_disabled(db, &email, false).await?,
        AdminCommand::SetRole { email, role } => {
            let parsed = accounts::Role::parse(&role)
                .ok_or_else(|| gateway::Error::invalid(format!("Unknown role {role:?}: use admin or customer.")))?;
            let id = require_account(db, &email).await?.id;
            let account = actions::change_account(db, CLI, id, AccountChange::Role(parsed)).await?;
            println!("{} is now {}", account.email, account.role.as_str());
        }
        AdminCommand::Cluster { json } => {
            if db.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
                return Err(gateway::Error::invalid(
                    "Several servers share a PostgreSQL database only; this one is not.",
                ));
            }
            // A node is judged alive by the lease this server is configured with (15 s if unset).
            let lease_ms = config.cluster.as_ref().map_or(15_000, |c| c.lease.as_millis() as i64);
            let nodes = gateway::cluster::nodes(db, lease_ms).await?;
            let owners = gateway::cluster::owners(db).await?;
            if json {
                let doc = serde_json::json!({"nodes": nodes, "instances": owners});
                println!("{doc}");
            } else {
                if nodes.is_empty() {
                    println!("no server has joined a cluster on this database");
                }
                for n in &nodes {
                    let state = if n.alive { "alive" } else { "dead" };
                    let age = n.heartbeat_age_ms as f64 / 1000.0;
                    println!(
                        "{}\t{}\t{state}\theartbeat {age:.1} s ago\t{} instances",
                        n.id, n.address, n.instances_owned
                    );
                }
                for o in &owners {
                    println!("{}\t{}\tepoch {}", o.instance_id, o.node_id.as_deref().unwrap_or("(none)"), o.epoch);
                }
            }
        }
        AdminCommand::ReviewQueue => {
            let paused = instances::list_review_paused(db).await?;
            if paused.is_empty() {
                println!("no instance is paused for review");
            }
            for instance in paused {
                println!(
                    "{}\taccount {}\t{}\t{}",
                    instance.id,
                    instance.account_id,
                    instance.name,
                    instance.review_reason.unwrap_or_default()
                );
            }
        }
        AdminCommand::ResumeInstance { instance, note } => {
            let found = require_instance(db, &instance).await?;
            match actions::resume_instance(db, CLI, &found.id, note.as_deref()).await? {
                Reviewed::Done => println!("instance {} resumed", found.id),
                Reviewed::Unchanged => println!("instance {} was not paused for review", found.id),
            }
        }
        AdminCommand::CreateInstance { email, name, connector } => {
            let account = require_account(db, &email).await?;
            let connector = connector.trim().to_ascii_lowercase();
            let enabled = gateway::connectors::enabled_names(config);
            if !enabled.contains(&connector.as_str()) {
                let offered = if enabled.is_empty() { "none".to_string() } else { enabled.join(", ") };
                let known = gateway::connectors::KNOWN.contains(&connector.as_str());
                return Err(gateway::Error::invalid(if known {
                    format!("The {connector} connector is not enabled on this server. Enabled: {offered}.")
                } else {
                    format!("Unknown connector {connector:?}: this server offers {offered}.")
                }));
            }
            let instance = instances::create(db, account.id, &name, &connector).await?;
            let after = format!("{} on {}", instance.name, instance.connector);
            audit(db, "create_instance", Some(account.id), Some(&instance.id), None, Some(after)).await?;
            println!(
                "created instance {} for {} on the {} connector",
                instance.name, account.email, instance.connector
            );
            println!("{}", instance.id);
        }
        AdminCommand::CreateThreecxIntegration { email, instance, hmac_secret, ip_allowlist, business_name } => {
            use gateway::threecx::{allowlist::IpAllowlist, integrations};
            let account = require_account(db, &email).await?;
            let given_hmac = hmac_secret.as_deref().map(str::trim).map(str::to_string);
            let new = integrations::NewIntegration {
                instance_id: instance,
                business_name,
                ip_allowlist: IpAllowlist::parse(ip_allowlist.as_deref().unwrap_or(""))?,
                hmac_secret,
            };
            let (integration, secrets) = integrations::create(db, &config.master_key, &account, new).await?;
            let after = format!("3CX integration {}", integration.id);
            audit(db, "create_3cx_integration", Some(account.id), Some(&integration.instance_id), None, Some(after))
                .await?;
            println!("integration_id={}", integration.id);
            println!("secret={}", secrets.webhook_secret);
            if let Some(hmac) = secrets.hmac_secret.as_deref().filter(|h| Some(*h) != given_hmac.as_deref()) {
                println!("hmac_secret={hmac}");
            }
            println!("webhook_url={}/integrations/3cx/webhook/{}", config.public_base_url, integration.id);
        }
    }
    Ok(())
}

async fn set_disabled(db: &DatabaseConnection, email: &str, disable: bool) -> gateway::Result<()> {
    let id = require_account(db, email).await?.id;
    let account = actions::change_account(db, CLI, id, AccountChange::Disabled(disable)).await?;
    println!("{} is {}", account.email, if account.disabled { "disabled" } else { "enabled" });
    Ok(())
}

/// Records a `wag admin` action in the audit log as "cli".
async fn audit(
    db: &DatabaseConnection,
    action: &str,
    account_id: Option<i64>,
    instance_id: Option<&str>,
    before: Option<String>,
    after: Option<String>,
) -> gateway::Result<()> {
    gateway::audit::record(db, gateway::audit::Change { actor: CLI, action, account_id, instance_id, before, after })
        .await
}

fn parse_plan(text: &str) -> gateway::Result<Plan> {
    Plan::parse(text)
        .ok_or_else(|| gateway::Error::invalid(format!("Unknown plan {text:?}: use starter, growth, scale or none.")))
}

async fn require_account(db: &DatabaseConnection, email: &str) -> gateway::Result<accounts::Account> {
    accounts::find_by_email(db, email).await?.ok_or_else(|| {
        gateway::Error::invalid(format!("No account has the email address {}.", email.trim().to_ascii_lowercase()))
    })
}

async fn require_instance(db: &DatabaseConnection, id: &str) -> gateway::Result<instances::Instance> {
    instances::find_for_connector(db, id.trim())
        .await?
        .ok_or_else(|| gateway::Error::invalid(format!("No instance has the id {:?}.", id.trim())))
}
