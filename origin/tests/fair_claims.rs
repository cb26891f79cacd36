//! Task claiming is fair across tenants (issue 12, point 9): one tenant's backlog does not starve
//! another tenant's first task. Its own test binary: the claim loop is global, so no other origin
//! of the same test process may run executors meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::ALL_SCOPES;
use uuid::Uuid;

async fn a2a(o: &support::Origin, token: &str, method: &str, params: Value) -> Value {
    o.a2a(token, method, params).await.json().await.unwrap()
}

async fn submit(o: &support::Origin, token: &str) -> String {
    let message = json!({"messageId": Uuid::new_v4().to_string(), "role": "ROLE_USER", "parts": [{"text": "work"}],
                         "metadata": {"skill": "probe", "sleep_ms": 150}});
    let r =
        a2a(o, token, "SendMessage", json!({"message": message, "configuration": {"returnImmediately": true}})).await;
    r["result"]["task"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
}

/// When the task finished, by its final status timestamp.
async fn finished_at(o: &support::Origin, token: &str, id: &str) -> chrono::DateTime<chrono::FixedOffset> {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let r = a2a(o, token, "GetTask", json!({"id": id})).await;
        if r["result"]["status"]["state"] == "TASK_STATE_COMPLETED" {
            return chrono::DateTime::parse_from_rfc3339(r["result"]["status"]["timestamp"].as_str().unwrap()).unwrap();
        }
        assert!(Instant::now() < until, "task {id} did not finish: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_tenants_backlog_does_not_starve_another_tenants_first_task() {
    // Tasks earlier test binaries left active on the shared database would be claimed here too
    // (fairly, before the busy tenant's second task): end them first, with no executor running.
    let mut quiet = support::test_config();
    quiet.a2a.workers = 0;
    let quiet = support::start(quiet);
    let admin = support::pg_url(&quiet.config, "agentplane_admin", "admin_password", "agentplane");
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await.unwrap();
    sqlx::query("UPDATE a2a_tasks SET state = 'canceled' WHERE state IN ('submitted', 'working')")
        .execute(&mut conn)
        .await
        .unwrap();

    let mut config = support::test_config();
    // One task at a time, so the order of claims is the order of work.
    config.a2a.workers = 1;
    let o = support::start(config);
    let (busy, newcomer) = (o.token(Uuid::new_v4(), ALL_SCOPES), o.token(Uuid::new_v4(), ALL_SCOPES));
    let mut backlog = Vec::new();
    for _ in 0..6 {
        backlog.push(submit(&o, &busy).await);
    }
    let first = submit(&o, &newcomer).await;
    let newcomer_done = finished_at(&o, &newcomer, &first).await;
    let mut before = 0;
    for id in &backlog {
        if finished_at(&o, &busy, id).await < newcomer_done {
            before += 1;
        }
    }
    println!("the busy tenant's tasks finished before the newcomer's first: {before} of {}", backlog.len());
    // The busy tenant's running task may finish first, and the one claimed with it; not its backlog.
    assert!(before <= 2, "{before} of the busy tenant's tasks ran before the newcomer's first");
}
