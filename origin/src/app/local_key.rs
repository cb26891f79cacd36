//! Ed25519 keys kept in files, made on first use (mode 0600): the development token key under the
//! data dir, whose public half the origin serves at `/.well-known/jwks.json` and trusts when no
//! other key source is configured (`agentplane token mint` signs with it), and the agent card's
//! signing key (`protocol::a2a::card`), published apart at `/.well-known/agent-card-jwks.json` so
//! that it can never pass for a token key.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const KID: &str = "agentplane-dev-1";

#[derive(Debug, thiserror::Error)]
pub enum LocalKeyError {
    #[error("signing key {path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("signing key {path} is not a PKCS#8 Ed25519 key: {reason}; delete it to make a new one")]
    Corrupt { path: PathBuf, reason: String },
    #[error("signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

#[derive(Debug)]
pub struct LocalKey {
    signing: SigningKey,
    kid: &'static str,
}

impl LocalKey {
    /// Loads `<data_dir>/dev-keys/ed25519.pem`, making it on first use.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, LocalKeyError> {
        Self::load_or_create_at(&data_dir.join("dev-keys").join("ed25519.pem"), KID)
    }

    /// Loads the Ed25519 key at `path` (PKCS#8 PEM) as `kid`, making it (mode 0600) on first use.
    /// Processes starting together on one data dir (replicas, a `token mint` beside `serve`) all
    /// end up with the one key that was made first: it appears at `path` whole or not at all.
    pub fn load_or_create_at(path: &Path, kid: &'static str) -> Result<Self, LocalKeyError> {
        let io = |reason: std::io::Error| LocalKeyError::Io { path: path.to_owned(), reason: reason.to_string() };
        match std::fs::read_to_string(path) {
            Ok(pem) => Self::from_pem(path, &pem, kid),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let signing = SigningKey::generate(&mut rand::rngs::OsRng);
                let pem = signing
                    .to_pkcs8_pem(Default::default())
                    .map_err(|e| LocalKeyError::Corrupt { path: path.to_owned(), reason: e.to_string() })?;
                match publish(path, pem.as_bytes()) {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), kid, "made a signing key");
                        Ok(Self { signing, kid })
                    }
                    // Another process made it first: use that one.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::from_pem(path, &std::fs::read_to_string(path).map_err(io)?, kid)
                    }
                    Err(e) => Err(io(e)),
                }
            }
            Err(e) => Err(io(e)),
        }
    }

    fn from_pem(path: &Path, pem: &str, kid: &'static str) -> Result<Self, LocalKeyError> {
        let signing = SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| LocalKeyError::Corrupt { path: path.to_owned(), reason: e.to_string() })?;
        Ok(Self { signing, kid })
    }

    /// The public key as a JWKS document.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [{
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "EdDSA",
            "use": "sig",
            "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(self.signing.verifying_key().as_bytes()),
        }]})
    }

    pub fn kid(&self) -> &'static str {
        self.kid
    }

    /// The JWS signature (EdDSA) of `signing_input`, base64url: for a detached JWS, whose
    /// signing input the caller builds.
    pub fn sign_raw(&self, signing_input: &[u8]) -> String {
        use ed25519_dalek::Signer as _;
        URL_SAFE_NO_PAD.encode(self.signing.sign(signing_input).to_bytes())
    }

    /// Signs `claims` as an EdDSA JWT under its key id.
    pub fn sign(&self, claims: &Value) -> Result<String, LocalKeyError> {
        let der = self
            .signing
            .to_pkcs8_der()
            .map_err(|e| LocalKeyError::Corrupt { path: PathBuf::new(), reason: e.to_string() })?;
        let key = EncodingKey::from_ed_der(der.as_bytes());
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.to_owned());
        Ok(jsonwebtoken::encode(&header, claims, &key)?)
    }
}

/// Writes `bytes` (mode 0600) to a file of its own beside `path`, then links it in as `path`:
/// a reader never sees it half-written, and when two processes race the link fails for the
/// second with `AlreadyExists`.
fn publish(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".{}.{}.tmp", std::process::id(), rand::random::<u64>()));
    let staged = dir.join(name);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&staged)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::hard_link(&staged, path)
    })();
    let _ = std::fs::remove_file(&staged);
    written
}

#[cfg(test)]
mod tests {
    use agentplane_core::auth::{KeySet, Verifier, VerifierConfig};
    use agentplane_core::time::Timestamp;

    use super::*;

    #[test]
    fn made_once_reloaded_and_verified_by_the_core() {
        let dir = std::env::temp_dir().join(format!("agentplane-devkey-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let key = LocalKey::load_or_create(&dir).unwrap();
        let again = LocalKey::load_or_create(&dir).unwrap();
        assert_eq!(key.jwks(), again.jwks());
        let claims = json!({"iss": "i", "aud": "a", "sub": "s", "tenant_id": "11111111-1111-4111-8111-111111111111", "exp": 2_000_000_000u64});
        let token = again.sign(&claims).unwrap();
        let keys = KeySet::from_jwks(key.jwks().to_string().as_bytes()).unwrap();
        let v = Verifier::new(VerifierConfig::new("i", "a"), keys).unwrap();
        assert!(v.verify(&token, Timestamp::from_unix_secs(1_900_000_000)).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn processes_starting_together_share_the_first_key() {
        let dir = std::env::temp_dir().join(format!("agentplane-keyrace-{}", std::process::id()));
        for round in 0..20 {
            let path = dir.join(format!("{round}.pem"));
            let start = std::sync::Barrier::new(8);
            let keys: Vec<_> = std::thread::scope(|s| {
                let racers: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            LocalKey::load_or_create_at(&path, KID)
                        })
                    })
                    .collect();
                racers.into_iter().map(|r| r.join().unwrap()).collect()
            });
            let jwks: Vec<_> = keys.into_iter().map(|k| k.map(|k| k.jwks()).map_err(|e| e.to_string())).collect();
            assert!(jwks.iter().all(|k| k == &jwks[0]) && jwks[0].is_ok(), "round {round}: {jwks:?}");
        }
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 20, "only the keys remain: {left:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
