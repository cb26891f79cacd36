//! Which results may be kept at the edge, for how long, and under which key.
//!
//! Every key starts with the tenant and the tenant's data generation (a counter bumped by each
//! write), so a write makes all of the tenant's earlier entries unreachable and no entry is ever
//! visible to another tenant. Private results also carry the digest of the token they were made
//! for. Origin hints of MCP 2026-07-28 (`ttlMs`, `cacheScope` on a result) can shorten a lifetime
//! or forbid sharing, never lengthen or widen what the route allows.
//!
//! Only a JSON 200 result of a cacheable call is stored, and only the result: the id is wrapped
//! anew for each hit ([`CacheEntry::response_for`]). Errors, `isError` tool results and SSE
//! bodies are never stored.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::auth::TokenDigest;
use crate::catalogue::Dialect;
use crate::digest::Fields;
use crate::jsonrpc::Id;
use crate::time::{NANOS_PER_MILLI, Timestamp};

/// Who may be served an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheScope {
    /// Every caller of the same tenant (MCP's `"public"`, kept within the tenant all the same).
    Shared,
    /// Only the same token (MCP's `"private"`: same authorisation context).
    Private,
}

/// What a route allows: the longest lifetime and the widest scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRule {
    pub max_ttl_ms: u64,
    pub scope: CacheScope,
}

/// Lifetime hints a 2026-07-28 result carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheHints {
    pub ttl_ms: Option<u64>,
    pub scope: Option<CacheScope>,
}

impl CacheHints {
    /// Reads `ttlMs` and `cacheScope` from a result object. Malformed hints are ignored, which
    /// leaves the route's own rule in force.
    pub fn from_result(result: &Value) -> Self {
        Self {
            ttl_ms: result.get("ttlMs").and_then(Value::as_u64),
            scope: match result.get("cacheScope").and_then(Value::as_str) {
                Some("public") => Some(CacheScope::Shared),
                Some("private") => Some(CacheScope::Private),
                _ => None,
            },
        }
    }
}

/// How long a result may be stored under a rule and the origin's hints: `None` means not at all.
/// A result marked private on a route keyed for sharing is not stored, because a lookup would
/// find it under the shared key.
pub fn storable_ttl_ms(rule: CacheRule, hints: CacheHints) -> Option<u64> {
    if rule.scope == CacheScope::Shared && hints.scope == Some(CacheScope::Private) {
        return None;
    }
    let ttl = hints.ttl_ms.map_or(rule.max_ttl_ms, |h| h.min(rule.max_ttl_ms));
    (ttl > 0).then_some(ttl)
}

/// A cache key: `ap1-` and 64 hex digits. Safe as a URL path segment and a key-value key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CacheKey(String);

impl CacheKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything a cached result depends on.
#[derive(Debug, Clone, Copy)]
pub struct KeyParts<'a> {
    pub tenant: Uuid,
    pub generation: u64,
    pub dialect: Dialect,
    pub method: &'a str,
    pub params: Option<&'a Value>,
    pub scope: CacheScope,
    /// The caller's token; only read for [`CacheScope::Private`].
    pub token: &'a TokenDigest,
}

/// Derives the key. Fields are length-prefixed so no two different inputs share an encoding;
/// params are canonical JSON (sorted keys, no whitespace) without `_meta`, which carries
/// per-request values such as progress tokens.
pub fn cache_key(parts: &KeyParts<'_>) -> CacheKey {
    let mut h = Fields::new();
    h.field(b"agentplane-cache-v1");
    h.field(parts.tenant.as_bytes());
    h.field(&parts.generation.to_be_bytes());
    h.field(parts.dialect.tag().as_bytes());
    h.field(parts.method.as_bytes());
    match parts.scope {
        CacheScope::Shared => h.field(b"shared"),
        CacheScope::Private => {
            h.field(b"private");
            h.field(parts.token.as_bytes());
        }
    }
    let mut params = Vec::new();
    if let Some(p) = parts.params {
        write_canonical(p, true, &mut params);
    }
    h.field(&params);
    CacheKey(h.finish_hex("ap1-"))
}

/// Canonical JSON: object keys sorted by their UTF-8 bytes, no insignificant whitespace, strings
/// and numbers as serde_json writes them. `skip_meta` drops a top-level `_meta` member.
pub fn write_canonical(value: &Value, skip_meta: bool, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> =
                map.iter().filter(|(k, _)| !(skip_meta && k.as_str() == "_meta")).collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(k.clone()), out);
                out.push(b':');
                write_canonical(v, false, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, false, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &Value, out: &mut Vec<u8>) {
    // Writing a scalar into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// What the edge stores: the result alone (the id differs per request) and when it dies. The
/// store's own expiry may be coarser, so the entry carries its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    pub expires_at_ms: u64,
    pub result: Value,
}

impl CacheEntry {
    pub fn new(result: Value, now: Timestamp, ttl_ms: u64) -> Self {
        Self { expires_at_ms: now.as_unix_millis().saturating_add(ttl_ms), result }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a stored entry; `None` when it is corrupt or dead at `now`.
    pub fn read(bytes: &[u8], now: Timestamp) -> Option<Self> {
        let entry: Self = serde_json::from_slice(bytes).ok()?;
        (now.as_unix_nanos() < entry.expires_at_ms.saturating_mul(NANOS_PER_MILLI)).then_some(entry)
    }

    /// The entry as a response to a request with `id`.
    pub fn response_for(&self, id: &Id) -> Vec<u8> {
        crate::jsonrpc::success_bytes(id, &self.result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::McpRevision;
    use proptest::prelude::*;
    use serde_json::json;

    const DIALECT: Dialect = Dialect::Mcp(Some(McpRevision::V2025_11_25));

    fn key(tenant: Uuid, generation: u64, params: &Value, scope: CacheScope, token: &TokenDigest) -> CacheKey {
        cache_key(&KeyParts {
            tenant,
            generation,
            dialect: DIALECT,
            method: "tools/call",
            params: Some(params),
            scope,
            token,
        })
    }

    #[test]
    fn canonical_json_sorts_keys_and_drops_meta() {
        let mut out = Vec::new();
        write_canonical(
            &json!({"b": [1, {"y": 2, "x": "é"}], "a": null, "_meta": {"progressToken": 1}}),
            true,
            &mut out,
        );
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"a":null,"b":[1,{"x":"é","y":2}]}"#);
        // Nested `_meta` is data, not the request's metadata.
        let mut out = Vec::new();
        write_canonical(&json!({"a": {"_meta": 1}}), true, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"a":{"_meta":1}}"#);
    }

    #[test]
    fn key_ignores_key_order_and_meta_but_not_values() {
        let t = Uuid::from_u128(1);
        let tok = TokenDigest::of("a");
        let a = key(
            t,
            0,
            &json!({"name": "hybrid_search", "arguments": {"query": "q", "limit": 5}}),
            CacheScope::Shared,
            &tok,
        );
        let b = key(
            t,
            0,
            &json!({"arguments": {"limit": 5, "query": "q"}, "name": "hybrid_search", "_meta": {"progressToken": 9}}),
            CacheScope::Shared,
            &tok,
        );
        assert_eq!(a, b);
        let c = key(
            t,
            0,
            &json!({"name": "hybrid_search", "arguments": {"query": "q", "limit": 6}}),
            CacheScope::Shared,
            &tok,
        );
        assert_ne!(a, c);
        assert_ne!(
            a,
            key(
                t,
                1,
                &json!({"name": "hybrid_search", "arguments": {"query": "q", "limit": 5}}),
                CacheScope::Shared,
                &tok
            )
        );
        assert!(a.as_str().starts_with("ap1-") && a.as_str().len() == 68);
    }

    #[test]
    fn private_keys_depend_on_the_token_shared_ones_do_not() {
        let t = Uuid::from_u128(1);
        let p = json!({});
        let (a, b) = (TokenDigest::of("a"), TokenDigest::of("b"));
        assert_eq!(key(t, 0, &p, CacheScope::Shared, &a), key(t, 0, &p, CacheScope::Shared, &b));
        assert_ne!(key(t, 0, &p, CacheScope::Private, &a), key(t, 0, &p, CacheScope::Private, &b));
        assert_ne!(key(t, 0, &p, CacheScope::Private, &a), key(t, 0, &p, CacheScope::Shared, &a));
    }

    #[test]
    fn hints_only_narrow() {
        let shared = CacheRule { max_ttl_ms: 30_000, scope: CacheScope::Shared };
        let private = CacheRule { max_ttl_ms: 30_000, scope: CacheScope::Private };
        let h = |r: Value| CacheHints::from_result(&r);
        assert_eq!(storable_ttl_ms(shared, h(json!({}))), Some(30_000));
        assert_eq!(storable_ttl_ms(shared, h(json!({"ttlMs": 5000, "cacheScope": "public"}))), Some(5_000));
        assert_eq!(storable_ttl_ms(shared, h(json!({"ttlMs": 90_000}))), Some(30_000));
        assert_eq!(storable_ttl_ms(shared, h(json!({"ttlMs": 0}))), None);
        assert_eq!(storable_ttl_ms(shared, h(json!({"ttlMs": 5000, "cacheScope": "private"}))), None);
        assert_eq!(storable_ttl_ms(private, h(json!({"ttlMs": 5000, "cacheScope": "private"}))), Some(5_000));
        assert_eq!(storable_ttl_ms(private, h(json!({"cacheScope": "public"}))), Some(30_000));
        assert_eq!(storable_ttl_ms(shared, h(json!({"ttlMs": "soon", "cacheScope": 3}))), Some(30_000));
    }

    #[test]
    fn entries_expire_and_rewrap_ids() {
        let now = Timestamp::from_unix_millis(1_000);
        let e = CacheEntry::new(json!({"content": []}), now, 500);
        let bytes = e.to_vec();
        assert!(CacheEntry::read(&bytes, Timestamp::from_unix_millis(1_499)).is_some());
        assert!(CacheEntry::read(&bytes, Timestamp::from_unix_millis(1_500)).is_none());
        assert!(CacheEntry::read(b"garbage", now).is_none());
        let v: Value = serde_json::from_slice(&e.response_for(&Id::from(42))).unwrap();
        assert_eq!(v, json!({"jsonrpc": "2.0", "id": 42, "result": {"content": []}}));
    }

    proptest! {
        /// Two tenants never share a key, whatever else they have in common.
        #[test]
        fn tenants_never_share_keys(
            t1 in any::<u128>(), t2 in any::<u128>(), g1 in any::<u64>(), g2 in any::<u64>(),
            q in ".{0,40}", private in any::<bool>(), same_token in any::<bool>(),
        ) {
            prop_assume!(t1 != t2);
            let scope = if private { CacheScope::Private } else { CacheScope::Shared };
            let params = json!({"name": "hybrid_search", "arguments": {"query": q}});
            let a = TokenDigest::of("token-a");
            let b = if same_token { a } else { TokenDigest::of("token-b") };
            prop_assert_ne!(key(Uuid::from_u128(t1), g1, &params, scope, &a), key(Uuid::from_u128(t2), g2, &params, scope, &b));
        }

        /// Canonical JSON is a fixed point: parsing it and writing it again gives the same bytes.
        #[test]
        fn canonical_json_is_stable(v in crate::testing::arb_json()) {
            let mut once = Vec::new();
            write_canonical(&v, false, &mut once);
            let reparsed: Value = serde_json::from_slice(&once).unwrap();
            prop_assert_eq!(&reparsed, &v);
            let mut twice = Vec::new();
            write_canonical(&reparsed, false, &mut twice);
            prop_assert_eq!(once, twice);
        }
    }
}
