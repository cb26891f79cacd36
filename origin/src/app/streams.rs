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
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    per_tenant: HashMap<Uuid, usize>,
    /// All tenants' together, by [`StreamKind`], for `/metrics`.
    by_kind: [usize; 2],
}

/// Which protocol a stream serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Mcp = 0,
    A2a = 1,
}

impl StreamKind {
    pub const ALL: [StreamKind; 2] = [StreamKind::Mcp, StreamKind::A2a];

    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Mcp => "mcp",
            StreamKind::A2a => "a2a",
        }
    }
}

/// One open stream of a tenant; dropping it frees the slot.
#[derive(Debug)]
pub struct StreamPermit {
    slots: Arc<StreamSlots>,
    tenant: Uuid,
    kind: StreamKind,
}

impl StreamSlots {
    pub fn new(max_per_tenant: usize) -> Arc<Self> {
        Arc::new(Self { max_per_tenant, open: Mutex::new(Open::default()) })
    }

    pub fn max_per_tenant(&self) -> usize {
        self.max_per_tenant
    }

    /// A slot for one more stream of `tenant`, or `None` when it has `max_per_tenant` open.
    pub fn try_acquire(self: &Arc<Self>, tenant: Uuid, kind: StreamKind) -> Option<StreamPermit> {
        let mut open = self.lock();
        let count = open.per_tenant.entry(tenant).or_default();
        if *count >= self.max_per_tenant {
            return None;
        }
        *count += 1;
        open.by_kind[kind as usize] += 1;
        Some(StreamPermit { slots: Arc::clone(self), tenant, kind })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        // Plain counts: a panic elsewhere cannot leave them half-written.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many streams `tenant` has open here.
    pub fn open(&self, tenant: Uuid) -> usize {
        self.lock().per_tenant.get(&tenant).copied().unwrap_or(0)
    }

    /// How many streams of `kind` all tenants have open here.
    pub fn open_of(&self, kind: StreamKind) -> usize {
        self.lock().by_kind[kind as usize]
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.slots.lock();
        let kind = &mut open.by_kind[self.kind as usize];
        *kind = kind.saturating_sub(1);
        if let Some(count) = open.per_tenant.get_mut(&self.tenant) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.per_tenant.remove(&self.tenant);
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
        let first = slots.try_acquire(a, StreamKind::Mcp).unwrap();
        let second = slots.try_acquire(a, StreamKind::A2a).unwrap();
        assert!(slots.try_acquire(a, StreamKind::Mcp).is_none());
        assert!(slots.try_acquire(b, StreamKind::Mcp).is_some());
        drop(first);
        let body = slots.try_acquire(a, StreamKind::A2a).unwrap().hold_with(Body::empty());
        assert_eq!(slots.open(a), 2);
        assert_eq!((slots.open_of(StreamKind::Mcp), slots.open_of(StreamKind::A2a)), (0, 2));
        drop((second, body));
        assert_eq!(slots.open(a), 0);
        assert_eq!(slots.open_of(StreamKind::A2a), 0);
    }
}
