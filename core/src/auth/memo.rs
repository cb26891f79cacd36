//! A bounded memo of verified tokens, so a client that sends the same token on every request pays
//! for one signature check, not one per request (a pure-Rust RS256 verify costs over a millisecond
//! inside workerd).

use std::hash::{BuildHasherDefault, Hasher};
use std::num::NonZeroUsize;

use lru::LruCache;
use sha2::{Digest, Sha256};

use super::verify::Principal;
use crate::time::Timestamp;

/// SHA-256 of a bearer token: the memo's key, and the cache's notion of "the same token". The token
/// itself is never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// The digest is already uniformly distributed, so hashing its first eight bytes is enough, and it
/// keeps the memo free of the random seeds a default hasher would draw.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*b) << (8 * i);
        }
    }
}

/// Verified principals by token digest, least recently used evicted first. An entry lives until
/// its token's `exp` (plus the verifier's leeway), never longer.
pub struct TokenMemo {
    entries: LruCache<TokenDigest, Entry, BuildHasherDefault<DigestHasher>>,
}

struct Entry {
    principal: Principal,
    /// Nanoseconds since the epoch after which the entry is dead.
    valid_until: u64,
}

impl std::fmt::Debug for TokenMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenMemo").field("len", &self.entries.len()).field("cap", &self.entries.cap()).finish()
    }
}

impl TokenMemo {
    pub fn new(capacity: NonZeroUsize) -> Self {
        Self { entries: LruCache::with_hasher(capacity, BuildHasherDefault::default()) }
    }

    /// The memoised principal for a token still valid at `now`; a dead entry is dropped.
    pub fn get(&mut self, digest: &TokenDigest, now: Timestamp) -> Option<&Principal> {
        let alive = self.entries.peek(digest).map(|e| now.as_unix_nanos() < e.valid_until)?;
        if alive {
            self.entries.get(digest).map(|e| &e.principal)
        } else {
            self.entries.pop(digest);
            None
        }
    }

    /// Remembers a principal until `valid_until` (the token's expiry with leeway).
    pub fn insert(&mut self, digest: TokenDigest, principal: Principal, valid_until: Timestamp) {
        self.entries.put(digest, Entry { principal, valid_until: valid_until.as_unix_nanos() });
    }

    /// Forgets everything; called when the key set changes so a removed key's tokens stop passing.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
