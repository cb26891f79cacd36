//! Bearer-token verification: signature through `jsonwebtoken`, claims checked here against a
//! caller-supplied `now`, so no clock is read and every failure has its own variant.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, AlgorithmFamily};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::keys::{KeySelectError, KeySet, VerificationKey};
use crate::digest::Fields;
use crate::time::Timestamp;

/// Settings of a [`Verifier`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifierConfig {
    /// The only accepted `iss`.
    pub issuer: String,
    /// Accepted `aud` values; a token passes when one of its audiences is listed.
    pub audience: Vec<String>,
    /// Allowed clock skew for `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// Signature algorithms accepted. HMAC ones additionally need an HMAC secret in the key set.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<Algorithm>,
    /// Tokens longer than this are refused before any decoding.
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: usize,
}

fn default_leeway() -> u64 {
    30
}

fn default_algorithms() -> Vec<Algorithm> {
    vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]
}

fn default_max_token_bytes() -> usize {
    8 * 1024
}

impl Default for VerifierConfig {
    /// Every default, with no issuer and no audience (which no token passes).
    fn default() -> Self {
        Self { audience: Vec::new(), ..Self::new("", "") }
    }
}

impl VerifierConfig {
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: vec![audience.into()],
            leeway_secs: default_leeway(),
            algorithms: default_algorithms(),
            max_token_bytes: default_max_token_bytes(),
        }
    }
}

/// What a verified token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub tenant: Uuid,
    pub subject: String,
    pub scopes: Scopes,
    /// The `tier` claim, when present; rate limits fall back to the configured default tier.
    pub tier: Option<String>,
    /// The `jti` claim, when present.
    pub token_id: Option<String>,
    /// `exp`, in seconds since the epoch.
    pub expires_at: u64,
}

impl Principal {
    /// Until when the token may be trusted without checking it again: its expiry plus the
    /// verifier's leeway. The memo and remembered signature verdicts keep it this long.
    pub fn valid_until(&self, leeway_secs: u64) -> Timestamp {
        Timestamp::from_unix_secs(self.expires_at.saturating_add(leeway_secs))
    }
}

/// The scopes a token grants (`scope` as a space-separated string, or `scp` as an array).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Scopes(Vec<String>);

impl Scopes {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        let mut v: Vec<String> = scopes.into_iter().map(Into::into).collect();
        v.sort();
        v.dedup();
        Self(v)
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.binary_search_by(|s| s.as_str().cmp(scope)).is_ok()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// Why a token was refused. Every variant is a 401 `invalid_token`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("token of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("token is not a well-formed JWT: {0}")]
    Malformed(&'static str),
    #[error("algorithm {alg} is not accepted")]
    AlgorithmNotAllowed { alg: String },
    #[error("no key with kid {kid:?}")]
    UnknownKey { kid: String },
    #[error("no key for the token's algorithm")]
    NoKeyForAlgorithm,
    #[error("token names no kid and several keys could verify it")]
    AmbiguousKey,
    #[error("key {kid:?} cannot verify algorithm {alg}")]
    KeyAlgorithmMismatch { kid: Option<String>, alg: String },
    #[error("signature does not verify")]
    InvalidSignature,
    #[error("token expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("claim {0} is missing")]
    MissingClaim(&'static str),
    #[error("claim {claim} is malformed")]
    InvalidClaim { claim: &'static str },
    #[error("token is not meant for this audience")]
    WrongAudience,
    #[error("token was not issued by the expected issuer")]
    WrongIssuer,
    #[error("claim tenant_id is not a UUID")]
    InvalidTenant,
}

/// Configuration problems found when building a [`Verifier`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifierConfigError {
    #[error("algorithm list is empty")]
    NoAlgorithms,
    #[error("{0:?} is allowed but no HMAC secret is configured")]
    HmacWithoutSecret(Algorithm),
    #[error("audience list is empty")]
    NoAudience,
}

/// Verifies bearer tokens against one key set and one set of expectations.
#[derive(Debug, Clone)]
pub struct Verifier {
    config: VerifierConfig,
    keys: KeySet,
}

impl Verifier {
    pub fn new(config: VerifierConfig, keys: KeySet) -> Result<Self, VerifierConfigError> {
        if config.algorithms.is_empty() {
            return Err(VerifierConfigError::NoAlgorithms);
        }
        if config.audience.is_empty() {
            return Err(VerifierConfigError::NoAudience);
        }
        for alg in &config.algorithms {
            if alg.family() == AlgorithmFamily::Hmac && !keys.has_family(AlgorithmFamily::Hmac) {
                return Err(VerifierConfigError::HmacWithoutSecret(*alg));
            }
        }
        Ok(Self { config, keys })
    }

    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// Checks `token` fully: size, header, algorithm, key, signature, then claims at `now`.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Principal, VerifyError> {
        let check = self.prepare(token)?;
        if !check.verify_in_core()? {
            return Err(VerifyError::InvalidSignature);
        }
        self.complete(&check, now)
    }

    /// Everything [`Verifier::verify`] checks before the signature: size, shape, header,
    /// algorithm allow-list, key choice and the key's family. What is left, the signature and
    /// then [`Verifier::complete`], can be done by a platform's own crypto.
    pub fn prepare(&self, token: &str) -> Result<SignatureCheck, VerifyError> {
        if token.len() > self.config.max_token_bytes {
            return Err(VerifyError::TooLarge { size: token.len(), limit: self.config.max_token_bytes });
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(VerifyError::Malformed("expected three dot-separated parts"));
        };
        let header: RawHeader = decode_segment(header_b64, "header")?;
        // The header's `alg` is compared as text first, so `none` and unknown names get a precise
        // error rather than a JSON one.
        let alg = header
            .alg
            .parse::<Algorithm>()
            .ok()
            .filter(|a| self.config.algorithms.contains(a))
            .ok_or_else(|| VerifyError::AlgorithmNotAllowed { alg: truncate(&header.alg) })?;
        let key = self.keys.select(header.kid.as_deref(), alg).map_err(|e| match e {
            KeySelectError::UnknownKid => {
                VerifyError::UnknownKey { kid: truncate(header.kid.as_deref().unwrap_or_default()) }
            }
            KeySelectError::NoKeyForAlgorithm => VerifyError::NoKeyForAlgorithm,
            KeySelectError::Ambiguous => VerifyError::AmbiguousKey,
        })?;
        // The key decides the family, never the token: this is what stops an HS256 token "signed"
        // with an RSA public key from being checked as HMAC.
        if key.family != alg.family() || key.alg.is_some_and(|k| k != alg) {
            return Err(VerifyError::KeyAlgorithmMismatch { kid: key.kid.clone(), alg: header.alg });
        }
        let signature =
            URL_SAFE_NO_PAD.decode(signature_b64).map_err(|_| VerifyError::Malformed("signature is not base64url"))?;
        let message_len = header_b64.len() + 1 + payload_b64.len();
        Ok(SignatureCheck {
            alg,
            key: key.clone(),
            signing_input: token.as_bytes()[..message_len].to_vec(),
            signature_b64: signature_b64.to_owned(),
            signature,
        })
    }

    /// The claims of a token whose signature has been found good, checked at `now`.
    pub fn complete(&self, check: &SignatureCheck, now: Timestamp) -> Result<Principal, VerifyError> {
        let payload_b64 = check
            .signing_input
            .rsplit(|&b| b == b'.')
            .next()
            .and_then(|p| std::str::from_utf8(p).ok())
            .ok_or(VerifyError::Malformed("payload is not base64url"))?;
        let claims: Map<String, Value> = decode_segment(payload_b64, "payload")?;
        self.check_claims(&claims, now)
    }

    fn check_claims(&self, claims: &Map<String, Value>, now: Timestamp) -> Result<Principal, VerifyError> {
        let now = now.as_unix_secs();
        let leeway = self.config.leeway_secs;
        let exp = numeric_date(claims, "exp")?.ok_or(VerifyError::MissingClaim("exp"))?;
        if exp.saturating_add(leeway) <= now {
            return Err(VerifyError::Expired);
        }
        if let Some(nbf) = numeric_date(claims, "nbf")?
            && nbf > now.saturating_add(leeway)
        {
            return Err(VerifyError::NotYetValid);
        }
        let iss = string_claim(claims, "iss")?.ok_or(VerifyError::MissingClaim("iss"))?;
        if iss != self.config.issuer {
            return Err(VerifyError::WrongIssuer);
        }
        match claims.get("aud") {
            None => return Err(VerifyError::MissingClaim("aud")),
            Some(Value::String(aud)) => {
                if !self.config.audience.iter().any(|a| a == aud) {
                    return Err(VerifyError::WrongAudience);
                }
            }
            Some(Value::Array(auds)) => {
                let mut any = false;
                for aud in auds {
                    let aud = aud.as_str().ok_or(VerifyError::InvalidClaim { claim: "aud" })?;
                    any |= self.config.audience.iter().any(|a| a == aud);
                }
                if !any {
                    return Err(VerifyError::WrongAudience);
                }
            }
            Some(_) => return Err(VerifyError::InvalidClaim { claim: "aud" }),
        }
        let subject = string_claim(claims, "sub")?.ok_or(VerifyError::MissingClaim("sub"))?;
        if subject.is_empty() {
            return Err(VerifyError::InvalidClaim { claim: "sub" });
        }
        let tenant = string_claim(claims, "tenant_id")?.ok_or(VerifyError::MissingClaim("tenant_id"))?;
        let tenant = Uuid::try_parse(tenant).map_err(|_| VerifyError::InvalidTenant)?;
        let scopes = match (claims.get("scope"), claims.get("scp")) {
            (Some(Value::String(s)), _) => Scopes::new(s.split_ascii_whitespace()),
            (Some(_), _) => return Err(VerifyError::InvalidClaim { claim: "scope" }),
            (None, Some(Value::Array(items))) => {
                let mut v = Vec::with_capacity(items.len());
                for item in items {
                    v.push(item.as_str().ok_or(VerifyError::InvalidClaim { claim: "scp" })?);
                }
                Scopes::new(v)
            }
            (None, Some(_)) => return Err(VerifyError::InvalidClaim { claim: "scp" }),
            (None, None) => Scopes::default(),
        };
        Ok(Principal {
            tenant,
            subject: subject.to_owned(),
            scopes,
            tier: string_claim(claims, "tier")?.map(str::to_owned),
            token_id: string_claim(claims, "jti")?.map(str::to_owned),
            expires_at: exp,
        })
    }
}

/// A token that passed every check but its signature, holding what a signature check needs.
/// [`SignatureCheck::verify_in_core`] does it here; a Worker hands [`SignatureCheck::public_jwk`],
/// [`SignatureCheck::signing_input`] and [`SignatureCheck::signature`] to WebCrypto instead,
/// which is several times faster than RSA in WebAssembly.
#[derive(Clone)]
pub struct SignatureCheck {
    alg: Algorithm,
    key: VerificationKey,
    signing_input: Vec<u8>,
    signature_b64: String,
    signature: Vec<u8>,
}

impl std::fmt::Debug for SignatureCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureCheck").field("alg", &self.alg).field("kid", &self.key.kid).finish_non_exhaustive()
    }
}

impl SignatureCheck {
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The chosen key's `kid`, if it has one: a cache key for an imported platform key.
    pub fn kid(&self) -> Option<&str> {
        self.key.kid.as_deref()
    }

    /// The key's public JWK text; `None` for keys that did not come from a JWKS (PEM, HMAC),
    /// which only [`SignatureCheck::verify_in_core`] can check.
    pub fn public_jwk(&self) -> Option<&str> {
        self.key.public_jwk.as_deref()
    }

    /// The signed bytes: `header.payload` as they appear in the token.
    pub fn signing_input(&self) -> &[u8] {
        &self.signing_input
    }

    /// The decoded signature, in JWS form (for ECDSA that is `r || s`, as WebCrypto expects).
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// A name for what a good verdict on this check establishes: this key (its public JWK)
    /// signed these bytes with this algorithm, giving this signature. A runtime that cannot keep
    /// the token memo in memory between requests (a Spin component may be instantiated per
    /// request) remembers good verdicts in its own store under this name. A rotated key has
    /// another JWK and so another name; `None` for keys without a public JWK.
    pub fn fingerprint(&self) -> Option<String> {
        let jwk = self.key.public_jwk.as_deref()?;
        let mut h = Fields::new();
        h.field(format!("{:?}", self.alg).as_bytes());
        h.field(jwk.as_bytes());
        h.field(&self.signing_input);
        h.field(&self.signature);
        Some(h.finish_hex("sig1-"))
    }

    /// Checks the signature with the core's own crypto.
    pub fn verify_in_core(&self) -> Result<bool, VerifyError> {
        jsonwebtoken::crypto::verify(&self.signature_b64, &self.signing_input, &self.key.key, self.alg)
            .map_err(|_| VerifyError::Malformed("signature is not base64url"))
    }
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

fn decode_segment<T: serde::de::DeserializeOwned>(b64: &str, what: &'static str) -> Result<T, VerifyError> {
    let bytes = URL_SAFE_NO_PAD.decode(b64).map_err(|_| {
        VerifyError::Malformed(if what == "header" { "header is not base64url" } else { "payload is not base64url" })
    })?;
    serde_json::from_slice(&bytes).map_err(|_| {
        VerifyError::Malformed(if what == "header" {
            "header is not a JSON object"
        } else {
            "payload is not a JSON object"
        })
    })
}

/// A NumericDate claim: seconds since the epoch, possibly fractional (RFC 7519 section 2).
fn numeric_date(claims: &Map<String, Value>, claim: &'static str) -> Result<Option<u64>, VerifyError> {
    match claims.get(claim) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                Ok(Some(u))
            } else {
                match n.as_f64() {
                    // Truncation is the intent: NumericDate has second resolution here.
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    Some(f) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => Ok(Some(f as u64)),
                    _ => Err(VerifyError::InvalidClaim { claim }),
                }
            }
        }
        Some(_) => Err(VerifyError::InvalidClaim { claim }),
    }
}

fn string_claim<'a>(claims: &'a Map<String, Value>, claim: &'static str) -> Result<Option<&'a str>, VerifyError> {
    match claims.get(claim) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(VerifyError::InvalidClaim { claim }),
    }
}

/// Attacker-chosen text in errors is cut short so logs and headers stay bounded.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}
