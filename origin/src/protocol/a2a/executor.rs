//! The executor every origin process runs: claim runnable tasks under a lease, renew the lease
//! while working, run each workflow step with a timeout and retries (exponential backoff with
//! jitter), checkpoint after every step, and stop at a step boundary when a cancel was asked.
//!
//! A task whose process died keeps its lease until it expires; then any executor claims it and
//! resumes at the last checkpointed step. Every write starts with [`store::hold`] (the row,
//! locked, if this executor still holds the lease), so a process that lost its lease changes
//! nothing, and a step's artifacts and checkpoint commit together or not at all.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng as _;
use serde_json::{Map, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::push::Pusher;
use super::store::{self, StoreError};
use super::wire::{Message, TaskState};
use super::workflow::{self, RunContext, StepError, StepInput};
use crate::data::db::listen::Hub;
use crate::data::db::{SystemTask, TenantId};

/// How executors run; from `[a2a]` in the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Tasks one process runs at once.
    pub concurrency: usize,
    /// How long a claim lasts without renewal; a dead process's tasks wait this long.
    pub lease: Duration,
    /// How often to look for work when no new-task notification arrives.
    pub poll: Duration,
    pub step_timeout: Duration,
    /// Attempts per step, the first included.
    pub max_attempts: u32,
    /// The first retry's delay; it doubles per attempt up to `backoff_max`, less up to half as jitter.
    pub backoff: Duration,
    pub backoff_max: Duration,
}

/// Runs the claim loop until `shutdown`; `runnable` is the hub of [`store::RUNNABLE_CHANNEL`].
pub fn spawn(
    ctx: Arc<RunContext>,
    runnable: Arc<Hub>,
    pusher: Arc<Pusher>,
    settings: Settings,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(claim_loop(ctx, runnable, pusher, settings, shutdown))
}

async fn claim_loop(
    ctx: Arc<RunContext>,
    runnable: Arc<Hub>,
    pusher: Arc<Pusher>,
    settings: Settings,
    shutdown: CancellationToken,
) {
    let owner = Uuid::new_v4();
    let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut wake = runnable.subscribe();
    tracing::info!(%owner, concurrency = settings.concurrency, "A2A executor started");
    while !shutdown.is_cancelled() {
        let free = slots.available_permits();
        if free > 0 {
            match store::claim(ctx.db.pool(), owner, settings.lease, free).await {
                Ok(claimed) => {
                    for (task, tenant) in claimed {
                        // Only this loop takes permits, and `free` were available.
                        let Ok(permit) = slots.clone().acquire_owned().await else { return };
                        let run = TaskRun {
                            ctx: ctx.clone(),
                            pusher: pusher.clone(),
                            settings: settings.clone(),
                            owner,
                            task,
                            tenant: TenantId::for_system_task(tenant, SystemTask::ClaimedTask),
                            shutdown: shutdown.clone(),
                        };
                        tokio::spawn(run.run(permit));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "claiming A2A tasks failed"),
            }
        }
        // Sleep until the poll interval passes or a task becomes runnable (created, or replied to).
        let deadline = tokio::time::sleep(settings.poll);
        tokio::pin!(deadline);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = &mut deadline => {}
            r = wake.recv() => {
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = r {
                    // No listener: polling alone.
                    (&mut deadline).await;
                }
            }
        }
    }
}

/// The delay before retry number `attempt` (1 = after the first failure): exponential, capped,
/// with up to half of it taken off at random so retries of many tasks spread out.
pub fn backoff(settings: &Settings, attempt: u32) -> Duration {
    let exp = settings.backoff.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let full = exp.min(settings.backoff_max);
    let jitter = rand::thread_rng().gen_range(0.0..=0.5);
    full.mul_f64(1.0 - jitter)
}

/// One claimed task in this process.
struct TaskRun {
    ctx: Arc<RunContext>,
    pusher: Arc<Pusher>,
    settings: Settings,
    owner: Uuid,
    task: Uuid,
    tenant: TenantId,
    shutdown: CancellationToken,
}

/// How a run ended, for the log.
#[derive(Debug)]
enum Ended {
    Finished(TaskState),
    /// Another executor holds the task now (our lease lapsed).
    LostLease,
    /// Shutdown: the task was given back.
    Released,
}

impl TaskRun {
    async fn run(self, _permit: OwnedSemaphorePermit) {
        let lost = CancellationToken::new();
        let renewer = tokio::spawn(renew(
            self.ctx.clone(),
            self.tenant,
            self.task,
            self.owner,
            self.settings.lease,
            lost.clone(),
        ));
        let result = self.drive(&lost).await;
        renewer.abort();
        match result {
            Ok(Ended::Finished(state)) => tracing::debug!(task = %self.task, state = state.as_str(), "A2A task ended"),
            Ok(ended) => tracing::debug!(task = %self.task, ?ended, "A2A task run stopped"),
            // The lease runs out and another executor picks the task up where it stopped.
            Err(e) => {
                tracing::warn!(task = %self.task, error = %e, "A2A task run failed; it resumes after its lease expires")
            }
        }
    }

    async fn tx(&self) -> Result<store::Tx, StoreError> {
        Ok(self.ctx.db.tenant_tx(self.tenant).await?)
    }

    /// Commits a transaction that logged events, then has them pushed to the task's webhooks.
    async fn commit(&self, tx: store::Tx) -> Result<(), StoreError> {
        tx.commit().await?;
        self.pusher.notify(self.tenant, self.task);
        Ok(())
    }

    fn agent_message(&self, row: &store::TaskRow, suffix: &str, text: String) -> Message {
        let mut m = Message::agent(format!("{}-{suffix}", self.task), text);
        m.task_id = Some(self.task.to_string());
        m.context_id = Some(row.context_id.clone());
        m
    }

    /// Ends the task in `state` (fenced by the lease).
    async fn finish(&self, state: TaskState, msg: Option<Message>) -> Result<Ended, StoreError> {
        let mut tx = self.tx().await?;
        if store::hold(&mut tx, self.task, self.owner).await?.is_none() {
            return Ok(Ended::LostLease);
        }
        store::set_state(&mut tx, self.task, state, msg.as_ref()).await?;
        self.commit(tx).await?;
        Ok(Ended::Finished(state))
    }

    /// A step boundary: opens a transaction under the lease and applies a requested cancel.
    /// `Err` is how the task ended here (lease lost, or canceled and committed); `Ok` carries the
    /// transaction to go on in.
    async fn boundary(&self) -> Result<Result<store::Tx, Ended>, StoreError> {
        let mut tx = self.tx().await?;
        let Some(now) = store::hold(&mut tx, self.task, self.owner).await? else { return Ok(Err(Ended::LostLease)) };
        if now.cancel_requested {
            store::set_state(&mut tx, self.task, TaskState::Canceled, None).await?;
            self.commit(tx).await?;
            return Ok(Err(Ended::Finished(TaskState::Canceled)));
        }
        Ok(Ok(tx))
    }

    async fn release(&self) -> Result<Ended, StoreError> {
        let mut tx = self.tx().await?;
        if store::hold(&mut tx, self.task, self.owner).await?.is_some() {
            store::release(&mut tx, self.task).await?;
        }
        tx.commit().await?;
        Ok(Ended::Released)
    }

    async fn drive(&self, lost: &CancellationToken) -> Result<Ended, StoreError> {
        let mut tx = self.tx().await?;
        let Some(row) = store::hold(&mut tx, self.task, self.owner).await? else { return Ok(Ended::LostLease) };
        if row.state.is_terminal() {
            store::release(&mut tx, self.task).await?;
            tx.commit().await?;
            return Ok(Ended::Finished(row.state));
        }
        if row.cancel_requested {
            store::set_state(&mut tx, self.task, TaskState::Canceled, None).await?;
            self.commit(tx).await?;
            return Ok(Ended::Finished(TaskState::Canceled));
        }
        let Some(wf) = workflow::find(&row.workflow, self.ctx.test_workflows) else {
            let msg = self.agent_message(&row, "failed", format!("unknown workflow {:?}", row.workflow));
            store::set_state(&mut tx, self.task, TaskState::Failed, Some(&msg)).await?;
            self.commit(tx).await?;
            return Ok(Ended::Finished(TaskState::Failed));
        };
        if row.state == TaskState::Submitted {
            store::set_state(&mut tx, self.task, TaskState::Working, None).await?;
        }
        self.commit(tx).await?;
        if row.claims > 1 {
            tracing::info!(task = %self.task, step = row.step, claims = row.claims, "resuming A2A task at its checkpoint");
        }

        // The conversation's user side: the first message, then every reply and follow-up.
        let query = workflow::conversation(&row.input, &row.history);
        let mut checkpoint: Map<String, Value> = row.checkpoint.as_object().cloned().unwrap_or_default();
        let timeout = workflow::step_timeout(wf, &row.input, self.settings.step_timeout);
        let first = usize::try_from(row.step).unwrap_or(0);
        if first >= wf.steps.len() {
            return self.finish(TaskState::Completed, None).await;
        }
        for (index, spec) in wf.steps.iter().enumerate().skip(first) {
            let output = loop {
                if self.shutdown.is_cancelled() {
                    return self.release().await;
                }
                // A step boundary: the cancel check and the attempt count, under the lease.
                let mut tx = match self.boundary().await? {
                    Ok(tx) => tx,
                    Err(ended) => return Ok(ended),
                };
                let attempt = store::begin_attempt(&mut tx, self.task).await?;
                tx.commit().await?;
                let max = i32::try_from(self.settings.max_attempts).unwrap_or(i32::MAX);
                if attempt > max {
                    // Earlier runs used every attempt (their processes died mid-step).
                    let text = format!("step {} did not finish in {max} attempts", spec.name);
                    return self.finish(TaskState::Failed, Some(self.agent_message(&row, "failed", text))).await;
                }
                let input = StepInput {
                    ctx: self.ctx.clone(),
                    tenant: self.tenant,
                    subject: row.subject.clone(),
                    tier: row.tier.clone(),
                    task_id: self.task,
                    query: query.clone(),
                    input: row.input.clone(),
                    history: row.history.clone(),
                    checkpoint: checkpoint.clone(),
                    attempt,
                };
                // Its own trace: a step runs on whichever replica claimed the task, long after
                // the request that created it.
                let span = tracing::info_span!(
                    "a2a.step",
                    otel.name = format!("a2a.step {}", spec.name),
                    task = %self.task,
                    step = spec.name,
                    attempt
                );
                let step = tracing::Instrument::instrument((spec.run)(input), span);
                let outcome = tokio::select! {
                    r = tokio::time::timeout(timeout, step) => r,
                    () = lost.cancelled() => return Ok(Ended::LostLease),
                };
                let (error, permanent) = match outcome {
                    Ok(Ok(out)) => break out,
                    Ok(Err(StepError::Rejected(why))) => {
                        return self.finish(TaskState::Rejected, Some(self.agent_message(&row, "rejected", why))).await;
                    }
                    Ok(Err(e)) => (e.to_string(), e.is_permanent()),
                    Err(_) => (format!("timed out after {} ms", timeout.as_millis()), false),
                };
                tracing::info!(task = %self.task, step = spec.name, attempt, %error, "A2A step failed");
                if permanent || attempt >= max {
                    let text = format!("step {} failed after {attempt} attempt(s): {error}", spec.name);
                    return self.finish(TaskState::Failed, Some(self.agent_message(&row, "failed", text))).await;
                }
                let delay = backoff(&self.settings, u32::try_from(attempt).unwrap_or(1));
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = lost.cancelled() => return Ok(Ended::LostLease),
                    () = self.shutdown.cancelled() => return self.release().await,
                }
            };

            if let Some(question) = output.ask {
                let mut tx = match self.boundary().await? {
                    Ok(tx) => tx,
                    Err(ended) => return Ok(ended),
                };
                let question = self.agent_message(&row, &format!("ask-{}", row.history.len()), question);
                store::ask(&mut tx, self.task, &question).await?;
                self.commit(tx).await?;
                return Ok(Ended::Finished(TaskState::InputRequired));
            }
            checkpoint.insert(spec.name.to_owned(), output.value);
            let last = index + 1 == wf.steps.len();
            // Cancel is final: if it came during the step, the step's results are dropped with it.
            let mut tx = match self.boundary().await? {
                Ok(tx) => tx,
                Err(ended) => return Ok(ended),
            };
            let next = i32::try_from(index + 1).unwrap_or(i32::MAX);
            store::advance(&mut tx, self.task, next, &Value::Object(checkpoint.clone())).await?;
            for a in &output.artifacts {
                store::put_artifact(&mut tx, self.task, a).await?;
            }
            if last {
                let msg = output.answer.map(|text| self.agent_message(&row, "answer", text));
                store::set_state(&mut tx, self.task, TaskState::Completed, msg.as_ref()).await?;
            }
            self.commit(tx).await?;
        }
        Ok(Ended::Finished(TaskState::Completed))
    }
}

/// Renews the lease every third of its length; cancels `lost` when another executor has it.
async fn renew(
    ctx: Arc<RunContext>,
    tenant: TenantId,
    task: Uuid,
    owner: Uuid,
    lease: Duration,
    lost: CancellationToken,
) {
    let mut tick = tokio::time::interval(lease / 3);
    tick.tick().await;
    loop {
        tick.tick().await;
        let renewed = async {
            let mut tx = ctx.db.tenant_tx(tenant).await?;
            let held = store::renew_lease(&mut tx, task, owner, lease).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(held)
        }
        .await;
        match renewed {
            Ok(true) => {}
            Ok(false) => {
                lost.cancel();
                return;
            }
            Err(e) => tracing::warn!(%task, error = %e, "renewing an A2A lease failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        let s = Settings {
            concurrency: 1,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(250),
            step_timeout: Duration::from_secs(30),
            max_attempts: 3,
            backoff: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1000),
        };
        for _ in 0..100 {
            let d1 = backoff(&s, 1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100), "{d1:?}");
            let d3 = backoff(&s, 3);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400), "{d3:?}");
            let d9 = backoff(&s, 9);
            assert!(d9 >= Duration::from_millis(500) && d9 <= Duration::from_millis(1000), "{d9:?}");
        }
    }
}
