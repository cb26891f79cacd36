//! `agentplane backup` while an origin serves, then `agentplane restore` into a fresh data dir:
//! every document, task (with its events and artifacts) and ledger row of the tenant comes back,
//! and an origin serving the restored data dir answers from it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;

use serde_json::{Value, json};
use support::processes::{agentplane, free_port, fresh_data_dir, mint, serve};

const TENANT: &str = "bac0b000-0000-4000-8000-000000000001";

/// A transaction of the service role on the embedded database in `data`, in the tenant's scope.
async fn tenant_tx(data: &Path) -> (sqlx::PgPool, sqlx::Transaction<'static, sqlx::Postgres>) {
    let creds: Value = serde_json::from_slice(&std::fs::read(data.join("pg/credentials.json")).unwrap()).unwrap();
    let url = format!(
        "postgres://agentplane:{}@127.0.0.1:{}/agentplane",
        creds["app_password"].as_str().unwrap(),
        creds["port"]
    );
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)").bind(TENANT).execute(&mut *tx).await.unwrap();
    (pool, tx)
}

/// The tenant's rows per table, read as the service role under the tenant's RLS scope.
async fn counts(data: &Path) -> Vec<(String, i64, Option<String>)> {
    let (pool, mut tx) = tenant_tx(data).await;
    let mut out = Vec::new();
    for (table, key) in [
        ("documents", "string_agg(id::text || ':' || title, ',' ORDER BY id)"),
        ("a2a_tasks", "string_agg(id::text || ':' || state, ',' ORDER BY id)"),
        ("a2a_task_events", "max(seq)::text"),
        ("a2a_artifacts", "NULL"),
        ("usage_ledger", "sum(cost_micros)::text"),
    ] {
        let (n, digest): (i64, Option<String>) =
            sqlx::query_as(&format!("SELECT count(*), {key} FROM {table}")).fetch_one(&mut *tx).await.unwrap();
        out.push((table.to_owned(), n, digest));
    }
    tx.commit().await.unwrap();
    pool.close().await;
    out
}

async fn mcp_call(port: u16, token: &str, tool: &str, arguments: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/mcp"))
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", tool)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {}},
            "name": tool, "arguments": arguments}}))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert!(body.get("error").is_none() && body["result"]["isError"] != true, "{tool}: {body}");
    body["result"].clone()
}

#[tokio::test]
async fn a_backup_taken_while_serving_restores_every_row_into_a_fresh_data_dir() {
    let source = fresh_data_dir("backup-source");
    let port = free_port();
    let origin = serve(&source, port).await;
    let token = mint(&source, TENANT);
    for (title, content) in [("Basalt", "Basalt cools quickly from lava."), ("Granite", "Granite cools slowly.")] {
        mcp_call(port, &token, "upsert_document", json!({"title": title, "content": content})).await;
    }
    // A task with its events and artifacts (the test-only probe: three artifacts).
    let sent: Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/a2a"))
        .bearer_auth(&token)
        .header("A2A-Version", "1.0")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": {
            "messageId": "m-1", "role": "ROLE_USER", "parts": [{"text": "probe"}], "metadata": {"skill": "probe"}}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sent["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED", "{sent}");
    // A ledger row, as a model call writes one (no model runs here).
    {
        let (pool, mut tx) = tenant_tx(&source).await;
        sqlx::query(
            "INSERT INTO usage_ledger (subject, kind, provider, model, input_tokens, cost_micros) \
             VALUES ('dev', 'chat', 'test', 'm', 12, 3400)",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        pool.close().await;
    }
    let before = counts(&source).await;
    assert!(before.iter().all(|(_, n, _)| *n > 0), "every table has rows to carry: {before:?}");

    // Backed up while the origin serves (it attaches to that origin's database).
    let archive = source.parent().unwrap().join("backup-test.dump");
    let out = agentplane(&source).args(["backup", archive.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "backup: {}", String::from_utf8_lossy(&out.stderr));
    drop(origin);

    // A damaged archive fails to restore and leaves nothing behind, so the good one then
    // restores into the same data dir.
    let restored = fresh_data_dir("backup-restored");
    let damaged = archive.with_extension("damaged");
    let bytes = std::fs::read(&archive).unwrap();
    std::fs::write(&damaged, &bytes[..bytes.len() / 2]).unwrap();
    let out = agentplane(&restored).args(["restore", damaged.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success(), "a damaged archive restored");

    // Restored; a second restore there is refused, nothing overwritten.
    let out = agentplane(&restored).args(["restore", archive.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "restore: {}", String::from_utf8_lossy(&out.stderr));
    let again = agentplane(&restored).args(["restore", archive.to_str().unwrap()]).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a database"));

    // An origin serving the restored dir starts (its migrations already recorded) and answers.
    let port = free_port();
    let origin = serve(&restored, port).await;
    assert_eq!(counts(&restored).await, before);
    let token = mint(&restored, TENANT);
    let hits = mcp_call(port, &token, "hybrid_search", json!({"query": "lava", "limit": 3})).await;
    assert!(hits.to_string().contains("Basalt"), "{hits}");
    drop(origin);
}
