//! The one record the caller keeps per tenant: limiter state and the data generation. Keeping
//! both in one record lets a Worker read and update them with one Durable Object round trip.

use serde::{Deserialize, Serialize};

use crate::ratelimit::{self, GcraState, Quota, RateDecision};
use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TenantState {
    #[serde(default)]
    pub gcra: GcraState,
    /// Bumped by every write; part of every cache key, so a bump retires all cached results.
    #[serde(default)]
    pub generation: u64,
}

impl TenantState {
    /// Decides one request and updates the limiter state.
    pub fn admit(&mut self, now: Timestamp, quota: &Quota) -> RateDecision {
        let (decision, next) = ratelimit::decide(self.gcra, now, quota);
        self.gcra = next;
        decision
    }

    pub fn bump_generation(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }
}
