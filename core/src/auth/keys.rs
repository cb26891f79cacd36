//! The keys tokens are checked against: a JWKS document (several keys told apart by `kid`, which
//! is how issuers rotate), a PEM public key, and optionally an HMAC secret.

use std::sync::Arc;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

/// Why a key source could not be loaded. These are configuration errors, reported at start-up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("JWKS is not valid JSON of the expected shape: {0}")]
    Jwks(String),
    #[error("JWKS key {kid:?} cannot be used: {reason}")]
    JwkKey { kid: Option<String>, reason: String },
    #[error("JWKS holds no usable signing key")]
    NoUsableKey,
    #[error("PEM is not an RSA, EC or Ed25519 public key")]
    Pem,
    #[error("HMAC secret must be at least 32 bytes")]
    WeakSecret,
}

#[derive(Clone)]
pub(crate) struct VerificationKey {
    pub(crate) kid: Option<String>,
    /// The one algorithm this key may verify, when the JWK says so with `alg`.
    pub(crate) alg: Option<Algorithm>,
    pub(crate) family: AlgorithmFamily,
    pub(crate) key: DecodingKey,
    /// The public part of the key as JWK text, for platforms that verify with their own crypto
    /// (WebCrypto's `importKey("jwk", ...)`). Only keys that came from a JWKS have one.
    pub(crate) public_jwk: Option<Arc<str>>,
}

/// A set of verification keys.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: Vec<VerificationKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material; kids and families are enough to debug a mismatch.
        f.debug_list().entries(self.keys.iter().map(|k| (k.kid.as_deref(), k.family))).finish()
    }
}

impl KeySet {
    /// Loads the signing keys of a JWKS document. Keys marked for encryption (`"use": "enc"`) and
    /// key types this verifier does not know are passed over; a set with no usable key is an error.
    pub fn from_jwks(json: &[u8]) -> Result<Self, KeyError> {
        #[derive(serde::Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let doc: Document = serde_json::from_slice(json).map_err(|e| KeyError::Jwks(e.to_string()))?;
        let mut keys = Vec::with_capacity(doc.keys.len());
        for raw in doc.keys {
            // One key of a type this crate cannot read (a post-quantum `kty`, say) must not take
            // the whole set down with it.
            let Ok(jwk) = serde_json::from_value::<Jwk>(raw) else { continue };
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                continue;
            }
            let family = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => AlgorithmFamily::Rsa,
                AlgorithmParameters::EllipticCurve(_) => AlgorithmFamily::Ec,
                AlgorithmParameters::OctetKeyPair(_) => AlgorithmFamily::Ed,
                // Symmetric keys never come from a published JWKS.
                AlgorithmParameters::OctetKey(_) => continue,
                _ => continue,
            };
            let alg = match jwk.common.key_algorithm {
                None => None,
                Some(ka) => match signing_algorithm(ka) {
                    Some(alg) if alg.family() == family => Some(alg),
                    // An encryption algorithm, or one that contradicts the key type.
                    _ => continue,
                },
            };
            let kid = jwk.common.key_id.clone();
            let key = DecodingKey::from_jwk(&jwk)
                .map_err(|e| KeyError::JwkKey { kid: kid.clone(), reason: e.to_string() })?;
            // Re-serialised from the parsed parameters, so only `kty` and the public fields go
            // out: a private member wrongly published in the set is never handed on.
            let public_jwk = serde_json::to_string(&jwk.algorithm).ok().map(Arc::from);
            keys.push(VerificationKey { kid, alg, family, key, public_jwk });
        }
        if keys.is_empty() {
            return Err(KeyError::NoUsableKey);
        }
        Ok(Self { keys })
    }

    /// Loads one PEM public key (RSA, EC or Ed25519), optionally under a `kid`.
    pub fn from_pem(pem: &[u8], kid: Option<String>) -> Result<Self, KeyError> {
        let (family, key) = if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
            (AlgorithmFamily::Rsa, k)
        } else if let Ok(k) = DecodingKey::from_ec_pem(pem) {
            (AlgorithmFamily::Ec, k)
        } else if let Ok(k) = DecodingKey::from_ed_pem(pem) {
            (AlgorithmFamily::Ed, k)
        } else {
            return Err(KeyError::Pem);
        };
        Ok(Self { keys: vec![VerificationKey { kid, alg: None, family, key, public_jwk: None }] })
    }

    /// Adds a shared HMAC secret. Only a set with one admits HS256 tokens at all.
    pub fn with_hmac_secret(mut self, secret: &[u8], kid: Option<String>) -> Result<Self, KeyError> {
        if secret.len() < 32 {
            return Err(KeyError::WeakSecret);
        }
        self.keys.push(VerificationKey {
            kid,
            alg: None,
            family: AlgorithmFamily::Hmac,
            key: DecodingKey::from_secret(secret),
            public_jwk: None,
        });
        Ok(self)
    }

    /// Merges another set into this one (a JWKS plus an extra PEM key, say).
    pub fn extend(&mut self, other: KeySet) {
        self.keys.extend(other.keys);
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub(crate) fn has_family(&self, family: AlgorithmFamily) -> bool {
        self.keys.iter().any(|k| k.family == family)
    }

    /// The key a token names. A `kid` must match exactly, except that a key loaded without one
    /// (a PEM) serves any kid of its family when it is the only such key. A token without `kid`
    /// needs the set to hold exactly one key of its algorithm's family.
    pub(crate) fn select(&self, kid: Option<&str>, alg: Algorithm) -> Result<&VerificationKey, KeySelectError> {
        if let Some(kid) = kid
            && let Some(k) = self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
        {
            return Ok(k);
        }
        let mut candidates =
            self.keys.iter().filter(|k| k.family == alg.family() && (kid.is_none() || k.kid.is_none()));
        match (candidates.next(), candidates.next()) {
            (Some(k), None) => Ok(k),
            (None, _) if kid.is_some() => Err(KeySelectError::UnknownKid),
            (None, _) => Err(KeySelectError::NoKeyForAlgorithm),
            (Some(_), Some(_)) => Err(KeySelectError::Ambiguous),
        }
    }
}

pub(crate) enum KeySelectError {
    UnknownKid,
    NoKeyForAlgorithm,
    Ambiguous,
}

fn signing_algorithm(ka: KeyAlgorithm) -> Option<Algorithm> {
    Some(match ka {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}
