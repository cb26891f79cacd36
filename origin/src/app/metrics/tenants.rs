//! Requests and errors per tenant in this process, for the operator's page. Not a Prometheus
//! family: a tenant id as a label would grow without bound (see `labels.rs`); this table is
//! capped instead, and read only by an operator.

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

/// The most tenants counted; past it, new tenants go uncounted (and the page says how many).
const MAX_TENANTS: usize = 10_000;

#[derive(Debug, Default)]
pub struct TenantActivity {
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    by_tenant: HashMap<Uuid, Tally>,
    /// Requests of tenants that found the table full.
    uncounted: u64,
}

/// One tenant's admitted calls since the process started, and how many of them failed.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Tally {
    pub requests: u64,
    pub errors: u64,
}

impl TenantActivity {
    pub fn record(&self, tenant: Uuid, failed: bool) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let full = counts.by_tenant.len() >= MAX_TENANTS;
        match counts.by_tenant.get_mut(&tenant) {
            Some(t) => {
                t.requests += 1;
                t.errors += u64::from(failed);
            }
            None if full => counts.uncounted += 1,
            None => {
                counts.by_tenant.insert(tenant, Tally { requests: 1, errors: u64::from(failed) });
            }
        }
    }

    /// The `top` busiest tenants, busiest first, and the requests left uncounted.
    pub fn busiest(&self, top: usize) -> (Vec<(Uuid, Tally)>, u64) {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<(Uuid, Tally)> = counts.by_tenant.iter().map(|(k, v)| (*k, *v)).collect();
        all.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(&b.0)));
        all.truncate(top);
        (all, counts.uncounted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_are_per_tenant_busiest_first_and_bounded() {
        let a = TenantActivity::default();
        let (t1, t2) = (Uuid::from_u128(1), Uuid::from_u128(2));
        a.record(t1, false);
        a.record(t2, true);
        a.record(t2, false);
        let (top, uncounted) = a.busiest(10);
        assert_eq!(top.iter().map(|(t, c)| (*t, c.requests, c.errors)).collect::<Vec<_>>(), [(t2, 2, 1), (t1, 1, 0)]);
        assert_eq!(uncounted, 0);
        for i in 0..MAX_TENANTS as u128 + 5 {
            a.record(Uuid::from_u128(100 + i), false);
        }
        let (top, uncounted) = a.busiest(3);
        assert_eq!((top.len(), uncounted), (3, 7));
    }
}
