//! An over-quota flood does not slow another tenant (issue 12, point 3). Its own test binary: it
//! measures latency, and the other isolation tests running beside it would measure themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::ALL_SCOPES;
use uuid::Uuid;

/// Point 3: a tenant over its quota costs the origin almost nothing, and nothing anyone waits
/// on: the limiter runs before the body is read, nothing is parsed under a lock, and a refused
/// large body is never read. 64 concurrent 1 MiB bodies from an over-quota token while another
/// tenant makes its cheapest call.
///
/// The flood comes from another process ([`flood_from_another_process`]), at the same CPU
/// priority: inside the test process, on two cores, the generator measured mostly itself (the
/// other tenant's p99 was 82 ms beside 64 in-process flooders even with the fix). Measured this
/// way: p99 556 ms with the gate that parsed under its lock before limiting, 21 ms now.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_over_quota_flood_of_large_bodies_does_not_slow_another_tenant() {
    let mut config = support::test_config();
    config.gateway.tiers = serde_json::from_value(json!({
        "tiers": {"tiny": {"count": 1, "period_secs": 3600, "burst": 1},
                  "free": {"count": 100000, "period_secs": 60, "burst": 10000}},
        "default_tier": "free"
    }))
    .unwrap();
    let o = support::start(config);
    let url = o.url();
    let flooder =
        o.token_claims(json!({"tenant_id": Uuid::new_v4(), "sub": "f", "scope": ALL_SCOPES, "tier": "tiny"}), 3600);
    // The one request the tier allows.
    let http = reqwest::Client::new();
    mcp_post(&http, &url, &flooder, json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string()).await.unwrap();

    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "flood_from_another_process", "--ignored", "--nocapture"])
        .env("AGENTPLANE_FLOOD_URL", &url)
        .env("AGENTPLANE_FLOOD_TOKEN", &flooder)
        .env("AGENTPLANE_FLOOD_SECS", "8")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let other = o.client(Uuid::new_v4(), ALL_SCOPES);
    let mut latencies = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        // The cheapest call of the stateless revision (it has no ping).
        let r = other.rpc("tools/list", json!({})).await;
        latencies.push(started.elapsed());
        assert!(r.result()["tools"].is_array());
    }
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    let counts: Value = out
        .lines()
        .find_map(|l| l.strip_prefix("FLOOD "))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_else(|| panic!("the flooding process said nothing: {out}"));
    // Nothing admitted. A refused body this large is not read, and the connection closes after
    // the 429: a client still sending may see it reset (status 0 here) instead.
    let refused = counts["429"].as_u64().unwrap_or(0);
    let reset = counts["0"].as_u64().unwrap_or(0);
    let other = counts.as_object().unwrap().keys().filter(|k| *k != "429" && *k != "0").count();
    assert!(refused >= 64 && other == 0 && reset <= refused / 10, "flood statuses {counts}");
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100 - 1];
    println!(
        "other tenant's tools/list during the flood: p50 {:?}, p99 {p99:?} ({refused} refused 1 MiB bodies)",
        latencies[latencies.len() / 2],
    );
    assert!(p99 < Duration::from_millis(50), "p99 {p99:?}");
}

/// The flood of [`an_over_quota_flood_of_large_bodies_does_not_slow_another_tenant`], run in a
/// process of its own by that test: 64 loops posting 1 MiB bodies for `AGENTPLANE_FLOOD_SECS`,
/// then `FLOOD {"status": count, ...}` on stdout (0: the connection failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a helper the flood test runs in another process"]
async fn flood_from_another_process() {
    let (Ok(url), Ok(token), Ok(secs)) = (
        std::env::var("AGENTPLANE_FLOOD_URL"),
        std::env::var("AGENTPLANE_FLOOD_TOKEN"),
        std::env::var("AGENTPLANE_FLOOD_SECS"),
    ) else {
        return;
    };
    let big = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                     "params": {"name": "hybrid_search", "arguments": {"query": "x".repeat(1_000_000)}}})
    .to_string();
    let until = Instant::now() + Duration::from_secs(secs.parse().unwrap());
    let http = reqwest::Client::new();
    let statuses = Arc::new(Mutex::new(std::collections::BTreeMap::<String, u64>::new()));
    let flood: Vec<_> = (0..64)
        .map(|_| {
            let (http, url, token, big, statuses) =
                (http.clone(), url.clone(), token.clone(), big.clone(), statuses.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    let r = mcp_post(&http, &url, &token, big.clone()).await;
                    let status = r.map(|r| r.status().as_u16()).unwrap_or(0);
                    *statuses.lock().unwrap().entry(status.to_string()).or_default() += 1;
                }
            })
        })
        .collect();
    for h in flood {
        h.await.unwrap();
    }
    println!("FLOOD {}", serde_json::to_string(&*statuses.lock().unwrap()).unwrap());
}

async fn mcp_post(http: &reqwest::Client, url: &str, token: &str, body: String) -> reqwest::Result<reqwest::Response> {
    http.post(url)
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header("MCP-Protocol-Version", "2025-11-25")
        .body(body)
        .send()
        .await
}
