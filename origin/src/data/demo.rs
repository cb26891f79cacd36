//! A small demo corpus for a demo tenant, so the README's run command has something to search.
//! Idempotent: fixed ids, upserted on every start.

use serde_json::{Map, json};
use uuid::Uuid;

use crate::data::db::{Database, SystemTask, TenantId};
use crate::data::docs::{self, Upsert};
use crate::models::embed::Embedder;

pub const DEMO_TENANT: Uuid = Uuid::from_u128(0xd3d0_0000_0000_4000_8000_0000_0000_0001);

/// The demo's daily budgets per tier, in millionths of a currency unit, when none are configured.
pub fn budgets() -> std::collections::BTreeMap<String, u64> {
    [("free", 100_000), ("pro", 1_000_000), ("enterprise", 10_000_000)].map(|(t, m)| (t.to_owned(), m)).into()
}

const DOCS: &[(&str, &str, &str)] = &[
    (
        "Row-level security",
        "security",
        "PostgreSQL row-level security filters every query by a policy. agentplane sets app.tenant_id in each transaction from the verified token, so one tenant never sees another tenant's documents, even if a query forgets a WHERE clause.",
    ),
    (
        "Hybrid search",
        "search",
        "Hybrid search runs a keyword ranking (BM25) and a vector ranking side by side and fuses them with reciprocal rank fusion. Keywords catch exact terms and names; vectors catch paraphrases and synonyms.",
    ),
    (
        "BM25 ranking",
        "search",
        "BM25 scores a document by how often the query terms occur in it, discounted by document length and by how common each term is across the collection. ParadeDB's pg_search brings BM25 indexes to PostgreSQL.",
    ),
    (
        "Reciprocal rank fusion",
        "search",
        "Reciprocal rank fusion adds up one over k plus the rank of a document in each list. With k = 60 a document ranked well by both lists beats one ranked first by only one of them.",
    ),
    (
        "Rate limiting with GCRA",
        "operations",
        "The generic cell rate algorithm keeps one timestamp per tenant, the theoretical arrival time. A request is allowed if it fits within the burst tolerance; a refusal says exactly how long to wait in Retry-After.",
    ),
    (
        "JSON Web Tokens",
        "security",
        "A JWT carries signed claims: issuer, audience, subject, expiry and here the tenant id and scopes. The server checks the signature against the issuer's published keys and refuses the none algorithm outright.",
    ),
    (
        "Model Context Protocol",
        "protocols",
        "MCP lets an AI client discover and call tools, read resources and fetch prompts over JSON-RPC. agentplane serves it over Streamable HTTP at /mcp.",
    ),
    (
        "Agent-to-Agent protocol",
        "protocols",
        "A2A lets one agent hand a long-running task to another and follow its progress as a stream of server-sent events, with durable task state.",
    ),
    (
        "Edge caching",
        "operations",
        "Search results can be cached at the edge per tenant. Each write bumps the tenant's data generation, which is part of every cache key, so stale results are never served after a change.",
    ),
    (
        "Vector embeddings",
        "search",
        "An embedding model maps text to a vector so that texts with similar meaning land close together. pgvector stores the vectors and finds the nearest ones with an HNSW index and cosine distance.",
    ),
    (
        "Server-sent events",
        "protocols",
        "Server-sent events stream a response as a series of events over one HTTP connection. Each event can carry an id so a client that reconnects can ask to resume after the last event it saw.",
    ),
    (
        "Fever and paracetamol",
        "health",
        "Paracetamol (acetaminophen) reduces fever and mild pain. It is a common first choice for fever in children, dosed by body weight.",
    ),
];

/// Upserts the demo documents for [`DEMO_TENANT`]. Unchanged documents keep their vectors;
/// new or changed ones are embedded through the back-fill, so restarts embed nothing twice.
pub async fn seed(db: &Database, embedder: Option<&Embedder>) -> anyhow::Result<usize> {
    let tenant = TenantId::for_system_task(DEMO_TENANT, SystemTask::DemoSeed);
    let mut tx = db.tenant_tx(tenant).await?;
    for (i, (title, topic, content)) in DOCS.iter().enumerate() {
        let mut metadata = Map::new();
        metadata.insert("topic".into(), json!(topic));
        metadata.insert("source".into(), json!("demo"));
        let doc = Upsert {
            id: Some(Uuid::from_u128(0xd3d0_0000_0000_4000_8000_0000_0001_0000 + i as u128)),
            title: (*title).to_owned(),
            content: (*content).to_owned(),
            metadata,
            embedding: None,
        };
        docs::upsert(&mut tx, &doc).await?;
    }
    tx.commit().await?;
    if let Some(e) = embedder {
        let progress = crate::models::embed::backfill::Progress::default();
        if let Err(err) = crate::models::embed::backfill::drain_tenant(
            db,
            e,
            tenant,
            crate::models::embed::backfill::BATCH,
            &progress,
        )
        .await
        {
            tracing::warn!(error = %err, "demo corpus stored without vectors; the back-fill embeds it later");
        }
    }
    Ok(DOCS.len())
}
