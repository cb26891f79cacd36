//! `agentplane load`: a load generator for `hybrid_search` over MCP, and a loader that upserts a
//! BEIR corpus through the same endpoint. Prints req/s and latency percentiles.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::data::ingest::document_id;
use crate::dev::beir::{Doc, Query, read_jsonl};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The MCP endpoint; repeated, requests go to each in turn (replicas with no affinity: a
    /// session opened on one is used on all).
    #[arg(long, default_value = "http://127.0.0.1:8080/mcp")]
    url: Vec<String>,
    /// Bearer token (needs search:read, and docs:write with --corpus).
    #[arg(long, env = "AGENTPLANE_TOKEN", hide_env_values = true)]
    token: String,
    /// BEIR corpus.jsonl to upsert first (idempotent: ids derive from `_id`).
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// BEIR queries.jsonl whose `text` fields are the search queries.
    #[arg(long)]
    queries: PathBuf,
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Unmeasured seconds first.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Seconds to wait after loading the corpus (index merges settle) before the load starts.
    #[arg(long, default_value_t = 0)]
    settle: u64,
    /// `limit` of each search.
    #[arg(long, default_value_t = 10)]
    limit: u32,
    /// `vector_weight` of each search; 0 is BM25 only. Unset: the server's default (hybrid).
    #[arg(long)]
    vector_weight: Option<f64>,
    /// The origin's `/metrics`: read before and after the run for where a search's time went.
    #[arg(long)]
    metrics: Option<String>,
    /// Each connection opens an MCP session (2025-11-25) and calls within it, instead of the
    /// stateless 2026-07-28 revision; with `--metrics`, prints what the per-request session
    /// lookup cost.
    #[arg(long)]
    session: bool,
}

/// The session-era revision `--session` speaks.
const SESSION_REVISION: &str = "2025-11-25";

struct Endpoint {
    http: reqwest::Client,
    urls: Vec<String>,
    turn: AtomicU64,
    token: String,
}

impl Endpoint {
    /// The next replica's URL, round robin.
    fn url(&self) -> &str {
        let i = self.turn.fetch_add(1, Ordering::Relaxed) as usize % self.urls.len();
        &self.urls[i]
    }

    /// A request of the session revision within `session`.
    fn in_session(&self, session: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(self.url())
            .bearer_auth(&self.token)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", SESSION_REVISION)
            .header("Mcp-Session-Id", session)
            .json(body)
    }

    /// Opens a session: `initialize`, then `notifications/initialized`.
    async fn open_session(&self) -> Result<String, String> {
        let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": SESSION_REVISION, "capabilities": {}, "clientInfo": {"name": "agentplane-load", "version": "1"}}});
        let resp = self
            .http
            .post(self.url())
            .bearer_auth(&self.token)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", SESSION_REVISION)
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let session = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| format!("initialize opened no session (HTTP {})", resp.status()))?;
        resp.text().await.map_err(|e| e.to_string())?;
        let ack = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        self.in_session(&session, &ack).send().await.map_err(|e| e.to_string())?;
        Ok(session)
    }

    async fn call(&self, tool: &str, arguments: Value) -> Result<(), String> {
        self.call_in(None, tool, arguments).await
    }

    /// A tool call, within `session` if given, else stateless.
    async fn call_in(&self, session: Option<&str>, tool: &str, arguments: Value) -> Result<(), String> {
        let params = json!({"name": tool, "arguments": arguments});
        let req = match session {
            Some(s) => {
                self.in_session(s, &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}))
            }
            None => crate::dev::client::request(&self.http, self.url(), &self.token, 1, "tools/call", params),
        };
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("HTTP {status}: {}", text.chars().take(200).collect::<String>()));
        }
        if text.contains("\"isError\":true") || !text.contains("\"result\"") {
            return Err(text.chars().take(200).collect());
        }
        Ok(())
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections * 2)
        .timeout(Duration::from_secs(30))
        .build()?;
    anyhow::ensure!(!args.url.is_empty(), "--url names no endpoint");
    let endpoint =
        Arc::new(Endpoint { http, urls: args.url.clone(), turn: AtomicU64::new(0), token: args.token.clone() });
    if let Some(corpus) = &args.corpus {
        load_corpus(&endpoint, corpus, args.connections).await?;
        tokio::time::sleep(Duration::from_secs(args.settle)).await;
    }
    let queries: Vec<String> = read_jsonl::<Query>(&args.queries)?.into_iter().map(|q| q.text).collect();
    anyhow::ensure!(!queries.is_empty(), "{} holds no queries", args.queries.display());
    let queries = Arc::new(queries);
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup);
    let end = measure_from + Duration::from_secs(args.duration);
    let next = Arc::new(AtomicU64::new(0));
    let mut search_args = json!({"limit": args.limit});
    if let Some(w) = args.vector_weight {
        search_args["vector_weight"] = json!(w);
    }
    let search_args = Arc::new(search_args);
    let mut phases_before = None;
    let mut lookups_before = None;
    let mut workers = Vec::new();
    for _ in 0..args.connections {
        let (endpoint, queries, next, search_args) =
            (endpoint.clone(), queries.clone(), next.clone(), search_args.clone());
        let session_mode = args.session;
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = Vec::new();
            let session = if session_mode {
                match endpoint.open_session().await {
                    Ok(s) => Some(s),
                    Err(e) => return (latencies, vec![e]),
                }
            } else {
                None
            };
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed) as usize % queries.len();
                let mut call = (*search_args).clone();
                call["query"] = json!(queries[i]);
                let sent = Instant::now();
                let outcome = endpoint.call_in(session.as_deref(), "hybrid_search", call).await;
                if sent >= measure_from && Instant::now() <= end {
                    match outcome {
                        Ok(()) => latencies.push(sent.elapsed().as_micros() as u64),
                        Err(e) => errors.push(e),
                    }
                }
            }
            (latencies, errors)
        }));
    }
    if let Some(url) = &args.metrics {
        // Taken once the warm-up is over, so the breakdown covers the measured window.
        tokio::time::sleep_until(measure_from.into()).await;
        phases_before = Some(search_phases(&endpoint.http, url).await?);
        lookups_before = Some(session_lookups(&endpoint.http, url).await?);
    }
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    for w in workers {
        let (l, e) = w.await?;
        latencies.extend(l);
        errors.extend(e);
    }
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i] as f64 / 1000.0
    };
    let secs = args.duration as f64;
    println!(
        "hybrid_search ({}, {}): {} connections, {} s measured after {} s warm-up, {} queries",
        match args.vector_weight {
            Some(0.0) => "BM25 only",
            _ => "hybrid",
        },
        if args.session { "in MCP sessions, 2025-11-25" } else { "stateless, 2026-07-28" },
        args.connections,
        args.duration,
        args.warmup,
        queries.len()
    );
    println!("requests {}, errors {}, {:.1} req/s", latencies.len(), errors.len(), latencies.len() as f64 / secs);
    println!("latency ms: p50 {:.2}, p90 {:.2}, p99 {:.2}, max {:.2}", pct(0.50), pct(0.90), pct(0.99), pct(1.0));
    if let (Some(url), Some(before)) = (&args.metrics, phases_before) {
        let after = search_phases(&endpoint.http, url).await?;
        let mean = |phase: &str| -> f64 {
            let (s0, c0) = before.get(phase).copied().unwrap_or_default();
            let (s1, c1) = after.get(phase).copied().unwrap_or_default();
            if c1 > c0 { (s1 - s0) / (c1 - c0) * 1000.0 } else { 0.0 }
        };
        let client_mean = latencies.iter().sum::<u64>() as f64 / latencies.len().max(1) as f64 / 1000.0;
        let parts = ["embed", "lexical", "vector", "hydrate"].map(mean);
        let in_search = mean("total") - parts.iter().sum::<f64>();
        println!(
            "mean ms per request: embed {:.2}, lexical {:.2}, vector {:.2} (with lexical when hybrid: one statement), \
             hydrate {:.2}, rest of the search (begin, usage, commit) {:.2}, outside the search (HTTP, gate, MCP, client) {:.2}",
            parts[0],
            parts[1],
            parts[2],
            parts[3],
            in_search,
            client_mean - mean("total"),
        );
    }
    if let (Some(url), Some(before), true) = (&args.metrics, lookups_before, args.session) {
        let after = session_lookups(&endpoint.http, url).await?;
        for source in ["cache", "database"] {
            let (b, a) =
                (before.get(source).cloned().unwrap_or_default(), after.get(source).cloned().unwrap_or_default());
            let delta = a.minus(&b);
            if delta.count > 0.0 {
                println!(
                    "session lookup ({source}): {} lookups, mean {:.4} ms, p50 {:.4} ms, p99 {:.4} ms",
                    delta.count,
                    delta.sum / delta.count * 1000.0,
                    delta.quantile(0.5) * 1000.0,
                    delta.quantile(0.99) * 1000.0,
                );
            }
        }
    }
    if let Some(e) = errors.first() {
        println!("first error: {e}");
    }
    anyhow::ensure!(errors.is_empty(), "{} requests failed", errors.len());
    Ok(())
}

/// `phase -> (sum of seconds, count)` of the origin's `agentplane_search_phase_seconds`.
async fn search_phases(
    http: &reqwest::Client,
    url: &str,
) -> anyhow::Result<std::collections::HashMap<String, (f64, f64)>> {
    let text = http.get(url).send().await?.error_for_status()?.text().await?;
    let mut phases: std::collections::HashMap<String, (f64, f64)> = std::collections::HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("agentplane_search_phase_seconds_") else { continue };
        let (kind, rest) = rest.split_once("{phase=\"").unwrap_or_default();
        let (phase, rest) = rest.split_once('"').unwrap_or_default();
        let value: f64 = rest.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        let entry = phases.entry(phase.to_owned()).or_default();
        match kind {
            "sum" => entry.0 = value,
            "count" => entry.1 = value,
            _ => {}
        }
    }
    Ok(phases)
}

/// One histogram of the origin's `/metrics`: cumulative bucket counts by upper bound, sum, count.
#[derive(Debug, Clone, Default)]
struct Histogram {
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

impl Histogram {
    fn minus(&self, earlier: &Self) -> Self {
        let buckets = self
            .buckets
            .iter()
            .map(|(le, n)| {
                let before = earlier.buckets.iter().find(|(l, _)| l == le).map_or(0.0, |(_, m)| *m);
                (*le, n - before)
            })
            .collect();
        Self { buckets, sum: self.sum - earlier.sum, count: self.count - earlier.count }
    }

    /// The `q` quantile, interpolated linearly within its bucket (as Prometheus'
    /// `histogram_quantile` does).
    fn quantile(&self, q: f64) -> f64 {
        let rank = q * self.count;
        let mut lower = (0.0, 0.0);
        for &(le, n) in &self.buckets {
            if n >= rank {
                if le.is_infinite() {
                    return lower.0;
                }
                let width = n - lower.1;
                return if width > 0.0 { lower.0 + (le - lower.0) * (rank - lower.1) / width } else { le };
            }
            lower = (le, n);
        }
        lower.0
    }
}

/// `source -> histogram` of the origin's `agentplane_mcp_session_lookup_seconds`.
async fn session_lookups(
    http: &reqwest::Client,
    url: &str,
) -> anyhow::Result<std::collections::HashMap<String, Histogram>> {
    let text = http.get(url).send().await?.error_for_status()?.text().await?;
    let mut out: std::collections::HashMap<String, Histogram> = std::collections::HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("agentplane_mcp_session_lookup_seconds_") else { continue };
        let (kind, rest) = rest.split_once('{').unwrap_or_default();
        let (labels, value) = rest.rsplit_once("} ").unwrap_or_default();
        let value: f64 = value.trim().parse().unwrap_or(0.0);
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=\""))?.strip_suffix('"').map(str::to_owned))
        };
        let Some(source) = label("source") else { continue };
        let h = out.entry(source).or_default();
        match kind {
            "sum" => h.sum = value,
            "count" => h.count = value,
            "bucket" => {
                let le = label("le").and_then(|l| if l == "+Inf" { Some(f64::INFINITY) } else { l.parse().ok() });
                if let Some(le) = le {
                    h.buckets.push((le, value));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The `tenant_id` claim of our own token, read without verifying it: only to give the loaded
/// documents ids of the tenant's own (the server decides the tenant; a wrong guess only means
/// fresh ids).
fn token_tenant(token: &str) -> uuid::Uuid {
    use base64::Engine as _;
    token
        .split('.')
        .nth(1)
        .and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|c| c.get("tenant_id").and_then(Value::as_str).and_then(|t| uuid::Uuid::try_parse(t).ok()))
        .unwrap_or_default()
}

async fn load_corpus(endpoint: &Arc<Endpoint>, path: &std::path::Path, connections: usize) -> anyhow::Result<()> {
    let docs = read_jsonl::<Doc>(path)?;
    let tenant = token_tenant(&endpoint.token);
    let total = docs.len();
    let started = Instant::now();
    let docs = Arc::new(tokio::sync::Mutex::new(docs.into_iter()));
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (endpoint, docs) = (endpoint.clone(), docs.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let Some(doc) = docs.lock().await.next() else { return Ok::<(), String>(()) };
                let args = json!({"id": document_id(tenant, &doc.id), "title": doc.title, "content": doc.text, "metadata": {"source_id": doc.id}});
                endpoint.call("upsert_document", args).await?;
            }
        }));
    }
    for w in workers {
        w.await?.map_err(|e| anyhow::anyhow!("loading the corpus: {e}"))?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!("loaded {total} documents in {secs:.1} s ({:.0} docs/s) through upsert_document", total as f64 / secs);
    Ok(())
}
