//! Time as a value. The core never reads a clock: every entry point that needs "now" takes a
//! [`Timestamp`] from its caller (`Date.now()` in a Worker, `SystemTime` at the origin, a fake clock in
//! tests).

use serde::{Deserialize, Serialize};

/// An instant as nanoseconds since the Unix epoch.
///
/// Nanoseconds keep rate-limit arithmetic exact to well below a millisecond, and `u64` lasts until
/// the year 2554.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(u64);

pub(crate) const NANOS_PER_MILLI: u64 = 1_000_000;
pub(crate) const NANOS_PER_SEC: u64 = 1_000_000_000;

impl Timestamp {
    pub const fn from_unix_nanos(nanos: u64) -> Self {
        Self(nanos)
    }

    pub const fn from_unix_millis(millis: u64) -> Self {
        Self(millis.saturating_mul(NANOS_PER_MILLI))
    }

    pub const fn from_unix_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(NANOS_PER_SEC))
    }

    pub const fn as_unix_nanos(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch, rounded down: the unit of JWT `exp` and `nbf`.
    pub const fn as_unix_secs(self) -> u64 {
        self.0 / NANOS_PER_SEC
    }

    pub const fn as_unix_millis(self) -> u64 {
        self.0 / NANOS_PER_MILLI
    }

    pub const fn saturating_add_nanos(self, nanos: u64) -> Self {
        Self(self.0.saturating_add(nanos))
    }
}

/// Nanoseconds rounded up to whole milliseconds, so a client told to wait never retries early.
pub(crate) const fn nanos_to_millis_ceil(nanos: u64) -> u64 {
    nanos.div_ceil(NANOS_PER_MILLI)
}

/// Nanoseconds rounded up to whole seconds (HTTP `Retry-After` has one-second resolution).
pub(crate) const fn nanos_to_secs_ceil(nanos: u64) -> u64 {
    nanos.div_ceil(NANOS_PER_SEC)
}
