//! `agentplane ingest FILE|DIR --tenant UUID`: see `crate::data::ingest`.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use uuid::Uuid;

use crate::app::config::Config;
use crate::app::runtime::DatabaseHandle;
use crate::app::server;
use crate::data::db::{SystemTask, TenantId};
use crate::data::ingest::{self, Options, source::Bad};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A BEIR corpus (.jsonl, or a collection directory with corpus.jsonl), a Markdown or text
    /// file, or a directory of them.
    path: PathBuf,
    /// The tenant the documents belong to.
    #[arg(long)]
    tenant: Uuid,
    /// Documents per transaction (default: 64 with embeddings, 2000 without).
    #[arg(long)]
    batch: Option<usize>,
}

/// A progress bar with documents per second and ETA on a terminal; a plain line per thousand
/// documents otherwise, so logs of unattended runs still show progress.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    terminal: bool,
    done: u64,
}

impl Progress {
    pub fn new() -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if !terminal {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        let style = ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{wide_bar}] {human_pos}/{human_len} docs  {per_sec}  ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        Self { bar, terminal, done: 0 }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl ingest::Observer for Progress {
    fn total(&mut self, records: u64) {
        self.bar.set_length(records);
    }

    fn advanced(&mut self, records: u64) {
        self.bar.inc(records);
        let before = self.done;
        self.done += records;
        if !self.terminal && before / 1000 != self.done / 1000 {
            let rate = self.bar.per_sec();
            eprintln!("ingest: {}/{} documents, {rate:.0} docs/s", self.done, self.bar.length().unwrap_or(0));
        }
    }

    fn bad(&mut self, bad: &Bad) {
        self.bar.suspend(|| eprintln!("{}: {} (skipped)", bad.location, bad.reason));
    }

    fn warn(&mut self, message: &str) {
        self.bar.suspend(|| eprintln!("agentplane: warning: {message}"));
    }
}

pub async fn run(config: Config, args: Args) -> anyhow::Result<()> {
    let handle = DatabaseHandle::open(&config).await?;
    let result = async {
        let embedder = server::embedder(&config, &handle.db).await?;
        let mut options = Options::for_embedder(embedder.as_ref());
        if let Some(b) = args.batch {
            anyhow::ensure!(b > 0, "--batch must be at least 1");
            options.batch = b;
        }
        let mut progress = Progress::new();
        let summary = ingest::ingest(
            &handle.db,
            embedder.as_ref(),
            TenantId::for_system_task(args.tenant, SystemTask::Ingest),
            &args.path,
            &options,
            &mut progress,
        )
        .await
        .with_context(|| format!("ingesting {}", args.path.display()));
        progress.finish();
        let s = summary?;
        println!(
            "ingested {} documents in {:.1} s ({:.0} docs/s): {} created, {} updated, {} unchanged, {} bad lines skipped{}{}",
            s.read,
            s.elapsed.as_secs_f64(),
            s.docs_per_sec(),
            s.created,
            s.updated,
            s.unchanged,
            s.bad,
            if s.repeated > 0 { format!(", {} repeated ids (last wins)", s.repeated) } else { String::new() },
            match (&embedder, s.without_embedding) {
                (None, _) => ", embeddings off".to_owned(),
                (Some(_), 0) => String::new(),
                (Some(_), n) => format!(", {n} without vectors (the back-fill of a running origin embeds them)"),
            }
        );
        anyhow::Ok(())
    }
    .await;
    handle.close().await;
    result
}
