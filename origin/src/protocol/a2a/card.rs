//! The agent card at `/.well-known/agent-card.json`, built once at start.
//!
//! One document serves both versions: the 0.3 fields (`protocolVersion`, `url`,
//! `preferredTransport`, `additionalInterfaces`, `security`) next to the 1.0 ones
//! (`supportedInterfaces`, `securityRequirements`). The security scheme object carries both
//! shapes too (0.3's OpenAPI-style `type`/`scheme`/`bearerFormat`, 1.0's `httpAuthSecurityScheme`);
//! each version's readers take their own fields. The ETag is a hash of the body, so it changes
//! exactly when the card does.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct Card {
    body: Vec<u8>,
    etag: String,
}

pub const CACHE_CONTROL: &str = "public, max-age=300";

/// The card's JSON for an origin reachable at `public_url`.
pub fn document(public_url: &str, streaming: bool, push_notifications: bool) -> Value {
    let endpoint = format!("{}/a2a", public_url.trim_end_matches('/'));
    let modes = ["text/plain", "application/json"];
    json!({
        "name": "agentplane",
        "description": "Answers questions from this tenant's documents with cited, verifiable quotes (rag_answer), and researches a topic across several searches into a cross-referenced report (research).",
        "version": env!("CARGO_PKG_VERSION"),
        "provider": {"organization": "agentplane", "url": public_url},
        // 1.0
        "supportedInterfaces": [
            {"url": endpoint, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
            {"url": endpoint, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"}
        ],
        "securityRequirements": [{"schemes": {"bearer": {"list": []}}}],
        // 0.3
        "protocolVersion": "0.3.0",
        "url": endpoint,
        "preferredTransport": "JSONRPC",
        "additionalInterfaces": [{"url": endpoint, "transport": "JSONRPC"}],
        "security": [{"bearer": []}],
        // Both
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "An OAuth 2.1 access token (JWT) with a tenant_id claim and the tasks:run scope.",
                "httpAuthSecurityScheme": {
                    "scheme": "Bearer",
                    "bearerFormat": "JWT",
                    "description": "An OAuth 2.1 access token (JWT) with a tenant_id claim and the tasks:run scope."
                }
            }
        },
        "capabilities": {
            "streaming": streaming,
            "pushNotifications": push_notifications,
            "stateTransitionHistory": false,
            "extendedAgentCard": false
        },
        "supportsAuthenticatedExtendedCard": false,
        "defaultInputModes": modes,
        "defaultOutputModes": modes,
        "skills": [
            {
                "id": "rag_answer",
                "name": "Answer with citations",
                "description": "Searches the tenant's documents (hybrid BM25 + vectors), ranks the passages, answers with quoted sentences and checks that every citation names a retrieved document. Choose it with message metadata {\"skill\": \"rag_answer\"} (the default).",
                "tags": ["search", "question-answering", "citations"],
                "examples": ["How are tenants kept apart?"],
                "inputModes": ["text/plain"],
                "outputModes": ["text/plain", "application/json"]
            },
            {
                "id": "research",
                "name": "Research report",
                "description": "Splits a question into sub-questions, searches for each in parallel, cross-references the documents found and writes a report artifact with citations. Choose it with message metadata {\"skill\": \"research\"}.",
                "tags": ["search", "research", "report"],
                "examples": ["Compare zebra stripes and lion manes"],
                "inputModes": ["text/plain"],
                "outputModes": ["text/markdown", "application/json"]
            }
        ]
    })
}

impl Card {
    pub fn new(document: &Value) -> Self {
        let body = serde_json::to_vec_pretty(document).unwrap_or_default();
        let digest = Sha256::digest(&body);
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        Self { body, etag: format!("\"{hex}\"") }
    }

    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// 200 with the card, or 304 when `If-None-Match` names the current ETag.
    pub fn respond(&self, request: &HeaderMap) -> Response {
        let matches =
            request.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).any(|v| {
                v.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == self.etag)
            });
        let mut response = if matches {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let mut r = Response::new(Body::from(self.body.clone()));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
        if let Ok(v) = HeaderValue::from_str(&self.etag) {
            headers.insert(header::ETAG, v);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_etag_follows_the_body_and_if_none_match_gets_304() {
        let a = Card::new(&document("https://a.example", true, false));
        let b = Card::new(&document("https://b.example", true, false));
        assert_ne!(a.etag(), b.etag());
        assert_eq!(a.etag(), Card::new(&document("https://a.example", true, false)).etag());
        let mut h = HeaderMap::new();
        assert_eq!(a.respond(&h).status(), StatusCode::OK);
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(&format!("\"x\", W/{}", a.etag())).unwrap());
        assert_eq!(a.respond(&h).status(), StatusCode::NOT_MODIFIED);
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(b.etag()).unwrap());
        assert_eq!(a.respond(&h).status(), StatusCode::OK);
    }

    #[test]
    fn both_versions_find_their_fields() {
        let d = document("https://a.example/", true, false);
        assert_eq!(d["url"], "https://a.example/a2a");
        assert_eq!(d["supportedInterfaces"][0]["protocolVersion"], "1.0");
        assert_eq!(d["securitySchemes"]["bearer"]["bearerFormat"], "JWT");
        assert_eq!(d["capabilities"]["streaming"], true);
        assert_eq!(d["skills"].as_array().unwrap().len(), 2);
    }
}
