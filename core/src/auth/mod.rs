//! Who is calling: bearer-token extraction, JWT verification, the memo of verified tokens, and the
//! challenge sent back when the answer is "nobody we trust".

mod challenge;
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

use crate::time::{NANOS_PER_SEC, Timestamp};

/// The token of an `Authorization: Bearer <token>` header value. The scheme is case-insensitive
/// (RFC 7235 section 2.1).
pub fn bearer_token(header: &str) -> Result<&str, AuthError> {
    let (scheme, token) = header.trim().split_once(' ').ok_or(AuthError::NotBearer)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(AuthError::NotBearer);
    }
    Ok(token)
}

/// A [`Verifier`] in front of a [`TokenMemo`]: the first request with a token pays for the
/// signature check, later ones are a hash and a lookup.
#[derive(Debug)]
pub struct Authenticator {
    verifier: Verifier,
    memo: TokenMemo,
    /// The verdict on a deferred signature, taken by the next lookup of that token.
    settled: Option<(TokenDigest, Result<Principal, VerifyError>)>,
}

/// How an [`Authenticator::authenticate`] call was answered, for metrics and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoOutcome {
    Hit,
    Miss,
}

/// A token the memo does not know, whose signature the caller checks with its own crypto and
/// reports through [`Authenticator::settle`].
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
        Self { verifier, memo: TokenMemo::new(memo_capacity), settled: None }
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Swaps in a new key set (after a JWKS refresh) and forgets every memoised token, so tokens of
    /// a key that was withdrawn stop passing at once.
    pub fn replace_keys(&mut self, keys: KeySet) -> Result<(), VerifierConfigError> {
        self.verifier = Verifier::new(self.verifier.config().clone(), keys)?;
        self.memo.clear();
        self.settled = None;
        Ok(())
    }

    /// Verifies `token` through the memo, always with the core's own crypto.
    pub fn authenticate(
        &mut self,
        token: &str,
        now: Timestamp,
    ) -> Result<(Principal, TokenDigest, MemoOutcome), VerifyError> {
        match self.lookup(token, now, false)? {
            Lookup::Verified(principal, digest, outcome) => Ok((principal, digest, outcome)),
            // Unreachable with deferral off; answered as a failed check rather than a panic.
            Lookup::NeedsSignature(_) => Err(VerifyError::InvalidSignature),
        }
    }

    /// Verifies `token` through the memo. With `defer`, a signature the caller can check itself
    /// (its key has a public JWK) comes back as [`Lookup::NeedsSignature`] instead.
    pub fn lookup(&mut self, token: &str, now: Timestamp, defer: bool) -> Result<Lookup, VerifyError> {
        let limit = self.verifier.config().max_token_bytes;
        if token.len() > limit {
            return Err(VerifyError::TooLarge { size: token.len(), limit });
        }
        let digest = TokenDigest::of(token);
        if let Some(p) = self.memo.get(&digest, now) {
            return Ok(Lookup::Verified(p.clone(), digest, MemoOutcome::Hit));
        }
        if let Some((settled_digest, result)) = self.settled.take()
            && settled_digest == digest
        {
            return result.map(|p| self.remember(p, digest));
        }
        let check = self.verifier.prepare(token)?;
        if defer && check.public_jwk().is_some() {
            return Ok(Lookup::NeedsSignature(UnverifiedToken { check, digest }));
        }
        if !check.verify_in_core()? {
            return Err(VerifyError::InvalidSignature);
        }
        let principal = self.verifier.complete(&check, now)?;
        Ok(self.remember(principal, digest))
    }

    /// Records the caller's verdict on a deferred signature; the next [`Authenticator::lookup`]
    /// of that token answers with it (and remembers a good token like any other).
    pub fn settle(&mut self, token: UnverifiedToken, signature_ok: bool, now: Timestamp) {
        let result =
            if signature_ok { self.verifier.complete(&token.check, now) } else { Err(VerifyError::InvalidSignature) };
        self.settled = Some((token.digest, result));
    }

    fn remember(&mut self, principal: Principal, digest: TokenDigest) -> Lookup {
        let leeway = self.verifier.config().leeway_secs;
        let valid_until =
            Timestamp::from_unix_nanos(principal.expires_at.saturating_add(leeway).saturating_mul(NANOS_PER_SEC));
        self.memo.insert(digest, principal.clone(), valid_until);
        Lookup::Verified(principal, digest, MemoOutcome::Miss)
    }

    /// Forgets every remembered token, so each is verified again on its next use.
    pub fn forget_tokens(&mut self) {
        self.memo.clear();
        self.settled = None;
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
        assert_eq!(bearer_token("Bearer"), Err(AuthError::NotBearer));
        assert_eq!(bearer_token("Bearer "), Err(AuthError::NotBearer));
        assert_eq!(bearer_token(""), Err(AuthError::NotBearer));
    }
}
