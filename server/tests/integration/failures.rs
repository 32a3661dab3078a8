//! Failure tests of the send engine: a real `wag serve` process is killed with SIGKILL at
//! random moments and at fault points inside the send path (after admission, after the
//! connector answered), its settle transactions fail on purpose, and clients hang up
//! mid-request — while 200 sends, each under its own Idempotency-Key, are retried until they
//! get an answer. Afterwards the books must balance: quota used equals messages that may have
//! gone out, no key is left in progress, nothing is both refunded and sent, and every key
//! reached the (sandbox) provider at most once — exactly once when it answered 200.
use std::{
    collections::HashMap,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use rand::Rng;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};

use crate::common::{unique_email, Backend, TestDb, PASSWORD};

on_every_database!(killed_mid_send_nothing_is_lost_or_doubled);

const SENDS: usize = 200;
const CLIENTS: usize = 8;

/// A `wag serve` child process, restarted whenever it dies.
struct Server {
    env: Vec<(String, String)>,
    child: Mutex<Option<Child>>,
    base: String,
    starts: std::sync::atomic::AtomicUsize,
}

impl Server {
    /// Starts a process into the (locked) slot; every start and kill happens under that lock,
    /// so the killer and the reviver never start two at once.
    fn spawn_into(&self, slot: &mut Option<Child>) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wag"));
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("WAG_")) {
            command.env_remove(key);
        }
        command.envs(self.env.iter().cloned()).env("RUST_LOG", "error").stdout(Stdio::null()).stderr(Stdio::null());
        *slot = Some(command.arg("serve").spawn().expect("start wag serve"));
        self.starts.fetch_add(1, Ordering::Relaxed);
    }

    fn kill_in(slot: &mut Option<Child>) {
        if let Some(mut child) = slot.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGKILL, as an operator's `kill -9` or the OOM killer would, then a fresh start.
    fn kill_and_restart(&self) {
        let mut slot = self.child.lock().unwrap();
        Self::kill_in(&mut slot);
        self.spawn_into(&mut slot);
    }

    fn kill(&self) {
        Self::kill_in(&mut self.child.lock().unwrap());
    }

    /// Starts it again if it died (a fault point aborts the process).
    fn revive(&self) {
        let mut slot = self.child.lock().unwrap();
        let dead = match slot.as_mut() {
            Some(child) => child.try_wait().ok().flatten().is_some(),
            None => true,
        };
        if dead {
            self.spawn_into(&mut slot);
        }
    }

    async fn wait_ready(&self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            self.revive();
            if let Ok(r) = client.get(format!("{}/healthz", self.base)).send().await {
                if r.status() == StatusCode::OK {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "the server did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) fn cli(db: &TestDb, args: &[&str]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wag"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("WAG_")) {
        command.env_remove(key);
    }
    let out = command
        .args(args)
        .env("WAG_DATABASE_URL", &db.url)
        .env("WAG_DATA_DIR", &db.data_dir)
        .output()
        .expect("run wag");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[derive(Clone, Debug, PartialEq)]
enum Answer {
    Sent,
    Failed,
}

async fn killed_mid_send_nothing_is_lost_or_doubled(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else { return };
    let started = Instant::now();
    let email = unique_email("crash");
    cli(&db, &["admin", "create-user", "--email", &email, "--password", PASSWORD]);
    cli(
        &db,
        &[
            "admin",
            "set-plan",
            "--email",
            &email,
            "--plan",
            "scale",
            "--daily-limit",
            "100000",
            "--monthly-limit",
            "1000000",
        ],
    );
    let key = cli(&db, &["admin", "create-api-key", "--email", &email, "--name", "ERP"]);
    let instance = cli(&db, &["admin", "create-instance", "--email", &email, "--name", "Line"]);

    let witness = db.data_dir.join("provider-sends.log");
    let port = free_port();
    let env: Vec<(String, String)> = [
        ("WAG_DATABASE_URL", db.url.clone()),
        ("WAG_DATA_DIR", db.data_dir.display().to_string()),
        ("WAG_LISTEN", format!("127.0.0.1:{port}")),
        ("WAG_SEND_RATE_PER_MINUTE", "100000".into()),
        ("WAG_NEW_RECIPIENTS_PER_HOUR", "100000".into()),
        ("WAG_SEND_TIMEOUT_SECS", "1".into()),
        ("WAG_SEND_RECONCILE_AFTER_SECS", "2".into()),
        ("WAG_SANDBOX_RECEIPT_DELAY_MS", "600000".into()),
        (
            "WAG_FAULTS",
            "send.after_admission=crash@0.02,send.after_connector=crash@0.02,send.settle=error@0.3,send.settle.commit=error@0.1"
                .into(),
        ),
        ("WAG_FAULTS_SEND_LOG", witness.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let server = Arc::new(Server {
        env,
        child: Mutex::new(None),
        base: format!("http://127.0.0.1:{port}"),
        starts: Default::default(),
    });
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    server.wait_ready(&client).await;
    let linked = client
        .post(format!("{}/api/sandbox/link", server.base))
        .bearer_auth(&key)
        .json(&json!({ "instance_id": instance }))
        .send()
        .await
        .unwrap();
    assert_eq!(linked.status(), StatusCode::OK);

    // SIGKILL at random moments while the sends run: after every few answers (so the number of
    // kills does not depend on the machine's speed), a random moment later, among requests.
    let sending = Arc::new(AtomicBool::new(true));
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let killer = {
        let (server, sending, answered) = (server.clone(), sending.clone(), answered.clone());
        tokio::spawn(async move {
            let mut next = 0;
            while sending.load(Ordering::Acquire) {
                next += rand::rng().random_range(4..16);
                while answered.load(Ordering::Acquire) < next && sending.load(Ordering::Acquire) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let pause = rand::rng().random_range(0..300);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                if sending.load(Ordering::Acquire) {
                    server.kill_and_restart();
                }
            }
        })
    };
    let reviver = {
        let (server, sending) = (server.clone(), sending.clone());
        tokio::spawn(async move {
            while sending.load(Ordering::Acquire) {
                server.revive();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let answers: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (client, server, answers, next) = (client.clone(), server.clone(), answers.clone(), next.clone());
        let answered = answered.clone();
        let (key, instance) = (key.clone(), instance.clone());
        clients.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::AcqRel);
                if i >= SENDS {
                    return;
                }
                let idem = format!("k-{i:04}");
                let body = json!({
                    "instance_id": instance,
                    "phone": format!("+1555{:07}", 1000 + i),
                    "message": format!("Your order #{} has been shipped. Reference {idem}.", 5000 + i),
                    "message_purpose": "transactional",
                });
                let answer = send_until_answered(&client, &server.base, &key, &idem, &body).await;
                answers.lock().unwrap().insert(idem, answer);
                answered.fetch_add(1, Ordering::AcqRel);
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    sending.store(false, Ordering::Release);
    killer.await.unwrap();
    reviver.await.unwrap();
    server.wait_ready(&client).await;

    // The reconciler settles what the crashes left behind.
    let conn = gateway::db::connect(&db.url).await.unwrap();
    wait_settled(&conn).await;

    let answers = answers.lock().unwrap().clone();
    assert_eq!(answers.len(), SENDS);
    let sent: Vec<&String> = answers.iter().filter(|(_, a)| **a == Answer::Sent).map(|(k, _)| k).collect();
    let provider = each_at_most_once(&witness, &sent);
    // Every message that reached the provider kept its quota unit, and is not refunded.
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT idempotency_key, status, error FROM messages",
        ))
        .await
        .unwrap();
    let mut kept = 0;
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for row in &rows {
        let key: Option<String> = row.try_get_by_index(0).unwrap();
        let status: String = row.try_get_by_index(1).unwrap();
        let error: Option<String> = row.try_get_by_index(2).unwrap();
        let refunded = status == "failed" && !matches!(error.as_deref(), Some("interrupted" | "provider_timeout"));
        let key = key.expect("every message here was sent under a key");
        if provider.contains_key(&key) {
            assert!(!refunded, "{key} reached the provider but its quota was given back ({status}, {error:?})");
        }
        if !refunded {
            kept += 1;
            *per_key.entry(key).or_default() += 1;
        }
    }
    for (key, n) in per_key {
        assert_eq!(n, 1, "{key} has {n} messages that kept their quota");
    }
    let days = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT used FROM usage_counters WHERE period = 'day'",
        ))
        .await
        .unwrap();
    let used: i64 = days.iter().map(|r| i64::from(r.try_get_by_index::<i32>(0).unwrap())).sum();
    assert_eq!(used, kept, "quota used must equal the messages that may have gone out");
    assert!(provider.len() >= SENDS / 2, "most sends got through: {}", provider.len());
    eprintln!(
        "failure test ({backend:?}): {} restarts, {} of {SENDS} reached the provider, {} answered 200, in {:?}",
        server.starts.load(Ordering::Relaxed),
        provider.len(),
        answers.values().filter(|a| **a == Answer::Sent).count(),
        started.elapsed()
    );

    drop(conn);
    server.kill();
    db.drop_database().await;
}

/// Sends with the key until the gateway gives a final answer, across crashes and restarts;
/// one first attempt in five hangs up after a few milliseconds (a client that gives up).
async fn send_until_answered(client: &reqwest::Client, base: &str, key: &str, idem: &str, body: &Value) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut first = true;
    loop {
        assert!(Instant::now() < deadline, "{idem} never got an answer");
        let request = client
            .post(format!("{base}/api/send-message"))
            .bearer_auth(key)
            .header("Idempotency-Key", idem)
            .json(body)
            .send();
        let hang_up = first && rand::rng().random_bool(0.2);
        first = false;
        let response = if hang_up {
            let wait = Duration::from_millis(rand::rng().random_range(1..20));
            match tokio::time::timeout(wait, request).await {
                Ok(r) => r,
                Err(_) => continue,
            }
        } else {
            request.await
        };
        let Ok(response) = response else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        match status {
            StatusCode::OK => return Answer::Sent,
            StatusCode::BAD_GATEWAY => {
                assert_eq!(answer["error"], "gateway_send_failed", "{answer}");
                return Answer::Failed;
            }
            // The first attempt is still running somewhere, or the server is going down.
            StatusCode::CONFLICT | StatusCode::INTERNAL_SERVER_ERROR | StatusCode::SERVICE_UNAVAILABLE => {
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            other => panic!("{idem}: unexpected {other}: {answer}"),
        }
    }
}

/// Waits (up to 60 s) until no message is left accepted and no Idempotency-Key in progress: the
/// reconciler has settled what crashes left behind.
pub(crate) async fn wait_settled(conn: &sea_orm::DatabaseConnection) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let open = count(conn, "SELECT COUNT(*) FROM messages WHERE status = 'accepted'").await;
        let in_progress = gateway::send::idempotency::in_progress_count(conn).await.unwrap();
        if open == 0 && in_progress == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{open} messages still accepted, {in_progress} keys in progress");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What reached the sandbox provider per Idempotency-Key (the witness file has one line per
/// message, ending "Reference <key>."): no key twice, and each key in `sent` (answered 200)
/// exactly once.
pub(crate) fn each_at_most_once(witness: &std::path::Path, sent: &[&String]) -> HashMap<String, usize> {
    let text = std::fs::read_to_string(witness).unwrap_or_default();
    let mut provider: HashMap<String, usize> = HashMap::new();
    for line in text.lines() {
        let key = line.rsplit("Reference ").next().unwrap_or_default().trim_end_matches('.').to_string();
        *provider.entry(key).or_default() += 1;
    }
    for (key, n) in &provider {
        assert_eq!(*n, 1, "{key} reached the provider {n} times");
    }
    for key in sent {
        assert_eq!(provider.get(*key), Some(&1), "{key} answered 200 but never reached the provider");
    }
    provider
}

pub(crate) async fn count(conn: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
    let row =
        conn.query_one_raw(Statement::from_string(conn.get_database_backend(), sql)).await.unwrap().expect("a row");
    row.try_get_by_index::<i64>(0).expect("a count")
}
