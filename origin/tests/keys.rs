//! Tokens from a real issuer's JWKS (not the dev key), and key rotation picked up without a
//! restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use agentplane_core::testkit;
use serde_json::{Value, json};
use support::{Client, origin, test_config};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn jwks_with(kids: &[&str]) -> Vec<u8> {
    let mut doc: Value = serde_json::from_slice(&testkit::jwks().unwrap()).unwrap();
    doc["keys"].as_array_mut().unwrap().retain(|k| kids.contains(&k["kid"].as_str().unwrap()));
    serde_json::to_vec(&doc).unwrap()
}

fn token(kid: &str, tenant: Uuid) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut claims = testkit::claims(now, "search:read");
    claims["tenant_id"] = json!(tenant);
    testkit::mint(kid, &claims).unwrap()
}

#[tokio::test]
async fn an_issuers_key_rotation_reaches_the_origin_without_a_restart() {
    let shared = origin(); // the database
    let dir = shared.config.data_dir.join(format!("jwks-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks_path = dir.join("jwks.json");
    std::fs::write(&jwks_path, jwks_with(&["rsa-1"])).unwrap();

    let mut config = test_config();
    config.gateway.auth.issuer = testkit::ISSUER.into();
    config.gateway.auth.audience = vec![testkit::AUDIENCE.into()];
    config.jwks = Some(jwks_path.display().to_string());
    config.trust_dev_key = Some(false);
    config.jwks_refresh_secs = 1;
    let db = agentplane_origin::data::db::Database::open(
        &shared.app_url,
        &support::pg_url(&config, "agentplane_admin", "admin_password", "agentplane"),
        4,
        Default::default(),
    )
    .await
    .unwrap();
    let keys = agentplane_origin::app::keys::load(&config).await.unwrap();
    assert!(keys.published.is_none(), "a real issuer's keys are not republished");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let cancel = CancellationToken::new();
    let app = agentplane_origin::app::server::router(&config, db, keys, None, cancel.clone()).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let tenant = Uuid::new_v4();
    let client =
        |kid: &str| Client { url: url.clone(), token: token(kid, tenant), http: reqwest::Client::new(), session: None };
    assert_eq!(client("rsa-1").rpc("tools/list", json!({})).await.status, 200);
    assert_eq!(client("ec-1").rpc("tools/list", json!({})).await.status, 401, "ec-1 is not published yet");

    // The issuer rotates: ec-1 in, rsa-1 out.
    std::fs::write(&jwks_path, jwks_with(&["ec-1"])).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let old = client("rsa-1").rpc("tools/list", json!({})).await.status;
        let new = client("ec-1").rpc("tools/list", json!({})).await.status;
        if (old, new) == (401, 200) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "rotation not picked up: old {old}, new {new}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A broken JWKS file keeps the keys in force.
    std::fs::write(&jwks_path, b"{ not json").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(client("ec-1").rpc("tools/list", json!({})).await.status, 200);
    cancel.cancel();
}
