//! Push notifications: every event of a task is POSTed to each webhook registered for it, in
//! sequence order, at least once.
//!
//! Delivery follows the event log with a cursor per webhook (`delivered_seq`), so an event that
//! could not be delivered (the receiver was down through every retry, or this process died) goes
//! out with the task's next event. A process leases a webhook while it delivers to it
//! (`delivering_until`), so two processes do not interleave; no transaction is open while a
//! receiver is being talked to. A task has at most [`MAX_CONFIGS_PER_TASK`] webhooks and a
//! tenant [`MAX_CONFIGS_PER_TENANT`] across its running tasks. Each POST is checked by
//! [`super::ssrf`] after DNS resolution and sent to the vetted address, without following
//! redirects.
//!
//! What a receiver gets:
//! - body: 0.3, the `Task` as of the event; 1.0, the event as a `StreamResponse`
//!   (`{"task"|"statusUpdate"|"artifactUpdate": ..}`), as in a stream.
//! - `X-A2A-Notification-Token: <token>` when the config has a token.
//! - With the authentication scheme [`SIGNATURE_SCHEME`] (`HMAC-SHA256`), whose credentials are a
//!   signing secret of the client's that is never sent: `X-A2A-Signature: t=<unix seconds>,
//!   v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, so the receiver can check the body came from
//!   us unaltered and reject old replays. The key is not the token: anyone who sees one request
//!   (a proxy's log) could otherwise sign their own.
//! - With any other scheme: `Authorization: <scheme> <credentials>`.
//! - `X-A2A-Event-Id: <task id>:<sequence number>`, stable across redeliveries, for deduplication.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentplane_core::catalogue::A2aVersion;
use backon::{ExponentialBuilder, Retryable as _};
use hmac::{Hmac, Mac as _};
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use super::ssrf::{self, Refused};
use super::store::{self, Event, PushConfig, StoreError, TaskRow};
use super::stream;
use crate::data::db::{Database, TenantId};

/// POST attempts per event before delivery to that webhook pauses until the next event.
const ATTEMPTS: u32 = 4;
const FIRST_RETRY: Duration = Duration::from_millis(200);
const TIMEOUT: Duration = Duration::from_secs(10);
/// Events delivered per webhook per pass.
const BATCH: i64 = 100;
/// How long a process holds a webhook while it delivers one event (renewed after each): longer
/// than every attempt at one event together, so no other process starts on it meanwhile.
const LEASE: Duration = Duration::from_secs(ATTEMPTS as u64 * (TIMEOUT.as_secs() + 5));
/// The authentication scheme whose credentials sign each notification instead of being sent.
pub const SIGNATURE_SCHEME: &str = "HMAC-SHA256";
/// The shortest signing secret accepted: as for HMAC token keys, 32 bytes.
const MIN_SIGNING_SECRET: usize = 32;

/// The most webhooks one task may have, and one tenant across its running tasks.
pub const MAX_CONFIGS_PER_TASK: i64 = 10;
pub const MAX_CONFIGS_PER_TENANT: i64 = 1000;

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length; the error case cannot happen.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac.chain_update(message).finalize().into_bytes().into(),
        Err(_) => [0; 32],
    }
}

/// The `X-A2A-Signature` value for `body` sent at `unix_seconds`, signed with `secret`.
pub fn signature(secret: &str, unix_seconds: u64, body: &[u8]) -> String {
    let mut signed = unix_seconds.to_string().into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(body);
    let mac = hmac_sha256(secret.as_bytes(), &signed);
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={unix_seconds},v1={hex}")
}

#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    #[error("destination refused: {0}")]
    Refused(#[from] Refused),
    #[error("receiver answered {0}")]
    Status(u16),
    #[error("{0}")]
    Transport(String),
}

impl DeliveryError {
    fn retryable(&self) -> bool {
        match self {
            DeliveryError::Refused(_) => false,
            DeliveryError::Status(s) => *s == 408 || *s == 429 || *s >= 500,
            DeliveryError::Transport(_) => true,
        }
    }
}

/// A vetted webhook address and a client that connects only to it.
struct Target {
    client: reqwest::Client,
    url: reqwest::Url,
}

/// The process's webhook sender.
#[derive(Debug)]
pub struct Pusher {
    db: Database,
    allow_loopback: bool,
    /// Tasks being delivered in this process, and whether new events came meanwhile.
    running: Mutex<HashMap<Uuid, bool>>,
}

impl Pusher {
    pub fn new(db: Database, allow_loopback: bool) -> Arc<Self> {
        Arc::new(Self { db, allow_loopback, running: Mutex::new(HashMap::new()) })
    }

    pub fn allow_loopback(&self) -> bool {
        self.allow_loopback
    }

    /// The task has new events: deliver them in the background. One delivery per task runs in
    /// this process at a time; a notification during it makes it go round once more.
    pub fn notify(self: &Arc<Self>, tenant: TenantId, task: Uuid) {
        {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(again) = running.get_mut(&task) {
                *again = true;
                return;
            }
            running.insert(task, false);
        }
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = this.deliver(tenant, task).await {
                    tracing::warn!(%task, error = %e, "push notification delivery failed");
                }
                let mut running = this.running.lock().unwrap_or_else(|e| e.into_inner());
                if running.get(&task) == Some(&true) {
                    running.insert(task, false);
                    continue;
                }
                running.remove(&task);
                return;
            }
        });
    }

    /// One delivery pass. What to send is read in one short transaction that also leases the
    /// webhooks; the POSTs run with no transaction open (a receiver that never answers must not
    /// hold a pooled connection: enough of them would stall every tenant); each delivered event
    /// is recorded in a short transaction of its own.
    async fn deliver(&self, tenant: TenantId, task: Uuid) -> Result<(), StoreError> {
        let mut tx = self.db.tenant_tx(tenant).await?;
        // Most tasks have no webhook: one query, and done.
        let configs = store::lease_push_configs(&mut tx, task, LEASE).await?;
        if configs.is_empty() {
            return Ok(());
        }
        let Some(row) = store::get_task(&mut tx, task).await? else { return Ok(()) };
        let artifacts = store::artifacts(&mut tx, task).await?;
        let mut batches = Vec::with_capacity(configs.len());
        for config in configs {
            let events = store::events_after(&mut tx, task, config.delivered_seq, BATCH).await?;
            batches.push((config, events));
        }
        tx.commit().await?;

        for (config, events) in batches {
            let sent = self.send_events(tenant, &row, &artifacts, &config, &events).await;
            // The lease goes even when recording failed: the next event retries what is left.
            let mut tx = self.db.tenant_tx(tenant).await?;
            store::end_delivery(&mut tx, task, &config.id).await?;
            tx.commit().await?;
            sent?;
        }
        Ok(())
    }

    /// POSTs `events` to one webhook in order, recording each one delivered; stops at the first
    /// that cannot be delivered.
    async fn send_events(
        &self,
        tenant: TenantId,
        row: &TaskRow,
        artifacts: &[super::wire::Artifact],
        config: &PushConfig,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let task = row.id;
        let version = if config.protocol_version == "1.0" { A2aVersion::V1_0 } else { A2aVersion::V0_3 };
        let target = match self.target(config).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(%task, config = %config.id, error = %e,
                    "push notification not delivered; it is retried with the task's next event");
                return Ok(());
            }
        };
        for event in events {
            let body = body(version, row, artifacts, event)?;
            if let Err(e) = self.post_with_retries(&target, config, task, event.seq, &body).await {
                tracing::warn!(%task, config = %config.id, seq = event.seq, error = %e,
                    "push notification not delivered; it is retried with the task's next event");
                break;
            }
            let mut tx = self.db.tenant_tx(tenant).await?;
            store::mark_delivered(&mut tx, task, &config.id, event.seq, LEASE).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    async fn post_with_retries(
        &self,
        target: &Target,
        config: &PushConfig,
        task: Uuid,
        seq: i64,
        body: &[u8],
    ) -> Result<(), DeliveryError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(FIRST_RETRY)
            .with_max_times(ATTEMPTS as usize - 1)
            .with_jitter();
        (|| self.post(target, config, task, seq, body)).retry(backoff).when(DeliveryError::retryable).await
    }

    /// Checks the webhook's address after DNS and builds a client bound to it: once per
    /// delivery pass, not per POST.
    async fn target(&self, config: &PushConfig) -> Result<Target, DeliveryError> {
        let vetted = ssrf::vet(&config.url, self.allow_loopback).await?;
        // Connect to the address that was checked, whatever DNS answers next.
        let client = reqwest::Client::builder()
            // A proxy from the environment would connect wherever it resolves the name to.
            .no_proxy()
            .resolve(&vetted.host, vetted.addr)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| DeliveryError::Transport(e.to_string()))?;
        Ok(Target { client, url: vetted.url })
    }

    async fn post(
        &self,
        target: &Target,
        config: &PushConfig,
        task: Uuid,
        seq: i64,
        body: &[u8],
    ) -> Result<(), DeliveryError> {
        let mut request = target
            .client
            .post(target.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("X-A2A-Event-Id", format!("{task}:{seq}"))
            .body(body.to_vec());
        if let Some(token) = &config.token {
            request = request.header("X-A2A-Notification-Token", token);
        }
        if let Some(auth) = &config.authentication
            && let Some(scheme) = auth.get("scheme").and_then(Value::as_str)
        {
            let credentials = auth.get("credentials").and_then(Value::as_str).unwrap_or_default();
            if scheme.eq_ignore_ascii_case(SIGNATURE_SCHEME) {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                request = request.header("X-A2A-Signature", signature(credentials, now, body));
            } else {
                request = request
                    .header(http::header::AUTHORIZATION, format!("{scheme} {credentials}").trim_end().to_owned());
            }
        }
        let response = request.send().await.map_err(|e| DeliveryError::Transport(e.to_string()))?;
        let status = response.status();
        if status.is_success() { Ok(()) } else { Err(DeliveryError::Status(status.as_u16())) }
    }
}

/// What one notification carries (see the module documentation).
fn body(
    version: A2aVersion,
    row: &TaskRow,
    artifacts: &[super::wire::Artifact],
    event: &Event,
) -> Result<Vec<u8>, StoreError> {
    let value = match version {
        A2aVersion::V1_0 => stream::render_event(version, row, event)?.0,
        A2aVersion::V0_3 => {
            // The task's status as of the event; an artifact event comes from a step commit,
            // which happens while the task is working. Artifacts are those stored by now.
            let mut at_event = row.clone();
            at_event.state = event.state().unwrap_or(super::wire::TaskState::Working);
            at_event.status_at = event.created_at;
            at_event.status_message = match event.payload.get("message") {
                Some(m) if !m.is_null() => serde_json::from_value(m.clone()).ok(),
                _ => None,
            };
            stream::task_value(version, &at_event, artifacts, None)
        }
    };
    serde_json::to_vec(&value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A push config from a client of `version`. 0.3 nests it (`{taskId, pushNotificationConfig:
/// {id, url, token, authentication: {schemes, credentials}}}`); 1.0 is flat (`{taskId, id, url,
/// token, authentication: {scheme, credentials}}`).
pub fn parse_config(version: A2aVersion, params: &Value, task_id: Uuid) -> Result<PushConfig, String> {
    let inner = match version {
        A2aVersion::V0_3 => params.get("pushNotificationConfig").ok_or("pushNotificationConfig is required")?,
        // Accept the nested `config` of earlier 1.0 drafts as well as the flat form.
        A2aVersion::V1_0 => params.get("config").filter(|c| c.is_object()).unwrap_or(params),
    };
    config_from(version, inner, task_id)
}

/// The push config inside a send's `configuration`.
pub fn config_from(version: A2aVersion, inner: &Value, task_id: Uuid) -> Result<PushConfig, String> {
    let text = |key: &str| -> Result<Option<String>, String> {
        match inner.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("{key} must be a string")),
        }
    };
    let url = text("url")?.ok_or("url is required")?;
    let authentication = match inner.get("authentication").filter(|a| !a.is_null()) {
        None => None,
        Some(a) => {
            let scheme = match version {
                A2aVersion::V0_3 => {
                    a.get("schemes").and_then(Value::as_array).and_then(|s| s.first()).and_then(Value::as_str)
                }
                A2aVersion::V1_0 => a.get("scheme").and_then(Value::as_str),
            }
            .ok_or("authentication needs a scheme")?;
            if !scheme.chars().all(|c| c.is_ascii_alphanumeric() || "-._~+/".contains(c)) {
                return Err("authentication scheme is not a valid HTTP token".into());
            }
            let credentials = a.get("credentials").and_then(Value::as_str);
            if scheme.eq_ignore_ascii_case(SIGNATURE_SCHEME) && credentials.is_none_or(|c| c.len() < MIN_SIGNING_SECRET)
            {
                return Err(format!(
                    "the {SIGNATURE_SCHEME} scheme signs with its credentials: a secret of at least \
                     {MIN_SIGNING_SECRET} characters"
                ));
            }
            Some(json!({ "scheme": scheme, "credentials": credentials }))
        }
    };
    Ok(PushConfig {
        id: text("id")?.unwrap_or_else(|| Uuid::new_v4().to_string()),
        task_id,
        url,
        token: text("token")?,
        authentication,
        protocol_version: version.as_str().to_owned(),
        delivered_seq: 0,
    })
}

/// Whether a rendered push config carries its secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// The answer to the call that set them: the caller just sent them.
    Shown,
    /// Every later read: a token or credentials are never handed out again, to anyone.
    Withheld,
}

/// A push config as a client of `version` reads it.
pub fn config_value(version: A2aVersion, c: &PushConfig, secrets: Secrets) -> Value {
    let scheme = c.authentication.as_ref().and_then(|a| a.get("scheme")).cloned();
    let shown = secrets == Secrets::Shown;
    let token = c.token.as_ref().filter(|_| shown);
    let credentials =
        c.authentication.as_ref().and_then(|a| a.get("credentials")).cloned().filter(|v| shown && !v.is_null());
    match version {
        A2aVersion::V0_3 => {
            let mut inner = json!({ "id": c.id, "url": c.url });
            if let Some(t) = token {
                inner["token"] = json!(t);
            }
            if let Some(s) = scheme {
                inner["authentication"] = json!({ "schemes": [s] });
                if let Some(cr) = credentials {
                    inner["authentication"]["credentials"] = cr;
                }
            }
            json!({ "taskId": c.task_id, "pushNotificationConfig": inner })
        }
        A2aVersion::V1_0 => {
            let mut v = json!({ "id": c.id, "taskId": c.task_id, "url": c.url });
            if let Some(t) = token {
                v["token"] = json!(t);
            }
            if let Some(s) = scheme {
                v["authentication"] = json!({ "scheme": s });
                if let Some(cr) = credentials {
                    v["authentication"]["credentials"] = cr;
                }
            }
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signing_scheme_needs_a_secret_of_32_bytes() {
        let config = |secret: &str| {
            let c = json!({"url": "https://h.example/x", "authentication": {"scheme": "HMAC-SHA256", "credentials": secret}});
            config_from(A2aVersion::V1_0, &c, Uuid::nil())
        };
        assert!(config("short").unwrap_err().contains("at least 32"));
        assert!(config(&"k".repeat(32)).is_ok());
        let none = json!({"url": "https://h.example/x", "authentication": {"schemes": ["hmac-sha256"]}});
        assert!(config_from(A2aVersion::V0_3, &none, Uuid::nil()).is_err());
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        let hex = |b: [u8; 32]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(
            hex(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        assert_eq!(
            hex(hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        assert!(signature("k", 1700000000, b"{}").starts_with("t=1700000000,v1="));
    }

    #[test]
    fn configs_read_and_render_in_both_versions() {
        let task = Uuid::from_u128(1);
        let v03 = json!({"taskId": task, "pushNotificationConfig": {"id": "c1", "url": "https://h.example/x", "token": "tok",
            "authentication": {"schemes": ["Bearer"], "credentials": "secret"}}});
        let c = parse_config(A2aVersion::V0_3, &v03, task).unwrap();
        assert_eq!(c.authentication, Some(json!({"scheme": "Bearer", "credentials": "secret"})));
        assert_eq!(config_value(A2aVersion::V0_3, &c, Secrets::Shown), v03);
        let withheld = config_value(A2aVersion::V0_3, &c, Secrets::Withheld);
        assert_eq!(withheld["pushNotificationConfig"].get("token"), None);
        assert_eq!(withheld["pushNotificationConfig"]["authentication"], json!({"schemes": ["Bearer"]}));
        let v1 = config_value(A2aVersion::V1_0, &c, Secrets::Shown);
        assert_eq!(v1["authentication"], json!({"scheme": "Bearer", "credentials": "secret"}));
        let again = parse_config(A2aVersion::V1_0, &v1, task).unwrap();
        assert_eq!(again.url, c.url);
        assert!(parse_config(A2aVersion::V1_0, &json!({"taskId": task}), task).is_err());
        let bad_scheme = json!({"url": "https://h.example", "authentication": {"scheme": "Bearer\r\nX: y"}});
        assert!(parse_config(A2aVersion::V1_0, &bad_scheme, task).is_err());
    }
}
