//! A local OpenAI-compatible `/v1/embeddings` server whose behaviour the test switches: answer,
//! answer slowly, or fail with 500. It records every text it embedded, so tests can count.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const DIMENSIONS: usize = 384;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Ok = 0,
    Slow = 1,
    Fail = 2,
}

#[derive(Debug, Default)]
pub struct Shared {
    mode: AtomicU8,
    /// Added to every answer (ms), to make workers overlap.
    pub latency_ms: AtomicU64,
    /// How long `Slow` waits (ms).
    pub slow_ms: AtomicU64,
    pub requests: AtomicU64,
    pub embedded: Mutex<HashMap<String, usize>>,
}

#[derive(Debug, Clone)]
pub struct FakeEmbeddings {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
}

impl FakeEmbeddings {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        shared.slow_ms.store(2_000, Ordering::Relaxed);
        let app = Router::new().route("/v1/embeddings", post(embeddings)).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, shared }
    }

    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn set(&self, mode: Mode) {
        self.shared.mode.store(mode as u8, Ordering::SeqCst);
    }

    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// How often each text containing `marker` was embedded.
    pub fn counts(&self, marker: &str) -> HashMap<String, usize> {
        let seen = self.shared.embedded.lock().unwrap();
        seen.iter().filter(|(t, _)| t.contains(marker)).map(|(t, n)| (t.clone(), *n)).collect()
    }

    /// A remote-provider configuration pointing here, with short timeouts for tests.
    pub fn config(&self) -> agentplane_origin::models::embed::RemoteConfig {
        agentplane_origin::models::embed::RemoteConfig {
            url: self.url(),
            model: "fake-minilm".into(),
            dimensions: DIMENSIONS,
            timeout_ms: 500,
            max_retries: 1,
            backoff_min_ms: 10,
            backoff_max_ms: 50,
            batch_size: 16,
            breaker_threshold: 2,
            breaker_cooldown_ms: 1_000,
            ..Default::default()
        }
    }
}

/// A deterministic unit vector for `text`.
pub fn vector(text: &str) -> Vec<f32> {
    let mut v = Vec::with_capacity(DIMENSIONS);
    let mut counter = 0u32;
    while v.len() < DIMENSIONS {
        let digest = Sha256::new().chain_update(text.as_bytes()).chain_update(counter.to_le_bytes()).finalize();
        v.extend(digest.iter().map(|b| f32::from(*b) - 127.5));
        counter += 1;
    }
    v.truncate(DIMENSIONS);
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / norm).collect()
}

async fn embeddings(State(shared): State<Arc<Shared>>, Json(body): Json<Value>) -> (http::StatusCode, Json<Value>) {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let latency = shared.latency_ms.load(Ordering::Relaxed);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    match shared.mode.load(Ordering::SeqCst) {
        1 => tokio::time::sleep(Duration::from_millis(shared.slow_ms.load(Ordering::Relaxed))).await,
        2 => return (http::StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": {"message": "model crashed"}}))),
        _ => {}
    }
    let texts: Vec<String> = body["input"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()).collect();
    {
        let mut seen = shared.embedded.lock().unwrap();
        for t in &texts {
            *seen.entry(t.clone()).or_default() += 1;
        }
    }
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": vector(t)}))
        .collect();
    let tokens: usize = texts.iter().map(|t| t.split_whitespace().count()).sum();
    (
        http::StatusCode::OK,
        Json(
            json!({"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
        ),
    )
}
