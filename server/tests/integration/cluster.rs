//! Several `wag` servers on one database (issue 15): migrations run once however many servers
//! start together; on PostgreSQL, each instance's connection has exactly one live owner.
use crate::common::{Backend, TestDb};

on_every_database!(servers_starting_together_migrate_once, work_under_one_lock_runs_on_one_server_at_a_time);

/// Four servers starting at once on an empty database: each migrates, one after the other, and
/// every one of them starts; the schema is there once.
async fn servers_starting_together_migrate_once(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else { return };
    let starts = (0..4).map(|_| {
        let url = db.url.clone();
        tokio::spawn(async move {
            let conn = gateway::db::connect(&url).await.expect("connect");
            let migrated = gateway::db::migrate(&conn).await;
            conn.close().await.ok();
            migrated
        })
    });
    for started in futures::future::join_all(starts).await {
        started.unwrap().expect("every server migrates without an error");
    }
    let conn = gateway::db::connect(&db.url).await.unwrap();
    use sea_orm::{ConnectionTrait, Statement};
    let applied = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT COUNT(*) AS n FROM seaql_migrations",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    use migrations::MigratorTrait;
    assert_eq!(applied as usize, migrations::Migrator::migrations().len());
    conn.close().await.ok();
    db.drop_database().await;
}

/// Hourly housekeeping runs under `db::alone`: while one server holds the lock, another skips
/// its round (SQLite, one machine's file, always runs it).
async fn work_under_one_lock_runs_on_one_server_at_a_time(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else { return };
    let conn = gateway::db::open(&db.url).await.unwrap();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let holder = {
        let conn = conn.clone();
        tokio::spawn(async move {
            gateway::db::alone(&conn, 42, async {
                let _ = released.await;
                "first"
            })
            .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let second = gateway::db::alone(&conn, 42, async { "second" }).await.unwrap();
    let expected = if matches!(backend, Backend::Sqlite) { Some("second") } else { None };
    assert_eq!(second, expected);
    release.send(()).unwrap();
    assert_eq!(holder.await.unwrap().unwrap(), Some("first"));
    assert_eq!(gateway::db::alone(&conn, 42, async { "third" }).await.unwrap(), Some("third"), "free again");
    conn.close().await.ok();
    db.drop_database().await;
}

/// Three `wag serve` processes on one PostgreSQL database with a 3 s lease. Every instance gets
/// exactly one owner, shares are fair; a node killed with SIGKILL loses its instances to the
/// others within the lease and two seconds, each with a higher epoch; a node stopped past its
/// lease (SIGSTOP) fences itself when it runs again, and the shares even out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_move_when_a_node_dies_or_stalls() {
    crate::common::within_limit(three_nodes()).await
}

const LEASE_SECS: u64 = 3;
const INSTANCES: usize = 12;

pub(crate) struct Node {
    pub(crate) child: std::process::Child,
    pub(crate) log: std::path::PathBuf,
    pub(crate) base: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_node(db: &TestDb, n: usize) -> Node {
    start_node_with(db, &format!("node{n}"), LEASE_SECS, &[])
}

/// A `wag serve` node with its own data dir (`name`), the shared master key, `lease_secs` and
/// `extra` settings.
pub(crate) fn start_node_with(db: &TestDb, name: &str, lease_secs: u64, extra: &[(&str, String)]) -> Node {
    let port = free_port();
    let data = db.data_dir.join(name);
    std::fs::create_dir_all(&data).unwrap();
    let log = data.join("server.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wag"));
    let child = command
        .arg("serve")
        .env_clear()
        .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WAG_DATABASE_URL", &db.url)
        .env("WAG_DATA_DIR", &data)
        .env("WAG_LISTEN", format!("127.0.0.1:{port}"))
        .env("WAG_MASTER_KEY", "11".repeat(32))
        .env("WAG_NODE_ADDRESS", format!("http://127.0.0.1:{port}"))
        .env("WAG_NODE_LEASE_SECS", lease_secs.to_string())
        .env("RUST_LOG", "info")
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("start wag serve");
    Node { child, log, base: format!("http://127.0.0.1:{port}") }
}

pub(crate) fn signal(node: &Node, name: &str) {
    let status = std::process::Command::new("kill").arg(format!("-{name}")).arg(node.child.id().to_string()).status();
    assert!(status.unwrap().success(), "kill -{name}");
}

/// Polls the owner rows until `done` accepts them (every 100 ms, up to `limit`).
async fn owners_until(
    conn: &sea_orm::DatabaseConnection,
    limit: std::time::Duration,
    done: impl Fn(&[gateway::cluster::OwnerView], &[gateway::cluster::NodeView]) -> bool,
) -> Option<(Vec<gateway::cluster::OwnerView>, std::time::Duration)> {
    owners_until_with(conn, LEASE_SECS, limit, done).await
}

pub(crate) async fn owners_until_with(
    conn: &sea_orm::DatabaseConnection,
    lease_secs: u64,
    limit: std::time::Duration,
    done: impl Fn(&[gateway::cluster::OwnerView], &[gateway::cluster::NodeView]) -> bool,
) -> Option<(Vec<gateway::cluster::OwnerView>, std::time::Duration)> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        let owners = gateway::cluster::owners(conn).await.unwrap();
        let nodes = gateway::cluster::nodes(conn, (lease_secs * 1000) as i64).await.unwrap();
        if done(&owners, &nodes) {
            return Some((owners, start.elapsed()));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    None
}

/// Every instance owned by a live node, each live node holding its fair share (±1).
fn balanced(owners: &[gateway::cluster::OwnerView], nodes: &[gateway::cluster::NodeView], live: usize) -> bool {
    balanced_over(owners, nodes, live, INSTANCES)
}

pub(crate) fn balanced_over(
    owners: &[gateway::cluster::OwnerView],
    nodes: &[gateway::cluster::NodeView],
    live: usize,
    instances: usize,
) -> bool {
    let alive: Vec<&str> = nodes.iter().filter(|n| n.alive).map(|n| n.id.as_str()).collect();
    if alive.len() != live || owners.len() != instances {
        return false;
    }
    let share = instances.div_ceil(live);
    owners.iter().all(|o| o.node_id.as_deref().is_some_and(|n| alive.contains(&n)))
        && alive.iter().all(|n| {
            let held = owners.iter().filter(|o| o.node_id.as_deref() == Some(*n)).count();
            held + 1 >= share && held <= share + 1
        })
}

async fn three_nodes() {
    let Some(db) = TestDb::create(Backend::Postgres).await else { return };
    let conn = gateway::db::open(&db.url).await.unwrap();
    let owner = gateway::accounts::create(
        &conn,
        gateway::accounts::NewAccount {
            email: gateway::accounts::Email::parse("cluster@example.com").unwrap(),
            password: gateway::accounts::NewPassword::parse("a long enough password").unwrap(),
            role: gateway::accounts::Role::Customer,
            plan: gateway::plans::Plan::Starter,
            api_enabled: true,
            threecx_enabled: false,
        },
    )
    .await
    .unwrap();
    for i in 0..INSTANCES {
        gateway::instances::create(&conn, owner.id, &format!("Line {i}"), "sandbox").await.unwrap();
    }
    let mut nodes: Vec<Node> = (0..3).map(|n| start_node(&db, n)).collect();
    let limit = std::time::Duration::from_secs(30);
    let (before, _) =
        owners_until(&conn, limit, |o, n| balanced(o, n, 3)).await.expect("three nodes share the instances");
    let ids = gateway::cluster::nodes(&conn, 3000).await.unwrap();
    assert_eq!(ids.len(), 3);

    // The operator overview of any node shows every node and each instance's owner and epoch.
    gateway::accounts::create(
        &conn,
        gateway::accounts::NewAccount {
            email: gateway::accounts::Email::parse("operator@example.com").unwrap(),
            password: gateway::accounts::NewPassword::parse("a long enough password").unwrap(),
            role: gateway::accounts::Role::Admin,
            plan: gateway::plans::Plan::Starter,
            api_enabled: true,
            threecx_enabled: false,
        },
    )
    .await
    .unwrap();
    let client =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let operator = crate::common::Browser { client, base: nodes[1].base.clone() };
    operator.login("operator@example.com", "a long enough password").await;
    let page = operator.get("/admin").await;
    assert_eq!(page.status, reqwest::StatusCode::OK);
    for node in &ids {
        assert!(page.body.contains(node.id.as_str()), "node {} is listed", node.id);
    }
    assert!(page.body.contains(&format!("Owner and epoch of each of {INSTANCES} instances")), "{}", page.body);
    assert!(page.body.contains(before[0].instance_id.as_str()));

    // Any node takes any request: links and sends reach the instance's owner. A retry with the
    // same Idempotency-Key through another node answers the first answer; nothing is sent twice.
    let key = gateway::api_keys::create(&conn, owner.id, "ERP").await.unwrap().secret;
    let http = reqwest::Client::new();
    let instances: Vec<String> = before.iter().map(|o| o.instance_id.clone()).collect();
    for (i, instance) in instances.iter().enumerate() {
        let linked = http
            .post(format!("{}/api/sandbox/link", nodes[i % 3].base))
            .bearer_auth(&key)
            .json(&serde_json::json!({ "instance_id": instance }))
            .send()
            .await
            .unwrap();
        assert_eq!(linked.status(), reqwest::StatusCode::OK, "{}", linked.text().await.unwrap());
    }
    let mut sent = Vec::new();
    for (i, instance) in instances.iter().enumerate() {
        let body = serde_json::json!({
            "instance_id": instance,
            "phone": format!("+9665012345{i:02}"),
            "message": "Your order has shipped. Track it in your customer portal.",
            "message_purpose": "transactional",
        });
        let mut answers = Vec::new();
        for via in [(i + 1) % 3, (i + 2) % 3] {
            let answer = http
                .post(format!("{}/api/send-message", nodes[via].base))
                .bearer_auth(&key)
                .header("idempotency-key", format!("order-{i}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), reqwest::StatusCode::OK);
            answers.push(answer.json::<serde_json::Value>().await.unwrap());
        }
        assert_eq!(answers[0]["status"], "sent", "{answers:?}");
        assert_eq!(answers[0]["message_id"], answers[1]["message_id"], "the retry answers the first answer");
        sent.push(answers[0]["message_id"].as_str().unwrap().to_string());
    }
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let messages = gateway::entities::message::Entity::find().count(&conn).await.unwrap();
    assert_eq!(messages as usize, INSTANCES, "one message per key");
    let failed = gateway::entities::message::Entity::find()
        .filter(gateway::entities::message::Column::Status.eq("failed"))
        .count(&conn)
        .await
        .unwrap();
    assert_eq!(failed, 0);

    // SIGKILL one: its instances move within the lease and two seconds, at a higher epoch.
    let victim_pid = nodes[0].child.id();
    nodes[0].child.kill().unwrap();
    nodes[0].child.wait().unwrap();
    let victim = ids
        .iter()
        .map(|n| n.id.clone())
        .find(|id| std::fs::read_to_string(&nodes[0].log).unwrap().contains(id.as_str()))
        .expect("the killed node's id is in its log");
    let (after, took) = owners_until(&conn, limit, |o, n| balanced(o, n, 2)).await.expect("two nodes take over");
    println!("failover: every instance of the killed node had a new owner {took:?} after SIGKILL");
    assert!(
        took <= std::time::Duration::from_secs(LEASE_SECS + 2),
        "instances of the killed node (pid {victim_pid}) moved after {took:?}"
    );
    for moved in before.iter().filter(|o| o.node_id.as_deref() == Some(victim.as_str())) {
        let now = after.iter().find(|o| o.instance_id == moved.instance_id).unwrap();
        assert!(now.epoch > moved.epoch, "{} kept epoch {}", moved.instance_id, moved.epoch);
        assert_ne!(now.node_id.as_deref(), Some(victim.as_str()));
    }

    // SIGSTOP another past its lease, right after it sent a message (its receipts are due in
    // 2 s): the last node takes everything. SIGCONT: the stalled node fences itself, and the
    // receipts its old session would write now are refused (stale epoch), so the message stays
    // as the new owner knows it; the shares even out.
    let stalled = ids
        .iter()
        .map(|n| n.id.clone())
        .find(|id| std::fs::read_to_string(&nodes[1].log).unwrap().contains(id.as_str()))
        .expect("the node's id is in its log");
    let owned = gateway::cluster::owners(&conn).await.unwrap();
    let theirs = owned.iter().find(|o| o.node_id.as_deref() == Some(stalled.as_str())).expect("it owns one").clone();
    let body = serde_json::json!({
        "instance_id": theirs.instance_id,
        "phone": "+966501234599",
        "message": "Your appointment is confirmed for Sunday at 10:00.",
        "message_purpose": "transactional",
    });
    let answer = http.post(format!("{}/api/send-message", nodes[2].base)).bearer_auth(&key).json(&body).send().await;
    let answer: serde_json::Value = answer.unwrap().json().await.unwrap();
    assert_eq!(answer["status"], "sent", "{answer}");
    signal(&nodes[1], "STOP");
    owners_until(&conn, limit, |o, n| balanced(o, n, 1)).await.expect("the last live node holds every instance");
    signal(&nodes[1], "CONT");
    owners_until(&conn, limit, |o, n| balanced(o, n, 2)).await.expect("the stalled node is back with its share");
    let log = std::fs::read_to_string(&nodes[1].log).unwrap();
    assert!(log.contains("lease not renewed in time"), "the stalled node fenced itself");
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let message = gateway::entities::message::Entity::find()
        .filter(gateway::entities::message::Column::MessageId.eq(answer["message_id"].as_str().unwrap()))
        .one(&conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.status, "sent", "no receipt of the stalled node's old session was written");

    // An instance created a moment ago has no owner yet: a link through any node waits the
    // moment it takes a node to claim it.
    let late = gateway::instances::create(&conn, owner.id, "Late line", "sandbox").await.unwrap();
    let linked = http
        .post(format!("{}/api/sandbox/link", nodes[2].base))
        .bearer_auth(&key)
        .json(&serde_json::json!({ "instance_id": late.id }))
        .send()
        .await
        .unwrap();
    assert_eq!(linked.status(), reqwest::StatusCode::OK, "{}", linked.text().await.unwrap());

    for node in &mut nodes[1..] {
        signal(node, "TERM");
        let _ = node.child.wait();
    }
    // Leaving hands instances back at once: none is owned by a node that left.
    let owners = gateway::cluster::owners(&conn).await.unwrap();
    assert!(owners.iter().all(|o| o.node_id.is_none()), "{owners:?}");
    conn.close().await.ok();
    db.drop_database().await;
}
