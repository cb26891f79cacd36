//! `agentplane ingest` as a user runs it, against the shared embedded database: bad lines named
//! and skipped, re-runs that change nothing, and a run killed half-way that resumes without
//! duplicates or needless re-embedding.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::json;
use support::fake_embeddings::{FakeEmbeddings, Mode};
use support::{origin, workspace_root};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_agentplane");

fn agentplane() -> Command {
    let shared = origin();
    let mut cmd = Command::new(BIN);
    cmd.current_dir(workspace_root())
        .env("AGENTPLANE_DATA_DIR", &shared.config.data_dir)
        .env("AGENTPLANE_PG_INSTALL", &shared.config.pg_install)
        .env("AGENTPLANE_EMBEDDING", "none")
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG");
    cmd
}

fn ingest(path: &Path, tenant: Uuid) -> Command {
    let mut cmd = agentplane();
    cmd.arg("ingest").arg(path).args(["--tenant", &tenant.to_string()]);
    cmd
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "exit {:?}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = workspace_root().join("target/agentplane-test-ingest").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn corpus_line(id: &str, marker: &str, text: &str) -> String {
    format!("{}\n", json!({"_id": id, "title": format!("{marker} {id}"), "text": text}))
}

/// Rows of `sql` as the service role sees them in `tenant`'s context.
async fn tenant_rows<T>(tenant: Uuid, sql: &str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let mut tx = support::tenant_tx(origin(), tenant).await;
    let rows = sqlx::query_as(sql).fetch_all(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    rows
}

/// (documents, distinct external ids, documents with a vector) of a tenant.
async fn counts(tenant: Uuid) -> (i64, i64, i64) {
    tenant_rows(tenant, "SELECT count(*), count(DISTINCT external_id), count(embedding) FROM documents").await[0]
}

#[tokio::test]
async fn bad_lines_are_named_and_skipped_and_reruns_change_nothing() {
    let dir = scratch("bad-lines");
    let marker = format!("ing{}", Uuid::new_v4().simple());
    let mut corpus = String::new();
    for i in 0..50 {
        corpus.push_str(&corpus_line(&format!("d{i}"), &marker, &format!("text {i}")));
        if i == 1 {
            corpus.push_str("{\"_id\": \"broken\", \"text\": \n");
        }
        if i == 10 {
            corpus.push_str("{\"title\": \"no id\", \"text\": \"x\"}\n");
        }
    }
    let file = dir.join("corpus.jsonl");
    std::fs::write(&file, &corpus).unwrap();
    let tenant = Uuid::new_v4();

    let out = ingest(&file, tenant).output().unwrap();
    let text = stdout(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("corpus.jsonl:3: not a BEIR corpus line"), "{err}");
    assert!(err.contains("corpus.jsonl:13: not a BEIR corpus line: missing field `_id`"), "{err}");
    assert!(text.contains("ingested 50 documents"), "{text}");
    assert!(text.contains("50 created, 0 updated, 0 unchanged, 2 bad lines skipped"), "{text}");
    assert_eq!(counts(tenant).await, (50, 50, 0));

    let text = stdout(&ingest(&file, tenant).output().unwrap());
    assert!(text.contains("0 created, 0 updated, 50 unchanged"), "{text}");

    // One document edited: one update.
    std::fs::write(&file, corpus.replace("\"text 7\"", "\"text seven\"")).unwrap();
    let text = stdout(&ingest(&file, tenant).output().unwrap());
    assert!(text.contains("0 created, 1 updated, 49 unchanged"), "{text}");
    assert_eq!(counts(tenant).await, (50, 50, 0));
}

#[tokio::test]
async fn markdown_and_text_files_are_ingested_by_path() {
    let dir = scratch("files");
    std::fs::create_dir_all(dir.join("guides")).unwrap();
    std::fs::write(dir.join("guides/setup.md"), "# Setting up\n\nRun the two commands.").unwrap();
    std::fs::write(dir.join("notes.txt"), "Plain notes.").unwrap();
    std::fs::write(dir.join("image.png"), [0x89, 0x50]).unwrap();
    let tenant = Uuid::new_v4();
    let text = stdout(&ingest(&dir, tenant).output().unwrap());
    assert!(text.contains("ingested 2 documents") && text.contains("2 created"), "{text}");
    let rows: Vec<(String, String, serde_json::Value)> =
        tenant_rows(tenant, "SELECT external_id, title, metadata FROM documents ORDER BY external_id").await;
    assert_eq!(rows[0].0, "guides/setup.md");
    assert_eq!(rows[0].1, "Setting up");
    assert_eq!(rows[0].2["format"], "markdown");
    assert_eq!((rows[1].0.as_str(), rows[1].1.as_str()), ("notes.txt", "notes"));
}

#[tokio::test]
async fn text_and_metadata_arrive_byte_for_byte() {
    // What a text COPY format would have to escape, and what JSON can nest.
    let awkward = "tab\there\nnew line\r\n back\\slash \\N \\x00 quote\" é ü 中文 🚀 \u{1}";
    let metadata = json!({"nested": {"list": [1, 2.5, null, "x\ty"]}, "empty": {}, "unicode": "ß"});
    let dir = scratch("awkward");
    let line = json!({"_id": "a\tb", "title": awkward, "text": awkward, "metadata": metadata});
    std::fs::write(dir.join("corpus.jsonl"), format!("{line}\n")).unwrap();
    let tenant = Uuid::new_v4();
    stdout(&ingest(&dir.join("corpus.jsonl"), tenant).output().unwrap());
    let rows: Vec<(String, String, String, serde_json::Value)> =
        tenant_rows(tenant, "SELECT external_id, title, content, metadata FROM documents").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0], ("a\tb".to_owned(), awkward.to_owned(), awkward.to_owned(), metadata));
}

// Multi-threaded: the fake provider must keep answering while the test waits for the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_repeated_under_other_ids_is_embedded_once() {
    let fake = FakeEmbeddings::start().await;
    fake.set(Mode::Ok);
    let dir = scratch("repeated");
    let marker = format!("rep{}", Uuid::new_v4().simple());
    // The same 10 texts three times over, in different batches and within one.
    let corpus: String = (0..30)
        .map(|i| {
            let d = json!({"_id": format!("d{i}"), "title": marker, "text": format!("passage {}", i % 10)});
            format!("{d}\n")
        })
        .collect();
    std::fs::write(dir.join("corpus.jsonl"), corpus).unwrap();
    let tenant = Uuid::new_v4();
    let mut cmd = ingest(&dir.join("corpus.jsonl"), tenant);
    cmd.env("AGENTPLANE_EMBEDDING", "openai")
        .env("AGENTPLANE_EMBEDDING_URL", fake.url())
        .env("AGENTPLANE_EMBEDDING_MODEL", "fake-minilm")
        .args(["--batch", "15"]);
    let text = stdout(&cmd.output().unwrap());
    assert!(text.contains("30 created"), "{text}");
    assert_eq!(counts(tenant).await, (30, 30, 30));
    let seen = fake.counts(&marker);
    assert_eq!(seen.len(), 10, "{seen:?}");
    assert!(seen.values().all(|n| *n == 1), "each distinct text embedded once: {seen:?}");
    let distinct: Vec<(i64,)> = tenant_rows(tenant, "SELECT count(DISTINCT embedding::text) FROM documents").await;
    assert_eq!(distinct[0].0, 10);
}

// Multi-threaded: the fake provider must keep answering while the test waits for the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_ingest_resumes_without_duplicates() {
    let fake = FakeEmbeddings::start().await;
    // Slow enough that the run is still going when it is killed.
    fake.shared.latency_ms.store(150, std::sync::atomic::Ordering::Relaxed);
    fake.set(Mode::Ok);
    let dir = scratch("interrupted");
    let marker = format!("int{}", Uuid::new_v4().simple());
    let corpus: String = (0..120).map(|i| corpus_line(&format!("d{i}"), &marker, &format!("passage {i}"))).collect();
    let file = dir.join("corpus.jsonl");
    std::fs::write(&file, corpus).unwrap();
    let tenant = Uuid::new_v4();
    let with_fake = |cmd: &mut Command| {
        cmd.env("AGENTPLANE_EMBEDDING", "openai")
            .env("AGENTPLANE_EMBEDDING_URL", fake.url())
            .env("AGENTPLANE_EMBEDDING_MODEL", "fake-minilm")
            .args(["--batch", "10"]);
    };

    let mut cmd = ingest(&file, tenant);
    with_fake(&mut cmd);
    // Its output goes to a file, read back if it never gets anywhere.
    let log_path = dir.join("first-run.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = cmd.stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (docs, _, _) = counts(tenant).await;
        if docs >= 20 {
            break;
        }
        if Instant::now() >= deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            let output = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!(
                "ingest made no progress ({docs} rows, {} requests to the model); its output:\n{output}",
                fake.requests()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let (docs, _, embedded) = counts(tenant).await;
    assert!(docs < 120, "killed too late to test anything ({docs} rows)");
    assert_eq!(docs % 10, 0, "only whole batches are committed");
    assert_eq!(embedded, docs);

    let mut cmd = ingest(&file, tenant);
    with_fake(&mut cmd);
    let text = stdout(&cmd.output().unwrap());
    assert!(text.contains(&format!("{} created, 0 updated, {docs} unchanged", 120 - docs)), "{text}");
    assert_eq!(counts(tenant).await, (120, 120, 120));
    // Committed rows were not embedded again; at most the batch in flight at the kill was.
    let seen = fake.counts(&marker);
    assert_eq!(seen.len(), 120);
    let twice = seen.values().filter(|n| **n > 1).count();
    assert!(twice <= 10, "{twice} documents embedded more than once");

    // A third run has nothing to do and calls no model.
    let before = fake.requests();
    let mut cmd = ingest(&file, tenant);
    with_fake(&mut cmd);
    let text = stdout(&cmd.output().unwrap());
    assert!(text.contains("0 created, 0 updated, 120 unchanged"), "{text}");
    assert_eq!(fake.requests(), before);
}

#[tokio::test]
async fn several_runs_starting_at_once_all_succeed() {
    // Each run provisions the embedded database's role on start; at the same moment, unserialised
    // ALTER ROLE / GRANT statements failed with "tuple concurrently updated".
    let dir = scratch("at-once");
    let file = dir.join("one.jsonl");
    std::fs::write(&file, corpus_line("only", "at-once", "one passage")).unwrap();
    let children: Vec<_> = (0..6)
        .map(|_| {
            ingest(&file, Uuid::new_v4())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let text = stdout(&child.wait_with_output().unwrap());
        assert!(text.contains("1 created"), "{text}");
    }
}

/// Issue 12, point 4: document ids are each tenant's own. Tenant A writes under the ids B's
/// ingest will derive (A can compute them from B's tenant id); B's ingest still succeeds, and
/// A's answers are the same whether or not B holds an id.
#[tokio::test]
async fn another_tenant_cannot_pre_claim_or_probe_document_ids() {
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let ca = origin().client(a, support::ALL_SCOPES);
    let claimed = agentplane_origin::data::ingest::document_id(b, "d0");
    let up = ca.call("upsert_document", json!({"id": claimed, "title": "squat", "content": "squatted"})).await;
    assert_eq!(up.structured()["status"], "created");

    let dir = scratch("pre-claimed");
    let file = dir.join("corpus.jsonl");
    std::fs::write(&file, corpus_line("d0", "mine", "B's text") + &corpus_line("d1", "mine", "more")).unwrap();
    let text = stdout(&ingest(&file, b).output().unwrap());
    assert!(text.contains("2 created"), "{text}");
    let titles: Vec<(String,)> = tenant_rows(b, "SELECT title FROM documents ORDER BY title").await;
    assert_eq!(titles, [("mine d0".to_owned(),), ("mine d1".to_owned(),)]);

    // B now holds d1's id: A's write under it answers as for any fresh id, and A's read misses.
    let held = agentplane_origin::data::ingest::document_id(b, "d1");
    let up = ca.call("upsert_document", json!({"id": held, "title": "probe", "content": "probe"})).await;
    assert_eq!(up.structured()["status"], "created");
    let got = ca.call("get_document", json!({"id": held})).await;
    assert_eq!(got.structured()["title"], "probe");
    let titles: Vec<(String,)> = tenant_rows(b, "SELECT title FROM documents ORDER BY title").await;
    assert_eq!(titles.len(), 2, "B's documents are untouched");
    assert_eq!(titles[1].0, "mine d1");
}
