//! Query embeddings that arrive together share one forward pass. Each product of the encoder then
//! multiplies the weights with the tokens of every waiting query at once instead of one query's
//! twenty, which is where a matrix kernel earns its speed; the queue also caps inference at one
//! thread per core however many searches run, so sixteen concurrent searches do not become
//! sixteen threads thrashing two cores' caches.
//!
//! Workers take whatever is queued when they are free, up to [`MAX_BATCH`]: nothing waits for a
//! batch to fill, so a lone query runs at once.

use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::{EmbedError, LocalModel};

/// Queries one forward pass takes at most: about 700 tokens of SciFact claims, a few
/// milliseconds of work, so a query never waits long behind a batch.
pub const MAX_BATCH: usize = 32;

type Reply = oneshot::Sender<Result<(Vec<f32>, u64), EmbedError>>;

struct Job {
    text: String,
    reply: Reply,
}

/// The queue in front of the model's query workers. Dropping the last clone stops the workers
/// once they have answered what is queued.
#[derive(Debug, Clone)]
pub struct QueryBatcher {
    queue: Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

impl QueryBatcher {
    /// Starts `workers` threads (at least one) running `model`.
    pub fn start(model: LocalModel, workers: usize) -> Result<Self, EmbedError> {
        let (queue, jobs) = mpsc::channel();
        let jobs = Arc::new(Mutex::new(jobs));
        for n in 0..workers.max(1) {
            let (model, jobs) = (model.clone(), jobs.clone());
            std::thread::Builder::new()
                .name(format!("query-embed-{n}"))
                .spawn(move || work(&model, &jobs))
                .map_err(|e| EmbedError::Load(format!("starting the query embedding threads: {e}")))?;
        }
        Ok(Self { queue })
    }

    /// The vector of `text` and the tokens it took.
    pub async fn embed(&self, text: String) -> Result<(Vec<f32>, u64), EmbedError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { text, reply })
            .map_err(|_| EmbedError::Inference("the query embedding threads have stopped".into()))?;
        answer.await.map_err(|_| EmbedError::Inference("a query embedding thread stopped mid-batch".into()))?
    }
}

fn work(model: &LocalModel, jobs: &Mutex<Receiver<Job>>) {
    while let Some(batch) = next_batch(jobs) {
        // A caller that gave up (its request was cancelled) needs no vector.
        let batch: Vec<Job> = batch.into_iter().filter(|j| !j.reply.is_closed()).collect();
        if batch.is_empty() {
            continue;
        }
        let texts: Vec<String> = batch.iter().map(|j| j.text.clone()).collect();
        match model.embed_each(&texts) {
            Ok(vectors) => {
                for (job, answer) in batch.into_iter().zip(vectors) {
                    let _ = job.reply.send(Ok(answer));
                }
            }
            // One text that fails must not fail the other callers' queries in its batch (they may
            // be other tenants'): each is tried alone, and only the failing one hears of it.
            Err(_) => {
                for job in batch {
                    let alone = model.embed_each(std::slice::from_ref(&job.text)).and_then(|mut v| {
                        v.pop().ok_or_else(|| EmbedError::Inference("the model returned no vector".into()))
                    });
                    let _ = job.reply.send(alone);
                }
            }
        }
    }
}

/// Blocks for one job, then takes what else is queued, up to [`MAX_BATCH`]. `None` once every
/// sender is gone. The lock is held only while taking jobs, never during inference, so the other
/// workers take the next batch meanwhile.
fn next_batch(jobs: &Mutex<Receiver<Job>>) -> Option<Vec<Job>> {
    // A worker that panicked while holding the lock left the receiver itself intact.
    let jobs = jobs.lock().unwrap_or_else(|p| p.into_inner());
    let mut batch = vec![jobs.recv().ok()?];
    while batch.len() < MAX_BATCH {
        match jobs.try_recv() {
            Ok(job) => batch.push(job),
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
        }
    }
    Some(batch)
}
