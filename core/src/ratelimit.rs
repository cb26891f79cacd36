//! Rate limiting by the generic cell rate algorithm (GCRA) over state the caller keeps: a Durable
//! Object per tenant on Workers, a key-value entry on Spin, memory in tests.
//!
//! The state is one number, the theoretical arrival time (TAT). All arithmetic is integer
//! nanoseconds; the emission interval is rounded *up*, so rounding can only make the limiter
//! stricter, never admit more than `count / period` plus the burst.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::time::{NANOS_PER_SEC, Timestamp, nanos_to_millis_ceil, nanos_to_secs_ceil};

/// `count` requests per `period_secs`, with up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawQuota")]
pub struct Quota {
    count: u32,
    period_secs: u32,
    burst: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuota {
    count: u32,
    period_secs: u32,
    burst: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a quota needs count, period_secs and burst all above zero")]
pub struct QuotaError;

impl TryFrom<RawQuota> for Quota {
    type Error = QuotaError;
    fn try_from(r: RawQuota) -> Result<Self, QuotaError> {
        Quota::new(r.count, r.period_secs, r.burst)
    }
}

impl Quota {
    pub fn new(count: u32, period_secs: u32, burst: u32) -> Result<Self, QuotaError> {
        if count == 0 || period_secs == 0 || burst == 0 {
            return Err(QuotaError);
        }
        Ok(Self { count, period_secs, burst })
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn period_secs(&self) -> u32 {
        self.period_secs
    }

    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Nanoseconds between two requests at the sustained rate, rounded up.
    pub fn emission_interval(&self) -> u64 {
        (u64::from(self.period_secs) * NANOS_PER_SEC).div_ceil(u64::from(self.count))
    }

    /// How far ahead of `now` the TAT may run: room for `burst` requests.
    fn tolerance(&self) -> u64 {
        self.emission_interval().saturating_mul(u64::from(self.burst))
    }
}

/// The caller-held limiter state for one key (a tenant). `Default` is a limiter that has seen
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GcraState {
    /// Theoretical arrival time, nanoseconds since the epoch.
    tat: u64,
    /// The latest `now` an admitted request was decided at. Concurrent requests read their
    /// clocks at their start and may reach the state in another order; a request decided after
    /// one with a later clock is decided at that later time, so the limiter's clock never runs
    /// backwards (which would refuse the last request of a full burst).
    #[serde(default)]
    seen: u64,
}

/// The answer to "may this request go ahead?". Serialisable because a Worker computes it inside
/// the tenant's Durable Object and carries it back to the request's isolate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[must_use]
pub struct RateDecision {
    pub allowed: bool,
    /// The burst size: how many requests a rested limiter admits at once.
    pub limit: u32,
    /// Requests that could still be made right now.
    pub remaining: u32,
    /// When denied, nanoseconds until the same request would be admitted; zero when allowed.
    pub retry_after_nanos: u64,
    /// Nanoseconds until the limiter is fully rested again.
    pub reset_after_nanos: u64,
}

impl RateDecision {
    /// `retry_after` in whole seconds, rounded up, for the HTTP `Retry-After` header.
    pub fn retry_after_secs(&self) -> u64 {
        nanos_to_secs_ceil(self.retry_after_nanos)
    }

    pub fn retry_after_millis(&self) -> u64 {
        nanos_to_millis_ceil(self.retry_after_nanos)
    }

    pub fn reset_after_secs(&self) -> u64 {
        nanos_to_secs_ceil(self.reset_after_nanos)
    }
}

/// Decides one request at `now` and returns the state to keep. A denied request leaves the state
/// as it was, so retrying costs nothing.
pub fn decide(state: GcraState, now: Timestamp, quota: &Quota) -> (RateDecision, GcraState) {
    let now = now.as_unix_nanos().max(state.seen);
    let t = quota.emission_interval();
    let tau = quota.tolerance();
    let tat = state.tat.max(now);
    let new_tat = tat.saturating_add(t);
    // The earliest moment this request fits: its new TAT may run at most `tau` ahead.
    let allow_at = new_tat.saturating_sub(tau);
    if now < allow_at {
        let decision = RateDecision {
            allowed: false,
            limit: quota.burst,
            remaining: 0,
            retry_after_nanos: allow_at - now,
            reset_after_nanos: tat - now,
        };
        return (decision, state);
    }
    let headroom = (now + tau).saturating_sub(new_tat);
    let remaining = u32::try_from(headroom / t).unwrap_or(u32::MAX).min(quota.burst);
    let decision = RateDecision {
        allowed: true,
        limit: quota.burst,
        remaining,
        retry_after_nanos: 0,
        reset_after_nanos: new_tat - now,
    };
    (decision, GcraState { tat: new_tat, seen: now })
}

/// Named tiers (free, pro, enterprise, ...) and the one a principal without a known tier gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tiers {
    pub tiers: BTreeMap<String, Quota>,
    pub default_tier: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("default tier {0:?} is not among the configured tiers")]
pub struct TiersError(pub String);

impl Default for Tiers {
    /// The tiers of the reference system: 10, 100 and 1,000 requests a minute.
    fn default() -> Self {
        let q = |count, burst| Quota { count, period_secs: 60, burst };
        Self {
            tiers: BTreeMap::from([
                ("free".to_owned(), q(10, 10)),
                ("pro".to_owned(), q(100, 50)),
                ("enterprise".to_owned(), q(1000, 200)),
            ]),
            default_tier: "free".to_owned(),
        }
    }
}

impl Tiers {
    pub fn validate(&self) -> Result<(), TiersError> {
        if self.tiers.contains_key(&self.default_tier) { Ok(()) } else { Err(TiersError(self.default_tier.clone())) }
    }

    /// The quota for a tier name, falling back to the default tier for unknown or absent names.
    pub fn quota(&self, tier: Option<&str>) -> Option<&Quota> {
        self.tiers.get(self.name(tier))
    }

    /// The tier a token's `tier` claim counts in: the claim if it names a configured tier, else
    /// the default.
    pub fn name<'a>(&'a self, tier: Option<&'a str>) -> &'a str {
        tier.filter(|t| self.tiers.contains_key(*t)).unwrap_or(&self.default_tier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SEC: u64 = NANOS_PER_SEC;

    fn at(nanos: u64) -> Timestamp {
        Timestamp::from_unix_nanos(nanos)
    }

    /// Concurrent requests read their clocks first and reach the state in any order: a full
    /// burst is admitted even when the last one decided carries the earliest clock.
    #[test]
    fn a_burst_decided_out_of_clock_order_is_admitted_whole() {
        let quota = Quota::new(10, 60, 10).unwrap();
        let t0 = 1_000 * SEC;
        let mut state = GcraState::default();
        // The first decided read its clock 50 ms after the last one did.
        let clocks = (0..10).map(|i| t0 + (10 - i) * 5_000_000);
        let admitted = clocks
            .filter(|&c| {
                let (d, s) = decide(state, at(c), &quota);
                state = s;
                d.allowed
            })
            .count();
        assert_eq!(admitted, 10);
        assert!(!decide(state, at(t0), &quota).0.allowed, "and not one more");
    }

    #[test]
    fn burst_then_one_per_interval() {
        let quota = Quota::new(10, 60, 3).unwrap();
        assert_eq!(quota.emission_interval(), 6 * SEC);
        let mut state = GcraState::default();
        let t0 = 1_000 * SEC;
        for expected_remaining in [2, 1, 0] {
            let (d, s) = decide(state, at(t0), &quota);
            assert!(d.allowed);
            assert_eq!(d.remaining, expected_remaining);
            state = s;
        }
        let (d, s) = decide(state, at(t0), &quota);
        assert!(!d.allowed);
        assert_eq!(s, state, "a denial must not consume quota");
        assert_eq!(d.retry_after_nanos, 6 * SEC);
        assert_eq!(d.retry_after_secs(), 6);
        assert!(!decide(state, at(t0 + 6 * SEC - 1), &quota).0.allowed);
        let (d, _) = decide(state, at(t0 + 6 * SEC), &quota);
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
    }

    #[test]
    fn quota_validation() {
        assert_eq!(Quota::new(0, 1, 1), Err(QuotaError));
        assert_eq!(Quota::new(1, 0, 1), Err(QuotaError));
        assert_eq!(Quota::new(1, 1, 0), Err(QuotaError));
        assert!(serde_json::from_str::<Quota>(r#"{"count":0,"period_secs":1,"burst":1}"#).is_err());
        let q: Quota = serde_json::from_str(r#"{"count":7,"period_secs":1,"burst":2}"#).unwrap();
        // 1/7 s does not divide evenly: rounded up, never down.
        assert_eq!(q.emission_interval(), 142_857_143);
    }

    #[test]
    fn tiers_fall_back_to_the_default() {
        let tiers = Tiers::default();
        assert_eq!(tiers.quota(Some("pro")).unwrap().count(), 100);
        assert_eq!(tiers.quota(Some("platinum")).unwrap().count(), 10);
        assert_eq!(tiers.quota(None).unwrap().count(), 10);
        assert_eq!([tiers.name(Some("pro")), tiers.name(Some("platinum")), tiers.name(None)], ["pro", "free", "free"]);
        let bad = Tiers { default_tier: "gold".into(), ..Tiers::default() };
        assert_eq!(bad.validate(), Err(TiersError("gold".into())));
    }

    fn quotas() -> impl Strategy<Value = Quota> {
        (1u32..2_000, 1u32..3_600, 1u32..100).prop_map(|(c, p, b)| Quota::new(c, p, b).unwrap())
    }

    proptest! {
        /// In any window [t_i, t_j] the admitted requests number at most burst + rate * (t_j - t_i).
        #[test]
        fn never_admits_more_than_rate_times_t_plus_burst(
            quota in quotas(),
            gaps in proptest::collection::vec(0u64..5 * SEC, 1..300),
        ) {
            let mut state = GcraState::default();
            let mut now = 1_700_000_000 * SEC;
            let mut admitted = Vec::new();
            for gap in gaps {
                now += gap;
                let (d, s) = decide(state, at(now), &quota);
                state = s;
                if d.allowed {
                    admitted.push(now);
                }
            }
            let period = u128::from(quota.period_secs()) * u128::from(SEC);
            for i in 0..admitted.len() {
                for j in i..admitted.len() {
                    let n = (j - i + 1) as u128;
                    let window = u128::from(admitted[j] - admitted[i]);
                    // n <= burst + window * count / period, kept in integers.
                    prop_assert!(
                        n.saturating_sub(u128::from(quota.burst())) * period <= window * u128::from(quota.count()),
                        "{n} admitted in {window} ns"
                    );
                }
            }
        }

        /// A denied request is admitted exactly `retry_after` later, and not a nanosecond sooner.
        #[test]
        fn retry_after_is_exact(quota in quotas(), extra in 1u32..50, start in 0u64..1_000_000 * SEC) {
            let mut state = GcraState::default();
            let now = at(start + 1);
            let mut denied = None;
            for _ in 0..quota.burst() + extra {
                let (d, s) = decide(state, now, &quota);
                state = s;
                if !d.allowed {
                    denied = Some(d);
                    break;
                }
            }
            let d = denied.expect("more requests than the burst must be denied at one instant");
            prop_assert!(d.retry_after_nanos > 0);
            prop_assert!(!decide(state, at(now.as_unix_nanos() + d.retry_after_nanos - 1), &quota).0.allowed);
            prop_assert!(decide(state, at(now.as_unix_nanos() + d.retry_after_nanos), &quota).0.allowed);
        }

        /// A rested limiter admits exactly `burst` requests at one instant.
        #[test]
        fn rested_limiter_admits_exactly_the_burst(quota in quotas()) {
            let mut state = GcraState::default();
            let now = at(42 * SEC);
            let mut n = 0;
            while decide(state, now, &quota).0.allowed {
                state = decide(state, now, &quota).1;
                n += 1;
                prop_assert!(n <= quota.burst());
            }
            prop_assert_eq!(n, quota.burst());
        }
    }
}
