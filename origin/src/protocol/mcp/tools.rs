//! agentplane's own MCP tools: definitions (input and output schemas) and execution. Each call
//! runs in one tenant transaction; the tenant comes from the verified principal only.

use std::sync::Arc;

use agentplane_core::auth::Principal;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};
use uuid::Uuid;

use super::args::{Args, invalid};
use crate::data::db::{Database, TenantId};
use crate::data::docs::{self, DocError};
use crate::data::search::{self, DIMENSIONS, SearchParams};

pub const HYBRID_SEARCH: &str = "hybrid_search";
pub const GET_DOCUMENT: &str = "get_document";
pub const LIST_DOCUMENTS: &str = "list_documents";
pub const UPSERT_DOCUMENT: &str = "upsert_document";
pub const DELETE_DOCUMENT: &str = "delete_document";
pub const USAGE: &str = "usage";

pub const NAMES: [&str; 6] = [HYBRID_SEARCH, GET_DOCUMENT, LIST_DOCUMENTS, UPSERT_DOCUMENT, DELETE_DOCUMENT, USAGE];

pub(super) fn object(v: Value) -> Arc<JsonObject> {
    Arc::new(match v {
        Value::Object(m) => m,
        _ => JsonObject::new(),
    })
}

fn embedding_schema(description: &str) -> Value {
    json!({"type": "array", "items": {"type": "number"}, "minItems": DIMENSIONS, "maxItems": DIMENSIONS, "description": description})
}

fn document_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "title": {"type": "string"},
            "content": {"type": "string"},
            "metadata": {"type": "object"},
            "has_embedding": {"type": "boolean"},
            "embedding_model": {"type": ["string", "null"]},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"}
        },
        "required": ["id", "title", "content", "metadata", "has_embedding", "created_at", "updated_at"]
    })
}

/// The tool definitions, in a stable order.
pub fn definitions() -> Vec<Tool> {
    let hit = json!({
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "external_id": {"type": "string", "description": "The id the document was ingested under."},
            "title": {"type": "string"},
            "snippet": {"type": "string"},
            "content": {"type": "string"},
            "metadata": {"type": "object"},
            "bm25_rank": {"type": ["integer", "null"]},
            "vector_rank": {"type": ["integer", "null"]},
            "bm25_score": {"type": ["number", "null"]},
            "vector_score": {"type": ["number", "null"]},
            "score": {"type": "number"}
        },
        "required": ["id", "title", "metadata", "bm25_rank", "vector_rank", "bm25_score", "vector_score", "score"]
    });
    let read_only = ToolAnnotations::new().read_only(true).destructive(false).idempotent(true).open_world(false);
    vec![
        Tool::new(
            HYBRID_SEARCH,
            "Search this tenant's documents by keywords (BM25) and meaning (vectors), fused by weighted reciprocal rank fusion. Each hit carries both ranks and scores.",
            object(json!({
                "type": "object",
                "properties": {
                    "query": {"type": "string", "minLength": 1, "maxLength": 2000, "description": "What to look for, in plain words."},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 10},
                    "bm25_weight": {"type": "number", "minimum": 0, "default": search::DEFAULT_BM25_WEIGHT},
                    "vector_weight": {"type": "number", "minimum": 0, "default": search::DEFAULT_VECTOR_WEIGHT},
                    "rrf_k": {"type": "integer", "minimum": 1, "maximum": 1000, "default": search::DEFAULT_RRF_K},
                    "filter": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}, "description": "Metadata key = value pairs every hit must have."},
                    "include_content": {"type": "boolean", "default": false, "description": "Full content instead of a snippet."},
                    "embedding": embedding_schema("The query's embedding, if you have one; without it the search is BM25-only.")
                },
                "required": ["query"],
                "additionalProperties": false
            })),
        )
        .with_title("Hybrid search")
        .with_raw_output_schema(object(json!({
            "type": "object",
            "properties": {
                "mode": {"type": "string", "enum": ["hybrid", "bm25_only"]},
                "lexical_backend": {"type": "string"},
                "hits": {"type": "array", "items": hit},
                "notice": {"type": "string", "description": "Why the search ran lexically when it should have been hybrid."}
            },
            "required": ["mode", "lexical_backend", "hits"]
        })))
        .with_annotations(read_only.clone()),
        Tool::new(
            GET_DOCUMENT,
            "Fetch one document by id.",
            object(json!({
                "type": "object",
                "properties": {"id": {"type": "string", "format": "uuid"}},
                "required": ["id"],
                "additionalProperties": false
            })),
        )
        .with_title("Get document")
        .with_raw_output_schema(object(document_schema()))
        .with_annotations(read_only.clone()),
        Tool::new(
            LIST_DOCUMENTS,
            "List documents, a page at a time. Pass next_cursor back as cursor for the next page.",
            object(json!({
                "type": "object",
                "properties": {
                    "cursor": {"type": "string", "description": "Opaque; from a previous page's next_cursor."},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                    "title_contains": {"type": "string", "maxLength": 200, "description": "Only documents whose title contains this text (any case)."}
                },
                "additionalProperties": false
            })),
        )
        .with_title("List documents")
        .with_raw_output_schema(object(json!({
            "type": "object",
            "properties": {
                "documents": {"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "string"}, "title": {"type": "string"}, "metadata": {"type": "object"},
                    "has_embedding": {"type": "boolean"}, "updated_at": {"type": "string"}},
                    "required": ["id", "title", "metadata", "has_embedding", "updated_at"]}},
                "next_cursor": {"type": ["string", "null"]},
                "total": {"type": ["integer", "null"], "description": "All of this tenant's documents; on the first page only."},
                "embedding_backlog": {"type": ["integer", "null"], "description": "How many of them wait for an embedding; on the first page only."}
            },
            "required": ["documents", "next_cursor"]
        })))
        .with_annotations(read_only),
        Tool::new(
            UPSERT_DOCUMENT,
            "Create a document, or replace the one with the given id. Needs scope docs:write.",
            object(json!({
                "type": "object",
                "properties": {
                    "id": {"type": "string", "format": "uuid", "description": "Omit to create a new document."},
                    "title": {"type": "string", "maxLength": 1000},
                    "content": {"type": "string", "minLength": 1, "maxLength": 1_000_000},
                    "metadata": {"type": "object"},
                    "embedding": embedding_schema("Optional precomputed embedding of the content.")
                },
                "required": ["title", "content"],
                "additionalProperties": false
            })),
        )
        .with_title("Upsert document")
        .with_raw_output_schema(object(json!({
            "type": "object",
            "properties": {"status": {"type": "string", "enum": ["created", "updated", "unchanged"]}, "document": document_schema()},
            "required": ["status", "document"]
        })))
        .with_annotations(ToolAnnotations::new().read_only(false).destructive(true).idempotent(true).open_world(false)),
        Tool::new(
            DELETE_DOCUMENT,
            "Delete a document by id. Needs scope docs:write.",
            object(json!({
                "type": "object",
                "properties": {"id": {"type": "string", "format": "uuid"}},
                "required": ["id"],
                "additionalProperties": false
            })),
        )
        .with_title("Delete document")
        .with_raw_output_schema(object(json!({
            "type": "object",
            "properties": {"id": {"type": "string"}, "deleted": {"type": "boolean"}},
            "required": ["id", "deleted"]
        })))
        .with_annotations(ToolAnnotations::new().read_only(false).destructive(true).idempotent(true).open_world(false)),
        Tool::new(
            USAGE,
            "This tenant's model spend (embeddings, chat) by UTC day and model: calls, tokens and cost in millionths of a currency unit; and each daily budget that applies, with what today has taken of it.",
            object(json!({
                "type": "object",
                "properties": {"days": {"type": "integer", "minimum": 1, "maximum": 366, "default": 30, "description": "How many UTC days back, today included."}},
                "additionalProperties": false
            })),
        )
        .with_title("Usage and spend")
        .with_raw_output_schema(object(json!({
            "type": "object",
            "properties": {
                "days": {"type": "array", "items": {"type": "object", "properties": {
                    "day": {"type": "string", "format": "date"}, "kind": {"type": "string", "enum": ["embedding", "chat"]},
                    "provider": {"type": "string"}, "model": {"type": "string"}, "calls": {"type": "integer"},
                    "input_tokens": {"type": "integer"}, "output_tokens": {"type": "integer"}, "cost_micros": {"type": "integer"}},
                    "required": ["day", "kind", "provider", "model", "calls", "input_tokens", "output_tokens", "cost_micros"]}},
                "total_cost_micros": {"type": "integer"},
                "budgets": {"type": "array", "description": "Each daily limit that applies: the tenant's (by tier) and this user's.", "items": {"type": "object", "properties": {
                    "scope": {"type": "string", "enum": ["tenant", "user"]}, "tier": {"type": "string"},
                    "limit_micros": {"type": "integer"}, "spent_micros": {"type": "integer"},
                    "renews_at": {"type": ["string", "null"], "format": "date-time"}},
                    "required": ["scope", "limit_micros", "spent_micros", "renews_at"]}}
            },
            "required": ["days", "total_cost_micros", "budgets"]
        })))
        .with_annotations(ToolAnnotations::new().read_only(true).destructive(false).idempotent(true).open_world(false)),
    ]
}

/// A result with structured content and a readable text rendering of it.
fn structured(text: String, value: Value) -> CallToolResult {
    let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
    r.structured_content = Some(value);
    r
}

/// A tool failure: an `isError` result the model can read, not a protocol error.
fn failure(message: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.to_owned())])
}

fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{id}"))
}

fn decode_cursor(cursor: &str) -> Result<Uuid, McpError> {
    let bad = || invalid("cursor", "is not a cursor this server issued");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| bad())?;
    text.strip_prefix("v1:").and_then(|id| Uuid::try_parse(id).ok()).ok_or_else(bad)
}

/// Runs one of [`NAMES`]. `Ok(None)` means the name is not one of ours.
pub async fn call(
    state: &super::McpState,
    principal: &Principal,
    name: &str,
    args: &JsonObject,
) -> Result<Option<CallToolResult>, McpError> {
    let db = &state.db;
    let tenant = TenantId::of(principal);
    let subject = principal.subject.as_str();
    let result = match name {
        HYBRID_SEARCH => {
            let a = Args::new(
                args,
                &["query", "limit", "bm25_weight", "vector_weight", "rrf_k", "filter", "include_content", "embedding"],
            )?;
            let params = SearchParams {
                query: a.required_string("query", 2000)?.to_owned(),
                limit: a.integer("limit", 1, 50, 10)?,
                bm25_weight: a.non_negative("bm25_weight", search::DEFAULT_BM25_WEIGHT)?,
                vector_weight: a.non_negative("vector_weight", search::DEFAULT_VECTOR_WEIGHT)?,
                rrf_k: a.integer("rrf_k", 1, 1000, search::DEFAULT_RRF_K)?,
                filter: a.object("filter", true)?,
                include_content: a.boolean("include_content", false)?,
                embedding: a.embedding("embedding")?,
            };
            if params.query.trim().is_empty() {
                return Err(invalid("query", "must not be empty"));
            }
            match search::search_as(db, state.embedder.as_ref(), tenant, subject, params).await {
                Err(e) => {
                    tracing::error!(error = %e, "search failed on the database");
                    failure("the tool failed on a database error; try again")
                }
                Ok(r) => {
                    state.metrics.observe_search(&r.timings);
                    let lines: Vec<String> = r
                        .hits
                        .iter()
                        .enumerate()
                        .map(|(i, h)| format!("{}. {} [{}] score {:.4}", i + 1, h.title, h.id, h.score))
                        .collect();
                    let text = format!("{} hits ({}):\n{}", r.hits.len(), mode_name(&r), lines.join("\n"));
                    structured(text, serde_json::to_value(&r).unwrap_or_default())
                }
            }
        }
        GET_DOCUMENT => {
            let a = Args::new(args, &["id"])?;
            let id = a.required_uuid("id")?;
            run(db, tenant, |mut tx| async move {
                let doc = docs::get(&mut tx, id).await?;
                let text = format!("# {}\n\n{}", doc.title, doc.content);
                Ok(structured(text, serde_json::to_value(&doc).unwrap_or_default()))
            })
            .await
        }
        USAGE => {
            let a = Args::new(args, &["days"])?;
            let days = a.integer("days", 1, 366, 30)?;
            let (budgets, tier) = state.a2a.budgets_for(principal);
            run(db, tenant, |mut tx| async move {
                let rows = crate::models::usage::spend_by_day(&mut tx, i64::from(days)).await?;
                let budgets = budgets.standings(&mut tx, tier, subject).await?;
                tx.commit().await?;
                let total: i64 = rows.iter().map(|r| r.cost_micros).sum();
                let text = rows
                    .iter()
                    .map(|r| format!("{} {} {}: {} calls, {} micros", r.day, r.kind, r.model, r.calls, r.cost_micros))
                    .collect::<Vec<_>>()
                    .join("\n");
                let value = json!({ "days": rows, "total_cost_micros": total, "budgets": budgets });
                Ok(structured(if text.is_empty() { "no model calls".into() } else { text }, value))
            })
            .await
        }
        LIST_DOCUMENTS => {
            let a = Args::new(args, &["cursor", "limit", "title_contains"])?;
            let after = a.string("cursor", 200)?.map(decode_cursor).transpose()?;
            let limit = a.integer("limit", 1, 100, 20)?;
            let title = a.string("title_contains", 200)?.filter(|t| !t.is_empty()).map(str::to_owned);
            run(db, tenant, |mut tx| async move {
                let (page, next) = docs::list(&mut tx, after, limit, title.as_deref()).await?;
                // Counted with the first page only: a client paging on has them already.
                let counts = if after.is_none() { Some(docs::counts(&mut tx).await?) } else { None };
                let text = page.iter().map(|d| format!("{} {}", d.id, d.title)).collect::<Vec<_>>().join("\n");
                let value = json!({
                    "documents": page,
                    "next_cursor": next.map(encode_cursor),
                    "total": counts.map(|c| c.0),
                    "embedding_backlog": counts.map(|c| c.1),
                });
                Ok(structured(if text.is_empty() { "no documents".into() } else { text }, value))
            })
            .await
        }
        UPSERT_DOCUMENT => {
            let a = Args::new(args, &["id", "title", "content", "metadata", "embedding"])?;
            let mut doc = docs::Upsert {
                id: a.uuid("id")?,
                title: a.required_string("title", 1000)?.to_owned(),
                content: a.required_string("content", 1_000_000)?.to_owned(),
                metadata: a.object("metadata", false)?,
                embedding: a.embedding("embedding")?.map(|v| (v, docs::CALLER_MODEL.to_owned())),
            };
            if doc.content.is_empty() {
                return Err(invalid("content", "must not be empty"));
            }
            let mut usage = None;
            if doc.embedding.is_none()
                && let Some(e) = &state.embedder
                && !vector_is_current(db, tenant, &doc).await
            {
                // Without a vector the write still goes through; the back-fill embeds it later.
                match e.embed_one(crate::models::embed::document_text(&doc.title, &doc.content)).await {
                    Ok((v, u)) => {
                        doc.embedding = Some((v, u.model.clone()));
                        usage = Some(u);
                    }
                    Err(err) => tracing::warn!(error = %err, "document embedding failed; stored without a vector"),
                }
            }
            run(db, tenant, |mut tx| async move {
                if let Some(u) = &usage {
                    crate::models::usage::record_embedding(&mut tx, subject, u).await?;
                }
                let (document, written) = docs::upsert(&mut tx, &doc).await?;
                tx.commit().await?;
                let text = format!("{} document {}", serde_json::to_value(written).unwrap_or_default(), document.id);
                Ok(structured(text.replace('"', ""), json!({ "status": written, "document": document })))
            })
            .await
        }
        DELETE_DOCUMENT => {
            let a = Args::new(args, &["id"])?;
            let id = a.required_uuid("id")?;
            run(db, tenant, |mut tx| async move {
                docs::delete(&mut tx, id).await?;
                tx.commit().await?;
                Ok(structured(format!("deleted document {id}"), json!({ "id": id, "deleted": true })))
            })
            .await
        }
        _ => return Ok(None),
    };
    Ok(Some(result))
}

fn mode_name(r: &search::SearchResult) -> &'static str {
    match r.mode {
        search::Mode::Hybrid => "hybrid",
        search::Mode::Bm25Only => "bm25_only",
    }
}

/// Runs a tool body in a tenant transaction. "Not found" and database failures become `isError`
/// results; the database error itself goes to the log, not to the client.
/// A rewrite of a document whose title and content already have a vector needs no embedding
/// call (the upsert keeps the vector). On a database error, embed anyway: the write reports it.
async fn vector_is_current(db: &Database, tenant: TenantId, doc: &docs::Upsert) -> bool {
    let Some(id) = doc.id else { return false };
    let Ok(mut tx) = db.tenant_tx(tenant).await else { return false };
    let current = docs::has_current_vector(&mut tx, id, &doc.title, &doc.content).await.unwrap_or(false);
    let _ = tx.commit().await;
    current
}

async fn run<F, Fut>(db: &Database, tenant: TenantId, body: F) -> CallToolResult
where
    F: FnOnce(sqlx::Transaction<'static, sqlx::Postgres>) -> Fut,
    Fut: std::future::Future<Output = Result<CallToolResult, DocError>>,
{
    let outcome = match db.tenant_tx(tenant).await {
        Ok(tx) => body(tx).await,
        Err(e) => Err(DocError::Sql(e)),
    };
    match outcome {
        Ok(r) => r,
        Err(DocError::NotFound) => failure("document not found"),
        Err(DocError::Sql(e)) => {
            tracing::error!(error = %e, "tool failed on the database");
            failure("the tool failed on a database error; try again")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_forgeries() {
        let id = Uuid::from_u128(42);
        assert_eq!(decode_cursor(&encode_cursor(id)).unwrap(), id);
        assert!(decode_cursor("nope!").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("v2:x")).is_err());
    }

    #[test]
    fn every_tool_has_both_schemas_and_closed_arguments() {
        let defs = definitions();
        assert_eq!(defs.iter().map(|t| t.name.as_ref()).collect::<Vec<_>>(), NAMES);
        for t in defs {
            assert!(t.output_schema.is_some(), "{}", t.name);
            assert_eq!(t.input_schema.get("additionalProperties"), Some(&Value::Bool(false)), "{}", t.name);
            assert!(t.description.is_some());
        }
    }
}
