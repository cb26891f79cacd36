//! Test keys, token minting and the shared test vectors, compiled only with the `test-vectors`
//! feature: the native tests use them, and so do the edge runtimes, which run the same vectors
//! inside workerd and wasmtime.
//!
//! The private keys under `core/tests/keys/` exist for tests only and protect nothing.

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

pub mod vectors;
pub mod workload;

pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "agentplane-test";
pub const RESOURCE: &str = "https://edge.test";
pub const TENANT_A: &str = "11111111-1111-4111-8111-111111111111";
pub const TENANT_B: &str = "22222222-2222-4222-8222-222222222222";

/// The test signing keys: `(kid, algorithm, private PKCS#8 PEM)`.
pub const KEYS: [(&str, Algorithm, &str); 3] = [
    ("rsa-1", Algorithm::RS256, include_str!("../tests/keys/rsa.pem")),
    ("ec-1", Algorithm::ES256, include_str!("../tests/keys/ec.pem")),
    ("ed-1", Algorithm::EdDSA, include_str!("../tests/keys/ed.pem")),
];

/// An RSA key that is in no key set: tokens it signs must fail.
pub const FOREIGN_RSA_PEM: &str = include_str!("../tests/keys/rsa2.pem");
/// The RSA public key as PEM, for the "HS256 signed with the public key" attack.
pub const RSA_PUBLIC_PEM: &str = include_str!("../tests/keys/rsa.pub.pem");

#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    #[error("unknown test kid {0}")]
    UnknownKid(String),
    #[error(transparent)]
    Jwt(#[from] jsonwebtoken::errors::Error),
}

fn encoding_key(alg: Algorithm, pem: &str) -> Result<EncodingKey, TestkitError> {
    Ok(match alg {
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem.as_bytes())?,
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes())?,
        _ => EncodingKey::from_rsa_pem(pem.as_bytes())?,
    })
}

/// The JWKS of the test keys' public halves.
pub fn jwks() -> Result<Vec<u8>, TestkitError> {
    let mut keys = Vec::new();
    for (kid, alg, pem) in KEYS {
        let mut jwk = Jwk::from_encoding_key(&encoding_key(alg, pem)?, alg)?;
        jwk.common.key_id = Some(kid.to_owned());
        keys.push(jwk);
    }
    Ok(serde_json::to_vec(&JwkSet { keys }).unwrap_or_default())
}

/// Signs `claims` with the test key `kid`.
pub fn mint(kid: &str, claims: &Value) -> Result<String, TestkitError> {
    let (kid, alg, pem) =
        KEYS.into_iter().find(|(k, _, _)| *k == kid).ok_or_else(|| TestkitError::UnknownKid(kid.to_owned()))?;
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    Ok(jsonwebtoken::encode(&header, claims, &encoding_key(alg, pem)?)?)
}

/// Signs with an arbitrary key and header, for attack cases.
pub fn mint_with(header: &Header, claims: &Value, key: &EncodingKey) -> Result<String, TestkitError> {
    Ok(jsonwebtoken::encode(header, claims, key)?)
}

/// Claims valid at `now_secs` for tenant A with the given scopes.
pub fn claims(now_secs: u64, scope: &str) -> Value {
    serde_json::json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "tenant_id": TENANT_A,
        "scope": scope,
        "tier": "free",
        "jti": "token-1",
        "iat": now_secs,
        "exp": now_secs + 3600,
    })
}
