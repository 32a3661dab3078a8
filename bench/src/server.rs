//! The server under test: finding (and building) `wag`, fresh databases, the child process,
//! `wag admin …` runs, provisioning a tenant, and cleaning everything up afterwards — also
//! after Ctrl-C.
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context};
use sea_orm::{ConnectionTrait, Database};
use tokio::process::{Child, Command};

use crate::{Common, DbKind};

pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const DEFAULT_MYSQL: &str = "mysql://root@127.0.0.1:3306/test";

/// What must go when the bench ends, however it ends: databases it created, temp folders.
#[derive(Default)]
pub struct Cleanup {
    databases: Mutex<Vec<CreatedDb>>,
    dirs: Mutex<Vec<PathBuf>>,
}

#[derive(Clone, Debug)]
struct CreatedDb {
    kind: DbKind,
    admin_url: String,
    name: String,
}

impl Cleanup {
    fn add_dir(&self, dir: PathBuf) {
        self.dirs.lock().unwrap().push(dir);
    }

    fn add_db(&self, db: CreatedDb) {
        self.databases.lock().unwrap().push(db);
    }

    pub async fn run(&self) {
        let dbs: Vec<CreatedDb> = std::mem::take(&mut *self.databases.lock().unwrap());
        for db in dbs {
            if let Err(e) = drop_database(&db).await {
                eprintln!("bench: could not drop database {} ({e}); drop it by hand", db.name);
            }
        }
        let dirs: Vec<PathBuf> = std::mem::take(&mut *self.dirs.lock().unwrap());
        for dir in dirs {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

async fn drop_database(db: &CreatedDb) -> anyhow::Result<()> {
    let conn = Database::connect(db.admin_url.as_str()).await?;
    let sql = match db.kind {
        DbKind::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name),
        _ => format!("DROP DATABASE IF EXISTS {}", db.name),
    };
    conn.execute_unprepared(&sql).await?;
    conn.close().await.ok();
    Ok(())
}

/// `scheme://user@host:port/olddb?x` → `scheme://user@host:port/newdb?x`
pub fn replace_database(server_url: &str, name: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (server_url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{name}?{q}"),
        None => format!("{host_part}/{name}"),
    }
}

/// The database name of a URL (`…/name?x` → `name`).
pub fn database_name(url: &str) -> Option<String> {
    let base = url.split('?').next()?;
    let after_scheme = &base[base.find("://")? + 3..];
    let name = &after_scheme[after_scheme.find('/')? + 1..];
    (!name.is_empty()).then(|| name.to_string())
}

pub fn kind_of_url(url: &str) -> Option<DbKind> {
    if url.starts_with("sqlite:") {
        Some(DbKind::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Some(DbKind::Postgres)
    } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        Some(DbKind::Mysql)
    } else {
        None
    }
}

/// A database and data directory for one `wag` server.
pub struct Workspace {
    pub kind: DbKind,
    pub url: String,
    pub data_dir: PathBuf,
}

impl Workspace {
    /// A fresh temp data directory and a fresh database (removed by `cleanup` unless `keep`).
    pub async fn fresh(common: &Common, cleanup: &Cleanup, tag: &str) -> anyhow::Result<Workspace> {
        let name = format!("wag_bench_{}", ulid::Ulid::new().to_string().to_ascii_lowercase());
        let data_dir = std::env::temp_dir().join(format!("{name}_{tag}"));
        std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        if !common.keep {
            cleanup.add_dir(data_dir.clone());
        }
        let url = match common.db {
            DbKind::Sqlite => format!("sqlite://{}?mode=rwc", data_dir.join("wag.db").display()),
            kind => {
                let admin_url = common.database_server_url.clone().unwrap_or_else(|| {
                    if kind == DbKind::Postgres { DEFAULT_POSTGRES } else { DEFAULT_MYSQL }.to_string()
                });
                let conn = Database::connect(admin_url.as_str())
                    .await
                    .with_context(|| format!("connecting to the database server {admin_url}"))?;
                conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .with_context(|| format!("creating database {name}"))?;
                conn.close().await.ok();
                if !common.keep {
                    cleanup.add_db(CreatedDb { kind, admin_url: admin_url.clone(), name: name.clone() });
                }
                replace_database(&admin_url, &name)
            }
        };
        Ok(Workspace { kind: common.db, url, data_dir })
    }

    /// An existing database the caller keeps (`--reuse-db`); created when missing.
    pub async fn reuse(common: &Common, cleanup: &Cleanup, url: &str) -> anyhow::Result<Workspace> {
        let kind =
            kind_of_url(url).ok_or_else(|| anyhow!("--reuse-db must start with sqlite:, postgres:// or mysql://"))?;
        let data_dir =
            std::env::temp_dir().join(format!("wag_bench_{}_data", ulid::Ulid::new().to_string().to_ascii_lowercase()));
        std::fs::create_dir_all(&data_dir)?;
        if !common.keep {
            cleanup.add_dir(data_dir.clone());
        }
        if kind != DbKind::Sqlite && Database::connect(url).await.is_err() {
            let name = database_name(url).ok_or_else(|| anyhow!("--reuse-db names no database: {url}"))?;
            let admin_url = common
                .database_server_url
                .clone()
                .unwrap_or_else(|| if kind == DbKind::Postgres { DEFAULT_POSTGRES } else { DEFAULT_MYSQL }.to_string());
            let conn =
                Database::connect(admin_url.as_str()).await.with_context(|| format!("connecting to {admin_url}"))?;
            conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .with_context(|| format!("creating database {name}"))?;
            conn.close().await.ok();
            eprintln!("bench: created database {name} for reuse (it is kept)");
        }
        Ok(Workspace { kind, url: url.replacen("mariadb://", "mysql://", 1), data_dir })
    }
}

/// The `wag` binary to run: `--wag`, else `<target>/release/wag` beside this executable,
/// built (or brought up to date) with `cargo build --release -p server` unless `--no-build`.
pub fn locate_wag(common: &Common) -> anyhow::Result<PathBuf> {
    if let Some(path) = &common.wag {
        if !path.is_file() {
            bail!("--wag {}: no such file", path.display());
        }
        return Ok(path.clone());
    }
    let exe = std::env::current_exe().context("locating the bench executable")?;
    let dir = exe.parent().ok_or_else(|| anyhow!("the bench executable has no folder"))?;
    // target/release/bench → target/release/wag; from a debug bench still the release wag:
    // figures from an unoptimised server would mislead.
    let target = if dir.ends_with("deps") { dir.parent().and_then(Path::parent) } else { dir.parent() };
    let release = target.map(|t| t.join("release")).unwrap_or_else(|| dir.to_path_buf());
    let wag = release.join("wag");
    if !common.no_build {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("."));
        eprintln!("bench: cargo build --release -p server (in {})", workspace.display());
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = std::process::Command::new(cargo);
        command.args(["build", "--release", "-p", "server"]).current_dir(workspace);
        // `cargo run` hands its package's variables (CARGO_PKG_NAME=bench, CARGO_MANIFEST_DIR,
        // …) to the program. Build scripts that watch them (ring's does) would see them
        // "changed" and a nested build would recompile half the dependency tree.
        for (key, _) in std::env::vars() {
            if is_cargo_run_variable(&key) {
                command.env_remove(key);
            }
        }
        if let Some(target) = target {
            command.env("CARGO_TARGET_DIR", target);
        }
        match command.status() {
            Ok(s) if s.success() => {}
            Ok(s) if wag.is_file() => {
                eprintln!("bench: cargo build failed ({s}); using the existing {}", wag.display())
            }
            Ok(s) => bail!("cargo build --release -p server failed ({s})"),
            Err(e) if wag.is_file() => eprintln!("bench: cannot run cargo ({e}); using the existing {}", wag.display()),
            Err(e) => bail!("{} is missing and cargo cannot be run: {e}", wag.display()),
        }
    }
    if !wag.is_file() {
        bail!("{} not found (build it with cargo build --release -p server, or pass --wag)", wag.display());
    }
    Ok(wag)
}

/// Variables `cargo run` sets for the program it runs (not settings of cargo itself).
fn is_cargo_run_variable(key: &str) -> bool {
    key.starts_with("CARGO_PKG_")
        || key.starts_with("CARGO_BIN_")
        || matches!(
            key,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "OUT_DIR"
        )
}

/// A port nobody listens on right now.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The environment the bench gives `wag`: throttles lifted to their maximum so the engine is
/// measured, quiet logs, loopback webhooks allowed; then the user's `--env`.
pub fn server_env(
    ws: &Workspace,
    listen: SocketAddr,
    receipt_delay_ms: u64,
    extra: &[String],
) -> anyhow::Result<Vec<(String, String)>> {
    let mut env: Vec<(String, String)> = vec![
        ("WAG_LISTEN".into(), listen.to_string()),
        ("WAG_DATABASE_URL".into(), ws.url.clone()),
        ("WAG_DATA_DIR".into(), ws.data_dir.display().to_string()),
        ("WAG_SEND_RATE_PER_MINUTE".into(), "100000".into()),
        ("WAG_NEW_RECIPIENTS_PER_HOUR".into(), "100000".into()),
        ("WAG_SANDBOX_RECEIPT_DELAY_MS".into(), receipt_delay_ms.to_string()),
        ("WAG_ALLOW_PRIVATE_WEBHOOK_TARGETS".into(), "true".into()),
        ("WAG_WHATSAPP_WEB_ENABLED".into(), "false".into()),
        // JSON lines: the bench counts warnings and errors in the log after the run.
        ("WAG_LOG_FORMAT".into(), "json".into()),
        ("RUST_LOG".into(), "warn".into()),
    ];
    for item in extra {
        let (k, v) = item.split_once('=').ok_or_else(|| anyhow!("--env {item}: write KEY=VALUE"))?;
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v.to_string()));
    }
    Ok(env)
}

/// How long a stopping `wag` may take before it is killed (its own limits add up to 60 s).
pub const STOP_GRACE: Duration = Duration::from_secs(60);

/// A running `wag serve`.
pub struct Server {
    pub wag: PathBuf,
    pub addr: SocketAddr,
    pub base: String,
    pub env: Vec<(String, String)>,
    pub log_path: PathBuf,
    child: Option<Child>,
}

impl Server {
    /// Starts `wag serve` and waits until `/readyz` answers 200.
    pub async fn start(
        wag: &Path,
        ws: &Workspace,
        receipt_delay_ms: u64,
        extra_env: &[String],
    ) -> anyhow::Result<Server> {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let env = server_env(ws, addr, receipt_delay_ms, extra_env)?;
        let log_path = ws.data_dir.join("server.log");
        let log = std::fs::File::create(&log_path)?;
        let mut command = Command::new(wag);
        command
            .arg("serve")
            .env_clear()
            .envs(inherited_env())
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let child = command.spawn().with_context(|| format!("starting {}", wag.display()))?;
        let mut server =
            Server { wag: wag.to_path_buf(), addr, base: format!("http://{addr}"), env, log_path, child: Some(child) };
        server.wait_ready().await?;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().and_then(|c| c.id()).unwrap_or(0)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("wag exited during start ({status}):\n{}", self.log_tail(30));
                }
            }
            if let Ok(r) = client.get(format!("{}/readyz", self.base)).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("wag did not become ready within 120 s:\n{}", self.log_tail(30));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Warning and error lines the server logged, with a few examples.
    pub fn log_summary(&self) -> LogSummary {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let mut summary = LogSummary::default();
        for line in text.lines() {
            let error = line.contains(" ERROR ") || line.contains("\"level\":\"ERROR\"");
            let warn = line.contains(" WARN ") || line.contains("\"level\":\"WARN\"");
            if error {
                summary.errors += 1;
            }
            if warn {
                summary.warnings += 1;
            }
            if (error || warn) && summary.examples.len() < 5 {
                summary.examples.push(strip_ansi(line).chars().take(300).collect());
            }
        }
        summary
    }

    /// SIGTERM (a graceful stop: in-flight requests, webhook attempts and queued connector
    /// events are finished), then SIGKILL after `STOP_GRACE`. Answers the exit status and how
    /// long the stop took.
    pub async fn stop(mut self) -> Option<(std::process::ExitStatus, Duration)> {
        let mut child = self.child.take()?;
        let started = Instant::now();
        if let Some(pid) = child.id() {
            // SAFETY: signalling our own child by its pid.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
        let status = match tokio::time::timeout(STOP_GRACE, child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => {
                let _ = child.kill().await;
                child.wait().await.ok()
            }
        };
        status.map(|s| (s, started.elapsed()))
    }
}

#[derive(Debug, Default, Clone)]
pub struct LogSummary {
    pub warnings: usize,
    pub errors: usize,
    pub examples: Vec<String>,
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The parent environment minus `WAG_*` and `RUST_LOG` (the bench decides those).
fn inherited_env() -> Vec<(String, String)> {
    std::env::vars().filter(|(k, _)| !k.starts_with("WAG_") && k != "RUST_LOG").collect()
}

/// Runs `wag admin …` (or another subcommand) against the workspace's database.
pub async fn wag_cli(wag: &Path, env: &[(String, String)], args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(wag)
        .args(args)
        .env_clear()
        .envs(inherited_env())
        .envs(env.iter().filter(|(k, _)| k != "WAG_LISTEN").cloned())
        .env("RUST_LOG", "error")
        .output()
        .await
        .with_context(|| format!("running wag {}", args.join(" ")))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!("wag {} failed: {}{}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim(), stdout.trim());
    }
    Ok(stdout)
}

pub fn last_line(text: &str) -> String {
    text.lines().last().unwrap_or_default().trim().to_string()
}

/// A tenant provisioned the way an operator and a customer would.
pub struct Tenant {
    pub api_key: String,
    pub instances: Vec<String>,
}

pub const BENCH_PASSWORD: &str = "bench password long enough";

/// `create-user`, `set-plan` with very high reviewed limits, `create-api-key`,
/// `create-instance` × n, and `POST /api/sandbox/link` for each.
pub async fn provision(server: &Server, instances: usize) -> anyhow::Result<Tenant> {
    let email = format!("bench-{}@example.com", ulid::Ulid::new().to_string().to_ascii_lowercase());
    let env = &server.env;
    let wag = &server.wag;
    wag_cli(wag, env, &["admin", "create-user", "--email", &email, "--password", BENCH_PASSWORD, "--plan", "scale"])
        .await?;
    wag_cli(
        wag,
        env,
        &[
            "admin",
            "set-plan",
            "--email",
            &email,
            "--plan",
            "scale",
            "--daily-limit",
            "2000000000",
            "--monthly-limit",
            "2000000000",
        ],
    )
    .await?;
    let api_key =
        last_line(&wag_cli(wag, env, &["admin", "create-api-key", "--email", &email, "--name", "bench"]).await?);
    if !api_key.starts_with("wag_") {
        bail!("create-api-key printed no key: {api_key:?}");
    }
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for i in 0..instances.max(1) {
        let name = format!("bench-{}", i + 1);
        let id =
            last_line(&wag_cli(wag, env, &["admin", "create-instance", "--email", &email, "--name", &name]).await?);
        if !id.starts_with("inst_") {
            bail!("create-instance printed no id: {id:?}");
        }
        let response = client
            .post(format!("{}/api/sandbox/link", server.base))
            .bearer_auth(&api_key)
            .header("content-type", "application/json")
            .body(serde_json::json!({ "instance_id": id }).to_string())
            .send()
            .await?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if !status.is_success() || !body.contains("\"connected\"") {
            bail!("linking {id} answered {status}: {body}");
        }
        ids.push(id);
    }
    Ok(Tenant { api_key, instances: ids })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/postgres", "wag_bench_x"),
            "postgres://postgres@127.0.0.1:5432/wag_bench_x"
        );
        assert_eq!(
            replace_database("mysql://root@127.0.0.1:3306/test?ssl-mode=disabled", "b"),
            "mysql://root@127.0.0.1:3306/b?ssl-mode=disabled"
        );
        assert_eq!(replace_database("mysql://root@h", "b"), "mysql://root@h/b");
        assert_eq!(database_name("postgres://u@h:5/wag_pages?x=1").as_deref(), Some("wag_pages"));
        assert_eq!(database_name("postgres://u@h:5"), None);
        assert_eq!(kind_of_url("sqlite:///tmp/x.db?mode=rwc"), Some(DbKind::Sqlite));
        assert_eq!(kind_of_url("mariadb://root@h/x"), Some(DbKind::Mysql));
    }

    #[test]
    fn nested_cargo_keeps_its_own_settings() {
        assert!(is_cargo_run_variable("CARGO_PKG_NAME"));
        assert!(is_cargo_run_variable("CARGO_MANIFEST_DIR"));
        assert!(!is_cargo_run_variable("CARGO_TARGET_DIR"));
        assert!(!is_cargo_run_variable("CARGO_HOME"));
        assert!(!is_cargo_run_variable("CARGO_INCREMENTAL"));
    }

    #[test]
    fn ansi_is_stripped() {
        assert_eq!(strip_ansi("\u{1b}[33m WARN\u{1b}[0m x"), " WARN x");
    }
}
