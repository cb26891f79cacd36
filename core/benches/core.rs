//! Native timings of the core's hot paths: `cargo bench -p agentplane-core`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::num::NonZeroUsize;

use agentplane_core::auth::{Authenticator, KeySet, TokenDigest, Verifier, VerifierConfig};
use agentplane_core::cache::{CacheScope, KeyParts, cache_key};
use agentplane_core::catalogue::{self, Dialect, McpRevision, ToolPolicies};
use agentplane_core::jsonrpc::{self, Limits};
use agentplane_core::ratelimit::{self, GcraState, Quota};
use agentplane_core::testkit::workload::{TOOLS_CALL, Tokens, Workload};
use agentplane_core::testkit::{self, AUDIENCE, ISSUER};
use agentplane_core::time::Timestamp;
use criterion::{Criterion, criterion_group, criterion_main};
use uuid::Uuid;

const NOW: u64 = 1_767_225_600;

fn keys() -> KeySet {
    KeySet::from_jwks(&testkit::jwks().unwrap()).unwrap()
}

fn token() -> String {
    testkit::mint("rsa-1", &testkit::claims(NOW, "search:read docs:write")).unwrap()
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let tools = ToolPolicies::default();
    let dialect = Dialect::Mcp(Some(McpRevision::V2025_11_25));
    c.bench_function("parse + route tools/call", |b| {
        b.iter(|| {
            let m = jsonrpc::parse(black_box(TOOLS_CALL), &limits).unwrap();
            let r = catalogue::route(&m, dialect, &tools).unwrap();
            black_box(r.scope);
        })
    });

    let verifier = Verifier::new(VerifierConfig::new(ISSUER, AUDIENCE), keys()).unwrap();
    let token = token();
    let now = Timestamp::from_unix_secs(NOW);
    c.bench_function("RS256 verify (full)", |b| b.iter(|| black_box(verifier.verify(black_box(&token), now).unwrap())));

    let mut auth = Authenticator::new(verifier.clone(), NonZeroUsize::new(1024).unwrap());
    auth.authenticate(&token, now).unwrap();
    c.bench_function("token memo hit", |b| b.iter(|| black_box(auth.authenticate(black_box(&token), now).unwrap())));

    let quota = Quota::new(1000, 60, 200).unwrap();
    let mut state = GcraState::default();
    let mut t = NOW * 1_000_000_000;
    c.bench_function("GCRA decision", |b| {
        b.iter(|| {
            t += 1_000_000;
            let (d, s) = ratelimit::decide(state, Timestamp::from_unix_nanos(t), black_box(&quota));
            state = s;
            black_box(d)
        })
    });

    let message = jsonrpc::parse(TOOLS_CALL, &limits).unwrap();
    let digest = TokenDigest::of(&token);
    c.bench_function("cache key derivation", |b| {
        b.iter(|| {
            black_box(cache_key(&KeyParts {
                tenant: Uuid::from_u128(1),
                generation: 7,
                dialect,
                method: "tools/call",
                params: message.params(),
                scope: CacheScope::Shared,
                token: &digest,
            }))
        })
    });

    // The same workload the Worker runs for `scripts/bench-edge`, so native and wasm figures
    // describe the same work.
    for (label, tokens) in [
        ("memo hit", Tokens::MemoHit),
        ("memo miss, RS256", Tokens::MemoMiss("rsa-1")),
        ("memo miss, ES256", Tokens::MemoMiss("ec-1")),
        ("memo miss, EdDSA", Tokens::MemoMiss("ed-1")),
    ] {
        let mut workload = Workload::new(tokens).unwrap();
        assert!(workload.request());
        c.bench_function(&format!("gateway: tools/call to forward decision ({label})"), |b| {
            b.iter(|| assert!(black_box(workload.request())))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
