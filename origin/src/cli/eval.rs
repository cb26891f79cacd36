//! `agentplane eval`: search quality on a BEIR collection (see `crate::dev::eval`).

use std::path::PathBuf;

use crate::app::config::Config;
use crate::app::runtime::DatabaseHandle;
use crate::app::server;
use crate::data::db::{SystemTask, TenantId};
use crate::dev::eval;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A BEIR collection directory: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.
    #[arg(long)]
    corpus: PathBuf,
    /// Which judgements to score: train (tune on these) or test (report these).
    #[arg(long, default_value = "test")]
    qrels: String,
    /// End with one JSON line: {"bm25": {"ndcg@10": x, "recall@100": y}, "vector": ..., "hybrid": ...}.
    #[arg(long)]
    json: bool,
    /// Also score a grid of fusion settings (vector weight x rrf_k). Tune on train, report on test.
    #[arg(long)]
    tune: bool,
}

pub async fn run(config: Config, args: Args) -> anyhow::Result<()> {
    let handle = DatabaseHandle::open(&config).await?;
    let result = async {
        let embedder = server::embedder(&config, &handle.db).await?;
        let tenant = TenantId::for_system_task(eval::tenant_for(&args.corpus), SystemTask::Evaluation);
        let mut progress = super::ingest::Progress::new();
        let loaded = eval::load(&handle.db, embedder.as_ref(), tenant, &args.corpus, &mut progress).await;
        progress.finish();
        let loaded = loaded?;
        let documents = loaded.read;
        if loaded.created + loaded.updated > 0 {
            eprintln!(
                "loaded {} documents in {:.1} s ({:.1} docs/s)",
                loaded.created + loaded.updated,
                loaded.elapsed.as_secs_f64(),
                (loaded.created + loaded.updated) as f64 / loaded.elapsed.as_secs_f64().max(1e-9)
            );
        }
        let report =
            eval::evaluate(&handle.db, embedder.as_ref(), tenant, &args.corpus, &args.qrels, args.tune).await?;
        println!(
            "{} ({} split): {} queries, {documents} documents, tenant {}",
            args.corpus.display(),
            args.qrels,
            report.queries,
            report.tenant
        );
        println!("{:<8} {:>8} {:>11}", "mode", "nDCG@10", "Recall@100");
        for (name, s) in [("bm25", Some(report.bm25)), ("vector", report.vector), ("hybrid", report.hybrid)] {
            match s {
                Some(s) => println!("{name:<8} {:>8.4} {:>11.4}", s.ndcg_10, s.recall_100),
                None => println!("{name:<8} {:>8} {:>11}", "-", "-"),
            }
        }
        if !report.grid.is_empty() {
            println!("fusion grid (bm25 weight 1): vector_weight rrf_k nDCG@10 Recall@100");
            let mut grid = report.grid.clone();
            grid.sort_by(|a, b| b.scores.ndcg_10.total_cmp(&a.scores.ndcg_10));
            for g in &grid {
                println!(
                    "{:>6.2} {:>5} {:>8.4} {:>11.4}",
                    g.vector_weight, g.rrf_k, g.scores.ndcg_10, g.scores.recall_100
                );
            }
        }
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        }
        anyhow::Ok(())
    }
    .await;
    handle.close().await;
    result
}
