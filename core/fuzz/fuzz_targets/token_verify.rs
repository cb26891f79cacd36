//! Any string as a bearer token: refused with a typed error, or (for inputs the fuzzer derives
//! from the valid seed) accepted; never a panic. Runs through the memo so both paths are covered.
#![no_main]

use std::num::NonZeroUsize;
use std::sync::{Mutex, OnceLock};

use agentplane_core::auth::{Authenticator, KeySet, Verifier, VerifierConfig};
use agentplane_core::testkit;
use agentplane_core::time::Timestamp;
use libfuzzer_sys::fuzz_target;

fn authenticator() -> &'static Mutex<Authenticator> {
    static AUTH: OnceLock<Mutex<Authenticator>> = OnceLock::new();
    AUTH.get_or_init(|| {
        let keys = KeySet::from_jwks(&testkit::jwks().expect("test JWKS")).expect("test keys load");
        let verifier =
            Verifier::new(VerifierConfig::new(testkit::ISSUER, testkit::AUDIENCE), keys).expect("valid config");
        Mutex::new(Authenticator::new(verifier, NonZeroUsize::MIN.saturating_add(63)))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let now = Timestamp::from_unix_secs(1_767_225_600);
    let mut auth = authenticator().lock().unwrap_or_else(|e| e.into_inner());
    if let Ok((principal, _, _)) = auth.authenticate(token, now) {
        assert!(principal.expires_at + 30 > 1_767_225_600);
    }
});
