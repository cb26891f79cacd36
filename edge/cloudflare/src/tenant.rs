//! One Durable Object per tenant holds the tenant's `TenantState` (GCRA limiter state and data
//! generation). A Durable Object runs single-threaded in one place, so every edge location sees
//! one limiter per tenant: the allowance is global, not per location.
//!
//! The object only stores and applies: `TenantState::admit` and `bump_generation` are the core's.

use std::cell::Cell;

use agentplane_core::TenantState;
use agentplane_core::ratelimit::{Quota, RateDecision};
use agentplane_core::time::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use worker::{
    Date, DurableObject, Env, Method, Request, RequestInit, Response, State, durable_object, wasm_bindgen::JsValue,
};

use crate::isolate::EdgeError;

/// The binding name in `wrangler.toml`.
pub(crate) const BINDING: &str = "TENANTS";

/// The storage key of the one record.
const RECORD: &str = "tenant";

/// What the Worker asks the tenant's object.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum TenantOp {
    /// Decide one request against the quota; answers the decision and the generation.
    Admit { quota: Quota },
    /// Only the generation (for requests without a quota).
    Read,
    /// A write succeeded: retire every cached result of the tenant.
    Bump,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TenantAnswer {
    pub(crate) decision: Option<RateDecision>,
    pub(crate) generation: u64,
}

/// Asks the tenant's object. One round trip per call.
pub(crate) async fn call(env: &Env, tenant: Uuid, op: &TenantOp) -> Result<TenantAnswer, EdgeError> {
    let stub = env.durable_object(BINDING)?.get_by_name(&tenant.to_string())?;
    let body = serde_json::to_string(op).map_err(|e| EdgeError::Tenant(e.to_string()))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(JsValue::from_str(&body)));
    // The URL is never resolved: a stub's fetch goes to the object whatever it says.
    let request = Request::new_with_init("https://tenant.agentplane.invalid/", &init)?;
    let mut response = stub.fetch_with_request(request).await?;
    if response.status_code() != 200 {
        let text = response.text().await.unwrap_or_default();
        return Err(EdgeError::Tenant(format!("{}: {text}", response.status_code())));
    }
    response.json::<TenantAnswer>().await.map_err(|e| EdgeError::Tenant(e.to_string()))
}

/// The Durable Object class (`TenantObject` in `wrangler.toml`).
#[durable_object]
#[derive(Debug)]
pub struct TenantObject {
    state: State,
    /// The record as last stored; `None` until first read from storage.
    record: Cell<Option<TenantState>>,
}

impl DurableObject for TenantObject {
    fn new(state: State, _env: Env) -> Self {
        Self { state, record: Cell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let Ok(op) = req.json::<TenantOp>().await else {
            return Response::error("bad tenant operation", 400);
        };
        // Storage reads and writes close the object's input gate, so no other request to this
        // object interleaves between reading the record and storing the new one.
        let before = match self.record.get() {
            Some(r) => r,
            None => match self.state.storage().get::<String>(RECORD).await? {
                // An unreadable record starts afresh rather than failing every request.
                Some(json) => serde_json::from_str(&json).unwrap_or_default(),
                None => TenantState::default(),
            },
        };
        let mut record = before;
        // The object's clock, not the caller's: it is the one writer of this state.
        let now = Timestamp::from_unix_millis(Date::now().as_millis());
        let decision = match op {
            TenantOp::Admit { quota } => Some(record.admit(now, &quota)),
            TenantOp::Read => None,
            TenantOp::Bump => {
                record.bump_generation();
                None
            }
        };
        self.record.set(Some(record));
        if record != before {
            // The output gate holds the answer until this write is durable.
            // Stored as JSON text: storage values go through JS numbers, which cannot hold the
            // limiter's nanosecond timestamps (above 2^53) exactly.
            let json = serde_json::to_string(&record).map_err(|e| worker::Error::RustError(e.to_string()))?;
            self.state.storage().put(RECORD, json).await?;
        }
        Response::from_json(&TenantAnswer { decision, generation: record.generation })
    }
}
