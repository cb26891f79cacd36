//! Token signatures checked by workerd's WebCrypto (`crypto.subtle`), which runs natively: the
//! core's pure-Rust RSA compiled to WebAssembly costs 1.1-1.6 ms for a first RS256 check. The core
//! still does everything else (header, algorithm allow-list, key choice, claims): it hands the
//! check out as `Step::VerifySignature` and takes the verdict back in `Exchange::handle_signature`.
//!
//! Imported keys are kept per isolate under their JWK text and algorithm, so each key is imported
//! once, and a rotated key with a reused `kid` can never be confused with its predecessor.

use std::cell::RefCell;
use std::collections::HashMap;

use agentplane_core::auth::{Algorithm, SignatureCheck};
use worker::js_sys::{self, Array, JSON, Object, Reflect};
use worker::wasm_bindgen::{JsCast as _, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{Crypto, CryptoKey, SubtleCrypto};

use crate::isolate::EdgeError;

thread_local! {
    static KEYS: RefCell<HashMap<(String, Algorithm), CryptoKey>> = RefCell::new(HashMap::new());
}

/// More distinct keys than any key set holds at once; past it the cache starts afresh rather
/// than growing with every rotation.
const MAX_KEYS: usize = 64;

/// Whether the token's signature is good. Algorithms WebCrypto lacks, and keys without a JWK,
/// fall back to the core's own check.
pub(crate) async fn verify(check: &SignatureCheck) -> Result<bool, EdgeError> {
    let (Some(jwk), Some(params)) = (check.public_jwk(), Params::of(check.algorithm())) else {
        return Ok(check.verify_in_core().unwrap_or(false));
    };
    let subtle = subtle()?;
    let key = key(&subtle, jwk, check.algorithm(), &params).await?;
    let promise = subtle
        .verify_with_object_and_u8_array_and_u8_array(&params.verify, &key, check.signature(), check.signing_input())
        .map_err(js_error)?;
    // A signature of the wrong length for the key rejects rather than resolving to false; either
    // way it is not a good signature.
    Ok(JsFuture::from(promise).await.is_ok_and(|v| v.as_bool() == Some(true)))
}

async fn key(subtle: &SubtleCrypto, jwk: &str, alg: Algorithm, params: &Params) -> Result<CryptoKey, EdgeError> {
    let cache_key = (jwk.to_owned(), alg);
    if let Some(k) = KEYS.with_borrow(|keys| keys.get(&cache_key).cloned()) {
        return Ok(k);
    }
    let key_data: Object = JSON::parse(jwk).map_err(js_error)?.unchecked_into();
    let usages = Array::of1(&JsValue::from_str("verify"));
    let promise = subtle.import_key_with_object("jwk", &key_data, &params.import, false, &usages).map_err(js_error)?;
    let key: CryptoKey = JsFuture::from(promise).await.map_err(js_error)?.unchecked_into();
    KEYS.with_borrow_mut(|keys| {
        if keys.len() >= MAX_KEYS {
            keys.clear();
        }
        keys.insert(cache_key, key.clone());
    });
    Ok(key)
}

/// WebCrypto's algorithm objects for one JWS algorithm: one to import the key, one to verify.
struct Params {
    import: Object,
    verify: Object,
}

impl Params {
    fn of(alg: Algorithm) -> Option<Self> {
        let (name, hash, extra): (&str, Option<&str>, Option<(&str, JsValue)>) = match alg {
            Algorithm::RS256 => ("RSASSA-PKCS1-v1_5", Some("SHA-256"), None),
            Algorithm::RS384 => ("RSASSA-PKCS1-v1_5", Some("SHA-384"), None),
            Algorithm::RS512 => ("RSASSA-PKCS1-v1_5", Some("SHA-512"), None),
            // RFC 7518 section 3.5: the salt is as long as the hash.
            Algorithm::PS256 => ("RSA-PSS", Some("SHA-256"), Some(("saltLength", 32.into()))),
            Algorithm::PS384 => ("RSA-PSS", Some("SHA-384"), Some(("saltLength", 48.into()))),
            Algorithm::PS512 => ("RSA-PSS", Some("SHA-512"), Some(("saltLength", 64.into()))),
            Algorithm::ES256 => ("ECDSA", Some("SHA-256"), None),
            Algorithm::ES384 => ("ECDSA", Some("SHA-384"), None),
            Algorithm::EdDSA => ("Ed25519", None, None),
            _ => return None,
        };
        let import = object(&[("name", name.into())]);
        let verify = object(&[("name", name.into())]);
        match (alg, hash) {
            // ECDSA names its curve on import and its hash on verify.
            (Algorithm::ES256, Some(h)) => {
                set(&import, "namedCurve", "P-256".into());
                set(&verify, "hash", h.into());
            }
            (Algorithm::ES384, Some(h)) => {
                set(&import, "namedCurve", "P-384".into());
                set(&verify, "hash", h.into());
            }
            (_, Some(h)) => set(&import, "hash", h.into()),
            (_, None) => {}
        }
        if let Some((k, v)) = extra {
            set(&verify, k, v);
        }
        Some(Self { import, verify })
    }
}

fn object(entries: &[(&str, JsValue)]) -> Object {
    let o = Object::new();
    for (k, v) in entries {
        set(&o, k, v.clone());
    }
    o
}

fn set(o: &Object, k: &str, v: JsValue) {
    // Setting a property on a fresh plain object cannot fail.
    let _ = Reflect::set(o, &JsValue::from_str(k), &v);
}

fn subtle() -> Result<SubtleCrypto, EdgeError> {
    // `crypto` is a global of every Worker; read it off the global object, since workerd's global
    // is not an instance of the browser's `WorkerGlobalScope`.
    let crypto: Crypto =
        Reflect::get(&js_sys::global(), &JsValue::from_str("crypto")).map_err(js_error)?.unchecked_into();
    Ok(crypto.subtle())
}

fn js_error(e: JsValue) -> EdgeError {
    let message = match e.dyn_ref::<js_sys::Error>() {
        Some(error) => String::from(error.message()),
        None => e.as_string().unwrap_or_default(),
    };
    EdgeError::Crypto(message)
}
