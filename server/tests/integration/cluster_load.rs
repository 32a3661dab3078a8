//! Three `wag serve` nodes on one PostgreSQL database under load (issue 15's acceptance test):
//! 300 sandbox instances linked through random nodes; sends under Idempotency-Keys through
//! random nodes while one node is killed with SIGKILL and, later, another is restarted the way
//! a rolling upgrade does (SIGTERM, then a new process). Afterwards: every instance has exactly
//! one live owner, those of the killed node at a higher epoch within the lease and two seconds;
//! every key reached the (sandbox) provider at most once, exactly once when it answered 200;
//! and every event the database committed reached the loopback webhook receiver.
use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, RwLock,
    },
    time::{Duration, Instant},
};

use rand::Rng;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    cluster::{balanced_over, owners_until_with, signal, start_node_with, Node},
    common::{Backend, TestDb},
    failures::{cli, each_at_most_once, wait_settled},
    webhooks::{fast_webhooks, Receiver},
};

const LEASE_SECS: u64 = 5;
const INSTANCES: usize = 300;
const SENDS: usize = 300;
const CLIENTS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_under_load_loses_and_doubles_nothing() {
    crate::common::within_limit(under_load()).await
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    Sent,
    Failed,
}

/// The bases of the nodes that are up, for clients to pick from.
type Bases = Arc<RwLock<Vec<String>>>;

fn pick(bases: &Bases) -> String {
    let bases = bases.read().unwrap();
    bases[rand::rng().random_range(0..bases.len())].clone()
}

async fn under_load() {
    let Some(db) = TestDb::create(Backend::Postgres).await else { return };
    let started = Instant::now();
    let conn = gateway::db::open(&db.url).await.unwrap();
    let email = crate::common::unique_email("cluster-load");
    cli(&db, &["admin", "create-user", "--email", &email, "--password", crate::common::PASSWORD]);
    let limits = ["--plan", "scale", "--daily-limit", "100000", "--monthly-limit", "1000000"];
    cli(&db, &[&["admin", "set-plan", "--email", &email][..], &limits[..]].concat());
    let key = cli(&db, &["admin", "create-api-key", "--email", &email, "--name", "ERP"]);
    let account = gateway::accounts::find_by_email(&conn, &email).await.unwrap().expect("the account");

    let (receiver, hook) = Receiver::start(&[]).await;
    let master = gateway::config::MasterKey([0x11; 32]);
    let mut instances = Vec::with_capacity(INSTANCES);
    for i in 0..INSTANCES {
        let instance = gateway::instances::create(&conn, account.id, &format!("Line {i}"), "sandbox").await.unwrap();
        let kinds = gateway::events::EventKind::ALL;
        gateway::webhooks::destinations::create_or_replace(
            &conn,
            &master,
            account.id,
            &instance.id,
            &hook,
            &kinds,
            None,
        )
        .await
        .unwrap();
        instances.push(instance.id);
    }

    let witness = db.data_dir.join("provider-sends.log");
    let mut env = fast_webhooks();
    env.extend([
        ("WAG_SEND_RATE_PER_MINUTE", "100000".to_string()),
        ("WAG_NEW_RECIPIENTS_PER_HOUR", "100000".to_string()),
        ("WAG_SANDBOX_RECEIPT_DELAY_MS", "200".to_string()),
        // A request the killed node was answering stays in progress until a live node's
        // reconciler settles it; soon here, so its retries get their answer.
        ("WAG_SEND_TIMEOUT_SECS", "2".to_string()),
        ("WAG_SEND_RECONCILE_AFTER_SECS", "3".to_string()),
        ("WAG_FAULTS_SEND_LOG", witness.display().to_string()),
    ]);
    let mut nodes: Vec<Node> = (0..3).map(|n| start_node_with(&db, &format!("node{n}"), LEASE_SECS, &env)).collect();
    let limit = Duration::from_secs(60);
    owners_until_with(&conn, LEASE_SECS, limit, |o, n| balanced_over(o, n, 3, INSTANCES))
        .await
        .expect("three nodes share 300 instances");
    let bases: Bases = Arc::new(RwLock::new(nodes.iter().map(|n| n.base.clone()).collect()));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();

    // Link all 300 through random nodes.
    let next = Arc::new(AtomicUsize::new(0));
    let instances = Arc::new(instances);
    let linkers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (http, bases, key, next, instances) =
                (http.clone(), bases.clone(), key.clone(), next.clone(), instances.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::AcqRel);
                    let Some(instance) = instances.get(i) else { return };
                    let linked = http
                        .post(format!("{}/api/sandbox/link", pick(&bases)))
                        .bearer_auth(&key)
                        .json(&json!({ "instance_id": instance }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(linked.status(), StatusCode::OK, "{}", linked.text().await.unwrap());
                }
            })
        })
        .collect();
    for linker in linkers {
        linker.await.unwrap();
    }
    let linked_at = started.elapsed();

    // Sends through random nodes; a third of the way in, node 0 is killed; two thirds in,
    // node 1 is restarted as a rolling upgrade would.
    let answered = Arc::new(AtomicUsize::new(0));
    let answers: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (http, bases, key, next, instances) =
            (http.clone(), bases.clone(), key.clone(), next.clone(), instances.clone());
        let (answers, answered) = (answers.clone(), answered.clone());
        clients.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::AcqRel);
                if i >= SENDS {
                    return;
                }
                let idem = format!("k-{i:04}");
                let body = json!({
                    "instance_id": instances[i % INSTANCES],
                    "phone": format!("+1555{:07}", 1000 + i),
                    "message": format!("Your order #{} has been shipped. Reference {idem}.", 5000 + i),
                    "message_purpose": "transactional",
                });
                let answer = send_through_any(&http, &bases, &key, &idem, &body).await;
                answers.lock().unwrap().insert(idem, answer);
                answered.fetch_add(1, Ordering::AcqRel);
            }
        }));
    }

    let wait_for = |n: usize| {
        let answered = answered.clone();
        async move {
            while answered.load(Ordering::Acquire) < n {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    wait_for(SENDS / 3).await;
    let before = gateway::cluster::owners(&conn).await.unwrap();
    let node_ids = gateway::cluster::nodes(&conn, (LEASE_SECS * 1000) as i64).await.unwrap();
    let victim = node_ids
        .iter()
        .map(|n| n.id.clone())
        .find(|id| std::fs::read_to_string(&nodes[0].log).unwrap().contains(id.as_str()))
        .expect("node 0's id is in its log");
    bases.write().unwrap().retain(|b| *b != nodes[0].base);
    nodes[0].child.kill().unwrap();
    nodes[0].child.wait().unwrap();
    let (after, took) = owners_until_with(&conn, LEASE_SECS, limit, |o, n| balanced_over(o, n, 2, INSTANCES))
        .await
        .expect("two nodes take over");
    let moved = before.iter().filter(|o| o.node_id.as_deref() == Some(victim.as_str())).count();
    assert!(moved > 0);
    for gone in before.iter().filter(|o| o.node_id.as_deref() == Some(victim.as_str())) {
        let now = after.iter().find(|o| o.instance_id == gone.instance_id).unwrap();
        assert!(now.epoch > gone.epoch, "{} kept epoch {}", gone.instance_id, gone.epoch);
    }
    assert!(took <= Duration::from_secs(LEASE_SECS + 2), "{moved} instances of the killed node moved after {took:?}");

    wait_for(2 * SENDS / 3).await;
    bases.write().unwrap().retain(|b| *b != nodes[1].base);
    signal(&nodes[1], "TERM");
    nodes[1].child.wait().unwrap();
    let restarted = start_node_with(&db, "node1-upgraded", LEASE_SECS, &env);
    wait_ready(&http, &restarted.base).await;
    bases.write().unwrap().push(restarted.base.clone());
    nodes.push(restarted);
    for client in clients {
        client.await.unwrap();
    }
    owners_until_with(&conn, LEASE_SECS, limit, |o, n| balanced_over(o, n, 2, INSTANCES))
        .await
        .expect("the upgraded node takes its share");

    // The books: nothing left accepted or in progress, nothing twice.
    wait_settled(&conn).await;
    let answers = answers.lock().unwrap().clone();
    assert_eq!(answers.len(), SENDS);
    let answered_sent: Vec<&String> = answers.iter().filter(|(_, a)| **a == Answer::Sent).map(|(k, _)| k).collect();
    let provider = each_at_most_once(&witness, &answered_sent);
    let sent = answers.values().filter(|a| **a == Answer::Sent).count();
    assert!(sent >= SENDS / 2, "most sends got through: {sent} of {SENDS}");

    // Every committed event reached the receiver (deliveries retry across the nodes).
    let committed: HashSet<String> = {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
        gateway::entities::event::Entity::find()
            .filter(gateway::entities::event::Column::AccountId.eq(account.id))
            .select_only()
            .column(gateway::entities::event::Column::EventId)
            .into_tuple::<String>()
            .all(&conn)
            .await
            .unwrap()
            .into_iter()
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let missing = loop {
        let got: HashSet<String> = receiver
            .got
            .lock()
            .unwrap()
            .iter()
            .filter_map(|r| r.headers.get("webhook-id").and_then(|v| v.to_str().ok()).map(str::to_string))
            .collect();
        let missing: Vec<&String> = committed.iter().filter(|id| !got.contains(*id)).collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing.len();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(missing, 0, "{missing} of {} committed events never reached the receiver", committed.len());
    println!(
        "cluster under load: {INSTANCES} instances linked in {linked_at:?}; failover of {moved} instances in \
         {took:?}; {sent} of {SENDS} sends answered 200, {} reached the provider once, none twice; {} events \
         delivered; {:?} in all",
        provider.len(),
        committed.len(),
        started.elapsed()
    );

    for node in &mut nodes[1..] {
        if node.child.try_wait().unwrap().is_none() {
            signal(node, "TERM");
            let _ = node.child.wait();
        }
    }
    conn.close().await.ok();
    db.drop_database().await;
}

async fn wait_ready(http: &reqwest::Client, base: &str) {
    for _ in 0..300 {
        if http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{base} did not come up");
}

/// Sends with the key through any node that is up until a final answer: 200 (sent) or 502
/// (`gateway_send_failed`: refused or unknown, never resent).
async fn send_through_any(http: &reqwest::Client, bases: &Bases, key: &str, idem: &str, body: &Value) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "{idem} never got an answer");
        let response = http
            .post(format!("{}/api/send-message", pick(bases)))
            .bearer_auth(key)
            .header("Idempotency-Key", idem)
            .json(body)
            .send()
            .await;
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
            // The first attempt still runs somewhere, the owner is changing, or a node stops.
            StatusCode::CONFLICT
            | StatusCode::INTERNAL_SERVER_ERROR
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::UNPROCESSABLE_ENTITY => {
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            other => panic!("{idem}: unexpected {other}: {answer}"),
        }
    }
}
