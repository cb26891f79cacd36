//! The JWT attack table: each hostile or broken token is refused with its own typed error.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::*;
use crate::testkit::{self, AUDIENCE, FOREIGN_RSA_PEM, ISSUER, RSA_PUBLIC_PEM, TENANT_A};
use crate::time::Timestamp;

const NOW: u64 = 1_767_225_600;

fn now() -> Timestamp {
    Timestamp::from_unix_secs(NOW)
}

fn verifier() -> Verifier {
    let keys = KeySet::from_jwks(&testkit::jwks().unwrap()).unwrap();
    Verifier::new(VerifierConfig::new(ISSUER, AUDIENCE), keys).unwrap()
}

fn claims() -> Value {
    testkit::claims(NOW, "search:read docs:write")
}

fn with(f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut c = claims();
    f(c.as_object_mut().unwrap());
    c
}

fn mint(claims: &Value) -> String {
    testkit::mint("rsa-1", claims).unwrap()
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn hs256_with_rsa_public_key(kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    testkit::mint_with(&header, &claims(), &EncodingKey::from_secret(RSA_PUBLIC_PEM.as_bytes())).unwrap()
}

#[test]
fn attack_table() {
    let v = verifier();
    let valid = mint(&claims());
    let (h, _, s) = {
        let mut it = valid.split('.');
        (it.next().unwrap().to_owned(), it.next().unwrap().to_owned(), it.next().unwrap().to_owned())
    };
    let tampered = format!(
        "{h}.{}.{s}",
        b64(&with(|c| {
            c.insert("tenant_id".into(), json!(testkit::TENANT_B));
        }))
    );
    let none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims()));
    let foreign = {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("rsa-1".into());
        testkit::mint_with(&header, &claims(), &EncodingKey::from_rsa_pem(FOREIGN_RSA_PEM.as_bytes()).unwrap()).unwrap()
    };
    let unknown_kid = {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("rotated-away".into());
        testkit::mint_with(&header, &claims(), &EncodingKey::from_rsa_pem(FOREIGN_RSA_PEM.as_bytes()).unwrap()).unwrap()
    };
    let oversized = mint(&with(|c| {
        c.insert("padding".into(), json!("x".repeat(9000)));
    }));

    let table: Vec<(&str, String, VerifyError)> = vec![
        ("alg none", none, VerifyError::AlgorithmNotAllowed { alg: "none".into() }),
        (
            "HS256 signed with the RSA public key",
            hs256_with_rsa_public_key(Some("rsa-1")),
            VerifyError::AlgorithmNotAllowed { alg: "HS256".into() },
        ),
        (
            "expired",
            mint(&with(|c| {
                c.insert("exp".into(), json!(NOW - 3600));
            })),
            VerifyError::Expired,
        ),
        (
            "not yet valid",
            mint(&with(|c| {
                c.insert("nbf".into(), json!(NOW + 3600));
            })),
            VerifyError::NotYetValid,
        ),
        (
            "wrong aud",
            mint(&with(|c| {
                c.insert("aud".into(), json!("other"));
            })),
            VerifyError::WrongAudience,
        ),
        (
            "wrong iss",
            mint(&with(|c| {
                c.insert("iss".into(), json!("https://evil.test"));
            })),
            VerifyError::WrongIssuer,
        ),
        ("unknown kid", unknown_kid, VerifyError::UnknownKey { kid: "rotated-away".into() }),
        ("tampered payload", tampered, VerifyError::InvalidSignature),
        ("signed by a key not in the set", foreign, VerifyError::InvalidSignature),
        (
            "missing tenant_id",
            mint(&with(|c| {
                c.remove("tenant_id");
            })),
            VerifyError::MissingClaim("tenant_id"),
        ),
        (
            "non-UUID tenant_id",
            mint(&with(|c| {
                c.insert("tenant_id".into(), json!("acme"));
            })),
            VerifyError::InvalidTenant,
        ),
        (
            "numeric tenant_id",
            mint(&with(|c| {
                c.insert("tenant_id".into(), json!(7));
            })),
            VerifyError::InvalidClaim { claim: "tenant_id" },
        ),
        ("oversized token", oversized.clone(), VerifyError::TooLarge { size: oversized.len(), limit: 8192 }),
        (
            "missing exp",
            mint(&with(|c| {
                c.remove("exp");
            })),
            VerifyError::MissingClaim("exp"),
        ),
        (
            "missing aud",
            mint(&with(|c| {
                c.remove("aud");
            })),
            VerifyError::MissingClaim("aud"),
        ),
        (
            "missing iss",
            mint(&with(|c| {
                c.remove("iss");
            })),
            VerifyError::MissingClaim("iss"),
        ),
        (
            "missing sub",
            mint(&with(|c| {
                c.remove("sub");
            })),
            VerifyError::MissingClaim("sub"),
        ),
        (
            "string exp",
            mint(&with(|c| {
                c.insert("exp".into(), json!("tomorrow"));
            })),
            VerifyError::InvalidClaim { claim: "exp" },
        ),
        ("two parts", "abc.def".into(), VerifyError::Malformed("expected three dot-separated parts")),
        ("four parts", "a.b.c.d".into(), VerifyError::Malformed("expected three dot-separated parts")),
        ("header not base64", "!!.e30.x".into(), VerifyError::Malformed("header is not base64url")),
        (
            "header not JSON",
            format!("{}.e30.x", URL_SAFE_NO_PAD.encode("nope")),
            VerifyError::Malformed("header is not a JSON object"),
        ),
    ];
    let mut seen = std::collections::HashSet::new();
    for (name, token, expected) in table {
        assert_eq!(v.verify(&token, now()), Err(expected.clone()), "{name}");
        seen.insert(std::mem::discriminant(&expected));
    }
    assert!(seen.len() >= 12, "the attack table must exercise distinct error variants");
}

#[test]
fn valid_tokens_of_every_algorithm_give_a_principal() {
    let v = verifier();
    for kid in ["rsa-1", "ec-1", "ed-1"] {
        let p = v.verify(&testkit::mint(kid, &claims()).unwrap(), now()).unwrap();
        assert_eq!(p.tenant.to_string(), TENANT_A);
        assert_eq!(p.subject, "alice");
        assert!(p.scopes.contains("docs:write") && !p.scopes.contains("tasks:run"));
        assert_eq!(
            (p.tier.as_deref(), p.token_id.as_deref(), p.expires_at),
            (Some("free"), Some("token-1"), NOW + 3600)
        );
    }
}

#[test]
fn claims_edges() {
    let v = verifier();
    // Leeway of 30 s on both sides.
    assert!(
        v.verify(
            &mint(&with(|c| {
                c.insert("exp".into(), json!(NOW - 29));
            })),
            now()
        )
        .is_ok()
    );
    assert_eq!(
        v.verify(
            &mint(&with(|c| {
                c.insert("exp".into(), json!(NOW - 30));
            })),
            now()
        ),
        Err(VerifyError::Expired)
    );
    assert!(
        v.verify(
            &mint(&with(|c| {
                c.insert("nbf".into(), json!(NOW + 30));
            })),
            now()
        )
        .is_ok()
    );
    // Audience arrays, fractional NumericDates, `scp` arrays.
    assert!(
        v.verify(
            &mint(&with(|c| {
                c.insert("aud".into(), json!(["x", AUDIENCE]));
            })),
            now()
        )
        .is_ok()
    );
    assert!(
        v.verify(
            &mint(&with(|c| {
                c.insert("exp".into(), json!(NOW as f64 + 100.5));
            })),
            now()
        )
        .is_ok()
    );
    let p = v
        .verify(
            &mint(&with(|c| {
                c.remove("scope");
                c.insert("scp".into(), json!(["a", "b"]));
            })),
            now(),
        )
        .unwrap();
    assert!(p.scopes.contains("a") && p.scopes.contains("b"));
    // A token without kid is checked against the one key of its family.
    let no_kid = testkit::mint_with(
        &Header::new(Algorithm::ES256),
        &claims(),
        &EncodingKey::from_ec_pem(testkit::KEYS[1].2.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(v.verify(&no_kid, now()).is_ok());
}

#[test]
fn hmac_needs_a_configured_secret_and_never_accepts_a_public_key_kid() {
    let jwks = testkit::jwks().unwrap();
    let keys = KeySet::from_jwks(&jwks).unwrap();
    let mut config = VerifierConfig::new(ISSUER, AUDIENCE);
    config.algorithms.push(Algorithm::HS256);
    assert_eq!(
        Verifier::new(config.clone(), keys.clone()).unwrap_err(),
        VerifierConfigError::HmacWithoutSecret(Algorithm::HS256)
    );
    assert!(matches!(keys.clone().with_hmac_secret(b"short", None), Err(KeyError::WeakSecret)));
    let secret = [7u8; 32];
    let v = Verifier::new(config, keys.with_hmac_secret(&secret, Some("hmac-1".into())).unwrap()).unwrap();
    // The classic confusion: HS256 with the RSA key's kid is refused by key family.
    assert!(matches!(
        v.verify(&hs256_with_rsa_public_key(Some("rsa-1")), now()),
        Err(VerifyError::KeyAlgorithmMismatch { .. })
    ));
    // A real HMAC token under the secret's kid passes.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("hmac-1".into());
    let token = testkit::mint_with(&header, &claims(), &EncodingKey::from_secret(&secret)).unwrap();
    assert!(v.verify(&token, now()).is_ok());
}

#[test]
fn key_sources() {
    assert!(matches!(KeySet::from_jwks(b"{}"), Err(KeyError::Jwks(_))));
    assert!(matches!(KeySet::from_jwks(br#"{"keys":[]}"#), Err(KeyError::NoUsableKey)));
    // Unknown key types and encryption keys are skipped, not fatal.
    let mut doc: Value = serde_json::from_slice(&testkit::jwks().unwrap()).unwrap();
    doc["keys"].as_array_mut().unwrap().push(json!({"kty": "AKP", "alg": "ML-DSA-44", "pub": "x"}));
    doc["keys"][0]["use"] = json!("enc");
    let keys = KeySet::from_jwks(&serde_json::to_vec(&doc).unwrap()).unwrap();
    assert_eq!(keys.len(), 2);
    let pem = KeySet::from_pem(RSA_PUBLIC_PEM.as_bytes(), None).unwrap();
    let v = Verifier::new(VerifierConfig::new(ISSUER, AUDIENCE), pem).unwrap();
    assert!(v.verify(&mint(&claims()), now()).is_ok());
    assert!(matches!(KeySet::from_pem(b"not a pem", None), Err(KeyError::Pem)));
}

#[test]
fn memo_skips_verification_until_expiry_and_forgets_on_key_rotation() {
    let mut auth = Authenticator::new(verifier(), std::num::NonZeroUsize::new(2).unwrap());
    let token = mint(&claims());
    assert_eq!(auth.authenticate(&token, now()).unwrap().2, MemoOutcome::Miss);
    assert_eq!(auth.authenticate(&token, now()).unwrap().2, MemoOutcome::Hit);
    // Past exp + leeway the memo entry is dead and verification fails afresh.
    let later = Timestamp::from_unix_secs(NOW + 3600 + 30);
    assert_eq!(auth.authenticate(&token, later), Err(VerifyError::Expired));
    assert_eq!(auth.memo_len(), 0);
    // Bounded: the least recently used token is evicted.
    let tokens: Vec<String> = (0..3)
        .map(|i| {
            mint(&with(|c| {
                c.insert("jti".into(), json!(format!("t{i}")));
            }))
        })
        .collect();
    for t in &tokens {
        auth.authenticate(t, now()).unwrap();
    }
    assert_eq!(auth.memo_len(), 2);
    assert_eq!(auth.authenticate(&tokens[0], now()).unwrap().2, MemoOutcome::Miss);
    // Rotating keys clears the memo: a token of a withdrawn key stops passing at once.
    let only_ec = {
        let mut doc: Value = serde_json::from_slice(&testkit::jwks().unwrap()).unwrap();
        doc["keys"].as_array_mut().unwrap().retain(|k| k["kid"] == "ec-1");
        KeySet::from_jwks(&serde_json::to_vec(&doc).unwrap()).unwrap()
    };
    auth.replace_keys(only_ec).unwrap();
    assert_eq!(auth.authenticate(&tokens[0], now()), Err(VerifyError::UnknownKey { kid: "rsa-1".into() }));
}

#[test]
fn fingerprints_separate_tokens_and_keys() {
    let v = verifier();
    let a = v.prepare(&mint(&claims())).unwrap();
    let b = v
        .prepare(&mint(&with(|c| {
            c.insert("sub".into(), json!("someone-else"));
        })))
        .unwrap();
    let a_again = v.prepare(&mint(&claims())).unwrap();
    assert_eq!(a.fingerprint(), a_again.fingerprint(), "same token, same key: same fingerprint");
    assert_ne!(a.fingerprint(), b.fingerprint());
    let ec = v.prepare(&testkit::mint("ec-1", &claims()).unwrap()).unwrap();
    assert!(ec.fingerprint().is_some());
    assert_ne!(a.fingerprint(), ec.fingerprint());
    // A key given as PEM has no JWK to name it: nothing to remember a verdict under.
    let pem = KeySet::from_pem(RSA_PUBLIC_PEM.as_bytes(), None).unwrap();
    let pem = Verifier::new(VerifierConfig::new(ISSUER, AUDIENCE), pem).unwrap().prepare(&mint(&claims())).unwrap();
    assert_eq!(pem.fingerprint(), None);
}
