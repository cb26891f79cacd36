//! A circuit breaker for a remote model (embeddings, chat): after `threshold` failed calls in a row it opens and
//! refuses calls for `cooldown`, so a dead provider costs callers nothing; then one probe call is
//! let through (half-open), and its outcome closes or re-opens the circuit.
//!
//! Time is passed in, so the state machine is tested without sleeping.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is in flight; everything else is refused until it reports.
    HalfOpen,
}

#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

/// What `/ready` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Closed,
    Open,
    HalfOpen,
}

/// The call was refused: the circuit is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub retry_in: Duration,
}

impl CircuitBreaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self { threshold: threshold.max(1), cooldown, state: Mutex::new(State::Closed { failures: 0 }) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain value; a panic elsewhere cannot leave it half-written.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// May a call go out now?
    pub fn allow(&self, now: Instant) -> Result<(), Refused> {
        let mut state = self.state();
        match *state {
            State::Closed { .. } => Ok(()),
            State::Open { until } if now >= until => {
                *state = State::HalfOpen;
                Ok(())
            }
            State::Open { until } => Err(Refused { retry_in: until - now }),
            State::HalfOpen => Err(Refused { retry_in: Duration::ZERO }),
        }
    }

    pub fn on_success(&self) {
        *self.state() = State::Closed { failures: 0 };
    }

    pub fn on_failure(&self, now: Instant) {
        let mut state = self.state();
        *state = match *state {
            State::Closed { failures } if failures + 1 < self.threshold => State::Closed { failures: failures + 1 },
            _ => State::Open { until: now + self.cooldown },
        };
    }

    pub fn status(&self) -> Status {
        match *self.state() {
            State::Closed { .. } => Status::Closed,
            State::Open { .. } => Status::Open,
            State::HalfOpen => Status::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_then_probes_once_and_closes() {
        let b = CircuitBreaker::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        for _ in 0..2 {
            b.allow(t0).unwrap();
            b.on_failure(t0);
        }
        assert_eq!(b.status(), Status::Closed);
        b.on_failure(t0);
        assert_eq!(b.status(), Status::Open);
        assert_eq!(b.allow(t0 + Duration::from_secs(4)), Err(Refused { retry_in: Duration::from_secs(6) }));
        // Cool-down over: exactly one probe goes out.
        let t1 = t0 + Duration::from_secs(10);
        assert!(b.allow(t1).is_ok());
        assert_eq!(b.status(), Status::HalfOpen);
        assert!(b.allow(t1).is_err());
        b.on_success();
        assert_eq!(b.status(), Status::Closed);
        assert!(b.allow(t1).is_ok());
    }

    #[test]
    fn a_failed_probe_reopens_for_a_full_cooldown() {
        let b = CircuitBreaker::new(1, Duration::from_secs(5));
        let t0 = Instant::now();
        b.on_failure(t0);
        let t1 = t0 + Duration::from_secs(5);
        assert!(b.allow(t1).is_ok());
        b.on_failure(t1);
        assert_eq!(b.allow(t1 + Duration::from_secs(1)), Err(Refused { retry_in: Duration::from_secs(4) }));
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let b = CircuitBreaker::new(2, Duration::from_secs(5));
        let t0 = Instant::now();
        b.on_failure(t0);
        b.on_success();
        b.on_failure(t0);
        assert_eq!(b.status(), Status::Closed);
    }
}
