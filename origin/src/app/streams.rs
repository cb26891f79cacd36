//! Per-tenant caps on the long-lived streams of this process: A2A's streaming send and
//! resubscription, MCP's GET stream. Each open stream holds a connection, a task and a share of
//! the event notifications; one tenant holding thousands would take them from everyone else. A
//! stream holds a [`StreamPermit`] for as long as its response body lives.
//!
//! The count is per process: a fleet of N replicas admits up to N times the cap per tenant.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use http_body_util::BodyExt as _;
use uuid::Uuid;

/// The open streams of each tenant in this process.
#[derive(Debug)]
pub struct StreamSlots {
    max_per_tenant: usize,
    open: Mutex<HashMap<Uuid, usize>>,
}

/// One open stream of a tenant; dropping it frees the slot.
#[derive(Debug)]
pub struct StreamPermit {
    slots: Arc<StreamSlots>,
    tenant: Uuid,
}

impl StreamSlots {
    pub fn new(max_per_tenant: usize) -> Arc<Self> {
        Arc::new(Self { max_per_tenant, open: Mutex::new(HashMap::new()) })
    }

    pub fn max_per_tenant(&self) -> usize {
        self.max_per_tenant
    }

    /// A slot for one more stream of `tenant`, or `None` when it has `max_per_tenant` open.
    pub fn try_acquire(self: &Arc<Self>, tenant: Uuid) -> Option<StreamPermit> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(tenant).or_default();
        if *count >= self.max_per_tenant {
            return None;
        }
        *count += 1;
        Some(StreamPermit { slots: Arc::clone(self), tenant })
    }

    /// How many streams `tenant` has open here.
    pub fn open(&self, tenant: Uuid) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).get(&tenant).copied().unwrap_or(0)
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.tenant) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.tenant);
            }
        }
    }
}

impl StreamPermit {
    /// `body`, holding this permit until the body is dropped (sent in full, or the client gone).
    pub fn hold_with(self, body: Body) -> Body {
        Body::new(body.map_frame(move |frame| {
            let _held = &self;
            frame
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_gets_its_cap_and_a_slot_back_when_a_stream_ends() {
        let slots = StreamSlots::new(2);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let first = slots.try_acquire(a).unwrap();
        let second = slots.try_acquire(a).unwrap();
        assert!(slots.try_acquire(a).is_none());
        assert!(slots.try_acquire(b).is_some());
        drop(first);
        let body = slots.try_acquire(a).unwrap().hold_with(Body::empty());
        assert_eq!(slots.open(a), 2);
        drop((second, body));
        assert_eq!(slots.open(a), 0);
    }
}
