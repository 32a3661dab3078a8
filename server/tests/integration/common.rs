//! The test harness: every test starts the whole app on port 0 with a fresh database, on
//! SQLite always and on PostgreSQL / MariaDB when WAG_TEST_POSTGRES_URL / WAG_TEST_MYSQL_URL
//! name a server (each test creates its own database there and drops it afterwards).
#![allow(dead_code)]

use std::{io::Write, path::PathBuf, sync::Once};

use gateway::config::Config;
use reqwest::{header, redirect::Policy, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use server::serve::{self, Running};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    Mysql,
}

/// Generates, for each scenario `fn name(backend)`, a module with one test per database.
#[macro_export]
macro_rules! on_every_database {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { $crate::common::within_limit(super::$name($crate::common::Backend::Sqlite)).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { $crate::common::within_limit(super::$name($crate::common::Backend::Postgres)).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() { $crate::common::within_limit(super::$name($crate::common::Backend::Mysql)).await }
        }
    )*};
}

/// A scenario that hangs fails with its name instead of stalling the whole run.
pub async fn within_limit(scenario: impl std::future::Future<Output = ()>) {
    init_test_logging();
    if tokio::time::timeout(std::time::Duration::from_secs(180), scenario).await.is_err() {
        panic!("the scenario did not finish within 180 s");
    }
}

/// The server's log goes to the test's captured output, shown only when the test fails: every
/// request opening and closing (with its duration) and the engine's warnings, so a failure
/// or a hang can be traced to the step that did not finish.
fn init_test_logging() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_env("WAG_TEST_LOG").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn")
        });
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .with_span_events(
                tracing_subscriber::fmt::format::FmtSpan::NEW | tracing_subscriber::fmt::format::FmtSpan::CLOSE,
            )
            .try_init();
    });
}

static SKIP_POSTGRES: Once = Once::new();
static SKIP_MYSQL: Once = Once::new();

/// Printed straight to stderr (past the test harness's capture), once per test binary.
fn say_skipped(once: &Once, text: &str) {
    once.call_once(|| {
        let _ = writeln!(std::io::stderr(), "{text}");
    });
}

pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    admin_url: Option<String>,
    name: String,
    pub data_dir: PathBuf,
}

impl TestDb {
    /// A fresh, empty database, or `None` when this backend is not configured.
    pub async fn create(backend: Backend) -> Option<TestDb> {
        let name = format!("wag_test_{}", ulid::Ulid::new().to_string().to_ascii_lowercase());
        let data_dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&data_dir).expect("temp dir");
        let (url, admin_url) = match backend {
            Backend::Sqlite => (format!("sqlite://{}?mode=rwc", data_dir.join("wag.db").display()), None),
            Backend::Postgres => {
                let Ok(server) = std::env::var("WAG_TEST_POSTGRES_URL") else {
                    say_skipped(&SKIP_POSTGRES, "PostgreSQL tests skipped: WAG_TEST_POSTGRES_URL is not set");
                    return None;
                };
                (replace_database(&server, &name), Some(server))
            }
            Backend::Mysql => {
                let Ok(server) = std::env::var("WAG_TEST_MYSQL_URL") else {
                    say_skipped(&SKIP_MYSQL, "MySQL/MariaDB tests skipped: WAG_TEST_MYSQL_URL is not set");
                    return None;
                };
                (replace_database(&server, &name), Some(server))
            }
        };
        if let Some(admin) = &admin_url {
            let db = Database::connect(admin.as_str()).await.expect("connect to the test database server");
            db.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
            db.close().await.ok();
        }
        Some(TestDb { backend, url, admin_url, name, data_dir })
    }

    pub async fn drop_database(&self) {
        if let Some(admin) = &self.admin_url {
            if let Ok(db) = Database::connect(admin.as_str()).await {
                let sql = match self.backend {
                    Backend::Postgres => {
                        format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)
                    }
                    _ => format!("DROP DATABASE IF EXISTS {}", self.name),
                };
                let _ = db.execute_unprepared(&sql).await;
                db.close().await.ok();
            }
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// `scheme://user@host:port/olddb?x` → `scheme://user@host:port/newdb?x`
fn replace_database(server_url: &str, name: &str) -> String {
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

pub struct TestApp {
    pub base: String,
    pub db: TestDb,
    pub running: Option<Running>,
    pub conn: sea_orm::DatabaseConnection,
    /// The test's own `WAG_*` settings, given to `wag` CLI runs as well.
    pub extra_env: Vec<(String, String)>,
}

pub struct Options {
    pub registration_enabled: bool,
    pub sandbox_enabled: bool,
    /// More `WAG_*` settings, e.g. `("WAG_SEND_RATE_PER_MINUTE", "2")`.
    pub env: Vec<(&'static str, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Options { registration_enabled: true, sandbox_enabled: true, env: Vec::new() }
    }
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, Options::default()).await
}

pub async fn spawn_app_with(backend: Backend, options: Options) -> Option<TestApp> {
    let db = TestDb::create(backend).await?;
    let env: Vec<(String, String)> = vec![
        ("WAG_DATABASE_URL".into(), db.url.clone()),
        ("WAG_DATA_DIR".into(), db.data_dir.display().to_string()),
        ("WAG_LISTEN".into(), "127.0.0.1:0".into()),
        ("WAG_REGISTRATION_ENABLED".into(), options.registration_enabled.to_string()),
        ("WAG_SANDBOX_ENABLED".into(), options.sandbox_enabled.to_string()),
        ("WAG_SANDBOX_RECEIPT_DELAY_MS".into(), "20".into()),
    ];
    let extra_env: Vec<(String, String)> = options.env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let env: Vec<(String, String)> = env.into_iter().chain(extra_env.clone()).collect();
    let mut config = Config::load_from(None, &env).expect("test config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let addr = listener.local_addr().expect("local addr");
    // The listener's own address, unless the test sets the public URL (an https deployment).
    if !extra_env.iter().any(|(k, _)| k == "WAG_PUBLIC_BASE_URL") {
        config.public_base_url = format!("http://{addr}");
    }
    let running = serve::start(config, listener).await.expect("start the app");
    let conn = gateway::db::connect(&db.url).await.expect("test connection");
    Some(TestApp { base: format!("http://{addr}"), db, running: Some(running), conn, extra_env })
}

impl TestApp {
    pub fn browser(&self) -> Browser {
        let client = reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().expect("client");
        Browser { client, base: self.base.clone() }
    }

    pub fn api(&self) -> reqwest::Client {
        reqwest::Client::builder().redirect(Policy::none()).build().expect("client")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A second server process on this test's database (as when several run behind a load
    /// balancer); returns its base URL and handle.
    pub async fn second_server(&self) -> (String, Running) {
        let env: Vec<(String, String)> = vec![
            ("WAG_DATABASE_URL".into(), self.db.url.clone()),
            ("WAG_DATA_DIR".into(), self.db.data_dir.display().to_string()),
            ("WAG_LISTEN".into(), "127.0.0.1:0".into()),
        ]
        .into_iter()
        .chain(self.extra_env.iter().cloned())
        .collect();
        let mut config = Config::load_from(None, &env).expect("test config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        config.public_base_url = format!("http://{addr}");
        (format!("http://{addr}"), serve::start(config, listener).await.expect("start a second server"))
    }

    /// Stops the server and removes the database.
    pub async fn finish(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
        self.conn.clone().close().await.ok();
        self.db.drop_database().await;
    }

    /// Runs the real `wag` binary against this test's database.
    pub fn wag(&self, args: &[&str]) -> CliOutput {
        self.wag_with_input(args, None)
    }

    /// Like [`TestApp::wag`], with `input` written to its standard input.
    pub fn wag_with_input(&self, args: &[&str], input: Option<&str>) -> CliOutput {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wag"));
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("WAG_")) {
            command.env_remove(key);
        }
        command.envs(self.extra_env.iter().cloned());
        command.args(args).env("WAG_DATABASE_URL", &self.db.url).env("WAG_DATA_DIR", &self.db.data_dir);
        let output = match input {
            None => command.output().expect("run wag"),
            Some(text) => {
                use std::io::Write;
                let mut child = command
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("run wag");
                child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write stdin");
                child.wait_with_output().expect("wait for wag")
            }
        };
        // Servers see CLI changes to keys, plans, modules and instances within a second (they
        // follow a change counter every 250 ms): give them two turns before the test goes on.
        let cached = ["set-plan", "set-module", "revoke-api-key", "pause-instance", "resume-instance"];
        if output.status.success() && args.first() == Some(&"admin") && args.get(1).is_some_and(|a| cached.contains(a))
        {
            std::thread::sleep(std::time::Duration::from_millis(2 * gateway::cache::epoch::POLL_MS + 100));
        }
        CliOutput {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

#[derive(Debug)]
pub struct CliOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    pub fn last_line(&self) -> String {
        self.stdout.lines().last().unwrap_or_default().trim().to_string()
    }
}

/// A browser: a cookie jar, no automatic redirects, and HTML form posts.
pub struct Browser {
    pub client: reqwest::Client,
    pub base: String,
}

pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: String,
    pub set_cookie: Vec<String>,
}

impl Page {
    pub fn csrf_token(&self) -> Option<String> {
        let marker = "name=\"csrf_token\" value=\"";
        let start = self.body.find(marker)? + marker.len();
        let end = self.body[start..].find('"')? + start;
        Some(self.body[start..end].to_string())
    }

    /// The value of the one-time secret input (a new API key).
    pub fn new_api_key(&self) -> Option<String> {
        self.secret("new-api-key")
    }

    /// The value of the one-time secret input with id `id` (each kind of secret has its own).
    pub fn secret(&self, id: &str) -> Option<String> {
        let start = self.body.find(&format!("id=\"{id}\""))?;
        let rest = &self.body[start..];
        let marker = "value=\"";
        let v = rest.find(marker)? + marker.len();
        let end = rest[v..].find('"')? + v;
        Some(rest[v..end].to_string())
    }
}

async fn into_page(response: reqwest::Response) -> Page {
    let status = response.status();
    let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    let set_cookie = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let body = response.text().await.unwrap_or_default();
    Page { status, location, body, set_cookie }
}

impl Browser {
    pub async fn get(&self, path: &str) -> Page {
        let response = self.client.get(format!("{}{path}", self.base)).send().await.expect("GET");
        into_page(response).await
    }

    /// GETs `path`, following redirects within the site (as a browser does after a form post).
    pub async fn visit(&self, path: &str) -> Page {
        let mut path = path.to_string();
        for _ in 0..5 {
            let page = self.get(&path).await;
            match (&page.location, page.status.is_redirection()) {
                (Some(next), true) => path = next.trim_start_matches(&self.base).to_string(),
                _ => return page,
            }
        }
        panic!("too many redirects from {path}");
    }

    /// Posts a form from page `from` to server function `action`, with the page's CSRF token.
    pub async fn submit(&self, from: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let page = self.get(from).await;
        let token = page.csrf_token().unwrap_or_else(|| panic!("no CSRF token on {from}: {}", page.status));
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf_token", token.as_str()));
        self.post_raw(from, action, &form).await
    }

    /// Posts a form as it is given (no CSRF token added).
    pub async fn post_raw(&self, from: &str, action: &str, form: &[(&str, &str)]) -> Page {
        let response = self
            .client
            .post(format!("{}{action}", self.base))
            .header(header::ACCEPT, "text/html,application/xhtml+xml")
            .header(header::REFERER, format!("{}{from}", self.base))
            .form(form)
            .send()
            .await
            .expect("POST");
        into_page(response).await
    }

    pub async fn signup(&self, email: &str, password: &str) -> Page {
        self.submit("/signup", "/_fn/signup", &[("email", email), ("password", password)]).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Page {
        self.submit("/login", "/_fn/login", &[("email", email), ("password", password)]).await
    }

    pub async fn logout(&self) -> Page {
        self.submit("/dashboard", "/_fn/logout", &[]).await
    }

    /// Creates an API key from the portal and returns the full key shown once.
    pub async fn create_api_key(&self, name: &str) -> String {
        let posted = self.submit("/api-keys", "/_fn/api-keys/create", &[("name", name)]).await;
        assert_eq!(posted.location.as_deref(), Some("/api-keys"), "create key redirects back");
        let page = self.get("/api-keys").await;
        page.new_api_key().expect("the new key is shown")
    }

    /// Creates an instance from the portal and returns its id (the post lands on its Connect tab).
    pub async fn create_instance(&self, name: &str) -> String {
        let posted = self.submit("/instances", "/_fn/instances/create", &[("name", name)]).await;
        let location = posted.location.expect("create instance redirects");
        let id = location
            .strip_prefix("/instances/")
            .and_then(|rest| rest.strip_suffix("/manage?tab=connect"))
            .unwrap_or_else(|| panic!("create instance lands on the new instance's Connect tab, not {location}"));
        assert!(id.starts_with("inst_"), "{location}");
        id.to_string()
    }
}

pub fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@example.com", ulid::Ulid::new().to_string().to_ascii_lowercase())
}

pub const PASSWORD: &str = "correct horse battery";
