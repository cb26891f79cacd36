//! Who is calling: bearer-token extraction, JWT verification, the memo of verified tokens, and the
//! challenge sent back when the answer is "nobody we trust".
//!
//! Verification comes in three parts, so a runtime with faster native crypto can do the middle
//! one: [`Verifier::prepare`] (everything but the signature, giving a [`SignatureCheck`] with the
//! key's public JWK, the signed bytes and the signature), the signature itself, and
//! [`Verifier::complete`] (the claims). [`Authenticator::lookup`] answers from the memo or hands
//! out an [`UnverifiedToken`]; [`Authenticator::settle`] takes the caller's verdict on it.

mod challenge;
pub mod console;
mod keys;
mod memo;
mod verify;

use std::num::NonZeroUsize;

pub use challenge::AuthError;
pub use jsonwebtoken::Algorithm;
pub use keys::{KeyError, KeySet};
pub use memo::{TokenDigest, TokenMemo};
pub use verify::{Principal, Scopes, SignatureCheck, Verifier, VerifierConfig, VerifierConfigError, VerifyError};

#[cfg(test)]
mod attacks;

use crate::time::Timestamp;

/// The token of an `Authorization: Bearer <token>` header value. The scheme is case-insensitive
/// (RFC 7235 section 2.1). A bearer header with no token is an invalid token (401 with a
/// challenge, which clients follow to the authorization server), not a malformed request.
pub fn bearer_token(header: &str) -> Result<&str, AuthError> {
    let header = header.trim();
    let (scheme, token) = header.split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::NotBearer);
    }
    match token.trim() {
        "" => Err(AuthError::Invalid(VerifyError::Malformed("the bearer token is empty"))),
        token => Ok(token),
    }
}

/// A [`Verifier`] in front of a [`TokenMemo`]: the first request with a token pays for the
/// signature check, later ones are a hash and a lookup.
#[derive(Debug)]
pub struct Authenticator {
    verifier: Verifier,
    memo: TokenMemo,
}

/// How an [`Authenticator::authenticate`] call was answered, for metrics and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoOutcome {
    Hit,
    Miss,
}

/// A token the memo does not know: its signature is checked by the caller (with the core's
/// [`SignatureCheck::verify_in_core`] or its own crypto) and the verdict reported through
/// [`Authenticator::settle`].
#[derive(Debug, Clone)]
pub struct UnverifiedToken {
    pub check: SignatureCheck,
    digest: TokenDigest,
}

/// The answer of [`Authenticator::lookup`].
#[derive(Debug)]
pub enum Lookup {
    Verified(Principal, TokenDigest, MemoOutcome),
    NeedsSignature(UnverifiedToken),
}

impl Authenticator {
    pub fn new(verifier: Verifier, memo_capacity: NonZeroUsize) -> Self {
        Self { verifier, memo: TokenMemo::new(memo_capacity) }
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Swaps in a new key set (after a JWKS refresh) and forgets every memoised token, so tokens of
    /// a key that was withdrawn stop passing at once.
    pub fn replace_keys(&mut self, keys: KeySet) -> Result<(), VerifierConfigError> {
        self.verifier = Verifier::new(self.verifier.config().clone(), keys)?;
        self.memo.clear();
        Ok(())
    }

    /// Verifies `token` through the memo, checking a new token's signature with the core's own
    /// crypto.
    pub fn authenticate(
        &mut self,
        token: &str,
        now: Timestamp,
    ) -> Result<(Principal, TokenDigest, MemoOutcome), VerifyError> {
        match self.lookup(token, now)? {
            Lookup::Verified(principal, digest, outcome) => Ok((principal, digest, outcome)),
            Lookup::NeedsSignature(unverified) => {
                let ok = unverified.check.verify_in_core()?;
                let (principal, digest) = self.settle(unverified, ok, now)?;
                Ok((principal, digest, MemoOutcome::Miss))
            }
        }
    }

    /// Looks `token` up in the memo. A token it does not know comes back as
    /// [`Lookup::NeedsSignature`] once everything but its signature has been checked.
    pub fn lookup(&mut self, token: &str, now: Timestamp) -> Result<Lookup, VerifyError> {
        let limit = self.verifier.config().max_token_bytes;
        if token.len() > limit {
            return Err(VerifyError::TooLarge { size: token.len(), limit });
        }
        let digest = TokenDigest::of(token);
        if let Some(p) = self.memo.get(&digest, now) {
            return Ok(Lookup::Verified(p.clone(), digest, MemoOutcome::Hit));
        }
        let check = self.verifier.prepare(token)?;
        Ok(Lookup::NeedsSignature(UnverifiedToken { check, digest }))
    }

    /// Completes a token after the caller's verdict on its signature: the claims are checked at
    /// `now` and a good token is remembered until it expires.
    pub fn settle(
        &mut self,
        token: UnverifiedToken,
        signature_ok: bool,
        now: Timestamp,
    ) -> Result<(Principal, TokenDigest), VerifyError> {
        if !signature_ok {
            return Err(VerifyError::InvalidSignature);
        }
        let principal = self.verifier.complete(&token.check, now)?;
        let valid_until = principal.valid_until(self.verifier.config().leeway_secs);
        self.memo.insert(token.digest, principal.clone(), valid_until);
        Ok((principal, token.digest))
    }

    /// Forgets every remembered token, so each is verified again on its next use.
    pub fn forget_tokens(&mut self) {
        self.memo.clear();
    }

    pub fn memo_len(&self) -> usize {
        self.memo.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_forms() {
        assert_eq!(bearer_token("Bearer abc"), Ok("abc"));
        assert_eq!(bearer_token("bearer   abc  "), Ok("abc"));
        assert_eq!(bearer_token("Basic abc"), Err(AuthError::NotBearer));
        let empty = Err(AuthError::Invalid(VerifyError::Malformed("the bearer token is empty")));
        assert_eq!(bearer_token("Bearer"), empty);
        assert_eq!(bearer_token("Bearer "), empty);
        assert_eq!(bearer_token("bearer   "), empty);
        assert_eq!(bearer_token(""), Err(AuthError::NotBearer));
        assert_eq!(bearer_token("Bearerabc"), Err(AuthError::NotBearer));
    }
}
