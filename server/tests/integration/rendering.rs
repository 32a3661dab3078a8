//! Portal pages keep rendering while other servers start in the same process. Building a
//! server's routes renders the app once with resource loads suppressed through a process-wide
//! flag (leptos_server's `SuppressResourceLoad`); a page whose resource first ran at that moment
//! stayed pending forever (leptos #4773). In the test suite, where many servers start in one
//! process, that hung random portal requests. Routes are now generated once per process.
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::common::{spawn_app, unique_email, within_limit, Backend, PASSWORD};

/// How long other servers keep starting (each on a runtime of its own, as parallel tests do).
/// Before the fix, a render hung within 20–100 s in every run.
const CHURN: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_render_while_other_servers_start() {
    within_limit(async {
        let app = spawn_app(Backend::Sqlite).await.expect("SQLite is always there");
        let alice = app.browser();
        alice.signup(&unique_email("alice"), PASSWORD).await;
        let instance = alice.create_instance("Render line").await;
        let page = format!("/instances/{instance}/manage");

        let churn = std::thread::spawn(|| {
            let start = Instant::now();
            let mut started = 0;
            while start.elapsed() < CHURN {
                let runtime =
                    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
                runtime.block_on(async {
                    let other = spawn_app(Backend::Sqlite).await.unwrap();
                    let bob = other.browser();
                    bob.signup(&unique_email("bob"), PASSWORD).await;
                    bob.create_instance("Other line").await;
                    other.finish().await;
                });
                started += 1;
            }
            started
        });
        let render = |_| async {
            let mut rendered = 0;
            loop {
                let view = tokio::time::timeout(Duration::from_secs(20), alice.get(&page))
                    .await
                    .unwrap_or_else(|_| panic!("{page} hung after {rendered} renders"));
                assert_eq!(view.status, StatusCode::OK);
                assert!(view.body.contains("Render line"));
                rendered += 1;
            }
        };
        let rendering = futures::future::join_all((0..4).map(render));
        let churn_done = async {
            while !churn.is_finished() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::select! {
            _ = churn_done => {},
            _ = rendering => unreachable!("rendering stops only by panicking"),
        }
        assert!(churn.join().expect("the other servers started and stopped") > 0);
        app.finish().await;
    })
    .await;
}
