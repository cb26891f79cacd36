//! The agent card at `/.well-known/agent-card.json`, built once at start, in one shape per
//! protocol version: each version's schema refuses the other's fields (1.0's is closed), so one
//! document cannot serve both. The request's `A2A-Version` (header, or the query parameter) picks
//! the shape; without one the card is 1.0's, the `AgentCard` the 1.0 specification has the
//! well-known URI return, and a 0.3 client asks with `A2A-Version: 0.3`. Both list the same
//! interfaces, skills and scheme. Each shape has its own ETag, a hash of its body.

use agentplane_core::catalogue::A2aVersion;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::app::local_key::LocalKey;

/// The card in both shapes.
#[derive(Debug, Clone)]
pub struct Cards {
    v1: Card,
    v03: Card,
    /// The documents, for the authenticated extended card.
    documents: [Value; 2],
}

/// The URI of the extension the authenticated extended card lists the caller's limits under.
pub const LIMITS_EXTENSION: &str = "urn:agentplane:extensions:limits:v1";

/// The card key's id, and where its public half is published.
pub const KEY_ID: &str = "agentplane-card-1";
pub const JWKS_PATH: &str = "/.well-known/agent-card-jwks.json";

impl Cards {
    /// Both shapes for an origin reachable at `public_url`, each signed with `key`.
    /// `grpc_url`: where the origin's gRPC binding is reached (1.0 only, never through an edge),
    /// listed on the 1.0 card when set.
    pub fn new(
        public_url: &str,
        grpc_url: Option<&str>,
        streaming: bool,
        push_notifications: bool,
        key: &LocalKey,
    ) -> Self {
        let jku = format!("{}{JWKS_PATH}", public_url.trim_end_matches('/'));
        let mut v1_doc = document(public_url, streaming, push_notifications, A2aVersion::V1_0);
        if let (Some(url), Some(interfaces)) = (grpc_url, v1_doc["supportedInterfaces"].as_array_mut()) {
            let at = interfaces.len().min(2);
            interfaces.insert(at, json!({"url": url, "protocolBinding": "GRPC", "protocolVersion": "1.0"}));
        }
        let v03_doc = document(public_url, streaming, push_notifications, A2aVersion::V0_3);
        let v1 = Card::new(&signed(&v1_doc, key, &jku));
        let v03 = Card::new(&signed(&v03_doc, key, &jku));
        Self { v1, v03, documents: [v1_doc, v03_doc] }
    }

    /// The authenticated extended card in `version`'s shape: the public card, and the caller's
    /// limits (`limits`) as the params of the [`LIMITS_EXTENSION`] extension.
    pub fn extended(&self, version: A2aVersion, limits: Value) -> Value {
        let mut card = match version {
            A2aVersion::V1_0 => self.documents[0].clone(),
            A2aVersion::V0_3 => self.documents[1].clone(),
        };
        card["capabilities"]["extensions"] = json!([{
            "uri": LIMITS_EXTENSION,
            "description": "This caller's limits: requests per period and burst for its tier, the daily model \
                            budgets (tenant and user, in micros), tasks submitted or working at once.",
            "required": false,
            "params": limits,
        }]);
        card
    }

    /// The shape `A2A-Version` (header or query) asks for; an unknown version gets 1.0's, as a
    /// card is how a client learns which versions are served.
    pub fn respond(&self, headers: &HeaderMap, query: Option<&str>) -> Response {
        let asked = headers
            .get("a2a-version")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| query?.split('&').find_map(|pair| pair.strip_prefix("A2A-Version=").map(str::to_owned)));
        let card = match asked.as_deref().map(str::trim) {
            Some("0.3" | "0.3.0") => &self.v03,
            _ => &self.v1,
        };
        let mut response = card.respond(headers);
        response.headers_mut().insert(header::VARY, HeaderValue::from_static("A2A-Version"));
        response
    }
}

#[derive(Debug, Clone)]
pub struct Card {
    body: Vec<u8>,
    etag: String,
}

pub const CACHE_CONTROL: &str = "public, max-age=300";

const SCHEME_DESCRIPTION: &str = "An OAuth 2.1 access token (JWT) with a tenant_id claim and the tasks:run scope.";

/// The card's JSON in `version`'s shape, for an origin reachable at `public_url`.
pub fn document(public_url: &str, streaming: bool, push_notifications: bool, version: A2aVersion) -> Value {
    let endpoint = format!("{}/a2a", public_url.trim_end_matches('/'));
    // 1.0's HTTP+JSON routes hang off the interface URL itself; 0.3 clients add `/v1` to theirs.
    let rest = format!("{endpoint}/v1");
    let modes = ["text/plain", "application/json"];
    let mut card = json!({
        "name": "agentplane",
        "description": "Answers questions from this tenant's documents with cited, verifiable quotes (rag_answer), and researches a topic across several searches into a cross-referenced report (research).",
        "version": env!("CARGO_PKG_VERSION"),
        "provider": {"organization": "agentplane", "url": public_url},
        "defaultInputModes": modes,
        "defaultOutputModes": modes,
        "skills": skills(),
    });
    let fields = match version {
        A2aVersion::V1_0 => json!({
            "supportedInterfaces": [
                {"url": endpoint, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
                {"url": rest, "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"},
                {"url": endpoint, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
                {"url": endpoint, "protocolBinding": "HTTP+JSON", "protocolVersion": "0.3"}
            ],
            "securitySchemes": {"bearer": {"httpAuthSecurityScheme": {
                "scheme": "Bearer", "bearerFormat": "JWT", "description": SCHEME_DESCRIPTION
            }}},
            // `{}`, not `{"list": []}`: an empty list is a default, which a verifier drops before
            // checking the signature.
            "securityRequirements": [{"schemes": {"bearer": {}}}],
            "capabilities": {"streaming": streaming, "pushNotifications": push_notifications, "extendedAgentCard": true},
        }),
        A2aVersion::V0_3 => json!({
            "protocolVersion": "0.3.0",
            "url": endpoint,
            "preferredTransport": "JSONRPC",
            "additionalInterfaces": [
                {"url": endpoint, "transport": "JSONRPC"},
                {"url": endpoint, "transport": "HTTP+JSON"}
            ],
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": SCHEME_DESCRIPTION
            }},
            "security": [{"bearer": []}],
            "capabilities": {"streaming": streaming, "pushNotifications": push_notifications, "stateTransitionHistory": false},
            "supportsAuthenticatedExtendedCard": true,
        }),
    };
    if let (Some(card), Value::Object(fields)) = (card.as_object_mut(), fields) {
        card.extend(fields);
    }
    card
}

/// `card` with its `signatures`: a JWS with a detached payload, the RFC 8785 (JCS) form of the
/// card without `signatures`, as the 1.0 specification (8.4) has cards signed. The card holds no
/// field at its default value, so a verifier that drops defaults before canonicalizing computes
/// the same payload.
pub fn signed(card: &Value, key: &LocalKey, jku: &str) -> Value {
    let mut card = card.clone();
    if let Some(fields) = card.as_object_mut() {
        fields.remove("signatures");
    }
    let Ok(payload) = serde_json_canonicalizer::to_vec(&card) else { return card };
    let header = json!({ "alg": "EdDSA", "typ": "JOSE", "kid": key.kid(), "jku": jku });
    let protected = URL_SAFE_NO_PAD.encode(header.to_string());
    let signature = key.sign_raw(format!("{protected}.{}", URL_SAFE_NO_PAD.encode(payload)).as_bytes());
    card["signatures"] = json!([{ "protected": protected, "signature": signature }]);
    card
}

fn skills() -> Value {
    json!([
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
    ])
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
    use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};

    use super::*;

    fn test_key(name: &str) -> LocalKey {
        let dir = std::env::temp_dir().join(format!("agentplane-card-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        LocalKey::load_or_create_at(&dir.join("card.pem"), KEY_ID).unwrap()
    }

    #[test]
    fn the_signature_verifies_over_the_canonical_card_and_fails_once_it_changes() {
        let key = test_key("sign");
        let card = signed(&document("https://a.example", true, true, A2aVersion::V1_0), &key, "https://a.example/jwks");
        let verify = |card: &Value| {
            let sig = &card["signatures"][0];
            let protected = sig["protected"].as_str().unwrap();
            let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(protected).unwrap()).unwrap();
            assert_eq!((header["alg"].as_str(), header["kid"].as_str()), (Some("EdDSA"), Some(KEY_ID)));
            let mut body = card.clone();
            body.as_object_mut().unwrap().remove("signatures");
            let payload = URL_SAFE_NO_PAD.encode(serde_json_canonicalizer::to_vec(&body).unwrap());
            let x = URL_SAFE_NO_PAD.decode(key.jwks()["keys"][0]["x"].as_str().unwrap()).unwrap();
            let public = VerifyingKey::from_bytes(&x.try_into().unwrap()).unwrap();
            let raw: [u8; 64] = URL_SAFE_NO_PAD.decode(sig["signature"].as_str().unwrap()).unwrap().try_into().unwrap();
            public.verify(format!("{protected}.{payload}").as_bytes(), &Signature::from_bytes(&raw)).is_ok()
        };
        assert!(verify(&card));
        let mut changed = card.clone();
        changed["name"] = json!("someone else");
        assert!(!verify(&changed));
    }

    #[test]
    fn the_etag_follows_the_body_and_if_none_match_gets_304() {
        let doc = |url| document(url, true, false, A2aVersion::V1_0);
        let a = Card::new(&doc("https://a.example"));
        let b = Card::new(&doc("https://b.example"));
        assert_ne!(a.etag(), b.etag());
        assert_eq!(a.etag(), Card::new(&doc("https://a.example")).etag());
        let mut h = HeaderMap::new();
        assert_eq!(a.respond(&h).status(), StatusCode::OK);
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(&format!("\"x\", W/{}", a.etag())).unwrap());
        assert_eq!(a.respond(&h).status(), StatusCode::NOT_MODIFIED);
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(b.etag()).unwrap());
        assert_eq!(a.respond(&h).status(), StatusCode::OK);
    }

    #[test]
    fn each_version_gets_its_own_fields_only() {
        let v1 = document("https://a.example/", true, false, A2aVersion::V1_0);
        assert_eq!(v1["supportedInterfaces"][0]["protocolVersion"], "1.0");
        assert_eq!(v1["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]["bearerFormat"], "JWT");
        for field in ["url", "protocolVersion", "preferredTransport", "security", "supportsAuthenticatedExtendedCard"] {
            assert!(v1.get(field).is_none(), "{field}");
        }
        let v03 = document("https://a.example/", true, false, A2aVersion::V0_3);
        assert_eq!(v03["url"], "https://a.example/a2a");
        assert_eq!(v03["securitySchemes"]["bearer"]["bearerFormat"], "JWT");
        assert!(v03.get("supportedInterfaces").is_none());
        assert_eq!(v03["skills"], v1["skills"]);
    }

    #[test]
    fn the_version_header_or_query_picks_the_shape() {
        let cards = Cards::new("https://a.example", None, true, true, &test_key("pick"));
        let body = |headers: &HeaderMap, query| {
            let r = cards.respond(headers, query);
            assert_eq!(r.headers()[header::VARY], "A2A-Version");
            r.headers()[header::ETAG].to_str().unwrap().to_owned()
        };
        let none = HeaderMap::new();
        let mut old = HeaderMap::new();
        old.insert("a2a-version", HeaderValue::from_static("0.3"));
        assert_eq!(body(&none, None), cards.v1.etag());
        assert_eq!(body(&old, None), cards.v03.etag());
        assert_eq!(body(&none, Some("A2A-Version=0.3")), cards.v03.etag());
    }
}
